package http_test

import (
	"sync"
	"testing"
	"time"

	"github.com/tidings/tidings"
)

// recorder keeps what the server told its Metrics.
type recorder struct {
	mu        sync.Mutex
	open      map[string]int
	delivered map[string][]string
}

func (r *recorder) DeliveryOpened(transport string) { r.add(transport, 1) }
func (r *recorder) DeliveryClosed(transport string) { r.add(transport, -1) }

func (r *recorder) add(transport string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open[transport] += n
}

func (r *recorder) Delivered(transport string, messages []*tidings.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range messages {
		r.delivered[transport] = append(r.delivered[transport], m.Text)
	}
}

func (r *recorder) state() (open map[string]int, delivered map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	open, delivered = map[string]int{}, map[string]int{}
	for k, v := range r.open {
		open[k] = v
	}
	for k, v := range r.delivered {
		delivered[k] = len(v)
	}
	return open, delivered
}

func TestMetricsSeeHeldPollsOpenStreamsAndDeliveries(t *testing.T) {
	rec := &recorder{open: map[string]int{}, delivered: map[string][]string{}}
	s := MustOpenServer(t, func(s *TestServer) { s.Metrics = rec })
	_, alice := s.MustCreateUser(t, "alice", true)
	bob, bobToken := s.MustCreateUser(t, "bob", false)
	start := s.MustPoll(t, bobToken, "timeout=0")

	st := openSSE(t, s, bobToken, "since="+start.Cursor, "")
	got := goPoll(s, bobToken, start.Cursor)
	waitFor(t, "the poll and the stream to wait", func() bool { return s.Hub.WaitingFor(bob.ID) == 2 })
	if open, _ := rec.state(); open["poll"] != 1 || open["sse"] != 1 {
		t.Fatalf("open deliveries %v, want one poll and one sse", open)
	}

	s.MustPublish(t, alice, map[string]any{"recipients": []string{"bob"}, "text": "Lunch is here"})
	select {
	case r := <-got:
		if r.err != nil || len(r.poll.Messages) != 1 {
			t.Fatalf("poll answered %+v, %v", r.poll, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held poll was not answered")
	}
	st.NextMessage(t)
	st.Close()
	waitFor(t, "the poll and the stream to end", func() bool {
		open, _ := rec.state()
		return open["poll"] == 0 && open["sse"] == 0
	})
	if _, delivered := rec.state(); delivered["poll"] != 1 || delivered["sse"] != 1 {
		t.Errorf("delivered %v, want one message on each", delivered)
	}
}
