package http_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// browserClient is a cookie-keeping client that does not follow redirects,
// so that a test sees where a page sends it.
func browserClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func getPage(tb testing.TB, c *http.Client, url string) (*http.Response, string) {
	tb.Helper()
	resp, err := c.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func postForm(tb testing.TB, c *http.Client, u string, form url.Values) (*http.Response, string) {
	tb.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// pageLogin logs in through the form and returns the client.
func pageLogin(tb testing.TB, s *TestServer, login string) *http.Client {
	tb.Helper()
	c := browserClient()
	resp, body := postForm(tb, c, s.URL()+"/login", url.Values{"login": {login}, "password": {"password1"}})
	if resp.StatusCode != http.StatusSeeOther {
		tb.Fatalf("login form: %d %s", resp.StatusCode, body)
	}
	return c
}

var (
	inlineScript  = regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`)
	inlineHandler = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	styleAttr     = regexp.MustCompile(`(?i)\sstyle\s*=`)
)

func TestEveryPageCarriesTheContentSecurityPolicy(t *testing.T) {
	s := MustOpenServer(t)
	_, alice := s.MustCreateUser(t, "alice", true)
	s.MustCreateUser(t, "bob", false)
	pid := s.MustCreateProject(t, alice, "Office move", "bob")
	var todo, note, appt struct{ ID int64 }
	s.MustDo(t, "POST", fmt.Sprintf("/api/v1/projects/%d/todos", pid), alice, map[string]any{"title": "Fix the printer"}, 201, &todo)
	s.MustDo(t, "POST", fmt.Sprintf("/api/v1/projects/%d/notes", pid), alice, map[string]any{"title": "Plan"}, 201, &note)
	s.MustDo(t, "POST", fmt.Sprintf("/api/v1/projects/%d/appointments", pid), alice, map[string]any{"title": "Lunch", "start": "2026-12-10T12:00:00Z", "end": "2026-12-10T13:00:00Z"}, 201, &appt)
	c := pageLogin(t, s, "alice")
	for _, path := range []string{"/login?next=/x", "/", fmt.Sprintf("/projects/%d", pid), fmt.Sprintf("/todos/%d", todo.ID),
		fmt.Sprintf("/notes/%d", note.ID), fmt.Sprintf("/appointments/%d", appt.ID), "/settings", "/admin/users", "/todos/999", "/nowhere"} {
		client := c
		if strings.HasPrefix(path, "/login") {
			client = browserClient()
		}
		resp, body := getPage(t, client, s.URL()+path)
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		script := ""
		for _, d := range strings.Split(csp, ";") {
			if d = strings.TrimSpace(d); strings.HasPrefix(d, "script-src") {
				script = d
			}
		}
		if script == "" || strings.Contains(script, "unsafe-inline") || !strings.Contains(csp, "object-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Fatalf("%s: Content-Security-Policy %q", path, csp)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Fatalf("%s: Content-Type %q", path, ct)
		}
		if inlineScript.MatchString(body) || inlineHandler.MatchString(body) || styleAttr.MatchString(body) {
			t.Fatalf("%s has inline script, an event handler attribute or a style attribute", path)
		}
	}
}

func TestPagesOfOtherProjectsAreNotFound(t *testing.T) {
	s := MustOpenServer(t)
	_, alice := s.MustCreateUser(t, "alice", false)
	s.MustCreateUser(t, "carol", false)
	pid := s.MustCreateProject(t, alice, "Office move")
	var todo struct{ ID int64 }
	s.MustDo(t, "POST", fmt.Sprintf("/api/v1/projects/%d/todos", pid), alice, map[string]any{"title": "Secret plan"}, 201, &todo)
	carol := pageLogin(t, s, "carol")
	for _, path := range []string{fmt.Sprintf("/projects/%d", pid), fmt.Sprintf("/todos/%d", todo.ID), "/todos/abc", "/projects/0"} {
		resp, body := getPage(t, carol, s.URL()+path)
		if resp.StatusCode != http.StatusNotFound || strings.Contains(body, "Secret plan") || !strings.Contains(body, "Back to the dashboard") {
			t.Fatalf("carol opening %s: %d", path, resp.StatusCode)
		}
	}
	if resp, _ := getPage(t, carol, s.URL()+"/admin/users"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a plain user opening the user admin: %d, want 403", resp.StatusCode)
	}
}

func TestLoginAndLogoutPages(t *testing.T) {
	s := MustOpenServer(t)
	s.MustCreateUser(t, "bob", false)

	// A wrong password shows the form again with the error and the login.
	c := browserClient()
	resp, body := postForm(t, c, s.URL()+"/login", url.Values{"login": {"bob"}, "password": {"wrong-password"}, "next": {"/settings"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong login or password") || !strings.Contains(body, `value="bob"`) || !strings.Contains(body, `value="/settings"`) {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "tidings_session" && ck.Value != "" {
			t.Fatal("a wrong password got a session")
		}
	}

	// After login the visitor goes where they were going, but only on this
	// server.
	for next, want := range map[string]string{"/settings": "/settings", "//evil.example/": "/", "https://evil.example/": "/", "/\\evil.example": "/", "": "/"} {
		c := browserClient()
		resp, _ := postForm(t, c, s.URL()+"/login", url.Values{"login": {"bob"}, "password": {"password1"}, "next": {next}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Fatalf("next=%q: %d to %q, want %q", next, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}

	// Logged in, the login page moves on; logging out ends the session.
	c = pageLogin(t, s, "bob")
	if resp, _ := getPage(t, c, s.URL()+"/login?next=/settings"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/settings" {
		t.Fatalf("login page with a session: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := postForm(t, c, s.URL()+"/logout", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("logout: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := getPage(t, c, s.URL()+"/settings"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
		t.Fatalf("a page after logout: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestPageFormsRefuseCrossSiteRequests(t *testing.T) {
	s := MustOpenServer(t)
	s.MustCreateUser(t, "bob", false)
	c := pageLogin(t, s, "bob")
	for _, path := range []string{"/login", "/logout"} {
		req, _ := http.NewRequest("POST", s.URL()+path, strings.NewReader("login=bob&password=password1"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		req.Header.Set("Origin", "https://evil.example")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-site POST %s: %d, want 403", path, resp.StatusCode)
		}
	}
	// The session survived the cross-site logout.
	if resp, _ := getPage(t, c, s.URL()+"/settings"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after a refused cross-site logout the session got %d", resp.StatusCode)
	}
}
