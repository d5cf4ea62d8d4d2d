package sqlstore

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestNotifyPayloadsRoundTrip(t *testing.T) {
	if got := notifyPayloads("a1", nil, nil, false); len(got) != 0 {
		t.Fatalf("nothing to say made payloads %q", got)
	}
	got := notifyPayloads("a1", []int64{5, 3, 5, 9}, []int64{7, 7}, true)
	if len(got) != 1 || got[0] != "na1|a7|m3,5,9|s" {
		t.Fatalf("payloads %q", got)
	}
	node, wake, ended, scheduled := parseNotifyPayload(got[0])
	if node != "a1" || !slices.Equal(wake, []int64{3, 5, 9}) || !slices.Equal(ended, []int64{7}) || !scheduled {
		t.Fatalf("parsed node %q wake %v ended %v scheduled %v", node, wake, ended, scheduled)
	}
	if got := notifyPayloads("a1", nil, nil, true); len(got) != 1 || got[0] != "na1|s" {
		t.Fatalf("only scheduled: %q", got)
	}
	// A change to people is said even when nothing else is.
	people := notice{node: "a1", people: true}.payloads()
	if len(people) != 1 || people[0] != "na1|r" || !parseNotice(people[0]).people {
		t.Fatalf("people changed: %q", people)
	}
	if parseNotice(got[0]).people {
		t.Fatalf("%q parsed as a change to people", got[0])
	}
	// Unknown parts and bad numbers are skipped.
	if _, wake, _, _ := parseNotifyPayload("nb|x1,2|m4,zz,-3,6"); !slices.Equal(wake, []int64{4, 6}) {
		t.Fatalf("parsed wake %v", wake)
	}
}

func TestNotifyPayloadsSplitUnderTheLimit(t *testing.T) {
	var wake, ended []int64
	for i := int64(1); i <= 3000; i++ {
		wake = append(wake, 1_000_000+i)
		if i%3 == 0 {
			ended = append(ended, 2_000_000+i)
		}
	}
	payloads := notifyPayloads("node-1", wake, ended, false)
	if len(payloads) < 2 {
		t.Fatalf("4,000 ids fit into %d payload", len(payloads))
	}
	var gotWake, gotEnded []int64
	for i, p := range payloads {
		if len(p) > maxNotifyPayload {
			t.Fatalf("payload %d has %d bytes", i, len(p))
		}
		if !strings.HasPrefix(p, "nnode-1|") {
			t.Fatalf("payload %d does not name its node: %.20q", i, p)
		}
		_, w, e, _ := parseNotifyPayload(p)
		if len(gotWake) > 0 && len(e) > 0 {
			t.Fatal("an ended credential came after a wake-up")
		}
		gotWake, gotEnded = append(gotWake, w...), append(gotEnded, e...)
	}
	if !slices.Equal(gotWake, wake) || !slices.Equal(gotEnded, ended) {
		t.Fatalf("split and joined: %d wake-ups, %d ended; want %d and %d", len(gotWake), len(gotEnded), len(wake), len(ended))
	}
}

// recordingNotifier keeps what it was told.
type recordingNotifier struct {
	mu           sync.Mutex
	wake, access []int64
}

func (r *recordingNotifier) Notify(ids ...int64) {
	r.mu.Lock()
	r.wake = append(r.wake, ids...)
	r.mu.Unlock()
}

func (r *recordingNotifier) NotifyAccess(ids ...int64) {
	r.mu.Lock()
	r.access = append(r.access, ids...)
	r.mu.Unlock()
}

func (r *recordingNotifier) got() (wake, access []int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.wake), slices.Clone(r.access)
}

func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestListenerHearsOtherNodesAndResyncsAfterADrop runs against the server
// TIDINGS_TEST_POSTGRES names.
func TestListenerHearsOtherNodesAndResyncsAfterADrop(t *testing.T) {
	url := os.Getenv("TIDINGS_TEST_POSTGRES")
	if url == "" {
		if os.Getenv("TIDINGS_REQUIRE_POSTGRES") == "1" {
			t.Fatal("TIDINGS_REQUIRE_POSTGRES=1 but TIDINGS_TEST_POSTGRES names no server")
		}
		t.Skip("TIDINGS_TEST_POSTGRES names no PostgreSQL server")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &recordingNotifier{}
	var mu sync.Mutex
	resyncs, connected := 0, false
	l := &Listener{URL: url, Node: "me", Notifier: rec, Logger: slog.New(slog.DiscardHandler),
		Resync:    func() { mu.Lock(); resyncs++; mu.Unlock() },
		Connected: func(c bool) { mu.Lock(); connected = c; mu.Unlock() },
	}
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	state := func() (int, bool) { mu.Lock(); defer mu.Unlock(); return resyncs, connected }
	eventually(t, "the listener to listen", func() bool { n, c := state(); return n == 1 && c })

	other, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	for _, p := range append(notifyPayloads("me", []int64{99}, nil, false), notifyPayloads("other", []int64{1, 2}, []int64{3}, false)...) {
		if _, err := other.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, p); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the other node's wake-ups", func() bool { w, a := rec.got(); return len(w) == 2 && len(a) == 1 })
	if w, a := rec.got(); !slices.Equal(w, []int64{1, 2}) || !slices.Equal(a, []int64{3}) {
		t.Fatalf("heard wake %v access %v; its own payload must be skipped", w, a)
	}

	// The listening connection is killed: it comes back and resyncs.
	if _, err := other.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tidings listen me'`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the listener to come back and resync", func() bool { n, c := state(); return n == 2 && c })
	if _, err := other.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, notifyPayloads("other", []int64{4}, nil, false)[0]); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a wake-up after the reconnect", func() bool { w, _ := rec.got(); return slices.Contains(w, 4) })
	cancel()
	<-done
}

// BenchmarkNotify measures how many NOTIFYs a second PostgreSQL carries from
// committing transactions on several connections to one listening one:
// the ceiling of cross-node wake-ups, one per committed batch.
func BenchmarkNotify(b *testing.B) {
	url := os.Getenv("TIDINGS_TEST_POSTGRES")
	if url == "" {
		b.Skip("TIDINGS_TEST_POSTGRES names no PostgreSQL server")
	}
	ctx := context.Background()
	listener, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer listener.Close(ctx)
	if _, err := listener.Exec(ctx, "LISTEN tidings_bench"); err != nil {
		b.Fatal(err)
	}
	payload := notifyPayloads("bench", []int64{1, 2, 3, 4, 5, 6, 7, 8}, nil, false)[0]
	const senders = 8
	conns := make([]*pgx.Conn, senders)
	for i := range conns {
		if conns[i], err = pgx.Connect(ctx, url); err != nil {
			b.Fatal(err)
		}
		defer conns[i].Close(ctx)
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			for n := i; n < b.N; n += senders {
				if _, err := c.Exec(ctx, "SELECT pg_notify('tidings_bench', $1)", payload); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	for range b.N {
		if _, err := listener.WaitForNotification(ctx); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notifies/s")
}
