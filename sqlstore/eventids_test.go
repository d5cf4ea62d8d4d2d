package sqlstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/tidings/tidings"
)

// Two writers on one database, as when another process writes to a SQLite
// file while a server runs, or two nodes share PostgreSQL: however they
// take turns, each event gets an id of its own, and every message shows
// the event it was published with. On SQLite each writer counts ids in
// memory, so every turn here makes one of them run its batch again.
func TestEventIDsOfTwoWriters(t *testing.T) {
	source := freshSource(t)
	a := mustOpen(t, source)
	alice := MustCreateUser(t, a, "alice", true)
	bob := MustCreateUser(t, a, "bob", false)
	b := mustOpen(t, source)
	ctx := context.Background()
	start, err := a.FindStoredMessages(ctx, bob.ID, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var events []int64
	for i := range 6 {
		w := a
		if i%2 == 1 {
			w = b
		}
		res, err := w.PublishMessage(as(alice), &tidings.Publication{Recipients: []string{"bob"}, Text: fmt.Sprintf("m%d", i)})
		if err != nil {
			t.Fatalf("publish m%d: %v", i, err)
		}
		for _, e := range events {
			if e == res.Event {
				t.Fatalf("m%d got event %d, which m%d has already", i, res.Event, i)
			}
		}
		events = append(events, res.Event)
	}
	got, err := b.FindStoredMessages(ctx, bob.ID, &start.Cursor, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Messages) != len(events) {
		t.Fatalf("bob has %d messages, want %d", len(got.Messages), len(events))
	}
	for i, m := range got.Messages {
		if want := fmt.Sprintf("m%d", i); m.Text != want || m.Event != events[i] {
			t.Errorf("message %d: %q of event %d, want %q of event %d", i, m.Text, m.Event, want, events[i])
		}
	}
}
