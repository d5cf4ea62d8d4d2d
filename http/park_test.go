package http_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// rawPoll writes a long poll on c.
func rawPoll(tb testing.TB, c net.Conn, token, query string) {
	tb.Helper()
	req := "GET /api/v1/poll?" + query + " HTTP/1.1\r\nHost: tidings\r\nAuthorization: Bearer " + token + "\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		tb.Fatal(err)
	}
}

// readPollAnswer reads one poll answer from br.
func readPollAnswer(tb testing.TB, c net.Conn, br *bufio.Reader) (*http.Response, pollAnswer) {
	tb.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		tb.Fatalf("read answer: %v", err)
	}
	defer resp.Body.Close()
	var a pollAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		tb.Fatalf("decode answer (status %d): %v", resp.StatusCode, err)
	}
	return resp, a
}

// TestHeldDeliveriesOwnNoGoroutines: a held poll, stream or socket waits
// without a goroutine of its own, and still gets its message at once.
func TestHeldDeliveriesOwnNoGoroutines(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("connections park only on Linux")
	}
	for _, transport := range []string{"poll", "sse", "ws"} {
		t.Run(transport, func(t *testing.T) {
			s := MustOpenServer(t)
			_, alice := s.MustCreateUser(t, "alice", true)
			bob, token := s.MustCreateUser(t, "bob", false)
			addr := strings.TrimPrefix(s.URL(), "http://")
			var head string
			switch transport {
			case "poll":
				head = "GET /api/v1/poll?timeout=60 HTTP/1.1"
			case "sse":
				head = "GET /api/v1/stream HTTP/1.1"
			case "ws":
				head = "GET /api/v1/ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
			}
			const n = 200
			before := runtime.NumGoroutine()
			var conns []net.Conn
			for range n {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				fmt.Fprintf(c, "%s\r\nHost: tidings\r\nAuthorization: Bearer %s\r\n\r\n", head, token)
				conns = append(conns, c)
			}
			waitFor(t, "every client to wait", func() bool { return s.Waiting() == n })
			// Goroutines that end after parking may take a moment to go.
			waitFor(t, "the handlers' goroutines to end", func() bool { return runtime.NumGoroutine()-before < n/10 })

			s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "to every connection"})
			for i, c := range conns {
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				var got []byte
				buf := make([]byte, 4096)
				for !strings.Contains(string(got), "to every connection") {
					k, err := c.Read(buf)
					if err != nil {
						t.Fatalf("connection %d: %v after %q", i, err, got)
					}
					got = append(got, buf[:k]...)
				}
			}
			if transport != "poll" {
				waitFor(t, "the streams to wait again", func() bool { return s.Hub.WaitingFor(bob.ID) == n })
			}
		})
	}
}

// TestParkedPollKeepsItsConnection: the answer of a parked poll leaves the
// connection open for the next poll, also one the client sent early.
func TestParkedPollKeepsItsConnection(t *testing.T) {
	s := MustOpenServer(t)
	_, alice := s.MustCreateUser(t, "alice", true)
	bob, token := s.MustCreateUser(t, "bob", false)
	c, err := net.Dial("tcp", strings.TrimPrefix(s.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)

	rawPoll(t, c, token, "timeout=0")
	_, start := readPollAnswer(t, c, br)

	cursor := start.Cursor
	for i := range 3 {
		rawPoll(t, c, token, "timeout=30&since="+cursor)
		waitFor(t, "the poll to be held", func() bool { return s.Hub.WaitingFor(bob.ID) == 1 })
		text := fmt.Sprintf("message %d", i)
		s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": text})
		resp, a := readPollAnswer(t, c, br)
		if resp.StatusCode != 200 || len(a.Messages) != 1 || a.Messages[0].Text != text {
			t.Fatalf("poll %d on the same connection: status %d, %+v", i, resp.StatusCode, a)
		}
		if resp.Close {
			t.Fatalf("poll %d: the server closes the connection", i)
		}
		cursor = a.Cursor
	}

	// A client that sends its next request while the first is held: both
	// are answered, in order.
	rawPoll(t, c, token, "timeout=30&since="+cursor)
	waitFor(t, "the poll to be held", func() bool { return s.Hub.WaitingFor(bob.ID) == 1 })
	rawPoll(t, c, token, "timeout=0&since="+cursor)
	s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "early"})
	_, first := readPollAnswer(t, c, br)
	_, second := readPollAnswer(t, c, br)
	if len(first.Messages) != 1 || first.Messages[0].Text != "early" || len(second.Messages) != 1 || second.Messages[0].Text != "early" {
		t.Fatalf("held then early poll: %+v, then %+v", first, second)
	}
}

// TestManyParkedStreamsLoseNothing: many parked streams of one user, with
// publishers racing their wake-ups: every stream gets every message once,
// all in the same order, each publisher's in the order it published.
func TestManyParkedStreamsLoseNothing(t *testing.T) {
	s := MustOpenServer(t)
	_, alice := s.MustCreateUser(t, "alice", true)
	bob, token := s.MustCreateUser(t, "bob", false)
	const streams, publishers, each = 40, 4, 40
	var start struct{ Cursor string }
	s.MustDo(t, "GET", "/api/v1/cursor", token, nil, http.StatusOK, &start)

	got := make([][]string, streams)
	done := make(chan int, streams)
	for i := range streams {
		req := s.NewRequest(t, "GET", "/api/v1/stream?since="+start.Cursor, token, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		go func() {
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
					var m struct{ Text string }
					if json.Unmarshal([]byte(data), &m) == nil && m.Text != "" {
						if got[i] = append(got[i], m.Text); len(got[i]) == publishers*each {
							break
						}
					}
				}
			}
			done <- i
		}()
	}
	waitFor(t, "every stream to wait", func() bool { return s.Hub.WaitingFor(bob.ID) == streams })
	errs := make(chan error, publishers)
	for p := range publishers {
		go func() {
			for k := range each {
				status, body := s.Do(t, "POST", "/api/v1/messages", alice, map[string]any{"recipients": []string{"bob"}, "text": fmt.Sprintf("%d-%03d", p, k)})
				if status != http.StatusAccepted {
					errs <- fmt.Errorf("publish: %d %s", status, body)
					return
				}
			}
			errs <- nil
		}()
	}
	for range publishers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	timeout := time.After(30 * time.Second)
	for range streams {
		select {
		case <-done:
		case <-timeout:
			t.Fatal("the streams did not get every message within 30 s")
		}
	}
	for i := range streams {
		if len(got[i]) != publishers*each {
			t.Fatalf("stream %d got %d messages, want %d", i, len(got[i]), publishers*each)
		}
		if strings.Join(got[i], ",") != strings.Join(got[0], ",") {
			t.Fatalf("stream %d got another order than stream 0", i)
		}
		seen := map[string]bool{}
		last := map[byte]string{}
		for _, text := range got[i] {
			if seen[text] {
				t.Fatalf("stream %d got %s twice", i, text)
			}
			seen[text] = true
			if prev := last[text[0]]; prev > text {
				t.Fatalf("stream %d got %s after %s", i, text, prev)
			}
			last[text[0]] = text
		}
	}
}
