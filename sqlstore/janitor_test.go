package sqlstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidings/tidings"
	"github.com/tidings/tidings/sqlstore"
)

// A message whose event is already gone — the janitor took it by a later
// clock than the reader's — is never delivered blank: it counts as missed.
// Asked through the store, the answer may come from the messages it keeps in
// memory, which learn of the janitor's clock; asked of the database, the
// event's row is deleted behind the store's back.
func TestMessageWithoutItsEventIsMissedNotBlank(t *testing.T) {
	t.Run("janitor", func(t *testing.T) {
		clock := newTestClock()
		db := MustOpenDB(t, withClock(clock))
		admin := MustCreateUser(t, db, "admin", true)
		bob := MustCreateUser(t, db, "bob", false)
		ctx := context.Background()
		start, err := db.FindMessages(ctx, bob.ID, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		publish(t, db, admin, tidings.Publication{Recipients: []string{"bob"}, Text: "its event is gone", TTL: time.Minute})
		publish(t, db, admin, tidings.Publication{Recipients: []string{"bob"}, Text: "whole", TTL: time.Hour})
		later := newTestClock()
		later.now = clock.Now().Add(61 * time.Second)
		db.Now = later.Now
		if _, err := db.DeleteExpired(ctx); err != nil {
			t.Fatal(err)
		}
		db.Now = clock.Now // the reader's clock is behind the janitor's
		for name, find := range map[string]func() (*tidings.MessageBatch, error){
			"store":    func() (*tidings.MessageBatch, error) { return db.FindMessages(ctx, bob.ID, &start.Cursor, 0) },
			"database": func() (*tidings.MessageBatch, error) { return db.FindStoredMessages(ctx, bob.ID, &start.Cursor, 0) },
		} {
			b, err := find()
			if err != nil {
				t.Fatal(err)
			}
			if got := texts(b); len(got) != 1 || got[0] != "whole" || b.Missed != 1 {
				t.Fatalf("%s: got %q missed %d, want [whole] and 1 missed", name, got, b.Missed)
			}
		}
	})
	t.Run("deleted behind the store", func(t *testing.T) {
		db := MustOpenDB(t)
		admin := MustCreateUser(t, db, "admin", true)
		bob := MustCreateUser(t, db, "bob", false)
		ctx := context.Background()
		start, err := db.FindMessages(ctx, bob.ID, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		gone := publish(t, db, admin, tidings.Publication{Recipients: []string{"bob"}, Text: "its event is gone"})
		publish(t, db, admin, tidings.Publication{Recipients: []string{"bob"}, Text: "whole"})
		if _, err := rawDB(t, db).Exec(`DELETE FROM events WHERE id = ?`, gone.Event); err != nil {
			t.Fatal(err)
		}
		b, err := db.FindStoredMessages(ctx, bob.ID, &start.Cursor, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range b.Messages {
			if m.Text == "" || m.CreatedAt.Year() < 2000 || m.Process == "" {
				t.Fatalf("a blank message was delivered: %+v", m)
			}
		}
		if got := texts(b); len(got) != 1 || got[0] != "whole" || b.Missed != 1 {
			t.Fatalf("got %q missed %d, want [whole] and 1 missed", got, b.Missed)
		}
	})
}

// steppingClock moves on by step every time it is read, as real time moves
// between the janitor's writes.
type steppingClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *steppingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now
	c.now = c.now.Add(c.step)
	return now
}

// The janitor deletes messages and events by one clock: it never leaves a
// message behind whose event it deleted.
func TestJanitorNeverLeavesAMessageWithoutItsEvent(t *testing.T) {
	clock := newTestClock()
	db := MustOpenDB(t, withClock(clock))
	admin := MustCreateUser(t, db, "admin", true)
	bob := MustCreateUser(t, db, "bob", false)
	ctx := context.Background()
	for _, ttl := range []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute, time.Hour} {
		publish(t, db, admin, tidings.Publication{Recipients: []string{"bob"}, Text: "ttl " + ttl.String(), TTL: ttl})
	}
	// From now on every read of the clock is a minute later than the one
	// before.
	stepping := &steppingClock{now: clock.Now().Add(90 * time.Second), step: time.Minute}
	db.Now = stepping.Now
	if _, err := db.DeleteExpired(ctx); err != nil {
		t.Fatal(err)
	}

	var orphans int
	if err := rawDB(t, db).QueryRow(`SELECT COUNT(*) FROM messages m LEFT JOIN events e ON e.id = m.event_id WHERE e.id IS NULL`).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Fatalf("the janitor left %d messages without their events", orphans)
	}
	db.Now = clock.Now
	b, err := db.FindMessages(ctx, bob.ID, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range b.Messages {
		if m.Text == "" {
			t.Fatalf("a blank message was delivered: %+v", m)
		}
	}
}

// The janitor sweeps everything expired, however much, in writes of a
// bounded size, so that publishes meanwhile never wait long for the
// writer; what has not expired stays, whole.
func TestJanitorSweepsMuchInSmallWrites(t *testing.T) {
	clock := newTestClock()
	rec := &recorder{}
	db := MustOpenDB(t, withClock(clock), func(db *sqlstore.DB) { db.Metrics = rec })
	admin := MustCreateUser(t, db, "admin", true)
	bob := MustCreateUser(t, db, "bob", false)
	const expiring, staying = 1200, 40
	var wg sync.WaitGroup
	for p := range 8 {
		wg.Go(func() {
			for i := range (expiring + staying) / 8 {
				pub := tidings.Publication{Recipients: []string{"bob"}, Text: "soon gone", TTL: time.Minute}
				if n := p*((expiring+staying)/8) + i; n >= expiring {
					pub.Text, pub.TTL = fmt.Sprintf("stays %d", n-expiring), time.Hour
				}
				if _, err := db.PublishMessage(as(admin), &pub); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	clock.Advance(2 * time.Minute)
	rec.mu.Lock()
	before := len(rec.batches)
	rec.mu.Unlock()
	swept, err := db.DeleteExpired(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if swept.Messages != expiring || swept.Events != expiring {
		t.Errorf("swept %d messages and %d events, want %d of each", swept.Messages, swept.Events, expiring)
	}
	rec.mu.Lock()
	writes := rec.batches[before:]
	rec.mu.Unlock()
	if len(writes) < 3 {
		t.Errorf("%d messages were swept in %d writes: a write that long keeps publishes waiting", expiring, len(writes))
	}
	b, err := db.FindMessages(context.Background(), bob.ID, &tidings.Cursor{Epoch: db.Epoch(), UserID: bob.ID}, 0)
	if err != nil {
		t.Fatal(err)
	}
	stays := map[string]bool{}
	for _, m := range b.Messages {
		if !strings.HasPrefix(m.Text, "stays ") {
			t.Fatalf("bob still reads %q after the janitor swept", m.Text)
		}
		stays[m.Text] = true
	}
	if len(stays) != staying {
		t.Errorf("bob reads %d of the %d messages that had not expired", len(stays), staying)
	}
}

// An idle server costs the database nothing for its upkeep: the janitor
// leaves out rounds that can find nothing (no commit since the last, and
// nothing it knows of expiring yet), and the scheduler, which hears of
// every change of the schedule, sleeps until what is due. A commit, or an
// expiry coming due, brings the janitor back.
func TestAnIdleServersUpkeepCostsTheDatabaseNothing(t *testing.T) {
	clock := newTestClock()
	rec := &recorder{}
	db := MustOpenDB(t, withClock(clock), func(db *sqlstore.DB) { db.Metrics = rec })
	admin := MustCreateUser(t, db, "admin", true)
	bob := MustCreateUser(t, db, "bob", false)
	upkeep := func() int64 { _, u := db.StatementCounts(); return u }
	rounds := func() int { rec.mu.Lock(); defer rec.mu.Unlock(); return len(rec.janitor) }
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() { db.RunJanitor(ctx, time.Millisecond) })
	wg.Go(func() { db.RunScheduler(ctx) })
	// still waits until the upkeep count stands for 200 janitor ticks, and
	// returns what it went up by meanwhile.
	still := func(what string) int64 {
		t.Helper()
		from, deadline := upkeep(), time.Now().Add(10*time.Second)
		for last := from; ; {
			time.Sleep(200 * time.Millisecond)
			now := upkeep()
			if now == last {
				return now - from
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the upkeep kept sending statements for 10 s", what)
			}
			last = now
		}
	}
	still("at the start")
	before, ran := upkeep(), rounds()
	time.Sleep(300 * time.Millisecond) // 300 janitor ticks of an idle server
	if n := upkeep() - before; n != 0 {
		t.Fatalf("an idle server's janitor and scheduler sent %d statements in 300 ticks, want 0", n)
	}
	if rounds() != ran {
		t.Fatalf("the janitor ran %d rounds on an idle server", rounds()-ran)
	}

	ran = rounds()
	publish(t, db, admin, tidings.Publication{Recipients: []string{"bob"}, Text: "short-lived", TTL: time.Minute})
	still("after a publish")
	if rounds() == ran {
		t.Fatal("the janitor did not look again after a commit")
	}
	ran = rounds()
	time.Sleep(100 * time.Millisecond)
	if rounds() != ran {
		t.Fatalf("the janitor ran %d rounds after one that found nothing, with nothing committed", rounds()-ran)
	}
	clock.Advance(2 * time.Minute)
	still("after the message expired")
	if rounds() == ran {
		t.Fatal("the janitor did not look again when the message expired")
	}
	ctxBob := as(bob)
	b, err := db.FindStoredMessages(ctxBob, bob.ID, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Messages) != 0 {
		t.Fatalf("bob still has %d messages", len(b.Messages))
	}
	var left int
	if err := rawDB(t, db).QueryRow(`SELECT COUNT(*) FROM messages`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d expired messages left in the database", left)
	}
}
