package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidings/tidings"
	tidingshttp "github.com/tidings/tidings/http"
	"github.com/tidings/tidings/hub"
	"github.com/tidings/tidings/sqlstore"
)

// testClock is a clock that tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestServer is a real server on a free port with a real store and hub.
type TestServer struct {
	*tidingshttp.Server
	DB     *sqlstore.DB
	Hub    *hub.Hub
	Dir    string
	listen string // the address to listen on; "" picks a free port

	messages tidings.MessageService // in place of DB's, if set
	logger   *slog.Logger           // the server's, in place of one that discards, if set
	ends     tidings.AccessEnds     // in place of the store's, if set
}

// Option adjusts a test server before it opens.
type Option func(*TestServer)

// WithClock makes the store and the server use c.
func WithClock(c *testClock) Option {
	return func(s *TestServer) { s.DB.Now, s.Server.Now = c.Now, c.Now }
}

// WithAddr listens on addr, e.g. the address of a server that was closed.
func WithAddr(addr string) Option { return func(s *TestServer) { s.listen = addr } }

// WithAccessEnds makes the server ask f, not its store, whether every end
// of a credential is heard.
func WithAccessEnds(f tidings.AccessEnds) Option { return func(s *TestServer) { s.ends = f } }

// WithLogger gives the server l for its logs.
func WithLogger(l *slog.Logger) Option { return func(s *TestServer) { s.logger = l } }

// WithDir keeps the database in dir, so that a test can open it again.
func WithDir(dir string) Option { return func(s *TestServer) { s.Dir = dir } }

// MustOpenServer opens a server on 127.0.0.1:0, closed when the test ends.
func MustOpenServer(tb testing.TB, opts ...Option) *TestServer {
	tb.Helper()
	s := &TestServer{Server: tidingshttp.NewServer(), Hub: hub.New(), Dir: tb.TempDir()}
	s.DB = sqlstore.NewDB("")
	for _, o := range opts {
		o(s)
	}
	if s.DB.Path == "" {
		s.DB.Path = filepath.Join(s.Dir, "tidings.db")
	}
	s.DB.Notifier = s.Hub
	s.DB.Logger = slog.New(slog.DiscardHandler)
	if err := s.DB.Open(); err != nil {
		tb.Fatal(err)
	}
	s.Addr = "127.0.0.1:0"
	if s.listen != "" {
		s.Addr = s.listen
	}
	s.Logger = slog.New(slog.DiscardHandler)
	if s.logger != nil {
		s.Logger = s.logger
	}
	s.AuthService, s.UserService, s.ProjectService = s.DB, s.DB, s.DB
	s.MessageService, s.SettingsService = s.DB, s.DB
	if s.messages != nil {
		s.MessageService = s.messages
	}
	s.TodoService, s.NoteService, s.AppointmentService = s.DB, s.DB, s.DB
	s.Server.Hub = s.Hub
	s.Ping = s.DB.Ping
	s.AccessEnds = s.DB.AccessEnds // as serve's
	if s.ends != nil {
		s.AccessEnds = s.ends
	}
	s.ShutdownWait = 5 * time.Second
	if err := s.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.MustClose(tb) })
	return s
}

var closed sync.Map

// MustClose closes the server and its store once.
func (s *TestServer) MustClose(tb testing.TB) {
	if _, done := closed.LoadOrStore(s, true); done {
		return
	}
	if err := s.Close(); err != nil {
		tb.Error(err)
	}
	if err := s.DB.Close(); err != nil {
		tb.Error(err)
	}
}

// MustCreateUser creates a user (password "password1") and a token with the
// user scope for it.
func (s *TestServer) MustCreateUser(tb testing.TB, login string, admin bool) (*tidings.User, string) {
	tb.Helper()
	u := &tidings.User{Login: login, Name: strings.ToUpper(login[:1]) + login[1:] + " Tester", Email: login + "@example.org"}
	if admin {
		u.Role = tidings.RoleAdmin
	}
	sys := tidings.NewSystemContext(context.Background())
	if err := s.DB.CreateUser(sys, u, "password1"); err != nil {
		tb.Fatal(err)
	}
	return u, s.MustCreateToken(tb, u, tidings.ScopeUser)
}

// MustCreateToken makes a token for u with the given scopes.
func (s *TestServer) MustCreateToken(tb testing.TB, u *tidings.User, scopes ...string) string {
	tb.Helper()
	t := &tidings.Token{UserID: u.ID, Name: "test", Scopes: scopes}
	if err := s.DB.CreateToken(tidings.NewSystemContext(context.Background()), t); err != nil {
		tb.Fatal(err)
	}
	return t.Secret
}

// MustCreateProject creates a project of owner (by token) with members.
func (s *TestServer) MustCreateProject(tb testing.TB, ownerToken, name string, members ...string) int64 {
	tb.Helper()
	var p struct{ ID int64 }
	s.MustDo(tb, "POST", "/api/v1/projects", ownerToken, map[string]any{"name": name}, http.StatusCreated, &p)
	for _, m := range members {
		s.MustDo(tb, "PUT", "/api/v1/projects/"+itoa(p.ID)+"/members/"+m, ownerToken, map[string]any{"role": "member"}, http.StatusOK, nil)
	}
	return p.ID
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// Do sends a request with a bearer token (if any) and a JSON body (if not
// nil; a string or []byte is sent as it is) and returns status and body.
func (s *TestServer) Do(tb testing.TB, method, path, token string, body any) (int, []byte) {
	tb.Helper()
	req := s.NewRequest(tb, method, path, token, body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, b
}

// NewRequest builds a request to the server.
func (s *TestServer) NewRequest(tb testing.TB, method, path, token string, body any) *http.Request {
	tb.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		r = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, s.URL()+path, r)
	if err != nil {
		tb.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// MustDo is Do that fails the test unless the status is want, and decodes
// the answer into out when out is not nil.
func (s *TestServer) MustDo(tb testing.TB, method, path, token string, body any, want int, out any) []byte {
	tb.Helper()
	status, b := s.Do(tb, method, path, token, body)
	if status != want {
		tb.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			tb.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return b
}

// apiError is the error body of every error answer.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

// MustFail sends a request that must fail with status, code and field.
func (s *TestServer) MustFail(tb testing.TB, method, path, token string, body any, status int, code, field string) apiError {
	tb.Helper()
	got, b := s.Do(tb, method, path, token, body)
	var e apiError
	if err := json.Unmarshal(b, &e); err != nil {
		tb.Fatalf("%s %s: status %d, body %q is not an error body", method, path, got, b)
	}
	if got != status || e.Error.Code != code || e.Error.Field != field {
		tb.Fatalf("%s %s: got %d %s field %q (%s), want %d %s field %q", method, path, got, e.Error.Code, e.Error.Field, e.Error.Message, status, code, field)
	}
	if e.Error.Message == "" {
		tb.Fatalf("%s %s: error without a message", method, path)
	}
	return e
}

// pollAnswer is the answer of a poll.
type pollAnswer struct {
	Messages []*tidings.Message `json:"messages"`
	Cursor   string             `json:"cursor"`
	Missed   int64              `json:"missed"`
	More     bool               `json:"more"`
}

// wireMessage is a message as a client sees it, with its id.
type wireMessage struct {
	ID      string `json:"id"`
	Event   int64  `json:"event"`
	Process string `json:"process"`
	Module  string `json:"module"`
	Text    string `json:"text"`
	Urgent  bool   `json:"urgent"`
	Project *struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	} `json:"project"`
}

type wirePoll struct {
	Messages []wireMessage `json:"messages"`
	Cursor   string        `json:"cursor"`
	Missed   int64         `json:"missed"`
	More     bool          `json:"more"`
}

// MustPoll polls with a query string such as "since=…&timeout=0".
func (s *TestServer) MustPoll(tb testing.TB, token, query string) wirePoll {
	tb.Helper()
	var p wirePoll
	s.MustDo(tb, "GET", "/api/v1/poll?"+query, token, nil, http.StatusOK, &p)
	return p
}

// MustPublish publishes body and returns the answer's recipients count.
func (s *TestServer) MustPublish(tb testing.TB, token string, body map[string]any) int {
	tb.Helper()
	var res struct{ Recipients int }
	s.MustDo(tb, "POST", "/api/v1/messages", token, body, http.StatusAccepted, &res)
	return res.Recipients
}

// decodeBody decodes a JSON answer.
func decodeBody(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

// Client is a browser-like client with a session cookie.
type Client struct {
	s      *TestServer
	client *http.Client
}

// loginClient logs login in (password "password1") and returns its client.
func loginClient(tb testing.TB, s *TestServer, login string) *Client {
	tb.Helper()
	jar, _ := cookiejar.New(nil)
	c := &Client{s: s, client: &http.Client{Jar: jar}}
	c.MustDo(tb, "POST", "/api/v1/login", map[string]any{"login": login, "password": "password1"}, http.StatusOK, nil)
	return c
}

// Do sends a same-origin request with the session cookie.
func (c *Client) Do(tb testing.TB, method, path string, body any) (int, []byte) {
	tb.Helper()
	req := c.s.NewRequest(tb, method, path, "", body)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := c.client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, b
}

// MustDo is Do that requires the status want and decodes into out.
func (c *Client) MustDo(tb testing.TB, method, path string, body any, want int, out any) {
	tb.Helper()
	status, b := c.Do(tb, method, path, body)
	if status != want {
		tb.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			tb.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// MustFail requires an error answer with status, code and field.
func (c *Client) MustFail(tb testing.TB, method, path string, body any, status int, code, field string) {
	tb.Helper()
	got, b := c.Do(tb, method, path, body)
	var e apiError
	if err := json.Unmarshal(b, &e); err != nil || got != status || e.Error.Code != code || e.Error.Field != field {
		tb.Fatalf("%s %s: got %d %s, want %d %s field %q", method, path, got, b, status, code, field)
	}
}
