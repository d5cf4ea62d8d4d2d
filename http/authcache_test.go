package http_test

import (
	"encoding/json"
	"net/http"
	"testing"
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
