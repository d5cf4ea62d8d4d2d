package http_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// userByLogin reads one user through the admin API.
func userByLogin(t *testing.T, admin *Client, login string) map[string]any {
	t.Helper()
	var list struct{ Items []map[string]any }
	admin.MustDo(t, "GET", "/api/v1/users?login="+login, nil, http.StatusOK, &list)
	if len(list.Items) != 1 {
		t.Fatalf("GET /api/v1/users?login=%s found %d users", login, len(list.Items))
	}
	return list.Items[0]
}

// TestLastAdminStays: the last administrator can neither be deleted nor
// demoted, not even by themselves, and the refusal changes nothing; with a
// second administrator both work.
func TestLastAdminStays(t *testing.T) {
	s := MustOpenServer(t)
	s.MustCreateUser(t, "alice", true)
	s.MustCreateUser(t, "bob", false)
	alice := loginClient(t, s, "alice")
	before := userByLogin(t, alice, "alice")

	alice.MustFail(t, "DELETE", "/api/v1/users/alice", nil, http.StatusConflict, "conflict", "")
	alice.MustFail(t, "PATCH", "/api/v1/users/alice", map[string]any{"role": "user"}, http.StatusConflict, "conflict", "")
	alice.MustFail(t, "PATCH", "/api/v1/users/alice", map[string]any{"role": "user", "name": "Alice Demoted"}, http.StatusConflict, "conflict", "")
	if after := userByLogin(t, alice, "alice"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("after the refusals alice is %v, was %v", after, before)
	}
	alice.MustDo(t, "POST", "/api/v1/users", map[string]any{"login": "carol", "name": "Carol Clark", "email": "carol@example.org", "password": "long enough"}, http.StatusCreated, nil)

	// With bob an administrator too, alice may step down; then bob is the last.
	alice.MustDo(t, "PATCH", "/api/v1/users/bob", map[string]any{"role": "admin"}, http.StatusOK, nil)
	var u map[string]any
	alice.MustDo(t, "PATCH", "/api/v1/users/alice", map[string]any{"role": "user"}, http.StatusOK, &u)
	if u["role"] != "user" {
		t.Fatalf("alice after stepping down: %v", u)
	}
	alice.MustFail(t, "GET", "/api/v1/users", nil, http.StatusForbidden, "forbidden", "")
	bob := loginClient(t, s, "bob")
	bob.MustFail(t, "DELETE", "/api/v1/users/bob", nil, http.StatusConflict, "conflict", "")
	bob.MustFail(t, "PATCH", "/api/v1/users/bob", map[string]any{"role": "user"}, http.StatusConflict, "conflict", "")
	if got := userByLogin(t, bob, "bob"); got["role"] != "admin" {
		t.Fatalf("bob after the refusals: %v", got)
	}
	// A plain user is deleted without fuss, as is an administrator who is not the last.
	bob.MustDo(t, "DELETE", "/api/v1/users/carol", nil, http.StatusNoContent, nil)
	bob.MustDo(t, "PATCH", "/api/v1/users/alice", map[string]any{"role": "admin"}, http.StatusOK, nil)
	bob.MustDo(t, "DELETE", "/api/v1/users/alice", nil, http.StatusNoContent, nil)
}

// TestPasswordChangeEndsOtherSessions: after a user changes their password,
// every other session of theirs is logged out, while the session that
// changed it goes on; the old password no longer logs in. When an admin
// changes it, all of the user's sessions end and the admin's goes on.
func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	s := MustOpenServer(t)
	s.MustCreateUser(t, "alice", true)
	s.MustCreateUser(t, "bob", false)
	laptop := loginClient(t, s, "bob")
	phone := loginClient(t, s, "bob")
	admin := loginClient(t, s, "alice")
	for _, c := range []*Client{laptop, phone} {
		c.MustDo(t, "GET", "/api/v1/me", nil, http.StatusOK, nil)
	}

	laptop.MustDo(t, "PATCH", "/api/v1/users/bob", map[string]any{"password": "a new password"}, http.StatusOK, nil)

	phone.MustFail(t, "GET", "/api/v1/me", nil, http.StatusUnauthorized, "unauthorized", "")
	phone.MustFail(t, "GET", "/api/v1/projects", nil, http.StatusUnauthorized, "unauthorized", "")
	var me struct{ User struct{ Login string } }
	laptop.MustDo(t, "GET", "/api/v1/me", nil, http.StatusOK, &me)
	if me.User.Login != "bob" {
		t.Fatalf("the session that changed the password is %+v", me)
	}
	laptop.MustDo(t, "POST", "/api/v1/projects", map[string]any{"name": "Still here"}, http.StatusCreated, nil)
	// Another user's session is not touched.
	admin.MustDo(t, "GET", "/api/v1/me", nil, http.StatusOK, nil)

	login := func(password string) int {
		t.Helper()
		resp, err := http.Post(s.URL()+"/api/v1/login", "application/json",
			strings.NewReader(fmt.Sprintf(`{"login":"bob","password":%q}`, password)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := login("password1"); got != http.StatusUnauthorized {
		t.Fatalf("login with the old password: %d, want 401", got)
	}
	if got := login("a new password"); got != http.StatusOK {
		t.Fatalf("login with the new password: %d, want 200", got)
	}

	// An admin resets it: bob's sessions end, including the one that
	// changed it before; the admin's does not.
	admin.MustDo(t, "PATCH", "/api/v1/users/bob", map[string]any{"password": "reset by admin"}, http.StatusOK, nil)
	laptop.MustFail(t, "GET", "/api/v1/me", nil, http.StatusUnauthorized, "unauthorized", "")
	admin.MustDo(t, "GET", "/api/v1/users", nil, http.StatusOK, nil)
}
