package http_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// WithHeartbeat sets the stream heartbeat interval.
func WithHeartbeat(d time.Duration) Option {
	return func(s *TestServer) { s.Heartbeat = d }
}

// WithStreamWriteTimeout sets how long a stream waits for a client that
// does not read.
func WithStreamWriteTimeout(d time.Duration) Option {
	return func(s *TestServer) { s.StreamWriteTimeout = d }
}

// WithAllowedOrigins sets the origins allowed to call the API cross-origin.
func WithAllowedOrigins(origins ...string) Option {
	return func(s *TestServer) { s.AllowedOrigins = origins }
}

// sseEvent is one block of an event stream: an event, a retry, or a
// comment such as the heartbeat.
type sseEvent struct {
	ID      string
	HasID   bool
	Event   string
	Data    string
	Retry   string
	Comment string
}

// sseStream reads an event stream the way a browser does, by hand: the
// test must see the bytes on the wire, not a library's reading of them.
type sseStream struct {
	resp   *http.Response
	events chan sseEvent
	err    error // why events was closed; read it after the close
	cancel context.CancelFunc
}

// openSSE opens /api/v1/stream with an optional query and Last-Event-ID
// and fails the test unless it is a 200 event stream.
func openSSE(tb testing.TB, s *TestServer, token, query, lastEventID string) *sseStream {
	tb.Helper()
	resp, cancel := requestSSE(tb, s, token, query, lastEventID)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		cancel()
		tb.Fatalf("GET /api/v1/stream?%s: status %d: %s", query, resp.StatusCode, b)
	}
	st := &sseStream{resp: resp, events: make(chan sseEvent, 1024), cancel: cancel}
	go st.read()
	tb.Cleanup(st.Close)
	return st
}

func requestSSE(tb testing.TB, s *TestServer, token, query, lastEventID string) (*http.Response, context.CancelFunc) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req := s.NewRequest(tb, "GET", "/api/v1/stream?"+query, token, nil).WithContext(ctx)
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	return resp, cancel
}

// Close drops the connection, as a browser tab that closes.
func (st *sseStream) Close() {
	st.cancel()
	st.resp.Body.Close()
}

func (st *sseStream) read() {
	defer close(st.events)
	st.err = readSSE(st.resp.Body, func(ev sseEvent) { st.events <- ev })
}

// readSSE parses an event stream into blocks until it ends; it returns
// io.EOF for a stream that ended cleanly.
func readSSE(r io.Reader, emit func(sseEvent)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var ev sseEvent
	var data []string
	started := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if err == io.EOF && line != "" {
				return io.ErrUnexpectedEOF // a cut-off event
			}
			return err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if started {
				ev.Data = strings.Join(data, "\n")
				emit(ev)
			}
			ev, data, started = sseEvent{}, nil, false
			continue
		}
		started = true
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			ev.Comment = value
		case "id":
			ev.ID, ev.HasID = value, true
		case "event":
			ev.Event = value
		case "data":
			data = append(data, value)
		case "retry":
			ev.Retry = value
		}
	}
}

// Next returns the next block, failing the test after a bound.
func (st *sseStream) Next(tb testing.TB) sseEvent {
	tb.Helper()
	select {
	case ev, ok := <-st.events:
		if !ok {
			tb.Fatalf("the stream ended: %v", st.err)
		}
		return ev
	case <-time.After(10 * time.Second):
		tb.Fatal("timed out waiting for an event")
	}
	panic("unreachable")
}

// NextMessage skips heartbeats and returns the next message or missed event.
func (st *sseStream) NextMessage(tb testing.TB) sseEvent {
	tb.Helper()
	for {
		if ev := st.Next(tb); ev.Event != "" {
			return ev
		}
	}
}

// Message decodes a message event.
func (ev sseEvent) Message(tb testing.TB) wireMessage {
	tb.Helper()
	if ev.Event != "message" {
		tb.Fatalf("event %q (%s), want a message", ev.Event, ev.Data)
	}
	var m wireMessage
	if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
		tb.Fatalf("message data %q: %v", ev.Data, err)
	}
	if m.ID != ev.ID {
		tb.Fatalf("event id %q is not the message's id %q", ev.ID, m.ID)
	}
	return m
}

func TestStreamDeliversMessagesWithIDs(t *testing.T) {
	s := MustOpenServer(t)
	_, alice := s.MustCreateUser(t, "alice", true)
	bob, bobToken := s.MustCreateUser(t, "bob", false)
	start := s.MustPoll(t, bobToken, "timeout=0")

	st := openSSE(t, s, bobToken, "since="+start.Cursor, "")
	if ct := st.resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q, want text/event-stream", ct)
	}
	if cc := st.resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	if xa := st.resp.Header.Get("X-Accel-Buffering"); xa != "no" {
		t.Errorf("X-Accel-Buffering %q, want no", xa)
	}
	if first := st.Next(t); first.Retry != "2000" || first.Event != "" {
		t.Fatalf("the stream starts with %+v, want retry: 2000", first)
	}
	waitFor(t, "the stream to wait", func() bool { return s.Hub.WaitingFor(bob.ID) == 1 })

	s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "one"})
	s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "two\nlines </script>"})
	var got []string
	var lastID string
	last := seqOf(t, start.Cursor)
	for len(got) < 2 {
		m := st.NextMessage(t).Message(t)
		if seq := seqOf(t, m.ID); seq <= last {
			t.Fatalf("message %q at %d after %d", m.Text, seq, last)
		} else {
			last = seq
		}
		got, lastID = append(got, m.Text), m.ID
	}
	if got[0] != "one" || got[1] != "two\nlines </script>" {
		t.Fatalf("got %q", got)
	}
	// An event id is a cursor like any other: a poll from it finds nothing.
	if p := s.MustPoll(t, bobToken, "timeout=0&since="+lastID); len(p.Messages) != 0 || p.Cursor != lastID {
		t.Fatalf("poll from the last event id = %+v", p)
	}
}

func TestStreamWithoutSinceStartsWithDeliverableMessages(t *testing.T) {
	s := MustOpenServer(t)
	_, alice := s.MustCreateUser(t, "alice", true)
	_, bobToken := s.MustCreateUser(t, "bob", false)
	s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "sent before the page opened"})

	st := openSSE(t, s, bobToken, "", "")
	if m := st.NextMessage(t).Message(t); m.Text != "sent before the page opened" {
		t.Fatalf("first message %q", m.Text)
	}
}

func TestStreamLastEventIDWinsOverSince(t *testing.T) {
	s := MustOpenServer(t)
	_, alice := s.MustCreateUser(t, "alice", true)
	_, bobToken := s.MustCreateUser(t, "bob", false)
	start := s.MustPoll(t, bobToken, "timeout=0")
	for _, text := range []string{"first", "second", "third"} {
		s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": text})
	}
	p := s.MustPoll(t, bobToken, "timeout=0&since="+start.Cursor)
	if len(p.Messages) != 3 {
		t.Fatalf("poll = %+v", p)
	}

	// The browser reconnects with the URL it opened and the last id it saw.
	st := openSSE(t, s, bobToken, "since="+start.Cursor, p.Messages[1].ID)
	if m := st.NextMessage(t).Message(t); m.Text != "third" {
		t.Fatalf("after Last-Event-ID of %q the stream sent %q, want third", p.Messages[1].Text, m.Text)
	}
}

func TestStreamHeartbeat(t *testing.T) {
	s := MustOpenServer(t, WithHeartbeat(20*time.Millisecond))
	_, bobToken := s.MustCreateUser(t, "bob", false)
	st := openSSE(t, s, bobToken, "", "")
	st.Next(t) // retry
	for range 3 {
		if ev := st.Next(t); ev.Comment != "ping" || ev.Event != "" || ev.Data != "" {
			t.Fatalf("an idle stream sent %+v, want the heartbeat comment", ev)
		}
	}
}

func TestStreamMissed(t *testing.T) {
	clock := newTestClock()
	s := MustOpenServer(t, WithClock(clock))
	_, alice := s.MustCreateUser(t, "alice", true)
	_, bobToken := s.MustCreateUser(t, "bob", false)
	start := s.MustPoll(t, bobToken, "timeout=0")
	s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "gone", "ttl": "1m"})
	s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "also gone", "ttl": "1m"})
	clock.Advance(time.Minute)

	st := openSSE(t, s, bobToken, "since="+start.Cursor, "")
	ev := st.NextMessage(t)
	var missed struct{ Missed int64 }
	if ev.Event != "missed" || json.Unmarshal([]byte(ev.Data), &missed) != nil || missed.Missed != 2 {
		t.Fatalf("got %+v, want a missed event of 2", ev)
	}
	if !ev.HasID {
		t.Fatal("a gap without messages must carry the cursor after it")
	}
	// A browser that reconnects with that id is not told again.
	p := s.MustPoll(t, bobToken, "timeout=0&since="+ev.ID)
	if p.Missed != 0 || len(p.Messages) != 0 {
		t.Fatalf("poll from the missed event's id = %+v, want nothing", p)
	}
	s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "new"})
	if m := st.NextMessage(t).Message(t); m.Text != "new" {
		t.Fatalf("after the gap: %q", m.Text)
	}
}

func TestStreamRefusals(t *testing.T) {
	s := MustOpenServer(t)
	bob, bobToken := s.MustCreateUser(t, "bob", false)
	other := MustOpenServer(t)
	_, otherToken := other.MustCreateUser(t, "bob", false)
	foreign := other.MustPoll(t, otherToken, "timeout=0").Cursor

	s.MustFail(t, "GET", "/api/v1/stream", "", nil, http.StatusUnauthorized, "unauthorized", "")
	s.MustFail(t, "GET", "/api/v1/stream?since=not-a-cursor", bobToken, nil, http.StatusBadRequest, "invalid_cursor", "since")
	s.MustFail(t, "GET", "/api/v1/stream?since="+foreign, bobToken, nil, http.StatusBadRequest, "invalid_cursor", "since")

	// A bad Last-Event-ID is refused the same way, as JSON, before any event.
	resp, cancel := requestSSE(t, s, bobToken, "", "AAAA")
	defer cancel()
	defer resp.Body.Close()
	var e apiError
	if resp.StatusCode != http.StatusBadRequest || decodeBody(resp, &e) != nil || e.Error.Code != "invalid_cursor" {
		t.Fatalf("bad Last-Event-ID: status %d, %+v", resp.StatusCode, e)
	}

	// A publish-only token may not read anyone's messages.
	pub := s.MustCreateToken(t, bob, "publish")
	s.MustFail(t, "GET", "/api/v1/stream", pub, nil, http.StatusForbidden, "forbidden", "")
}

func TestStreamEndsCleanlyOnClose(t *testing.T) {
	s := MustOpenServer(t)
	bob, bobToken := s.MustCreateUser(t, "bob", false)
	st := openSSE(t, s, bobToken, "", "")
	st.Next(t)
	waitFor(t, "the stream to wait", func() bool { return s.Hub.WaitingFor(bob.ID) == 1 })

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	for {
		select {
		case _, ok := <-st.events:
			if ok {
				continue
			}
			if st.err != io.EOF {
				t.Fatalf("the stream ended with %v, want a clean end", st.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the stream did not end on Close")
		}
		break
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

func TestStreamClientGoneHoldsNothing(t *testing.T) {
	s := MustOpenServer(t)
	bob, bobToken := s.MustCreateUser(t, "bob", false)
	st := openSSE(t, s, bobToken, "", "")
	waitFor(t, "the stream to wait", func() bool { return s.Hub.WaitingFor(bob.ID) == 1 })
	st.Close()
	waitFor(t, "the server to let go of the closed stream", func() bool { return s.Hub.WaitingFor(bob.ID) == 0 })
}

// TestStreamDropsClientThatStopsReading has one client that never reads
// while large messages pile up for it, and many that read: the stuck one is
// dropped, the others get every message meanwhile and stay connected, and
// the stuck one, when it comes back, resumes from its last event without a
// gap or a repeat.
func TestStreamDropsClientThatStopsReading(t *testing.T) {
	const readers = 50
	s := MustOpenServer(t, WithStreamWriteTimeout(time.Second))
	_, alice := s.MustCreateUser(t, "alice", true)
	bob, bobToken := s.MustCreateUser(t, "bob", false)
	carol, carolToken := s.MustCreateUser(t, "carol", false)
	start := s.MustPoll(t, carolToken, "timeout=0").Cursor

	// Bob's readers count the small messages that go to everyone.
	type tally struct {
		texts []string
		err   error
	}
	counts := make([]chan tally, readers)
	for i := range counts {
		st := openSSE(t, s, bobToken, "", "")
		counts[i] = make(chan tally, 1)
		go func() {
			var got []string
			for ev := range st.events {
				if ev.Event == "message" {
					var m wireMessage
					if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
						counts[i] <- tally{err: err}
						return
					}
					got = append(got, m.Text)
					if m.Text == "last" {
						counts[i] <- tally{texts: got}
						return
					}
				}
			}
			counts[i] <- tally{err: fmt.Errorf("the stream ended: %v", st.err)}
		}()
	}

	// Carol's client sends its request and then never reads a byte.
	stuck, err := net.Dial("tcp", s.ListenAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	fmt.Fprintf(stuck, "GET /api/v1/stream?since=%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", start, s.ListenAddr(), carolToken)
	waitFor(t, "every stream to wait", func() bool {
		return s.Hub.WaitingFor(bob.ID) == readers && s.Hub.WaitingFor(carol.ID) == 1
	})

	// Large messages for carol (2000 characters that JSON escapes to six
	// bytes each) fill her socket buffers; the small ones go to both.
	big := strings.Repeat("<", 1990)
	var carolWants, bobWants []string
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; s.Hub.WaitingFor(carol.ID) != 0; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("the client that does not read was not dropped after %d large messages", i)
		}
		text := fmt.Sprintf("big %04d %s", i, big)
		s.MustPublish(t, alice, map[string]any{"recipients": []string{"carol"}, "text": text})
		carolWants = append(carolWants, text)
		if i%10 == 0 {
			text := fmt.Sprintf("tick %04d", i)
			s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob", "carol"}, "text": text})
			carolWants, bobWants = append(carolWants, text), append(bobWants, text)
		}
	}
	s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob", "carol"}, "text": "last"})
	carolWants, bobWants = append(carolWants, "last"), append(bobWants, "last")
	t.Logf("dropped after %d messages for carol", len(carolWants))

	for i, ch := range counts {
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("reader %d: %v", i, r.err)
			}
			if strings.Join(r.texts, ",") != strings.Join(bobWants, ",") {
				t.Fatalf("reader %d got %d messages %q…, want %d", i, len(r.texts), r.texts[:min(3, len(r.texts))], len(bobWants))
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("reader %d did not get every message", i)
		}
	}
	if n := s.Hub.WaitingFor(bob.ID); n != readers {
		t.Fatalf("%d of bob's %d readers are still connected: the slow one took others with it", n, readers)
	}

	// Carol comes back: she reads what had reached her, which ends where
	// the server gave up, and resumes from the last whole event.
	stuck.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(stuck), nil)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	var lastID string
	err = readSSE(resp.Body, func(ev sseEvent) {
		if ev.Event == "message" {
			var m wireMessage
			if err := json.Unmarshal([]byte(ev.Data), &m); err == nil {
				seen, lastID = append(seen, m.Text), m.ID
			}
		}
	})
	if err == io.EOF {
		t.Fatal("the dropped stream ended as if it were complete")
	}
	if len(seen) == 0 || len(seen) >= len(carolWants) {
		t.Fatalf("the stuck client had %d of %d messages on its socket", len(seen), len(carolWants))
	}
	t.Logf("the stuck client had %d messages on its socket when it was dropped", len(seen))
	st := openSSE(t, s, carolToken, "since="+start, lastID)
	for len(seen) < len(carolWants) {
		seen = append(seen, st.NextMessage(t).Message(t).Text)
	}
	for i := range carolWants {
		if seen[i] != carolWants[i] {
			t.Fatalf("carol's message %d is %.12q, want %.12q", i, seen[i], carolWants[i])
		}
	}
}
