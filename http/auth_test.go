package http_test

import (
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
)

func TestUnauthenticatedIs401(t *testing.T) {
	s := MustOpenServer(t)
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/poll"},
		{"POST", "/api/v1/poll"},
		{"GET", "/api/v1/projects"},
		{"GET", "/api/v1/projects/1"},
		{"POST", "/api/v1/messages"},
		{"GET", "/api/v1/me/settings"},
		{"GET", "/api/v1/no-such-thing"},
		{"DELETE", "/api/v1/users/alice"},
	} {
		s.MustFail(t, c.method, c.path, "", nil, 401, "unauthorized", "")
	}
	s.MustFail(t, "GET", "/api/v1/poll", "tdg_not-a-real-token", nil, 401, "unauthorized", "")
	s.MustFail(t, "GET", "/api/v1/poll", "", nil, 401, "unauthorized", "")
}

func TestLoginSessionAndLogout(t *testing.T) {
	s := MustOpenServer(t)
	s.MustCreateUser(t, "bob", false)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	post := func(path, body string, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", s.URL()+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	// Wrong password and unknown login get the same answer.
	for _, body := range []string{`{"login":"bob","password":"wrong-password"}`, `{"login":"nobody","password":"password1"}`} {
		if resp := post("/api/v1/login", body); resp.StatusCode != 401 {
			t.Fatalf("login %s: status %d, want 401", body, resp.StatusCode)
		}
	}
	resp := post("/api/v1/login", `{"login":"bob","password":"password1"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("login: status %d", resp.StatusCode)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "tidings_session" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.MaxAge < 29*24*3600 {
		t.Fatalf("session cookie = %+v, want HttpOnly, SameSite=Lax, 30 days", cookie)
	}

	// The cookie authenticates; a cross-site unsafe request with it is refused.
	if resp := post("/api/v1/projects", `{"name":"From the same site"}`, "Sec-Fetch-Site", "same-origin"); resp.StatusCode != 201 {
		t.Fatalf("same-origin create: status %d", resp.StatusCode)
	}
	if resp := post("/api/v1/projects", `{"name":"Forged"}`, "Sec-Fetch-Site", "cross-site"); resp.StatusCode != 403 {
		t.Fatalf("cross-site create with the cookie: status %d, want 403", resp.StatusCode)
	}
	if resp := post("/api/v1/projects", `{"name":"Forged"}`, "Origin", "https://evil.example"); resp.StatusCode != 403 {
		t.Fatalf("foreign-origin create with the cookie: status %d, want 403", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", s.URL()+"/api/v1/projects", nil)
	lr, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var projects struct {
		Items []struct{ Name string }
		Next  *string
	}
	decodeBody(lr, &projects)
	lr.Body.Close()
	if len(projects.Items) != 1 || projects.Items[0].Name != "From the same site" || projects.Next != nil {
		t.Fatalf("projects = %+v, want only the same-site one", projects)
	}

	// A session may create tokens; the answer shows the token once. (Bob
	// is no administrator, so not a publish token: see token_test.go.)
	tr := post("/api/v1/tokens", `{"name":"ci","scopes":["user"]}`)
	if tr.StatusCode != 201 {
		t.Fatalf("create token: %d", tr.StatusCode)
	}

	if resp := post("/api/v1/logout", ``); resp.StatusCode != 204 {
		t.Fatalf("logout: status %d", resp.StatusCode)
	}
	// The old cookie no longer works, even if a client kept it.
	req, _ = http.NewRequest("GET", s.URL()+"/api/v1/projects", nil)
	req.AddCookie(cookie)
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 401 {
		t.Fatalf("after logout: status %d, want 401", r2.StatusCode)
	}
}

func TestTokenScopes(t *testing.T) {
	s := MustOpenServer(t)
	admin, adminTok := s.MustCreateUser(t, "alice", true)
	_ = admin
	// A user-scoped token may not manage tokens or users.
	s.MustFail(t, "POST", "/api/v1/tokens", adminTok, map[string]any{"name": "x"}, 403, "forbidden", "")
	s.MustFail(t, "GET", "/api/v1/users", adminTok, nil, 403, "forbidden", "")
	s.MustFail(t, "POST", "/api/v1/users", adminTok, map[string]any{"login": "eve"}, 403, "forbidden", "")
	// But it may do what the user does.
	s.MustDo(t, "GET", "/api/v1/projects", adminTok, nil, 200, nil)
	s.MustDo(t, "GET", "/api/v1/me/settings", adminTok, nil, 200, nil)
}

func TestErrorsHaveBodies(t *testing.T) {
	s := MustOpenServer(t)
	_, tok := s.MustCreateUser(t, "bob", false)
	e := s.MustFail(t, "DELETE", "/api/v1/poll", tok, nil, 405, "invalid", "")
	if !strings.Contains(e.Error.Message, "DELETE") {
		t.Errorf("405 message %q does not name the method", e.Error.Message)
	}
	s.MustFail(t, "GET", "/api/v1/nothing-here", tok, nil, 404, "not_found", "")
	s.MustFail(t, "GET", "/api/v1/projects/abc", tok, nil, 404, "not_found", "")
	s.MustFail(t, "POST", "/api/v1/projects", tok, "{", 400, "invalid", "")
	s.MustFail(t, "POST", "/api/v1/projects", tok, map[string]any{"name": "x", "owner": "me"}, 400, "invalid", "owner")
	s.MustFail(t, "POST", "/api/v1/projects", tok, map[string]any{"name": ""}, 400, "invalid", "name")
	// Over 1 MiB is 413 on every path, before anything else.
	big := strings.Repeat("x", 1<<20+1)
	s.MustFail(t, "POST", "/api/v1/login", "", big, 413, "too_large", "")
	s.MustFail(t, "PUT", "/api/v1/me/settings", "", big, 413, "too_large", "")
}

func TestHealthz(t *testing.T) {
	s := MustOpenServer(t)
	var h struct{ Status string }
	s.MustDo(t, "GET", "/healthz", "", nil, 200, &h)
	if h.Status != "ok" {
		t.Fatalf("healthz = %+v", h)
	}
	s.DB.Close()
	s.MustFail(t, "GET", "/healthz", "", nil, 503, "unavailable", "")
}

func TestDrainingAnswers503(t *testing.T) {
	s := MustOpenServer(t)
	_, tok := s.MustCreateUser(t, "bob", false)
	s.Server.Close()
	// A new connection is refused once the listener is closed; the server's
	// handler itself answers 503 to what still reaches it.
	rec := newRecorder()
	s.Server.ServeHTTP(rec, s.NewRequest(t, "GET", "/api/v1/projects", tok, nil))
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), `"unavailable"`) {
		t.Fatalf("while draining: %d %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
}

// TestPresenceGoesToProjectMatesOnly: login and logout notices reach those
// who share a project with the user and want them, nobody else.
func TestPresenceGoesToProjectMatesOnly(t *testing.T) {
	s := MustOpenServer(t)
	_, alice := s.MustCreateUser(t, "alice", false)
	_, bob := s.MustCreateUser(t, "bob", false)
	_, carol := s.MustCreateUser(t, "carol", false)
	_, eve := s.MustCreateUser(t, "eve", false)
	s.MustCreateProject(t, alice, "Office move", "bob", "carol")
	s.MustDo(t, "PUT", "/api/v1/me/settings", carol, map[string]any{"presence": false}, 200, nil)
	aliceIn, carolIn, eveIn := newInbox(t, s, alice), newInbox(t, s, carol), newInbox(t, s, eve)
	_ = bob

	c := loginClient(t, s, "bob")
	c.MustDo(t, "POST", "/api/v1/logout", nil, 204, nil)

	m := aliceIn.next(t)
	if len(m) != 2 || m[0].Process != "login" || m[1].Process != "logout" || m[0].Item != nil ||
		m[0].Text != "Bob Tester logged in" || m[0].Actor == nil || m[0].Actor.Login != "bob" {
		t.Fatalf("alice got %+v, want bob's login and logout", m)
	}
	if got := carolIn.next(t); len(got) != 0 {
		t.Fatalf("carol, with presence off, got %+v", got)
	}
	if got := eveIn.next(t); len(got) != 0 {
		t.Fatalf("eve, who shares no project with bob, got %+v", got)
	}
}
