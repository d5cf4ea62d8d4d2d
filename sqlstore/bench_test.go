package sqlstore_test

import (
	"testing"

	"github.com/tidings/tidings"
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
}

// BenchmarkPublishDurableSerial is one publisher waiting for each commit:
// the cost of a commit without group commit's help.
func BenchmarkPublishDurableSerial(b *testing.B) { b.Run(dialectName(), benchmarkPublishDurableSerial) }

func benchmarkPublishDurableSerial(b *testing.B) {
	db := MustOpenDB(b)
	ctx := as(MustCreateUser(b, db, "alice", true))
	MustCreateUser(b, db, "bob", false)
	b.ResetTimer()
	for b.Loop() {
		if _, err := db.PublishMessage(ctx, &tidings.Publication{Recipients: []string{"bob"}, Text: "benchmark message"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
}
