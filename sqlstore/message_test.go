package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/tidings/tidings"
	"github.com/tidings/tidings/sqlstore"
)

func publish(t *testing.T, db *sqlstore.DB, from *tidings.User, pub tidings.Publication) *tidings.PublishResult {
	t.Helper()
	res, err := db.PublishMessage(as(from), &pub)
	if err != nil {
		t.Fatalf("publish %q: %v", pub.Text, err)
	}
	return res
}

func texts(b *tidings.MessageBatch) []string {
	out := []string{}
	for _, m := range b.Messages {
		out = append(out, m.Text)
	}
	return out
}

func TestPublishAndFind(t *testing.T) {
	db := MustOpenDB(t)
	alice := MustCreateUser(t, db, "alice", false)
	bob := MustCreateUser(t, db, "bob", false)
	MustCreateProject(t, db, alice, "Office move", bob)
	ctx := context.Background()

	start, err := db.FindMessages(ctx, bob.ID, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	// bob was told he was added to the project.
	if got := texts(start); len(got) != 1 || got[0] != "alice Name added you to Office move" {
		t.Fatalf("messages at start = %q", got)
	}
	publish(t, db, alice, tidings.Publication{Recipients: []string{"bob"}, Text: "one"})
	publish(t, db, alice, tidings.Publication{Recipients: []string{"bob"}, Text: "two"})
	b, err := db.FindMessages(ctx, bob.ID, &start.Cursor, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(b); len(got) != 2 || got[0] != "one" || got[1] != "two" {
		t.Fatalf("messages = %q", got)
	}
	if b.Cursor != b.Messages[1].Cursor || b.Missed != 0 {
		t.Fatalf("cursor %v missed %d", b.Cursor, b.Missed)
	}
	again, err := db.FindMessages(ctx, bob.ID, &b.Cursor, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Messages) != 0 || again.Cursor != b.Cursor {
		t.Fatalf("after the last cursor: %q cursor %v", texts(again), again.Cursor)
	}
	// alice received nothing: actors are not told of their own changes.
	ab, err := db.FindMessages(ctx, alice.ID, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ab.Messages) != 0 {
		t.Fatalf("alice got %q", texts(ab))
	}
}

func TestExpiredMessagesAreMissedAndSwept(t *testing.T) {
	clock := newTestClock()
	db := MustOpenDB(t, withClock(clock))
	admin := MustCreateUser(t, db, "admin", true)
	bob := MustCreateUser(t, db, "bob", false)
	ctx := context.Background()
	start, err := db.FindMessages(ctx, bob.ID, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, db, admin, tidings.Publication{Recipients: []string{"bob"}, Text: "short", TTL: time.Minute})
	publish(t, db, admin, tidings.Publication{Recipients: []string{"bob"}, Text: "long", TTL: time.Hour})
	clock.Advance(2 * time.Minute)
	b, err := db.FindMessages(ctx, bob.ID, &start.Cursor, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(b); len(got) != 1 || got[0] != "long" || b.Missed != 1 {
		t.Fatalf("after expiry: %q missed %d", got, b.Missed)
	}
	swept, err := db.DeleteExpired(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if swept.Messages != 1 {
		t.Fatalf("janitor deleted %d messages, want 1", swept.Messages)
	}
	b, err = db.FindMessages(ctx, bob.ID, &start.Cursor, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(b); len(got) != 1 || b.Missed != 1 {
		t.Fatalf("after the janitor: %q missed %d", got, b.Missed)
	}
}

func TestCursorFromAnotherDatabaseIsRefused(t *testing.T) {
	db1 := MustOpenDB(t)
	db2 := MustOpenDB(t)
	u1 := MustCreateUser(t, db1, "bob", false)
	MustCreateUser(t, db2, "bob", false)
	c, err := db1.CurrentCursor(context.Background(), u1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db2.FindMessages(context.Background(), u1.ID, &c, 0); code(err) != tidings.ECURSOR {
		t.Fatalf("err = %v, want invalid_cursor", err)
	}
}
