package sqlstore_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
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

// everything is the texts of all of u's messages, in order, as u reads
// them from the start.
func everything(tb testing.TB, db *sqlstore.DB, u *tidings.User) string {
	tb.Helper()
	b, err := db.FindMessages(context.Background(), u.ID, &tidings.Cursor{Epoch: db.Epoch(), UserID: u.ID}, 0)
	if err != nil {
		tb.Fatal(err)
	}
	return strings.Join(texts(b), ",")
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
// its messages arrive as ever: each once, in order. One that takes event
// ids from the sequence takes them outside a transaction too: a third
// statement, and still no BEGIN or COMMIT.
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
	publish("m0") // takes event ids from the sequence ahead, and prepares
	for i := 1; i <= 3; i++ {
		before := db.Statements()
		publish(fmt.Sprintf("m%d", i))
		if sent := db.Statements() - before; sent != 2 {
			t.Errorf("publish %d sent %d statements, want 2", i, sent)
		}
	}
	if got := everything(t, db, bob); got != "m0,m1,m2,m3" {
		t.Fatalf("bob has %q, want m0,m1,m2,m3", got)
	}
	// The ids taken ahead run out within as many publishes again as were
	// taken (32, and a few): none of these publishes is more than three.
	var want []string
	for i := 4; i < 50; i++ {
		before := db.Statements()
		publish(fmt.Sprintf("m%d", i))
		if sent := db.Statements() - before; sent > 3 {
			t.Errorf("publish %d sent %d statements, want 2, or 3 to take event ids", i, sent)
		}
		want = append(want, fmt.Sprintf("m%d", i))
	}
	if got := everything(t, db, bob); got != "m0,m1,m2,m3,"+strings.Join(want, ",") {
		t.Fatalf("bob has %q", got)
	}
}

// A batch of publishes whose last statement ran by itself, and whose
// answer was lost with the connection, may have committed: the publisher
// is told the error, and this node's inboxes in memory forget the users,
// so that a reader here sees exactly what the database holds — the
// message, if it committed — is woken to read it, and the next publish
// goes on from there, nothing repeated.
func TestAPublishWhoseAnswerIsLostIsInDoubt(t *testing.T) {
	postgresOnly(t)
	cut := &answerCutter{}
	rec := &wakeRecorder{from: map[int64]tidings.Cursor{}, woken: map[int64][]string{}}
	db := MustOpenDB(t, sqlstore.WithDial(cut.dial), func(db *sqlstore.DB) { db.Notifier = rec })
	rec.db = db
	listenFor(t, db) // as serve does: the node keeps its commits in memory
	alice := MustCreateUser(t, db, "alice", true)
	bob := MustCreateUser(t, db, "bob", false)
	send := func(text string) error {
		_, err := db.PublishMessage(as(alice), &tidings.Publication{Recipients: []string{"bob"}, Text: text})
		return err
	}
	// The first publish prepares the writer's statements after it is
	// answered; the second, once it is answered, finds them all prepared.
	for _, text := range []string{"m1", "m2"} {
		if err := send(text); err != nil {
			t.Fatal(err)
		}
	}
	memory := db.InboxReads()
	if got := everything(t, db, bob); got != "m1,m2" {
		t.Fatalf("bob has %q, want m1,m2", got)
	}
	if db.InboxReads() == memory {
		t.Fatal("bob's messages were not read from memory: the test would show nothing")
	}

	rec.watch(t, bob)
	rec.mu.Lock()
	delete(rec.woken, bob.ID)
	rec.mu.Unlock()

	// A lone publish to a recipient looked up before, while the node
	// listens, is one round trip: the batch, whose answer is cut off.
	cut.arm(1)
	if err := send("m3"); err == nil {
		t.Fatal("the publish whose answer was lost succeeded")
	}
	raw, _, err := sqlstore.OpenRaw(db.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var stored int
	if err := raw.QueryRow(`SELECT COUNT(*) FROM messages WHERE user_id = $1`, bob.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	want := map[int]string{2: "m1,m2", 3: "m1,m2,m3"}[stored]
	if want == "" {
		t.Fatalf("the database holds %d messages for bob, want 2 or 3", stored)
	}
	t.Logf("the lost batch committed: %v", stored == 3)
	if stored == 3 {
		// Its NOTIFY reached the other nodes; this one skips its own, and
		// wakes bob's clients itself.
		waitFor(t, "bob to be woken", func() bool { _, ok := rec.wokenFor(bob.ID); return ok })
		if got, _ := rec.wokenFor(bob.ID); strings.Join(got, ",") != "m3" {
			t.Fatalf("woken, bob read %q, want m3", got)
		}
	}
	if got := everything(t, db, bob); got != want {
		t.Fatalf("after the lost answer bob reads %q here, the database holds %q", got, want)
	}
	if err := send("m4"); err != nil {
		t.Fatal(err)
	}
	if got := everything(t, db, bob); got != want+",m4" {
		t.Fatalf("bob reads %q, want %q", got, want+",m4")
	}
}

// answerCutter dials PostgreSQL connections that, once armed, let a number
// of requests through and then lose the answer to the last of them: it
// reaches PostgreSQL, which runs it, and the connection breaks before its
// answer is read.
type answerCutter struct {
	mu   sync.Mutex
	left int // requests still to let through; 0: not armed
}

func (c *answerCutter) arm(requests int) {
	c.mu.Lock()
	c.left = requests
	c.mu.Unlock()
}

func (c *answerCutter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &cutConn{Conn: conn, c: c}, nil
}

type cutConn struct {
	net.Conn
	c    *answerCutter
	deaf atomic.Bool
}

// sync is the protocol's Sync message, which ends each request pgx sends.
var syncMessage = []byte{'S', 0, 0, 0, 4}

func (cc *cutConn) Write(p []byte) (int, error) {
	n, err := cc.Conn.Write(p)
	if bytes.HasSuffix(p, syncMessage) {
		cc.c.mu.Lock()
		if cc.c.left > 0 {
			cc.c.left--
			if cc.c.left == 0 {
				cc.deaf.Store(true)
			}
		}
		cc.c.mu.Unlock()
	}
	return n, err
}

func (cc *cutConn) Read(p []byte) (int, error) {
	if cc.deaf.Load() {
		time.Sleep(100 * time.Millisecond) // PostgreSQL runs the request meanwhile
		cc.Conn.Close()
		return 0, io.ErrUnexpectedEOF
	}
	return cc.Conn.Read(p)
}

// A publish follows its recipients' changes at once, though the writer
// keeps its lookups of them from one publish to the next: their settings,
// a project they mute, a user made after a publish found the login unknown,
// a user deleted.
func TestPublishesFollowTheirRecipientsChanges(t *testing.T) {
	db := MustOpenDB(t)
	admin := MustCreateUser(t, db, "admin", true)
	bob := MustCreateUser(t, db, "bob", false)
	project := MustCreateProject(t, db, admin, "Office move", bob)
	stored := func(pub tidings.Publication) int {
		t.Helper()
		return publish(t, db, admin, pub).Recipients
	}
	toBob := tidings.Publication{Recipients: []string{"bob"}, Text: "hello"}
	aboutProject := tidings.Publication{Recipients: []string{"bob"}, ProjectID: project.ID, Text: "about the move"}
	if n, m := stored(toBob), stored(aboutProject); n != 1 || m != 1 {
		t.Fatalf("before any change: stored for %d and %d recipients, want 1 and 1", n, m)
	}
	set := func(upd tidings.SettingsUpdate) {
		t.Helper()
		if _, err := db.UpdateSettings(as(bob), upd); err != nil {
			t.Fatal(err)
		}
	}
	off, on := false, true
	set(tidings.SettingsUpdate{Messages: &off})
	if n := stored(toBob); n != 0 {
		t.Errorf("bob turned messages off, a publish stored %d", n)
	}
	set(tidings.SettingsUpdate{Messages: &on})
	if n := stored(toBob); n != 1 {
		t.Errorf("bob turned messages on again, a publish stored %d", n)
	}
	set(tidings.SettingsUpdate{MutedProjects: &[]int64{project.ID}})
	if n, m := stored(aboutProject), stored(toBob); n != 0 || m != 1 {
		t.Errorf("bob muted the project: stored %d about it and %d not, want 0 and 1", n, m)
	}

	unknown := func(login string) {
		t.Helper()
		_, err := db.PublishMessage(as(admin), &tidings.Publication{Recipients: []string{login}, Text: "anyone there?"})
		if tidings.ErrorCode(err) != tidings.EINVALID {
			t.Fatalf("publish to %s: %v, want an unknown recipient", login, err)
		}
	}
	unknown("carol")
	MustCreateUser(t, db, "carol", false)
	if n := stored(tidings.Publication{Recipients: []string{"carol"}, Text: "welcome"}); n != 1 {
		t.Errorf("carol was made after a publish to her failed, the next stored %d", n)
	}
	if err := db.DeleteUser(tidings.NewSystemContext(context.Background()), "carol"); err != nil {
		t.Fatal(err)
	}
	unknown("carol")
	if got := everything(t, db, bob); got != "admin Name added you to Office move,hello,about the move,hello,hello" {
		t.Errorf("bob has %q", got)
	}
}

// A user that another process makes (tidings user add, while the server
// runs) can be sent messages at once, even after publishes to the login
// failed in batches with others that committed.
func TestAUserMadeByAnotherProcessIsFoundAtOnce(t *testing.T) {
	source := freshSource(t)
	db := mustOpen(t, source)
	admin := MustCreateUser(t, db, "admin", true)
	MustCreateUser(t, db, "bob", false)
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			for range 5 {
				to := []string{"bob", "carol"}[i%2] // carol does not exist yet
				db.PublishMessage(as(admin), &tidings.Publication{Recipients: []string{to}, Text: "hello"})
			}
		})
	}
	wg.Wait()
	carol := MustCreateUser(t, mustOpen(t, source), "carol", false)
	publish(t, db, admin, tidings.Publication{Recipients: []string{"carol"}, Text: "welcome"})
	if got := everything(t, db, carol); got != "welcome" {
		t.Errorf("carol has %q", got)
	}
}

// A recipient that another process changes (a second server on the same
// SQLite file, say) is seen as changed by the next publish, though the
// writer keeps its lookups of recipients from one publish to the next:
// their settings, and their deletion.
func TestRecipientsChangedByAnotherProcessAreSeenAtOnce(t *testing.T) {
	source := freshSource(t)
	db := mustOpen(t, source)
	admin := MustCreateUser(t, db, "admin", true)
	bob := MustCreateUser(t, db, "bob", false)
	toBob := tidings.Publication{Recipients: []string{"bob"}, Text: "hello"}
	if n := publish(t, db, admin, toBob).Recipients; n != 1 {
		t.Fatalf("before any change: stored for %d recipients, want 1", n)
	}
	other := mustOpen(t, source)
	off := false
	if _, err := other.UpdateSettings(as(bob), tidings.SettingsUpdate{Messages: &off}); err != nil {
		t.Fatal(err)
	}
	if n := publish(t, db, admin, toBob).Recipients; n != 0 {
		t.Errorf("bob turned messages off through another process, a publish stored %d", n)
	}
	if err := other.DeleteUser(tidings.NewSystemContext(context.Background()), "bob"); err != nil {
		t.Fatal(err)
	}
	_, err := db.PublishMessage(as(admin), &toBob)
	if tidings.ErrorCode(err) != tidings.EINVALID {
		t.Errorf("another process deleted bob, a publish to him: %v, want an unknown recipient", err)
	}
}
