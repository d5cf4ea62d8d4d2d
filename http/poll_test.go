package http_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidings/tidings"
)

// waitFor polls cond until it holds, failing the test after a bound.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// seqOf returns the position of a message id in its user's sequence.
func seqOf(tb testing.TB, id string) int64 {
	tb.Helper()
	c, err := tidings.ParseCursor(id)
	if err != nil {
		tb.Fatalf("message id %q is not a cursor: %v", id, err)
	}
	return c.Seq
}

func TestPollWakesUpHeldRequest(t *testing.T) {
	s := MustOpenServer(t)
	_, alice := s.MustCreateUser(t, "alice", true)
	bob, bobToken := s.MustCreateUser(t, "bob", false)
	start := s.MustPoll(t, bobToken, "timeout=0")

	got := goPoll(s, bobToken, start.Cursor)
	waitFor(t, "bob's poll to be held", func() bool { return s.Hub.WaitingFor(bob.ID) == 1 })
	s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "Lunch is here"})

	select {
	case r := <-got:
		p := r.poll
		if r.err != nil {
			t.Fatal(r.err)
		}
		if len(p.Messages) != 1 || p.Messages[0].Text != "Lunch is here" {
			t.Fatalf("held poll answered %+v, want the published message", p)
		}
		if p.Cursor != p.Messages[0].ID {
			t.Errorf("cursor %q is not the id of the last message %q", p.Cursor, p.Messages[0].ID)
		}
		if p.Messages[0].Process != "message" || p.Messages[0].Module != "message" {
			t.Errorf("process/module = %s/%s, want message/message", p.Messages[0].Process, p.Messages[0].Module)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held poll was not answered after the publish")
	}
}

func TestPollTimeoutKeepsCursor(t *testing.T) {
	s := MustOpenServer(t)
	_, bobToken := s.MustCreateUser(t, "bob", false)
	start := s.MustPoll(t, bobToken, "timeout=0")
	if len(start.Messages) != 0 || start.Cursor == "" {
		t.Fatalf("first poll = %+v, want no messages and a cursor", start)
	}

	p := s.MustPoll(t, bobToken, "timeout=0.2&since="+start.Cursor)
	if len(p.Messages) != 0 || p.Cursor != start.Cursor || p.Missed != 0 {
		t.Fatalf("timed-out poll = %+v, want [] with cursor %q", p, start.Cursor)
	}
	if p.Messages == nil {
		t.Fatal(`messages is null, want []`)
	}
	// timeout=0 answers at once, with a cursor taken from the head.
	p = s.MustPoll(t, bobToken, "since="+start.Cursor+"&timeout=0")
	if len(p.Messages) != 0 || p.Cursor != start.Cursor {
		t.Fatalf("timeout=0 poll = %+v", p)
	}
}

func TestPollAnswersAllPendingOldestFirst(t *testing.T) {
	s := MustOpenServer(t)
	_, alice := s.MustCreateUser(t, "alice", true)
	_, bobToken := s.MustCreateUser(t, "bob", false)
	start := s.MustPoll(t, bobToken, "timeout=0")
	for i := range 5 {
		s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": fmt.Sprintf("m%d", i)})
	}
	p := s.MustPoll(t, bobToken, "timeout=10&since="+start.Cursor)
	if len(p.Messages) != 5 {
		t.Fatalf("got %d messages, want all 5", len(p.Messages))
	}
	for i, m := range p.Messages {
		if m.Text != fmt.Sprintf("m%d", i) {
			t.Fatalf("message %d is %q: not oldest first", i, m.Text)
		}
	}
	// Without since: what is deliverable now, also a minute later.
	again := s.MustPoll(t, bobToken, "timeout=0")
	if len(again.Messages) != 5 || again.Cursor != p.Cursor {
		t.Fatalf("poll without since = %d messages, cursor %q; want 5 and %q", len(again.Messages), again.Cursor, p.Cursor)
	}
}

func TestPollBatchIsBoundedWithMore(t *testing.T) {
	s := MustOpenServer(t)
	_, alice := s.MustCreateUser(t, "alice", true)
	bob, bobToken := s.MustCreateUser(t, "bob", false)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 150 {
				s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": fmt.Sprintf("w%d-%d", w, i)})
			}
		})
	}
	wg.Wait()
	_ = bob
	first := s.MustPoll(t, bobToken, "timeout=0")
	if len(first.Messages) != tidings.MaxBatch || !first.More {
		t.Fatalf("first answer has %d messages, more=%v; want %d and more", len(first.Messages), first.More, tidings.MaxBatch)
	}
	if first.Cursor != first.Messages[len(first.Messages)-1].ID {
		t.Fatal("cursor is not the id of the last message")
	}
	second := s.MustPoll(t, bobToken, "timeout=0&since="+first.Cursor)
	if len(second.Messages) != 100 || second.More {
		t.Fatalf("second answer has %d messages, more=%v; want 100 and no more", len(second.Messages), second.More)
	}
}

// TestPollNoLoss runs 4 publishers of 100 messages each to two users while
// each user polls in a loop with its cursor, one with GET, one with POST:
// each must see exactly its 400, in order, none twice.
func TestPollNoLoss(t *testing.T) {
	for _, method := range []string{"GET", "POST-form", "POST-json"} {
		t.Run(method, func(t *testing.T) {
			s := MustOpenServer(t)
			_, alice := s.MustCreateUser(t, "alice", true)
			_, bobToken := s.MustCreateUser(t, "bob", false)
			_, carolToken := s.MustCreateUser(t, "carol", false)
			const publishers, each = 4, 100
			want := publishers * each

			type result struct {
				texts []string
				err   error
			}
			poll := func(token string, out chan<- result) {
				var texts []string
				seen := map[string]bool{}
				since, last := "", int64(0)
				deadline := time.Now().Add(60 * time.Second)
				for len(texts) < want && time.Now().Before(deadline) {
					p, err := pollBy(s, method, token, since, "5")
					if err != nil {
						out <- result{err: err}
						return
					}
					for _, m := range p.Messages {
						seq := seqOf(t, m.ID)
						if seq <= last {
							out <- result{err: fmt.Errorf("message %q at %d after %d: out of order", m.Text, seq, last)}
							return
						}
						last = seq
						if m.Module != "message" {
							continue // not one of ours
						}
						if seen[m.Text] {
							out <- result{err: fmt.Errorf("message %q delivered twice", m.Text)}
							return
						}
						seen[m.Text] = true
						texts = append(texts, m.Text)
					}
					since = p.Cursor
				}
				out <- result{texts: texts}
			}
			bobDone, carolDone := make(chan result, 1), make(chan result, 1)
			go poll(bobToken, bobDone)
			go poll(carolToken, carolDone)

			var wg sync.WaitGroup
			for w := range publishers {
				wg.Go(func() {
					for i := range each {
						s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob", "carol"}, "text": fmt.Sprintf("p%d-%03d", w, i)})
					}
				})
			}
			wg.Wait()
			for name, ch := range map[string]chan result{"bob": bobDone, "carol": carolDone} {
				r := <-ch
				if r.err != nil {
					t.Fatalf("%s: %v", name, r.err)
				}
				if len(r.texts) != want {
					t.Fatalf("%s got %d messages, want %d", name, len(r.texts), want)
				}
				// Each publisher's messages arrive in the order it published them.
				next := make([]int, publishers)
				for _, text := range r.texts {
					var w, i int
					fmt.Sscanf(text, "p%d-%d", &w, &i)
					if i != next[w] {
						t.Fatalf("%s: publisher %d's message %d arrived when %d was due", name, w, i, next[w])
					}
					next[w]++
				}
			}
		})
	}
}

type pollResult struct {
	poll wirePoll
	err  error
}

// goPoll holds a GET poll in the background.
func goPoll(s *TestServer, token, since string) <-chan pollResult {
	got := make(chan pollResult, 1)
	go func() {
		p, err := pollBy(s, "GET", token, since, "20")
		got <- pollResult{p, err}
	}()
	return got
}

// pollBy polls with GET (query), POST form or POST JSON.
func pollBy(s *TestServer, method, token, since, timeout string) (wirePoll, error) {
	var req *http.Request
	var err error
	switch method {
	case "GET":
		q := url.Values{"timeout": {timeout}}
		if since != "" {
			q.Set("since", since)
		}
		req, err = http.NewRequest("GET", s.URL()+"/api/v1/poll?"+q.Encode(), nil)
	case "POST-form":
		q := url.Values{"timeout": {timeout}}
		if since != "" {
			q.Set("since", since)
		}
		req, err = http.NewRequest("POST", s.URL()+"/api/v1/poll", strings.NewReader(q.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	default:
		body := fmt.Sprintf(`{"since":%q,"timeout":%s}`, since, timeout)
		req, err = http.NewRequest("POST", s.URL()+"/api/v1/poll", strings.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	if err != nil {
		return wirePoll{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return wirePoll{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return wirePoll{}, fmt.Errorf("poll: status %d", resp.StatusCode)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		return wirePoll{}, fmt.Errorf("poll: Cache-Control %q, want no-store", cc)
	}
	var p wirePoll
	err = decodeBody(resp, &p)
	return p, err
}

func TestPollExpiryWithClock(t *testing.T) {
	clock := newTestClock()
	s := MustOpenServer(t, WithClock(clock))
	_, alice := s.MustCreateUser(t, "alice", true)
	_, bobToken := s.MustCreateUser(t, "bob", false)
	start := s.MustPoll(t, bobToken, "timeout=0")

	s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "short-lived", "ttl": "1m"})
	s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "long-lived", "ttl": "10m"})
	clock.Advance(time.Minute) // valid_until is exclusive: the first has just expired

	p := s.MustPoll(t, bobToken, "timeout=0&since="+start.Cursor)
	if len(p.Messages) != 1 || p.Messages[0].Text != "long-lived" || p.Missed != 1 {
		t.Fatalf("after expiry: %+v, want only long-lived and missed=1", p)
	}

	clock.Advance(10 * time.Minute)
	p = s.MustPoll(t, bobToken, "timeout=0&since="+p.Cursor)
	if len(p.Messages) != 0 || p.Missed != 0 {
		t.Fatalf("nothing after the last cursor expired unseen, got %+v", p)
	}
	p = s.MustPoll(t, bobToken, "timeout=10&since="+start.Cursor)
	if len(p.Messages) != 0 || p.Missed != 2 {
		t.Fatalf("from the start: %+v, want no messages and missed=2", p)
	}

	swept, err := s.DB.DeleteExpired(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if swept.Messages != 2 || swept.Events != 2 {
		t.Fatalf("janitor deleted %+v, want 2 messages and 2 events", swept)
	}
	// Deleted rows change nothing a client sees.
	p = s.MustPoll(t, bobToken, "timeout=0&since="+start.Cursor)
	if len(p.Messages) != 0 || p.Missed != 2 {
		t.Fatalf("after the janitor: %+v, want missed=2", p)
	}
}

func TestPollFutureMessageDeliveredWhenDue(t *testing.T) {
	clock := newTestClock()
	s := MustOpenServer(t, WithClock(clock))
	_, alice := s.MustCreateUser(t, "alice", true)
	bob, bobToken := s.MustCreateUser(t, "bob", false)
	start := s.MustPoll(t, bobToken, "timeout=0")

	due := clock.Now().Add(10 * time.Minute)
	n := s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "later", "valid_from": due.Format(time.RFC3339)})
	if n != 1 {
		t.Fatalf("future publish stored for %d, want 1", n)
	}
	s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "now"})
	p := s.MustPoll(t, bobToken, "timeout=0&since="+start.Cursor)
	if len(p.Messages) != 1 || p.Messages[0].Text != "now" {
		t.Fatalf("before it is due: %+v, want only now", p)
	}
	cursor := p.Cursor // moved past a message published after the future one

	got := goPoll(s, bobToken, cursor)
	waitFor(t, "bob's poll to be held", func() bool { return s.Hub.WaitingFor(bob.ID) == 1 })
	clock.Advance(10 * time.Minute)
	if fired, _, err := s.DB.FireDue(context.Background()); err != nil || fired != 1 {
		t.Fatalf("FireDue = %d, %v; want 1", fired, err)
	}
	select {
	case r := <-got:
		p := r.poll
		if r.err != nil {
			t.Fatal(r.err)
		}
		if len(p.Messages) != 1 || p.Messages[0].Text != "later" {
			t.Fatalf("when due: %+v, want later", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the due message did not wake the held poll")
	}
}

func TestPollAfterRestart(t *testing.T) {
	dir := t.TempDir()
	s := MustOpenServer(t, WithDir(dir))
	_, alice := s.MustCreateUser(t, "alice", true)
	_, bobToken := s.MustCreateUser(t, "bob", false)
	start := s.MustPoll(t, bobToken, "timeout=0")
	s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "before the restart"})
	s.MustClose(t)

	s = MustOpenServer(t, WithDir(dir))
	p := s.MustPoll(t, bobToken, "timeout=5&since="+start.Cursor)
	if len(p.Messages) != 1 || p.Messages[0].Text != "before the restart" {
		t.Fatalf("after restart: %+v", p)
	}
	// And the numbering goes on where it was.
	s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "after the restart"})
	q := s.MustPoll(t, bobToken, "timeout=5&since="+p.Cursor)
	if len(q.Messages) != 1 || q.Messages[0].Text != "after the restart" || seqOf(t, q.Cursor) != seqOf(t, p.Cursor)+1 {
		t.Fatalf("after restart, next: %+v", q)
	}
}

func TestPollCursorFromAnotherDatabase(t *testing.T) {
	a := MustOpenServer(t)
	_, tokA := a.MustCreateUser(t, "bob", false)
	foreign := a.MustPoll(t, tokA, "timeout=0").Cursor

	b := MustOpenServer(t)
	_, tokB := b.MustCreateUser(t, "bob", false)
	b.MustFail(t, "GET", "/api/v1/poll?timeout=0&since="+foreign, tokB, nil, 400, "invalid_cursor", "since")
	b.MustFail(t, "GET", "/api/v1/poll?timeout=0&since=not-a-cursor", tokB, nil, 400, "invalid_cursor", "since")
	b.MustFail(t, "POST", "/api/v1/poll", tokB, map[string]any{"since": "AAAA"}, 400, "invalid_cursor", "since")
}

func TestPollBadTimeout(t *testing.T) {
	s := MustOpenServer(t)
	_, tok := s.MustCreateUser(t, "bob", false)
	s.MustFail(t, "GET", "/api/v1/poll?timeout=-1", tok, nil, 400, "invalid", "timeout")
	s.MustFail(t, "GET", "/api/v1/poll?timeout=soon", tok, nil, 400, "invalid", "timeout")
	for _, v := range []string{"%2B5", "0x1p4", "Inf", "infinity", "NaN", "5s", "1,5", ".5", "-0.5", "1e", "5%200"} {
		s.MustFail(t, "GET", "/api/v1/poll?timeout="+v, tok, nil, 400, "invalid", "timeout")
	}
	s.MustFail(t, "POST", "/api/v1/poll", tok, `{"timeout": true}`, 400, "invalid", "timeout")
	s.MustFail(t, "POST", "/api/v1/poll", tok, `{"timeout": 1, "wait": 2}`, 400, "invalid", "wait")
}

// WithPollTimeout sets the longest hold of a poll.
func WithPollTimeout(d time.Duration) Option {
	return func(s *TestServer) { s.PollTimeout = d }
}

// TestPollHugeTimeoutIsClamped: a timeout beyond what a duration can hold
// is neither refused nor turned into "answer at once": the poll is held
// like any other and answered by the next message; with nothing to send it
// answers, empty, when the server's longest hold has passed.
func TestPollHugeTimeoutIsClamped(t *testing.T) {
	huge := []string{"1e300", "1e19", "9223372036854775807", "99999999999999999999999"}
	t.Run("held until a message", func(t *testing.T) {
		s := MustOpenServer(t)
		_, alice := s.MustCreateUser(t, "alice", true)
		bob, bobToken := s.MustCreateUser(t, "bob", false)
		since := s.MustPoll(t, bobToken, "timeout=0").Cursor
		for _, timeout := range huge {
			got := make(chan pollResult, 1)
			go func() {
				p, err := pollBy(s, "GET", bobToken, since, timeout)
				got <- pollResult{p, err}
			}()
			waitFor(t, "the poll with timeout="+timeout+" to be held", func() bool { return s.Hub.WaitingFor(bob.ID) == 1 })
			select {
			case r := <-got:
				t.Fatalf("timeout=%s: answered %+v (%v) before anything was published", timeout, r.poll, r.err)
			default:
			}
			text := "woken with timeout=" + timeout
			s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": text})
			select {
			case r := <-got:
				if r.err != nil {
					t.Fatalf("timeout=%s: %v", timeout, r.err)
				}
				if len(r.poll.Messages) != 1 || r.poll.Messages[0].Text != text || r.poll.Cursor != r.poll.Messages[0].ID {
					t.Fatalf("timeout=%s: the held poll answered %+v, want the published message", timeout, r.poll)
				}
				since = r.poll.Cursor
			case <-time.After(10 * time.Second):
				t.Fatalf("timeout=%s: the held poll was not answered after the publish", timeout)
			}
		}
	})
	t.Run("answered when the longest hold passes", func(t *testing.T) {
		s := MustOpenServer(t, WithPollTimeout(100*time.Millisecond))
		_, bobToken := s.MustCreateUser(t, "bob", false)
		since := s.MustPoll(t, bobToken, "timeout=0").Cursor
		for _, timeout := range huge {
			got := make(chan pollResult, 1)
			go func() {
				p, err := pollBy(s, "GET", bobToken, since, timeout)
				got <- pollResult{p, err}
			}()
			select {
			case r := <-got:
				if r.err != nil {
					t.Fatalf("timeout=%s: %v", timeout, r.err)
				}
				if r.poll.Messages == nil || len(r.poll.Messages) != 0 || r.poll.Cursor != since {
					t.Fatalf("timeout=%s: answered %+v, want [] with the cursor unchanged", timeout, r.poll)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("timeout=%s: the poll was held far beyond the server's longest hold", timeout)
			}
		}
	})
}

func TestPollClientGoneHoldsNothing(t *testing.T) {
	s := MustOpenServer(t)
	bob, tok := s.MustCreateUser(t, "bob", false)
	ctx, cancel := context.WithCancel(context.Background())
	req := s.NewRequest(t, "GET", "/api/v1/poll?timeout=20", tok, nil).WithContext(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, "the poll to be held", func() bool { return s.Hub.WaitingFor(bob.ID) == 1 })
	cancel()
	<-done
	waitFor(t, "the server to let go of the vanished poll", func() bool { return s.Hub.WaitingFor(bob.ID) == 0 })
}

func TestShutdownAnswersHeldPolls(t *testing.T) {
	s := MustOpenServer(t)
	bob, tok := s.MustCreateUser(t, "bob", false)
	start := s.MustPoll(t, tok, "timeout=0")
	got := goPoll(s, tok, start.Cursor)
	waitFor(t, "the poll to be held", func() bool { return s.Hub.WaitingFor(bob.ID) == 1 })

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case r := <-got:
		p := r.poll
		if r.err != nil {
			t.Fatal(r.err)
		}
		if len(p.Messages) != 0 || p.Cursor != start.Cursor {
			t.Fatalf("held poll at shutdown = %+v, want [] with the cursor unchanged", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown did not answer the held poll")
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

// TestPollWithAnotherUsersCursor: a cursor names its user; with another
// user's cursor a client reads nothing of theirs.
func TestPollWithAnotherUsersCursor(t *testing.T) {
	s := MustOpenServer(t)
	_, alice := s.MustCreateUser(t, "alice", true)
	_, bob := s.MustCreateUser(t, "bob", false)
	_, carol := s.MustCreateUser(t, "carol", false)
	carolStart := s.MustPoll(t, carol, "timeout=0").Cursor
	s.MustPublish(t, alice, map[string]any{"recipients": []string{"carol"}, "text": "for carol only"})
	s.MustFail(t, "GET", "/api/v1/poll?timeout=0&since="+carolStart, bob, nil, 400, "invalid_cursor", "since")
	if p := s.MustPoll(t, bob, "timeout=0"); len(p.Messages) != 0 {
		t.Fatalf("bob read %+v", p.Messages)
	}
}
