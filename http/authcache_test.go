package http_test

import (
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// Credentials are cached, but nothing that ends or changes them waits for
// the cache: each takes effect on the very next request.
func TestCachedCredentialsEndAtOnce(t *testing.T) {
	s := MustOpenServer(t)
	s.MustCreateUser(t, "alice", true)
	adminUser, _ := s.MustCreateUser(t, "dora", true)
	dora := s.MustCreateToken(t, adminUser, "user")
	s.MustCreateUser(t, "stranger", false)

	// A token, used once (and so cached), then revoked by its owner.
	admin := login(t, s, "alice")
	var tok struct {
		ID    int64
		Token string
	}
	if status, b := doCookie(t, s, "POST", "/api/v1/tokens", admin, map[string]any{"name": "script"}); status != http.StatusCreated {
		t.Fatalf("create token: %d %s", status, b)
	} else if err := json.Unmarshal(b, &tok); err != nil {
		t.Fatal(err)
	}
	s.MustDo(t, "GET", "/api/v1/me", tok.Token, nil, 200, nil)
	s.MustDo(t, "GET", "/api/v1/me", tok.Token, nil, 200, nil)
	if status, b := doCookie(t, s, "DELETE", "/api/v1/tokens/"+itoa(tok.ID), admin, nil); status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", status, b)
	}
	s.MustFail(t, "GET", "/api/v1/me", tok.Token, nil, 401, "unauthorized", "")

	// A session, used, then logged out.
	cookie := login(t, s, "alice")
	if status, _ := doCookie(t, s, "GET", "/api/v1/me", cookie, nil); status != 200 {
		t.Fatalf("session: %d", status)
	}
	if status, _ := doCookie(t, s, "POST", "/api/v1/logout", cookie, nil); status != http.StatusNoContent {
		t.Fatalf("logout: %d", status)
	}
	if status, _ := doCookie(t, s, "GET", "/api/v1/me", cookie, nil); status != 401 {
		t.Fatalf("a logged-out session got %d, want 401", status)
	}

	// An admin, cached as one, demoted: they may no longer address a
	// stranger.
	s.MustPublish(t, dora, map[string]any{"recipients": []string{"stranger"}, "text": "as an admin"})
	if status, b := doCookie(t, s, "PATCH", "/api/v1/users/dora", admin, map[string]any{"role": "user"}); status != 200 {
		t.Fatalf("demote dora: %d %s", status, b)
	}
	s.MustFail(t, "POST", "/api/v1/messages", dora, map[string]any{"recipients": []string{"stranger"}, "text": "as a user"}, 403, "forbidden", "recipients")
}

// While every end of a credential is heard, an idle client's credential
// costs the database nothing until the store wants it looked up again, an
// hour after its last recorded use: a poll made again from its cursor is
// then no statement at all, by token or by session. When the ends are not
// heard (a PostgreSQL node whose Listener is down), or the store began to
// hear them afresh, the credential is believed 30 s, as before.
func TestCachedCredentialsCostNothingWhileEveryEndIsHeard(t *testing.T) {
	clock := newTestClock()
	var heard atomic.Bool
	var since atomic.Uint64
	heard.Store(true)
	s := MustOpenServer(t, WithClock(clock), WithAccessEnds(func() (bool, uint64) { return heard.Load(), since.Load() }))
	_, token := s.MustCreateUser(t, "bob", false)
	cookie := login(t, s, "bob")
	cursor := s.MustPoll(t, token, "timeout=0").Cursor
	clients := func() int64 { c, _ := s.DB.StatementCounts(); return c }
	for _, by := range []struct{ what, header, value string }{
		{"token", "Authorization", "Bearer " + token},
		{"session", "Cookie", cookie},
	} {
		poll := func() {
			t.Helper()
			if got := <-holdPollFor(t, s, by.header, by.value, cursor, "0"); got.status != 200 {
				t.Fatalf("poll with the %s: %d %s", by.what, got.status, got.body)
			}
		}
		costs := func(what string, want bool) {
			t.Helper()
			before := clients()
			poll()
			if got := clients() - before; (got > 0) != want {
				t.Errorf("a poll with the %s %s cost %d statements, want %s", by.what, what, got, map[bool]string{true: "some", false: "none"}[want])
			}
		}
		heard.Store(true)
		poll() // looked up, its use recorded
		clock.Advance(10 * time.Minute)
		costs("10 minutes later, every end heard", false)
		clock.Advance(51 * time.Minute)
		costs("an hour after its use was recorded", true)
		clock.Advance(time.Minute)
		costs("a minute after that", false)

		heard.Store(false)
		clock.Advance(time.Minute)
		costs("a minute later, the ends no longer heard", true)
		clock.Advance(20 * time.Second)
		costs("20 s after that", false)
		clock.Advance(11 * time.Second)
		costs("31 s after that", true)

		heard.Store(true)
		clock.Advance(time.Minute)
		costs("the ends heard again", true)
		clock.Advance(time.Minute)
		costs("a minute after that", false)
		since.Add(1)
		clock.Advance(time.Minute)
		costs("after the store began to hear the ends afresh", true)
		clock.Advance(time.Minute)
		costs("a minute after that", false)
	}
}

// An end of one user's credential sends that user's clients back to the
// store, not everybody's: a logout somewhere costs the other idle clients
// nothing.
func TestAnEndOfOneUsersCredentialLeavesTheOthersCached(t *testing.T) {
	s := MustOpenServer(t)
	_, bobToken := s.MustCreateUser(t, "bob", false)
	s.MustCreateUser(t, "alice", false)
	cursor := s.MustPoll(t, bobToken, "timeout=0").Cursor
	clients := func() int64 { c, _ := s.DB.StatementCounts(); return c }
	poll := func() int64 {
		t.Helper()
		before := clients()
		if got := <-holdPollFor(t, s, "Authorization", "Bearer "+bobToken, cursor, "0"); got.status != 200 {
			t.Fatalf("bob's poll: %d %s", got.status, got.body)
		}
		return clients() - before
	}
	poll()

	alice := login(t, s, "alice")
	if status, _ := doCookie(t, s, "POST", "/api/v1/logout", alice, nil); status != http.StatusNoContent {
		t.Fatalf("alice's logout: %d", status)
	}
	if n := poll(); n != 0 {
		t.Errorf("after alice logged out, bob's poll cost %d statements, want 0", n)
	}

	other := login(t, s, "bob")
	if status, _ := doCookie(t, s, "POST", "/api/v1/logout", other, nil); status != http.StatusNoContent {
		t.Fatalf("bob's logout of another session: %d", status)
	}
	if n := poll(); n == 0 {
		t.Error("after one of bob's sessions ended, his token was believed without asking the store")
	}
}
