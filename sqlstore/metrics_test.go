package sqlstore_test

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tidings/tidings"
	"github.com/tidings/tidings/sqlstore"
)

// recorder keeps what the store told its Metrics.
type recorder struct {
	mu        sync.Mutex
	batches   []int
	longest   time.Duration // the longest batch
	publishes int
	janitor   []error
	fired     int
	errors    map[string]int
}

func (r *recorder) BatchCommitted(writes int, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, writes)
	r.longest = max(r.longest, took)
}

func (r *recorder) PublishCommitted(time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.publishes++
}

func (r *recorder) JanitorRun(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.janitor = append(r.janitor, err)
}

func (r *recorder) SchedulerRun(fired int, _ error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fired += fired
}

func (r *recorder) DatabaseError(kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.errors == nil {
		r.errors = map[string]int{}
	}
	r.errors[kind]++
}

func TestMetricsSeeCommitsAndPublishes(t *testing.T) {
	rec := &recorder{}
	db := MustOpenDB(t, func(db *sqlstore.DB) { db.Metrics = rec })
	admin := MustCreateUser(t, db, "admin", true)
	MustCreateUser(t, db, "bob", false)

	// Three publishes that wait for the writer share one commit.
	release := db.HoldWriter()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { publish(t, db, admin, tidings.Publication{Recipients: []string{"bob"}, Text: "hello"}) })
	}
	for deadline := time.Now().Add(10 * time.Second); db.QueuedWrites() < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued, want 3", db.QueuedWrites())
		}
	}
	rec.mu.Lock()
	before := len(rec.batches)
	rec.mu.Unlock()
	release()
	wg.Wait()

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.publishes != 3 {
		t.Errorf("%d publishes counted, want 3: creating users stores no messages", rec.publishes)
	}
	// The held write commits on its own, then the three together.
	if got := rec.batches[before:]; len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Errorf("batches %v after the hold, want [1 3]", got)
	}
	if len(rec.errors) != 0 {
		t.Errorf("database errors %v, want none", rec.errors)
	}
}

func TestMetricsCountDatabaseErrors(t *testing.T) {
	rec := &recorder{}
	db := MustOpenDB(t, func(db *sqlstore.DB) { db.Metrics = rec })
	for _, err := range []error{
		&pgconn.PgError{Code: "40001"},
		&pgconn.PgError{Code: "57P01"},
		&pgconn.PgError{Code: "XX000"},
		&pgconn.PgError{Code: "23505"}, // a conflict is an answer, not a failure
		context.Canceled,
	} {
		db.Translate(err)
	}
	db.Translate(db.Translate(&pgconn.PgError{Code: "40P01"})) // counted once
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if want := map[string]int{"retry": 2, "unavailable": 1, "other": 1}; !maps.Equal(rec.errors, want) {
		t.Errorf("database errors %v, want %v", rec.errors, want)
	}
}

func TestMetricsSeeJanitorAndSchedulerRuns(t *testing.T) {
	rec := &recorder{}
	db := MustOpenDB(t, func(db *sqlstore.DB) { db.Metrics = rec })
	admin := MustCreateUser(t, db, "admin", true)
	MustCreateUser(t, db, "bob", false)
	publish(t, db, admin, tidings.Publication{Recipients: []string{"bob"}, Text: "soon",
		ValidFrom: time.Now().Add(10 * time.Millisecond)})

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { db.RunJanitor(ctx, time.Millisecond) })
	wg.Go(func() { db.RunScheduler(ctx) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec.mu.Lock()
		done := len(rec.janitor) > 0 && rec.fired == 1
		rec.mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no janitor run or the scheduled message not fired: %+v", rec)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	if err := rec.janitor[0]; err != nil {
		t.Errorf("janitor run: %v", err)
	}
}
