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
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tidings/tidings"
)

// WithSendBuffer sets the kernel's send buffer of each connection.
func WithSendBuffer(n int) Option { return func(s *TestServer) { s.SendBuffer = n } }

// publishMany stores n messages of text for bob straight through the store,
// many at a time, as concurrent publishers would.
func publishMany(tb testing.TB, s *TestServer, admin *tidings.User, n int, text func(i int) string) {
	tb.Helper()
	ctx := tidings.NewContextWithAuth(context.Background(), &tidings.Auth{User: admin, Session: &tidings.Session{UserID: admin.ID}})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := s.DB.PublishMessage(ctx, &tidings.Publication{Recipients: []string{"bob"}, Text: text(i), TTL: time.Hour})
			if err != nil {
				errs <- err
			}
		})
		if i%64 == 63 {
			wg.Wait()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

// A poll answer holds at most 1 MiB of JSON; the rest follows with more, and
// nothing is lost or repeated on the way.
func TestPollBatchIsBoundedInBytes(t *testing.T) {
	s := MustOpenServer(t)
	admin, _ := s.MustCreateUser(t, "alice", true)
	_, bob := s.MustCreateUser(t, "bob", false)
	start := s.MustPoll(t, bob, "timeout=0").Cursor
	const n = 600
	// 2,000 characters of three bytes each: 600 of them are about 3.6 MB.
	publishMany(t, s, admin, n, func(i int) string { return fmt.Sprintf("%04d ", i) + strings.Repeat("€", 1995) })

	seen := map[string]bool{}
	cursor, answers := start, 0
	for {
		status, body := s.Do(t, "GET", "/api/v1/poll?timeout=0&since="+cursor, bob, nil)
		if status != http.StatusOK {
			t.Fatalf("poll: %d %s", status, body)
		}
		if len(body) > tidings.MaxBatchBytes {
			t.Fatalf("answer %d has %d bytes, more than %d", answers, len(body), tidings.MaxBatchBytes)
		}
		var p wirePoll
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		answers++
		for _, m := range p.Messages {
			if seen[m.Text[:4]] {
				t.Fatalf("message %s came twice", m.Text[:4])
			}
			seen[m.Text[:4]] = true
		}
		if p.Missed != 0 {
			t.Fatalf("answer %d says %d missed", answers, p.Missed)
		}
		cursor = p.Cursor
		if !p.More {
			break
		}
		if len(p.Messages) == 0 {
			t.Fatal("an answer with more had no messages")
		}
	}
	if len(seen) != n {
		t.Fatalf("got %d messages, want %d", len(seen), n)
	}
	if answers < 4 {
		t.Fatalf("3.6 MB came in %d answers", answers)
	}
}

// An edit of a long text tells the old and new values cut to 500
// characters; the item keeps the whole text.
func TestEditDetailsAreCut(t *testing.T) {
	s := MustOpenServer(t)
	_, alice := s.MustCreateUser(t, "alice", false)
	_, bob := s.MustCreateUser(t, "bob", false)
	pid := s.MustCreateProject(t, alice, "Office move", "bob")
	long := func(r string) string { return strings.Repeat(r, tidings.MaxTextLength) }
	var note struct{ ID int64 }
	s.MustDo(t, "POST", fmt.Sprintf("/api/v1/projects/%d/notes", pid), alice, map[string]any{"title": "Plan", "body": long("a")}, 201, &note)
	start := s.MustPoll(t, bob, "timeout=0").Cursor
	s.MustDo(t, "PATCH", fmt.Sprintf("/api/v1/notes/%d", note.ID), alice, map[string]any{"body": long("b")}, 200, nil)

	var p struct {
		Messages []struct {
			Details []struct {
				Field string  `json:"field"`
				Old   *string `json:"old"`
				New   *string `json:"new"`
			} `json:"details"`
		} `json:"messages"`
	}
	s.MustDo(t, "GET", "/api/v1/poll?timeout=0&since="+start, bob, nil, 200, &p)
	if len(p.Messages) != 1 || len(p.Messages[0].Details) != 1 {
		t.Fatalf("got %+v, want one message with one detail", p)
	}
	d := p.Messages[0].Details[0]
	for _, v := range []*string{d.Old, d.New} {
		if v == nil || utf8.RuneCountInString(*v) != tidings.MaxDetailLength || !strings.HasSuffix(*v, "…") {
			t.Fatalf("detail %s: a value of %d characters, want %d ending in …", d.Field, utf8.RuneCountInString(*v), tidings.MaxDetailLength)
		}
	}
	if !strings.HasPrefix(*d.Old, "aaa") || !strings.HasPrefix(*d.New, "bbb") {
		t.Fatalf("detail old %.10q new %.10q", *d.Old, *d.New)
	}
	var got struct{ Body string }
	s.MustDo(t, "GET", fmt.Sprintf("/api/v1/notes/%d", note.ID), bob, nil, 200, &got)
	if got.Body != long("b") {
		t.Fatalf("the note's body has %d characters, want the whole %d", utf8.RuneCountInString(got.Body), tidings.MaxTextLength)
	}
}

// A poll whose client does not read its answer is dropped after the write
// timeout instead of holding the answer for ever.
func TestPollAnswerToAClientThatDoesNotReadIsDropped(t *testing.T) {
	s := MustOpenServer(t, WithStreamWriteTimeout(100*time.Millisecond), WithSendBuffer(4<<10))
	admin, _ := s.MustCreateUser(t, "alice", true)
	_, bob := s.MustCreateUser(t, "bob", false)
	publishMany(t, s, admin, 200, func(i int) string { return strings.Repeat("€", 2000) })

	d := net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10)
		})
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(s.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/v1/poll?timeout=0 HTTP/1.1\r\nHost: tidings\r\nAuthorization: Bearer %s\r\n\r\n", bob)
	// The client reads nothing for twenty times the write timeout.
	time.Sleep(2 * time.Second)

	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return // dropped before even the header got through
	}
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("the whole answer (%d bytes) was kept for a client that did not read", len(body))
	}
	t.Logf("the client got %d bytes of the answer, then %v", len(body), err)
}
