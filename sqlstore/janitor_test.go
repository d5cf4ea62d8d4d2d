package sqlstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tidings/tidings"
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
