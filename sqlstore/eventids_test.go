package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/tidings/tidings"
	"github.com/tidings/tidings/sqlstore"
)

// An event id is never given again, even once the newest events are
// deleted and the store opens the database afresh: max(id) no longer
// knows them, and on SQLite (schema 4) meta's event_ids does. More events
// than one raise of it covers come first.
func TestEventIDsAreNeverReusedAfterARestart(t *testing.T) {
	source := freshSource(t)
	clock := newTestClock()
	first := mustOpen(t, source, withClock(clock)) // closed below, before the store opens again
	alice := MustCreateUser(t, first, "alice", true)
	MustCreateUser(t, first, "bob", false)
	var last int64
	for range 1100 {
		res := publish(t, first, alice, tidings.Publication{Recipients: []string{"bob"}, Text: "soon gone", TTL: time.Second})
		last = max(last, res.Event)
	}
	clock.Advance(time.Hour)
	swept, err := first.DeleteExpired(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if swept.Events < 1100 {
		t.Fatalf("the janitor deleted %d events, want the 1100 published", swept.Events)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	again := mustOpen(t, source, withClock(clock))
	res := publish(t, again, alice, tidings.Publication{Recipients: []string{"bob"}, Text: "new"})
	if res.Event <= last {
		t.Fatalf("after a restart a new event got id %d; %d was given before", res.Event, last)
	}
	// On SQLite a clean stop recorded the last id given: the count goes on
	// from it, skipping none.
	if !onPostgres() && res.Event != last+1 {
		t.Errorf("after a clean restart the new event got id %d, want %d", res.Event, last+1)
	}
}

// A writer that stops without closing the store (kill -9) gives no id
// again either: it recorded ids ahead of those it gave.
func TestEventIDsAreNeverReusedAfterACrash(t *testing.T) {
	sqliteOnly(t) // a PostgreSQL sequence never goes back
	source := freshSource(t)
	clock := newTestClock()
	crashed := mustOpen(t, source, withClock(clock)) // closed below, before the store opens again
	alice := MustCreateUser(t, crashed, "alice", true)
	MustCreateUser(t, crashed, "bob", false)
	last := publish(t, crashed, alice, tidings.Publication{Recipients: []string{"bob"}, Text: "soon gone", TTL: time.Second}).Event
	clock.Advance(time.Hour)
	if _, err := crashed.DeleteExpired(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := sqlstore.Abandon(crashed); err != nil { // as if the process died
		t.Fatal(err)
	}

	again := mustOpen(t, source, withClock(clock))
	if res := publish(t, again, alice, tidings.Publication{Recipients: []string{"bob"}, Text: "new"}); res.Event <= last {
		t.Fatalf("after a crash a new event got id %d; %d was given before", res.Event, last)
	}
}

// A second writer on the database (another process on the SQLite file,
// another node on PostgreSQL) gives ids and deletes its events: the first
// writer, counting on, gives none of them again.
func TestEventIDsAreNeverReusedAfterAnotherWriterDeletedItsEvents(t *testing.T) {
	source := freshSource(t)
	clock := newTestClock()
	a := mustOpen(t, source, withClock(clock))
	alice := MustCreateUser(t, a, "alice", true)
	MustCreateUser(t, a, "bob", false)
	publish(t, a, alice, tidings.Publication{Recipients: []string{"bob"}, Text: "kept", TTL: time.Hour})
	b := mustOpen(t, source, withClock(clock))
	gone := publish(t, b, alice, tidings.Publication{Recipients: []string{"bob"}, Text: "soon gone", TTL: time.Second})
	clock.Advance(time.Minute)
	if swept, err := b.DeleteExpired(context.Background()); err != nil || swept.Events != 1 {
		t.Fatalf("the janitor deleted %d events (%v), want 1", swept.Events, err)
	}
	for range 5000 {
		res := publish(t, a, alice, tidings.Publication{Recipients: []string{"bob"}, Text: "next", TTL: time.Hour})
		if res.Event == gone.Event {
			t.Fatalf("event id %d, deleted by the other writer, was given again", gone.Event)
		}
		if res.Event > gone.Event {
			return
		}
	}
	t.Fatalf("5000 events later the writer's ids are still below %d", gone.Event)
}

// Schema 4 takes AUTOINCREMENT off SQLite's events and keeps what it
// remembered: the newest events deleted under schema 3, a new one after
// the migration gets a larger id.
func TestMigrationToSchema4KeepsTheEventIDsGiven(t *testing.T) {
	sqliteOnly(t)
	source := freshSource(t)
	clock := newTestClock()
	old := mustOpen(t, source, withClock(clock), func(db *sqlstore.DB) { sqlstore.SetMaxVersion(db, 3) }) // closed below, before the store opens again
	alice := MustCreateUser(t, old, "alice", true)
	bob := MustCreateUser(t, old, "bob", false)
	kept := publish(t, old, alice, tidings.Publication{Recipients: []string{"bob"}, Text: "kept", TTL: 24 * time.Hour})
	var last int64
	for range 3 {
		last = publish(t, old, alice, tidings.Publication{Recipients: []string{"bob"}, Text: "soon gone", TTL: time.Second}).Event
	}
	clock.Advance(time.Hour)
	if _, err := old.DeleteExpired(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	raw := openRaw(t, source)
	var seq, maxID int64
	if err := raw.QueryRow(`SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'events'), (SELECT MAX(id) FROM events)`).Scan(&seq, &maxID); err != nil {
		t.Fatal(err)
	}
	if seq != last || maxID != kept.Event {
		t.Fatalf("under schema 3: sqlite_sequence %d, MAX(id) %d; want %d and %d", seq, maxID, last, kept.Event)
	}
	raw.Close()

	db := mustOpen(t, source, withClock(clock))
	raw = openRaw(t, source)
	var autoincrement int
	if err := raw.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name = 'events' AND sql LIKE '%AUTOINCREMENT%'`).Scan(&autoincrement); err != nil || autoincrement != 0 {
		t.Fatalf("events keep AUTOINCREMENT (%d, %v)", autoincrement, err)
	}
	raw.Close()
	res := publish(t, db, alice, tidings.Publication{Recipients: []string{"bob"}, Text: "after"})
	if res.Event <= last {
		t.Fatalf("after the migration a new event got id %d; %d was given before", res.Event, last)
	}
	got, err := db.FindStoredMessages(context.Background(), bob.ID, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if texts := texts(got); len(texts) != 2 || texts[0] != "kept" || texts[1] != "after" {
		t.Fatalf("bob's messages after the migration: %q, want kept and after", texts)
	}
}
