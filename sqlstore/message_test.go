package sqlstore_test

import (
	"context"
	"fmt"
	"strings"
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

// On PostgreSQL a publish that only reads before its batch's last
// statement needs no transaction of its own: the statement commits by
// itself. A lone publish to one person is then two statements, the
// recipient's lookup and the batch (BEGIN and COMMIT were two more), and
// its messages arrive as ever: each once, in order.
func TestALonePublishOnPostgresIsTwoStatements(t *testing.T) {
	postgresOnly(t)
	db := MustOpenDB(t)
	alice := MustCreateUser(t, db, "alice", true)
	bob := MustCreateUser(t, db, "bob", false)
	publish := func(text string) {
		t.Helper()
		if _, err := db.PublishMessage(as(alice), &tidings.Publication{Recipients: []string{"bob"}, Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	publish("m0") // takes event ids from the sequence ahead, in a transaction
	for i := 1; i <= 3; i++ {
		before := db.Statements()
		publish(fmt.Sprintf("m%d", i))
		if sent := db.Statements() - before; sent != 2 {
			t.Errorf("publish %d sent %d statements, want 2", i, sent)
		}
	}
	batch, err := db.FindMessages(context.Background(), bob.ID, &tidings.Cursor{Epoch: db.Epoch(), UserID: bob.ID}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range batch.Messages {
		texts = append(texts, m.Text)
	}
	if got := strings.Join(texts, ","); got != "m0,m1,m2,m3" {
		t.Fatalf("bob has %q, want m0,m1,m2,m3", got)
	}
}
