package sqlstore_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidings/tidings"
	"github.com/tidings/tidings/sqlstore"
)

// BenchmarkPublishDurable measures durable publishes per second: each
// PublishMessage returns only after its commit (SQLite's synchronous=FULL,
// PostgreSQL's synchronous_commit), and
// publishes that arrive together share one transaction.
func BenchmarkPublishDurable(b *testing.B) { b.Run(dialectName(), benchmarkPublishDurable) }

func benchmarkPublishDurable(b *testing.B) {
	db := MustOpenDB(b)
	ctx := as(MustCreateUser(b, db, "alice", true))
	MustCreateUser(b, db, "bob", false)
	b.SetParallelism(64) // many concurrent publishers, as many clients would be
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := db.PublishMessage(ctx, &tidings.Publication{Recipients: []string{"bob"}, Text: "benchmark message"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
	if db.Postgres() {
		b.ReportMetric(float64(db.Statements())/float64(b.N), "statements/publish")
	}
}

// BenchmarkPublishDurableSerial is one publisher waiting for each commit:
// the cost of a commit without group commit's help. It reports the p50,
// p99 and longest publish: a commit that also checkpoints the log shows
// in the tail.
func BenchmarkPublishDurableSerial(b *testing.B) {
	b.Run(dialectName(), func(b *testing.B) { benchmarkPublishOneByOne(b, 0) })
}

// BenchmarkPublishDurablePaced is one publisher publishing every 2 ms, as
// the bench's publish→answered samples do: each commit is a lone write
// after a pause, on a process with nothing else to run. It reports the
// p50, p99 and longest publish.
func BenchmarkPublishDurablePaced(b *testing.B) {
	b.Run(dialectName(), func(b *testing.B) { benchmarkPublishOneByOne(b, 2*time.Millisecond) })
}

// benchmarkPublishOneByOne publishes one message at a time, every every
// (0: each right after the last one's commit), and reports the p50, p99
// and longest publish; back to back, also publishes per second.
func benchmarkPublishOneByOne(b *testing.B, every time.Duration) {
	db := MustOpenDB(b)
	ctx := as(MustCreateUser(b, db, "alice", true))
	MustCreateUser(b, db, "bob", false)
	took := make([]time.Duration, 0, b.N)
	var tick <-chan time.Time
	if every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	b.ResetTimer()
	for b.Loop() {
		if tick != nil {
			<-tick
		}
		start := time.Now()
		if _, err := db.PublishMessage(ctx, &tidings.Publication{Recipients: []string{"bob"}, Text: "benchmark message"}); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	if tick == nil {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(took[len(took)-1].Microseconds()), "max-µs")
}

// BenchmarkPublishDurableTwoNodes is BenchmarkPublishDurable with the
// publishers split over two nodes (two stores, each with its own writer) on
// one PostgreSQL database, each publish going to the same two users, so
// that the nodes' group commits contend for the same inbox rows. It reports
// the writer transactions each message cost.
func BenchmarkPublishDurableTwoNodes(b *testing.B) {
	postgresOnly(b)
	source := freshSource(b)
	nodes := []*sqlstore.DB{mustOpen(b, source), mustOpen(b, source)}
	ctx := as(MustCreateUser(b, nodes[0], "alice", true))
	MustCreateUser(b, nodes[0], "bob", false)
	MustCreateUser(b, nodes[1], "carol", false)
	var next atomic.Int64
	sent := nodes[0].Statements() + nodes[1].Statements()
	b.SetParallelism(32) // 64 publishers on 2 cores, 32 per node
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		node := nodes[next.Add(1)%2]
		for pb.Next() {
			if _, err := node.PublishMessage(ctx, &tidings.Publication{Recipients: []string{"bob", "carol"}, Text: "benchmark message"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
	b.ReportMetric(float64(nodes[0].Statements()+nodes[1].Statements()-sent)/float64(b.N), "statements/publish")
}

// BenchmarkJanitor measures what deleting expired messages costs: each
// iteration expires 20,000 messages (and their events) and sweeps them.
// It reports the cost per message swept and the longest a janitor write
// held the writer, the wait a publish meanwhile may have to add.
func BenchmarkJanitor(b *testing.B) {
	b.Run(dialectName(), func(b *testing.B) {
		const expired = 20000
		clock := newTestClock()
		rec := &recorder{}
		db := MustOpenDB(b, withClock(clock), func(db *sqlstore.DB) { db.Metrics = rec })
		ctx := as(MustCreateUser(b, db, "alice", true))
		MustCreateUser(b, db, "bob", false)
		for b.Loop() {
			b.StopTimer()
			var wg sync.WaitGroup
			for range 32 {
				wg.Go(func() {
					for range expired / 32 {
						if _, err := db.PublishMessage(ctx, &tidings.Publication{Recipients: []string{"bob"}, Text: "soon gone", TTL: time.Minute}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			clock.Advance(2 * time.Minute)
			rec.mu.Lock()
			rec.longest = 0
			rec.mu.Unlock()
			b.StartTimer()
			swept, err := db.DeleteExpired(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if swept.Messages != expired/32*32 {
				b.Fatalf("swept %d messages, want %d", swept.Messages, expired/32*32)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*expired), "µs/message")
		rec.mu.Lock()
		b.ReportMetric(float64(rec.longest.Microseconds())/1000, "ms-longest-write")
		rec.mu.Unlock()
	})
}
