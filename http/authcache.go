package http

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/tidings/tidings"
)

// authCacheTTL bounds how long a credential is believed without asking the
// store, unless the store vouches that every end of one reaches the hub
// (Server.AccessEnds): a request then costs no database read to
// authenticate. What ends a credential sooner (logout, revocation, a
// password or role change, a deleted user) is announced through the hub's
// access changes, which send that user's cached answers back to the store
// at once.
//
// When every end is heard, the answer is believed until the store wants
// to be asked again (tidings.Auth's Recheck: the credential's use is due to
// be recorded, at most hourly, or it expires), at most authCacheLongest:
// an idle client that polls again every 25 s costs no database work for
// its credential but that hourly lookup.
const (
	authCacheTTL     = 30 * time.Second
	authCacheLongest = time.Hour
)

// maxAuthCache bounds the cache; when it is full it starts over. It holds
// more credentials than one node holds connections (about 20,000 here), so
// that idle clients are not looked up again because others crowd them out.
const maxAuthCache = 50000

// authCache remembers who holds a session or token secret. An answer is
// believed while its user's access changes (the hub's AccessChangesFor)
// stand where they stood when it was asked for: an end of one user's
// credential sends only that user's clients back to the store.
type authCache struct {
	mu      sync.Mutex
	entries map[[32]byte]authEntry
}

type authEntry struct {
	auth    *tidings.Auth
	changes uint64    // the hub's AccessChangesFor its user when it was asked for
	expires time.Time // believed until then in any case
	// heard: believed until until while every end is heard, since the
	// count since that the store gave when it was cached.
	heard bool
	until time.Time
	since uint64
}

func authKey(kind, secret string) [32]byte { return sha256.Sum256([]byte(kind + "\x00" + secret)) }

// get returns a copy of the cached Auth for the secret, if it is fresh and
// none of its user's credentials ended since it was cached (changes gives
// the hub's count for a user); heard and since are what the store says of
// the ends now (see tidings.AccessEnds).
func (c *authCache) get(key [32]byte, changes func(userID int64) uint64, now time.Time, heard bool, since uint64) (*tidings.Auth, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	fresh := now.Before(e.expires) || e.heard && heard && since == e.since && now.Before(e.until)
	if !fresh || changes(e.auth.User.ID) != e.changes {
		delete(c.entries, key)
		return nil, false
	}
	a := *e.auth
	return &a, true
}

// put caches an Auth the store just confirmed, with its user's access
// changes as they stood before the question; heard and since are what the
// store said of the ends before it too.
func (c *authCache) put(key [32]byte, changes uint64, auth *tidings.Auth, now time.Time, heard bool, since uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxAuthCache {
		c.entries = make(map[[32]byte]authEntry)
	}
	a := *auth
	e := authEntry{auth: &a, changes: changes, expires: now.Add(authCacheTTL)}
	if !a.Recheck.IsZero() && a.Recheck.Before(e.expires) {
		e.expires = a.Recheck
	}
	if heard && !a.Recheck.IsZero() {
		e.heard, e.since = true, since
		e.until = now.Add(authCacheLongest)
		if a.Recheck.Before(e.until) {
			e.until = a.Recheck
		}
	}
	c.entries[key] = e
}

// authenticateCached asks the cache, then the store.
func (s *Server) authenticateCached(kind, secret string, ask func() (*tidings.Auth, error)) (*tidings.Auth, error) {
	key := authKey(kind, secret)
	before := s.Hub.AccessChanges()
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	var heard bool
	var since uint64
	if s.AccessEnds != nil {
		heard, since = s.AccessEnds()
	}
	if a, ok := s.auths.get(key, s.Hub.AccessChangesFor, now, heard, since); ok {
		return a, nil
	}
	a, err := ask()
	if err != nil {
		return nil, err
	}
	if a.User == nil {
		return a, nil
	}
	// The user's count, then the count of all: unchanged since before the
	// question, no end came between the store's answer and the user's
	// count (the hub raises the count of all first). Otherwise the answer
	// may be stale, and is not kept.
	changes := s.Hub.AccessChangesFor(a.User.ID)
	if s.Hub.AccessChanges() == before {
		s.auths.put(key, changes, a, now, heard, since)
	}
	return a, nil
}
