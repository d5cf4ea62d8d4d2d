package sqlstore_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tidings/tidings"
	"github.com/tidings/tidings/sqlstore"
)

// listenFor makes db keep the messages it commits in memory on PostgreSQL
// too, as serve does: a Listener naming the store tells it of the other
// nodes' commits. On SQLite it does nothing.
func listenFor(tb testing.TB, db *sqlstore.DB) (stop func()) {
	tb.Helper()
	if !db.Postgres() {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	connected := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	l := &sqlstore.Listener{URL: db.Path, Node: db.Node, Store: db,
		Connected: func(up bool) {
			if up {
				once.Do(func() { close(connected) })
			}
		}}
	wg.Go(func() { l.Run(ctx) })
	stop = func() { cancel(); wg.Wait() }
	tb.Cleanup(stop)
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		tb.Fatal("the listener did not connect")
	}
	return stop
}

// sameBatch compares two answers to the same read: the messages (every
// field a client sees), the cursor, missed and more.
func sameBatch(t *testing.T, what string, got, want *tidings.MessageBatch) {
	t.Helper()
	enc := func(b *tidings.MessageBatch) []string {
		var out []string
		for _, m := range b.Messages {
			j, err := m.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(j))
		}
		return out
	}
	if g, w := enc(got), enc(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("%s: the messages differ:\n got %q\nwant %q", what, g, w)
	}
	if got.Cursor != want.Cursor || got.Missed != want.Missed || got.More != want.More {
		t.Fatalf("%s: got cursor %v missed %d more %v, want cursor %v missed %d more %v",
			what, got.Cursor, got.Missed, got.More, want.Cursor, want.Missed, want.More)
	}
}

// Many publishers write to several users at once while each user's reader
// follows its cursor through the store: every reader gets every message of
// theirs exactly once, in order, and nobody else's. Afterwards, the store's
// answer from every cursor is the database's, message for message: the
// answers kept in memory are the database's answers.
func TestInboxesLoseNothingUnderConcurrentPublishers(t *testing.T) {
	clock := newTestClock()
	feed := &userFeed{}
	db := MustOpenDB(t, withClock(clock), func(db *sqlstore.DB) { db.Notifier = feed })
	listenFor(t, db)
	admin := MustCreateUser(t, db, "admin", true)
	const nUsers, nPublishers, perPublisher = 4, 8, 40
	users := make([]*tidings.User, nUsers)
	starts := make([]tidings.Cursor, nUsers)
	ctx := context.Background()
	for i := range users {
		users[i] = MustCreateUser(t, db, fmt.Sprintf("user%d", i), false)
		b, err := db.FindMessages(ctx, users[i].ID, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		starts[i] = b.Cursor
	}
	// Publisher p sends its k-th message to the users whose bit is set in
	// p+k (never none), so that batches mix users and sizes.
	want := make([]map[string]bool, nUsers)
	for i := range want {
		want[i] = map[string]bool{}
	}
	var pubs []tidings.Publication
	for p := range nPublishers {
		for k := range perPublisher {
			mask := (p+k)%(1<<nUsers-1) + 1
			pub := tidings.Publication{Text: fmt.Sprintf("p%d-%d", p, k)}
			for i := range users {
				if mask&(1<<i) != 0 {
					pub.Recipients = append(pub.Recipients, users[i].Login)
					want[i][pub.Text] = true
				}
			}
			pubs = append(pubs, pub)
		}
	}

	var wg sync.WaitGroup
	for p := range nPublishers {
		wg.Go(func() {
			for _, pub := range pubs[p*perPublisher : (p+1)*perPublisher] {
				if _, err := db.PublishMessage(as(admin), &pub); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	got := make([][]*tidings.Message, nUsers)
	for i := range users {
		woken := feed.watch(users[i].ID)
		wg.Go(func() {
			cursor := starts[i]
			for len(got[i]) < len(want[i]) {
				b, err := db.FindMessages(ctx, users[i].ID, &cursor, 7) // small batches: more reads
				if err != nil {
					t.Error(err)
					return
				}
				if b.Missed != 0 {
					t.Errorf("user%d: %d missed, though nothing expired", i, b.Missed)
					return
				}
				got[i] = append(got[i], b.Messages...)
				cursor = b.Cursor
				if t.Failed() {
					return
				}
				if len(b.Messages) == 0 {
					<-woken // as a held poll waits: subscribed before the read
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, list := range got {
		seen := map[string]bool{}
		for k, m := range list {
			if m.Cursor.UserID != users[i].ID || m.Cursor.Seq != starts[i].Seq+int64(k)+1 {
				t.Fatalf("user%d: message %d has cursor %+v, want seq %d of user %d", i, k, m.Cursor, starts[i].Seq+int64(k)+1, users[i].ID)
			}
			if seen[m.Text] {
				t.Fatalf("user%d: %q came twice", i, m.Text)
			}
			if !want[i][m.Text] {
				t.Fatalf("user%d: %q was not sent to them", i, m.Text)
			}
			seen[m.Text] = true
		}
		if len(seen) != len(want[i]) {
			t.Fatalf("user%d: got %d messages, want %d", i, len(seen), len(want[i]))
		}
		// Every cursor, several batch sizes: memory and database agree.
		for seq := starts[i].Seq; seq <= starts[i].Seq+int64(len(list)); seq++ {
			limits := []int{1, 5}
			if seq%16 == 0 {
				limits = append(limits, 0) // the whole rest
			}
			for _, limit := range limits {
				cursor := tidings.Cursor{Epoch: db.Epoch(), UserID: users[i].ID, Seq: seq}
				fromStore, err := db.FindMessages(ctx, users[i].ID, &cursor, limit)
				if err != nil {
					t.Fatal(err)
				}
				fromDB, err := db.FindStoredMessages(ctx, users[i].ID, &cursor, limit)
				if err != nil {
					t.Fatal(err)
				}
				sameBatch(t, fmt.Sprintf("user%d since %d limit %d", i, seq, limit), fromStore, fromDB)
			}
		}
	}
	if db.InboxReads() == 0 {
		t.Fatal("no read was answered from memory: the test proved nothing about it")
	}
}

// A message answered from memory tells when this node committed it, for
// the commit-to-delivery histogram; one read from the database does not.
func TestInboxMessagesKnowTheirCommit(t *testing.T) {
	db := MustOpenDB(t)
	listenFor(t, db)
	admin := MustCreateUser(t, db, "admin", true)
	bob := MustCreateUser(t, db, "bob", false)
	ctx := context.Background()
	start, err := db.FindMessages(ctx, bob.ID, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if _, err := db.PublishMessage(as(admin), &tidings.Publication{Recipients: []string{"bob"}, Text: "hello"}); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	reads := db.InboxReads()
	fromStore, err := db.FindMessages(ctx, bob.ID, &start.Cursor, 0)
	if err != nil {
		t.Fatal(err)
	}
	if db.InboxReads() == reads || len(fromStore.Messages) != 1 {
		t.Fatalf("%d messages, inbox reads %d → %d: not answered from memory", len(fromStore.Messages), reads, db.InboxReads())
	}
	if c := fromStore.Messages[0].Committed; c.Before(before) || c.After(after) {
		t.Fatalf("committed at %v, want between %v and %v", c, before, after)
	}
	fromDB, err := db.FindStoredMessages(ctx, bob.ID, &start.Cursor, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(fromDB.Messages) != 1 || !fromDB.Messages[0].Committed.IsZero() {
		t.Fatalf("from the database: %+v", fromDB.Messages)
	}
}

// What is kept in memory expires as the database's messages do: a message
// past its valid_until is never delivered, and counts as missed.
func TestInboxesRespectExpiry(t *testing.T) {
	clock := newTestClock()
	db := MustOpenDB(t, withClock(clock))
	listenFor(t, db)
	admin := MustCreateUser(t, db, "admin", true)
	bob := MustCreateUser(t, db, "bob", false)
	ctx := context.Background()
	start, err := db.FindMessages(ctx, bob.ID, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, ttl := range []time.Duration{time.Minute, 2 * time.Minute, time.Hour} {
		publish(t, db, admin, tidings.Publication{Recipients: []string{"bob"}, Text: "ttl " + ttl.String(), TTL: ttl})
	}
	for _, step := range []struct {
		advance time.Duration
		want    []string
		missed  int64
	}{
		{0, []string{"ttl 1m0s", "ttl 2m0s", "ttl 1h0m0s"}, 0},
		{time.Minute, []string{"ttl 2m0s", "ttl 1h0m0s"}, 1}, // valid_until is not "now": gone
		{90 * time.Second, []string{"ttl 1h0m0s"}, 2},
		{time.Hour, nil, 3},
	} {
		clock.Advance(step.advance)
		before := db.InboxReads()
		b, err := db.FindMessages(ctx, bob.ID, &start.Cursor, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := texts(b); !slices.Equal(got, step.want) || b.Missed != step.missed {
			t.Fatalf("after %s more: got %q missed %d, want %q missed %d", step.advance, got, b.Missed, step.want, step.missed)
		}
		if db.InboxReads() == before {
			t.Fatal("the read was not answered from memory")
		}
		fromDB, err := db.FindStoredMessages(ctx, bob.ID, &start.Cursor, 0)
		if err != nil {
			t.Fatal(err)
		}
		sameBatch(t, "after "+step.advance.String(), b, fromDB)
	}
}

// A user's messages in memory are theirs alone, and go with the user: a
// cursor of another user is refused, and a deleted user's reads fail as they
// do from the database.
func TestInboxesKeepAccessRules(t *testing.T) {
	db := MustOpenDB(t)
	listenFor(t, db)
	admin := MustCreateUser(t, db, "admin", true)
	bob := MustCreateUser(t, db, "bob", false)
	carol := MustCreateUser(t, db, "carol", false)
	ctx := context.Background()
	start, err := db.FindMessages(ctx, bob.ID, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, db, admin, tidings.Publication{Recipients: []string{"bob"}, Text: "for bob"})
	if _, err := db.FindMessages(ctx, carol.ID, &start.Cursor, 0); tidings.ErrorCode(err) != tidings.ECURSOR {
		t.Fatalf("carol reading with bob's cursor: %v, want %s", err, tidings.ECURSOR)
	}
	b, err := db.FindMessages(ctx, carol.ID, nil, 0)
	if err != nil || len(b.Messages) != 0 {
		t.Fatalf("carol got %v (%v), want nothing", texts(b), err)
	}
	if err := db.DeleteUser(as(admin), bob.Login); err != nil {
		t.Fatal(err)
	}
	if _, err := db.FindMessages(ctx, bob.ID, &start.Cursor, 0); tidings.ErrorCode(err) != tidings.EUNAUTHORIZED {
		t.Fatalf("a deleted user's read: %v, want %s", err, tidings.EUNAUTHORIZED)
	}
}

// The groupware's own events (a todo with its item, project and details)
// read from memory exactly as from the database.
func TestInboxesKeepGroupwareEvents(t *testing.T) {
	o := newOffice(t)
	listenFor(t, o.db)
	ctx := context.Background()
	start, err := o.db.FindMessages(ctx, o.bob.ID, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	before := o.db.InboxReads()
	todo := o.mustCreateTodo(t, o.alice, tidings.Todo{Title: "Fix the printer", Priority: "urgent", Due: &tidings.Date{Year: 2026, Month: 11, Day: 30}})
	if _, err := o.db.UpdateTodo(as(o.alice), todo.ID, tidings.TodoUpdate{Status: ptr("done")}); err != nil {
		t.Fatal(err)
	}
	fromStore, err := o.db.FindMessages(ctx, o.bob.ID, &start.Cursor, 0)
	if err != nil {
		t.Fatal(err)
	}
	if o.db.InboxReads() == before {
		t.Fatal("the read was not answered from memory")
	}
	if len(fromStore.Messages) != 2 || len(fromStore.Messages[0].Details) == 0 || fromStore.Messages[0].Item == nil {
		t.Fatalf("bob got %d messages: %+v", len(fromStore.Messages), fromStore.Messages)
	}
	fromDB, err := o.db.FindStoredMessages(ctx, o.bob.ID, &start.Cursor, 0)
	if err != nil {
		t.Fatal(err)
	}
	sameBatch(t, "todo events", fromStore, fromDB)
}

// On PostgreSQL another node commits too: a node that keeps its own commits
// in memory still delivers the other node's messages, in order, as soon as
// it is told of them, and never answers from memory past them.
func TestInboxesHearOtherNodes(t *testing.T) {
	postgresOnly(t)
	source := freshSource(t)
	rec := &wokenFeed{woken: make(chan int64, 100)}
	a := mustOpen(t, source, func(db *sqlstore.DB) { db.Notifier = rec })
	b := mustOpen(t, source)
	ctx, cancel := context.WithCancel(context.Background())
	connected := make(chan struct{}, 1)
	la := &sqlstore.Listener{URL: source, Node: a.Node, Store: a, Notifier: rec,
		Connected: func(up bool) {
			if up {
				select {
				case connected <- struct{}{}:
				default:
				}
			}
		}}
	var wg sync.WaitGroup
	wg.Go(func() { la.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	<-connected
	admin := MustCreateUser(t, a, "admin", true)
	bob := MustCreateUser(t, a, "bob", false)
	start, err := a.FindMessages(context.Background(), bob.ID, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	cursor := start.Cursor
	var got []string
	for i := range 6 {
		node := a
		if i%2 == 1 {
			node = b
		}
		publish(t, node, admin, tidings.Publication{Recipients: []string{"bob"}, Text: fmt.Sprintf("m%d", i)})
		// Wait until a's hub was woken for bob by this commit, as a held
		// poll would be, then read as it would.
		for w := range rec.woken {
			if w == bob.ID {
				break
			}
		}
		batch, err := a.FindMessages(context.Background(), bob.ID, &cursor, 0)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, texts(batch)...)
		cursor = batch.Cursor
	}
	if want := []string{"m0", "m1", "m2", "m3", "m4", "m5"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("node a delivered %q, want %q", got, want)
	}
	if a.InboxReads() == 0 {
		t.Fatal("node a answered no read from memory")
	}
}

// wokenFeed is a Notifier that passes on whom it was told to wake.
type wokenFeed struct{ woken chan int64 }

func (r *wokenFeed) Notify(ids ...int64) {
	for _, id := range ids {
		select {
		case r.woken <- id:
		default: // nobody reads any more
		}
	}
}

func (r *wokenFeed) NotifyAccess(...int64) {}

// userFeed is a Notifier with a channel per watched user, signalled
// without blocking, as the hub signals a waiter.
type userFeed struct {
	mu    sync.Mutex
	chans map[int64]chan struct{}
}

func (f *userFeed) watch(userID int64) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.chans == nil {
		f.chans = map[int64]chan struct{}{}
	}
	c := make(chan struct{}, 1)
	f.chans[userID] = c
	return c
}

func (f *userFeed) Notify(ids ...int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		select {
		case f.chans[id] <- struct{}{}:
		default:
		}
	}
}

func (f *userFeed) NotifyAccess(...int64) {}

// An idle client's poll from the head it was last answered with costs the
// database nothing, though no message came since the server started: the
// read that found the head left an empty inbox there. But only if nothing
// happened to the user's inbox while that read ran: a commit that came in
// between, and the inbox it made dropped again (as an access's end drops
// it), must not hide behind an inbox left at the older head.
func TestAnInboxLeftByAReadHidesNoCommit(t *testing.T) {
	db := MustOpenDB(t)
	listenFor(t, db)
	admin := MustCreateUser(t, db, "admin", true)
	bob := MustCreateUser(t, db, "bob", false)
	ctx := context.Background()
	start, err := db.FindMessages(ctx, bob.ID, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	read := db.InboxReads()
	again, err := db.FindMessages(ctx, bob.ID, &start.Cursor, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Messages) != 0 || again.Cursor != start.Cursor {
		t.Fatalf("an idle poll from the head got %d messages, cursor %v; want none, %v", len(again.Messages), again.Cursor, start.Cursor)
	}
	if db.InboxReads() != read+1 {
		t.Fatal("an idle poll from the head it was answered with read the database")
	}

	db.DropInbox(bob.ID)
	overtaken := false
	db.OnStoredRead(func() {
		if overtaken {
			return
		}
		overtaken = true
		publish(t, db, admin, tidings.Publication{Recipients: []string{"bob"}, Text: "came in between"})
		db.DropInbox(bob.ID)
	})
	b, err := db.FindMessages(ctx, bob.ID, &start.Cursor, 0)
	db.OnStoredRead(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !overtaken || len(b.Messages) != 0 {
		t.Fatalf("the overtaken read got %d messages (overtaken: %v), want none: it began before the commit", len(b.Messages), overtaken)
	}
	next, err := db.FindMessages(ctx, bob.ID, &b.Cursor, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(next.Messages) != 1 || next.Messages[0].Text != "came in between" {
		t.Fatalf("the poll after the overtaken read got %+v, want the message that came in between", next.Messages)
	}
}
