package http_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsFrame is a frame of the WebSocket transport.
type wsFrame struct {
	Type    string       `json:"type"`
	Message *wireMessage `json:"message"`
	Missed  int64        `json:"missed"`
	Cursor  string       `json:"cursor"`
}

// dialWS opens /api/v1/ws with the given headers; it returns the
// handshake's answer when the server refused it.
func dialWS(tb testing.TB, s *TestServer, query string, header http.Header, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	tb.Helper()
	if opts == nil {
		opts = &websocket.DialOptions{}
	}
	opts.HTTPHeader = header
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(s.URL(), "http") + "/api/v1/ws?" + query
	c, resp, err := websocket.Dial(ctx, u, opts)
	if c != nil {
		tb.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// mustDialWS opens a WebSocket with a token.
func mustDialWS(tb testing.TB, s *TestServer, token, query string) *websocket.Conn {
	tb.Helper()
	c, resp, err := dialWS(tb, s, query, bearer(token), nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		tb.Fatalf("dial /api/v1/ws?%s: %v (status %d)", query, err, status)
	}
	return c
}

// readFrame reads the next frame, failing the test after a bound.
func readFrame(tb testing.TB, c *websocket.Conn) wsFrame {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, data, err := c.Read(ctx)
	if err != nil {
		tb.Fatalf("read frame: %v", err)
	}
	if typ != websocket.MessageText {
		tb.Fatalf("frame of type %v, want text", typ)
	}
	var f wsFrame
	if err := json.Unmarshal(data, &f); err != nil {
		tb.Fatalf("frame %s: %v", data, err)
	}
	return f
}

// refusal reads the error body of a refused handshake.
func refusal(tb testing.TB, resp *http.Response) (int, apiError) {
	tb.Helper()
	if resp == nil {
		tb.Fatal("the handshake failed without an answer")
	}
	var e apiError
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &e); err != nil {
		tb.Fatalf("status %d with body %q, want an error body", resp.StatusCode, b)
	}
	return resp.StatusCode, e
}

func TestWebSocketDeliversMessages(t *testing.T) {
	s := MustOpenServer(t)
	_, alice := s.MustCreateUser(t, "alice", true)
	bob, bobToken := s.MustCreateUser(t, "bob", false)
	start := s.MustPoll(t, bobToken, "timeout=0")
	s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "waiting already"})

	c := mustDialWS(t, s, bobToken, "since="+start.Cursor)
	f := readFrame(t, c)
	if f.Type != "message" || f.Message == nil || f.Message.Text != "waiting already" {
		t.Fatalf("first frame %+v", f)
	}
	waitFor(t, "the socket to wait", func() bool { return s.Hub.WaitingFor(bob.ID) == 1 })
	s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "live", "urgent": true})
	g := readFrame(t, c)
	if g.Type != "message" || g.Message.Text != "live" || !g.Message.Urgent || seqOf(t, g.Message.ID) != seqOf(t, f.Message.ID)+1 {
		t.Fatalf("second frame %+v", g)
	}
}

func TestWebSocketMissed(t *testing.T) {
	clock := newTestClock()
	s := MustOpenServer(t, WithClock(clock))
	_, alice := s.MustCreateUser(t, "alice", true)
	_, bobToken := s.MustCreateUser(t, "bob", false)
	start := s.MustPoll(t, bobToken, "timeout=0")
	s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "gone", "ttl": "1m"})
	clock.Advance(time.Minute)

	c := mustDialWS(t, s, bobToken, "since="+start.Cursor)
	f := readFrame(t, c)
	if f.Type != "missed" || f.Missed != 1 || f.Message != nil {
		t.Fatalf("frame %+v, want missed 1", f)
	}
	if p := s.MustPoll(t, bobToken, "timeout=0&since="+f.Cursor); p.Missed != 0 || len(p.Messages) != 0 {
		t.Fatalf("poll from the gap's cursor = %+v, want nothing", p)
	}
}

func TestWebSocketRefusals(t *testing.T) {
	s := MustOpenServer(t)
	_, bobToken := s.MustCreateUser(t, "bob", false)

	// Without credentials: 401, as every API path.
	_, resp, err := dialWS(t, s, "", nil, nil)
	if status, e := refusal(t, resp); err == nil || status != http.StatusUnauthorized || e.Error.Code != "unauthorized" {
		t.Fatalf("without credentials: %v, status %d %+v", err, status, e)
	}
	// A refused cursor is answered before the upgrade.
	for _, since := range []string{"not-a-cursor", "AAAAAAAAAAAAAAAA"} {
		_, resp, err = dialWS(t, s, "since="+since, bearer(bobToken), nil)
		if status, e := refusal(t, resp); err == nil || status != http.StatusBadRequest || e.Error.Code != "invalid_cursor" {
			t.Fatalf("since=%s: %v, status %d %+v", since, err, status, e)
		}
	}
	// A plain GET is no WebSocket.
	s.MustFail(t, "GET", "/api/v1/ws", bobToken, nil, http.StatusBadRequest, "invalid", "")
	s.MustFail(t, "GET", "/api/v1/ws", "", nil, http.StatusUnauthorized, "unauthorized", "")
}

// TestWebSocketOrigin: a browser sends the session cookie with a
// WebSocket opened by any page, so a foreign page must be refused; pages
// of the server itself and of allowed origins are not, nor is a client
// that holds a token.
func TestWebSocketOrigin(t *testing.T) {
	s := MustOpenServer(t, WithAllowedOrigins("https://app.example.org"))
	_, bobToken := s.MustCreateUser(t, "bob", false)
	cookie := sessionCookie(t, s)

	for _, tc := range []struct {
		origin string
		token  bool
		ok     bool
	}{
		{"", false, true},
		{s.URL(), false, true},
		{"https://app.example.org", false, true},
		{"https://evil.example.com", false, false},
		{"https://app.example.org.evil.example.com", false, false},
		{"https://evil.example.com", true, true},
	} {
		h := http.Header{"Cookie": {cookie}}
		if tc.token {
			h = bearer(bobToken)
		}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		c, resp, err := dialWS(t, s, "", h, nil)
		if tc.ok && err != nil {
			t.Errorf("origin %q (token %v): refused: %v", tc.origin, tc.token, err)
		}
		if !tc.ok {
			if status, e := refusal(t, resp); err == nil || status != http.StatusForbidden || e.Error.Code != "forbidden" {
				t.Errorf("origin %q: %v, status %d %+v, want 403 forbidden", tc.origin, err, status, e)
			}
		}
		if c != nil {
			c.Close(websocket.StatusNormalClosure, "")
		}
	}
}

// sessionCookie logs bob in and returns his cookie as a Cookie header.
func sessionCookie(tb testing.TB, s *TestServer) string {
	tb.Helper()
	return login(tb, s, "bob")
}

func TestWebSocketPings(t *testing.T) {
	s := MustOpenServer(t, WithHeartbeat(20*time.Millisecond))
	_, bobToken := s.MustCreateUser(t, "bob", false)
	var pings atomic.Int64
	c, _, err := dialWS(t, s, "", bearer(bobToken), &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool { pings.Add(1); return true },
	})
	if err != nil {
		t.Fatal(err)
	}
	c.CloseRead(context.Background()) // answer pings
	waitFor(t, "pings on an idle socket", func() bool { return pings.Load() >= 3 })
}

func TestWebSocketClosesGoingAwayOnClose(t *testing.T) {
	s := MustOpenServer(t)
	bob, bobToken := s.MustCreateUser(t, "bob", false)
	c := mustDialWS(t, s, bobToken, "")
	waitFor(t, "the socket to wait", func() bool { return s.Hub.WaitingFor(bob.ID) == 1 })

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := c.Read(ctx)
	if status := websocket.CloseStatus(err); status != websocket.StatusGoingAway {
		t.Fatalf("read after Close: %v (status %d), want close 1001", err, status)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
}

func TestWebSocketClientGoneHoldsNothing(t *testing.T) {
	s := MustOpenServer(t)
	bob, bobToken := s.MustCreateUser(t, "bob", false)
	c := mustDialWS(t, s, bobToken, "")
	waitFor(t, "the socket to wait", func() bool { return s.Hub.WaitingFor(bob.ID) == 1 })
	c.Close(websocket.StatusNormalClosure, "bye")
	waitFor(t, "the server to let go of the closed socket", func() bool { return s.Hub.WaitingFor(bob.ID) == 0 })

	// And one that vanishes without a close frame.
	c = mustDialWS(t, s, bobToken, "")
	waitFor(t, "the socket to wait", func() bool { return s.Hub.WaitingFor(bob.ID) == 1 })
	c.CloseNow()
	waitFor(t, "the server to let go of the vanished socket", func() bool { return s.Hub.WaitingFor(bob.ID) == 0 })
}

// TestWebSocketDropsClientThatStopsReading: a socket whose client reads
// nothing is closed once a write has waited StreamWriteTimeout.
func TestWebSocketDropsClientThatStopsReading(t *testing.T) {
	s := MustOpenServer(t, WithStreamWriteTimeout(time.Second))
	_, alice := s.MustCreateUser(t, "alice", true)
	bob, bobToken := s.MustCreateUser(t, "bob", false)
	c := mustDialWS(t, s, bobToken, "")
	_ = c // never read
	waitFor(t, "the socket to wait", func() bool { return s.Hub.WaitingFor(bob.ID) == 1 })
	big := strings.Repeat("<", 1990)
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; s.Hub.WaitingFor(bob.ID) != 0; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("the socket that does not read was not dropped after %d large messages", i)
		}
		s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": big})
	}
	// It can come back and carries on.
	var now struct{ Cursor string }
	s.MustDo(t, "GET", "/api/v1/cursor", bobToken, nil, http.StatusOK, &now)
	c = mustDialWS(t, s, bobToken, "since="+now.Cursor)
	s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "welcome back"})
	if f := readFrame(t, c); f.Message == nil || f.Message.Text != "welcome back" {
		t.Fatalf("after coming back: %+v", f)
	}
}
