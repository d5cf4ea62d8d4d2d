package http

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/tidings/tidings"
)

// authCacheTTL bounds how long a credential is believed without asking the
// store: a request then costs no database read to authenticate. What ends
// a credential sooner (logout, revocation, a password or role change, a
// deleted user) is announced through the hub's access changes, which empty
// the cache at once.
const authCacheTTL = 30 * time.Second

// maxAuthCache bounds the cache; when it is full it starts over.
const maxAuthCache = 10000

// authCache remembers who holds a session or token secret.
type authCache struct {
	mu      sync.Mutex
	gen     uint64 // the hub's access changes when the entries were made
	entries map[[32]byte]authEntry
}

type authEntry struct {
	auth    *tidings.Auth
	expires time.Time
}

func authKey(kind, secret string) [32]byte { return sha256.Sum256([]byte(kind + "\x00" + secret)) }

// get returns a copy of the cached Auth for the secret, if it is fresh and
// no credential ended since it was cached.
func (c *authCache) get(key [32]byte, gen uint64, now time.Time) (*tidings.Auth, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		c.entries, c.gen = nil, gen
		return nil, false
	}
	e, ok := c.entries[key]
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	a := *e.auth
	return &a, true
}

// put caches an Auth the store just confirmed, unless a credential ended
// while it was asked (gen is the count from before the question).
func (c *authCache) put(key [32]byte, gen uint64, auth *tidings.Auth, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		if gen < c.gen {
			return // older than what the cache already knows
		}
		c.entries, c.gen = nil, gen
	}
	if c.entries == nil || len(c.entries) >= maxAuthCache {
		c.entries = make(map[[32]byte]authEntry)
	}
	a := *auth
	c.entries[key] = authEntry{auth: &a, expires: now.Add(authCacheTTL)}
}

// authenticateCached asks the cache, then the store.
func (s *Server) authenticateCached(kind, secret string, ask func() (*tidings.Auth, error)) (*tidings.Auth, error) {
	key := authKey(kind, secret)
	gen := s.Hub.AccessChanges()
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	if a, ok := s.auths.get(key, gen, now); ok {
		return a, nil
	}
	a, err := ask()
	if err != nil {
		return nil, err
	}
	s.auths.put(key, gen, a, now)
	return a, nil
}
