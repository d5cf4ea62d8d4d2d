package sqlstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidings/tidings"
	"github.com/tidings/tidings/sqlstore"
)

// Two writers on one database, as when another process writes to a SQLite
// file while a server runs, or two nodes share PostgreSQL: however they
// take turns, each event gets an id of its own, and every message shows
// the event it was published with. On SQLite each writer counts ids in
// memory, from the database again whenever the other one committed.
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

// Publishes committed together look each recipient up once, but a change
// to a recipient between them, in the same batch, is seen by the publishes
// after it: bob turns his messages off, then on, between three publishes
// that wait for the writer together.
func TestPublishesInABatchSeeTheChangesBetweenThem(t *testing.T) {
	db := MustOpenDB(t)
	alice := MustCreateUser(t, db, "alice", true)
	bob := MustCreateUser(t, db, "bob", false)
	ctx := context.Background()
	start, err := db.FindStoredMessages(ctx, bob.ID, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	off, on := false, true
	results := make([]*tidings.PublishResult, 3)
	publish := func(i int) func() error {
		return func() (err error) {
			results[i], err = db.PublishMessage(as(alice), &tidings.Publication{Recipients: []string{"bob"}, Text: fmt.Sprintf("m%d", i)})
			return err
		}
	}
	setMessages := func(v *bool) func() error {
		return func() error {
			_, err := db.UpdateSettings(as(bob), tidings.SettingsUpdate{Messages: v})
			return err
		}
	}
	writes := []func() error{publish(0), setMessages(&off), publish(1), setMessages(&on), publish(2)}

	release := db.HoldWriter()
	t.Cleanup(release)
	errs := make([]error, len(writes))
	var wg sync.WaitGroup
	for i, w := range writes {
		wg.Go(func() { errs[i] = w() })
		// One at a time, so that the batch holds them in this order.
		waitFor(t, fmt.Sprintf("write %d to queue", i), func() bool { return db.QueuedWrites() == i+1 })
	}
	release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	for i, want := range []int{1, 0, 1} {
		if results[i].Recipients != want {
			t.Errorf("m%d reached %d recipients, want %d", i, results[i].Recipients, want)
		}
	}
	got, err := db.FindStoredMessages(ctx, bob.ID, &start.Cursor, 0)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range got.Messages {
		texts = append(texts, m.Text)
	}
	if fmt.Sprint(texts) != "[m0 m2]" {
		t.Fatalf("bob got %v, want [m0 m2]", texts)
	}
}

// A batch of more publishes than one INSERT of events holds (64), each to
// two people, committed together: every message arrives once, in the order
// it was published, numbered one after the other, with its own event.
func TestABatchOfMoreEventsThanOneInsertHolds(t *testing.T) {
	db := MustOpenDB(t)
	alice := MustCreateUser(t, db, "alice", true)
	bob := MustCreateUser(t, db, "bob", false)
	carol := MustCreateUser(t, db, "carol", false)
	ctx := context.Background()
	starts := map[int64]tidings.Cursor{}
	for _, u := range []*tidings.User{bob, carol} {
		start, err := db.FindStoredMessages(ctx, u.ID, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		starts[u.ID] = start.Cursor
	}
	const n = 70
	results := make([]*tidings.PublishResult, n)
	errs := make([]error, n)
	release := db.HoldWriter()
	t.Cleanup(release)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = db.PublishMessage(as(alice), &tidings.Publication{Recipients: []string{"bob", "carol"}, Text: fmt.Sprintf("m%02d", i)})
		})
		waitFor(t, fmt.Sprintf("publish %d to queue", i), func() bool { return db.QueuedWrites() == i+1 })
	}
	release()
	wg.Wait()
	seen := map[int64]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		if seen[results[i].Event] {
			t.Fatalf("publish %d got event %d, which another has", i, results[i].Event)
		}
		seen[results[i].Event] = true
	}
	for _, u := range []*tidings.User{bob, carol} {
		start := starts[u.ID]
		got, err := db.FindStoredMessages(ctx, u.ID, &start, n+1)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Messages) != n {
			t.Fatalf("%s has %d messages, want %d", u.Login, len(got.Messages), n)
		}
		for i, m := range got.Messages {
			if want := fmt.Sprintf("m%02d", i); m.Text != want || m.Event != results[i].Event {
				t.Errorf("%s's message %d: %q of event %d, want %q of event %d", u.Login, i, m.Text, m.Event, want, results[i].Event)
			}
		}
		if got.Missed != 0 {
			t.Errorf("%s missed %d messages", u.Login, got.Missed)
		}
	}
}

// A credential's end is told before the write that ended it returns: the
// server empties its credential cache on that news, so the client told
// "revoked" or "logged out" finds the credential refused on its very next
// request. Nothing is waited for here: the news must already be in.
func TestEndedCredentialsAreToldBeforeTheWriteReturns(t *testing.T) {
	rec := &accessRecorder{}
	db := MustOpenDB(t, func(db *sqlstore.DB) { db.Notifier = rec })
	alice := MustCreateUser(t, db, "alice", false)
	ctx := context.Background()
	told := func(what string) {
		t.Helper()
		rec.mu.Lock()
		access := rec.access
		rec.access = nil
		rec.mu.Unlock()
		if !slices.Contains(access, alice.ID) {
			t.Fatalf("%s returned before its end was told (told: %v)", what, access)
		}
	}
	tok := &tidings.Token{Name: "ci"}
	if err := db.CreateToken(as(alice), tok); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteToken(as(alice), tok.ID); err != nil {
		t.Fatal(err)
	}
	told("revoking a token")

	_, session, err := db.Login(ctx, "alice", "password1")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Logout(ctx, session.Hash); err != nil {
		t.Fatal(err)
	}
	told("a logout")
}

// accessRecorder keeps whose access ended, as it was told. It takes its
// time to hear it, as a server with much to do might: a write that
// returned before telling, and told only after, is then caught.
type accessRecorder struct {
	mu     sync.Mutex
	access []int64
}

func (r *accessRecorder) Notify(...int64) {}

func (r *accessRecorder) NotifyAccess(ids ...int64) {
	time.Sleep(20 * time.Millisecond)
	r.mu.Lock()
	r.access = append(r.access, ids...)
	r.mu.Unlock()
}

// TestCloseRunsTheWritesItAccepted closes the store while eight publishers
// write as fast as they can, so that Close meets a batch running and
// writes queued behind it. Every publish ends: those answered without an
// error are all in the database, and those that came after Close are
// refused as unavailable, not left waiting and not half done.
func TestCloseRunsTheWritesItAccepted(t *testing.T) {
	source := freshSource(t)
	db := mustOpen(t, source)
	alice := MustCreateUser(t, db, "alice", true)
	bob := MustCreateUser(t, db, "bob", false)
	raw := openRaw(t, source)
	countBob := func() (n int64) {
		if err := raw.QueryRow(`SELECT count(*) FROM messages WHERE user_id = ?`, bob.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := countBob()

	const publishers = 8
	var answered atomic.Int64
	var wg sync.WaitGroup
	refused := make(chan error, publishers)
	for i := range publishers {
		wg.Go(func() {
			for k := 0; ; k++ {
				pub := &tidings.Publication{Recipients: []string{"bob"}, Text: fmt.Sprintf("p%d-%d", i, k)}
				if _, err := db.PublishMessage(as(alice), pub); err != nil {
					refused <- err
					return
				}
				answered.Add(1)
			}
		})
	}
	waitFor(t, "200 publishes", func() bool { return answered.Load() >= 200 })
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	go func() { wg.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("publishers still wait 10 s after Close returned")
	}
	close(refused)
	for err := range refused {
		if tidings.ErrorCode(err) != tidings.EUNAVAILABLE {
			t.Errorf("a publish as the store closed: %v, want it refused as unavailable", err)
		}
	}
	if got := countBob() - before; got != answered.Load() {
		t.Fatalf("%d publishes were answered before Close, the database holds %d of them", answered.Load(), got)
	}
}

// A second writer numbers messages too, and its newest is deleted once it
// expired: the first writer's next message to the same user takes a new
// number, and a client past the deleted one gets it.
func TestMessageNumbersOfTwoWritersAreNotGivenAgain(t *testing.T) {
	source := freshSource(t)
	clock := newTestClock()
	a := mustOpen(t, source, withClock(clock))
	alice := MustCreateUser(t, a, "alice", true)
	bob := MustCreateUser(t, a, "bob", false)
	ctx := context.Background()
	publish(t, a, alice, tidings.Publication{Recipients: []string{"bob"}, Text: "first", TTL: time.Hour})
	b := mustOpen(t, source, withClock(clock))
	publish(t, b, alice, tidings.Publication{Recipients: []string{"bob"}, Text: "soon gone", TTL: time.Second})
	cursor, err := b.CurrentCursor(ctx, bob.ID) // a client that saw it
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if swept, err := b.DeleteExpired(ctx); err != nil || swept.Messages != 1 {
		t.Fatalf("the janitor deleted %d messages (%v), want 1", swept.Messages, err)
	}
	publish(t, a, alice, tidings.Publication{Recipients: []string{"bob"}, Text: "after"})
	got, err := a.FindStoredMessages(ctx, bob.ID, &cursor, 0)
	if err != nil {
		t.Fatal(err)
	}
	if texts := texts(got); len(texts) != 1 || texts[0] != "after" {
		t.Fatalf("after the deleted message bob gets %q, want [after]", texts)
	}
}
