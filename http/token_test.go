package http_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// wireToken is a token as the list shows it.
type wireToken struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// tokens lists the client's tokens by name, checking that no secret is in
// the answer.
func (c *Client) tokens(tb testing.TB) map[string]wireToken {
	tb.Helper()
	status, b := c.Do(tb, "GET", "/api/v1/tokens", nil)
	if status != http.StatusOK {
		tb.Fatalf("list tokens: status %d: %s", status, b)
	}
	var raw struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		tb.Fatal(err)
	}
	for _, item := range raw.Items {
		for k := range item {
			if k != "id" && k != "name" && k != "scopes" && k != "created_at" && k != "last_used_at" {
				tb.Fatalf("a listed token has the field %q: %s", k, b)
			}
		}
	}
	if strings.Contains(string(b), "tdg_") {
		tb.Fatalf("the list shows a secret: %s", b)
	}
	var l struct{ Items []wireToken }
	if err := json.Unmarshal(b, &l); err != nil {
		tb.Fatal(err)
	}
	out := map[string]wireToken{}
	for _, t := range l.Items {
		out[t.Name] = t
	}
	return out
}

// createToken creates a token through the API and returns its id and secret.
func (c *Client) createToken(tb testing.TB, body map[string]any) (int64, string) {
	tb.Helper()
	var created struct {
		ID    int64
		Token string
	}
	c.MustDo(tb, "POST", "/api/v1/tokens", body, http.StatusCreated, &created)
	return created.ID, created.Token
}

func TestTokenListAndRevoke(t *testing.T) {
	clock := newTestClock()
	s := MustOpenServer(t, WithClock(clock))
	s.MustCreateUser(t, "alice", false)
	alice := loginClient(t, s, "alice")
	id, secret := alice.createToken(t, map[string]any{"name": "ci"})

	list := alice.tokens(t)
	ci, ok := list["ci"]
	if !ok || len(list) != 2 { // and the one MustCreateUser made
		t.Fatalf("tokens = %+v, want ci and test", list)
	}
	if ci.ID != id || strings.Join(ci.Scopes, ",") != "user" || !ci.CreatedAt.Equal(clock.Now()) || ci.LastUsedAt != nil {
		t.Fatalf("ci = %+v, want id %d, scopes [user], created now, never used", ci, id)
	}

	// A use is recorded, to the hour: not every request writes.
	s.MustDo(t, "GET", "/api/v1/projects", secret, nil, http.StatusOK, nil)
	first := clock.Now()
	if used := alice.tokens(t)["ci"].LastUsedAt; used == nil || !used.Equal(first) {
		t.Fatalf("last_used_at = %v after a use, want %v", used, first)
	}
	clock.Advance(30 * time.Minute)
	s.MustDo(t, "GET", "/api/v1/projects", secret, nil, http.StatusOK, nil)
	if used := alice.tokens(t)["ci"].LastUsedAt; used == nil || !used.Equal(first) {
		t.Fatalf("last_used_at = %v half an hour later, want still %v", used, first)
	}
	clock.Advance(31 * time.Minute)
	s.MustDo(t, "GET", "/api/v1/projects", secret, nil, http.StatusOK, nil)
	if used := alice.tokens(t)["ci"].LastUsedAt; used == nil || !used.Equal(clock.Now()) {
		t.Fatalf("last_used_at = %v an hour later, want %v", used, clock.Now())
	}

	alice.MustDo(t, "DELETE", "/api/v1/tokens/"+itoa(id), nil, http.StatusNoContent, nil)
	s.MustFail(t, "GET", "/api/v1/projects", secret, nil, 401, "unauthorized", "")
	if list := alice.tokens(t); len(list) != 1 || list["ci"].ID != 0 {
		t.Fatalf("tokens after the revoke = %+v", list)
	}
	alice.MustFail(t, "DELETE", "/api/v1/tokens/"+itoa(id), nil, 404, "not_found", "")
}

func TestTokenOfAnotherUserIsNotFound(t *testing.T) {
	s := MustOpenServer(t)
	s.MustCreateUser(t, "alice", false)
	s.MustCreateUser(t, "bob", false)
	alice, bob := loginClient(t, s, "alice"), loginClient(t, s, "bob")
	id, secret := alice.createToken(t, map[string]any{"name": "ci"})

	bob.MustFail(t, "DELETE", "/api/v1/tokens/"+itoa(id), nil, 404, "not_found", "")
	if _, ok := bob.tokens(t)["ci"]; ok {
		t.Fatal("bob sees alice's token")
	}
	s.MustDo(t, "GET", "/api/v1/projects", secret, nil, http.StatusOK, nil)
	// Ids are parsed strictly: another spelling of the id is no id.
	for _, p := range []string{"0" + itoa(id), "+" + itoa(id), itoa(id) + ".0", "x", "-1", "0"} {
		alice.MustFail(t, "DELETE", "/api/v1/tokens/"+p, nil, 404, "not_found", "")
	}
	if _, ok := alice.tokens(t)["ci"]; !ok {
		t.Fatal("alice's token is gone")
	}
}

func TestTokensCannotManageTokens(t *testing.T) {
	s := MustOpenServer(t)
	_, tok := s.MustCreateUser(t, "alice", true)
	alice := loginClient(t, s, "alice")
	id := alice.tokens(t)["test"].ID
	s.MustFail(t, "GET", "/api/v1/tokens", tok, nil, 403, "forbidden", "")
	s.MustFail(t, "DELETE", "/api/v1/tokens/"+itoa(id), tok, nil, 403, "forbidden", "")
	s.MustFail(t, "POST", "/api/v1/tokens", tok, map[string]any{"name": "more"}, 403, "forbidden", "")
	s.MustDo(t, "GET", "/api/v1/projects", tok, nil, http.StatusOK, nil)
}

// TestRevokedTokenEndsItsPoll: a held poll that a token authenticated ends
// with 401 once the token is revoked (SPEC §7 Ending access).
func TestRevokedTokenEndsItsPoll(t *testing.T) {
	s := MustOpenServer(t)
	alice, _ := s.MustCreateUser(t, "alice", false)
	c := loginClient(t, s, "alice")
	id, secret := c.createToken(t, map[string]any{"name": "watcher"})
	start := s.MustPoll(t, secret, "timeout=0")
	got := goPoll(s, secret, start.Cursor)
	waitFor(t, "the poll to be held", func() bool { return s.Hub.WaitingFor(alice.ID) == 1 })
	c.MustDo(t, "DELETE", "/api/v1/tokens/"+itoa(id), nil, http.StatusNoContent, nil)
	select {
	case r := <-got:
		if r.err == nil || !strings.Contains(r.err.Error(), "401") {
			t.Fatalf("held poll after the revoke: %+v, %v; want 401", r.poll, r.err)
		}
	case <-time.After(time.Second):
		t.Fatal("the held poll did not end within 1 s of the revoke")
	}
}

// TestOnlyAdminsCreatePublishTokens: a publish token addresses anyone, so
// only administrators (and the command line) may make one (SPEC §7 Tokens).
func TestOnlyAdminsCreatePublishTokens(t *testing.T) {
	s := MustOpenServer(t)
	s.MustCreateUser(t, "alice", true)
	bob, _ := s.MustCreateUser(t, "bob", false)
	s.MustCreateUser(t, "dave", false)
	alice, bobClient := loginClient(t, s, "alice"), loginClient(t, s, "bob")

	before := bobClient.tokens(t)
	for _, scopes := range [][]string{{"publish"}, {"user", "publish"}} {
		bobClient.MustFail(t, "POST", "/api/v1/tokens", map[string]any{"name": "ops", "scopes": scopes}, 403, "forbidden", "scopes")
	}
	if after := bobClient.tokens(t); len(after) != len(before) {
		t.Fatalf("tokens after refused creates: %+v, before %+v", after, before)
	}
	bobClient.createToken(t, map[string]any{"name": "mine", "scopes": []string{"user"}})

	_, secret := alice.createToken(t, map[string]any{"name": "ops", "scopes": []string{"publish"}})
	if got := alice.tokens(t)["ops"]; strings.Join(got.Scopes, ",") != "publish" {
		t.Fatalf("alice's publish token = %+v", got)
	}
	if n := s.MustPublish(t, secret, map[string]any{"recipients": []string{"dave"}, "text": "maintenance"}); n != 1 {
		t.Fatalf("publish with alice's token reached %d, want 1", n)
	}
	// The command line may make one for anyone; it acts as the system.
	pub := s.MustCreateToken(t, bob, "publish")
	if n := s.MustPublish(t, pub, map[string]any{"recipients": []string{"dave"}, "text": "from bob's ops"}); n != 1 {
		t.Fatalf("publish with bob's token reached %d, want 1", n)
	}
}
