package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidings/tidings"
	"github.com/tidings/tidings/sqlstore"
)

// testClock is a clock that tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// MustOpenDB opens a store in a temporary directory, closed when the test ends.
func MustOpenDB(tb testing.TB, opts ...func(*sqlstore.DB)) *sqlstore.DB {
	tb.Helper()
	db := sqlstore.NewDB(filepath.Join(tb.TempDir(), "tidings.db"))
	for _, o := range opts {
		o(db)
	}
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	return db
}

func withClock(c *testClock) func(*sqlstore.DB) {
	return func(db *sqlstore.DB) { db.Now = c.Now }
}

// MustCreateUser creates a user with the password "password1".
func MustCreateUser(tb testing.TB, db *sqlstore.DB, login string, admin bool) *tidings.User {
	tb.Helper()
	u := &tidings.User{Login: login, Name: login + " Name", Email: login + "@example.org"}
	if admin {
		u.Role = tidings.RoleAdmin
	}
	if err := db.CreateUser(tidings.NewSystemContext(context.Background()), u, "password1"); err != nil {
		tb.Fatal(err)
	}
	return u
}

// as returns a context acting as u through a session.
func as(u *tidings.User) context.Context {
	return tidings.NewContextWithAuth(context.Background(), &tidings.Auth{User: u, Session: &tidings.Session{UserID: u.ID}})
}

// MustCreateProject creates a project owned by owner with the given members.
func MustCreateProject(tb testing.TB, db *sqlstore.DB, owner *tidings.User, name string, members ...*tidings.User) *tidings.Project {
	tb.Helper()
	p := &tidings.Project{Name: name}
	if err := db.CreateProject(as(owner), p); err != nil {
		tb.Fatal(err)
	}
	for _, m := range members {
		var err error
		if p, err = db.SetMember(as(owner), p.ID, m.Login, tidings.ProjectMember); err != nil {
			tb.Fatal(err)
		}
	}
	return p
}

func code(err error) string { return tidings.ErrorCode(err) }

// waitFor polls cond until it holds, failing the test after a bound.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// tickingClock moves a second on every reading: writes committed in
// different transactions get different times, those of one transaction the
// same.
type tickingClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *tickingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
	return c.now
}

// wakeRecorder is a Notifier that remembers whom it was told about and what
// each of them could read at that moment, as a woken client would.
type wakeRecorder struct {
	mu    sync.Mutex
	db    *sqlstore.DB
	from  map[int64]tidings.Cursor // whose reads to record, from where
	woken map[int64][]string
}

func (r *wakeRecorder) Notify(userIDs ...int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range userIDs {
		got := []string{}
		if c, ok := r.from[id]; ok {
			b, err := r.db.FindMessages(context.Background(), id, &c, 0)
			if err != nil {
				got = append(got, "error: "+err.Error())
			} else {
				got = texts(b)
			}
		}
		r.woken[id] = got
	}
}

func (r *wakeRecorder) NotifyAccess(...int64) {}

// watch starts recording for u, from the messages u has now.
func (r *wakeRecorder) watch(tb testing.TB, u *tidings.User) {
	tb.Helper()
	c, err := r.db.CurrentCursor(context.Background(), u.ID)
	if err != nil {
		tb.Fatal(err)
	}
	r.mu.Lock()
	r.from[u.ID] = c
	r.mu.Unlock()
}

func (r *wakeRecorder) wokenFor(id int64) ([]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	got, ok := r.woken[id]
	return got, ok
}

// TestGroupCommitFailingWriteLeavesTheOthers sends writes that the writer
// gathers into one transaction, two of which fail inside it: a duplicate
// login, and a write that stored a message before its error. The others are
// committed and their recipients woken, each able to read their message when
// woken; the failing ones get their own errors and leave nothing behind, not
// even a gap in a recipient's numbering.
func TestGroupCommitFailingWriteLeavesTheOthers(t *testing.T) {
	clock := &tickingClock{now: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	rec := &wakeRecorder{from: map[int64]tidings.Cursor{}, woken: map[int64][]string{}}
	db := MustOpenDB(t, func(db *sqlstore.DB) { db.Now = clock.Now; db.Notifier = rec })
	rec.db = db
	alice := MustCreateUser(t, db, "alice", true)
	bob := MustCreateUser(t, db, "bob", false)
	carol := MustCreateUser(t, db, "carol", false)
	dave := MustCreateUser(t, db, "dave", false)
	erin := MustCreateUser(t, db, "erin", false)
	inboxes := map[*tidings.User]*inbox{}
	for _, u := range []*tidings.User{bob, carol, dave, erin} {
		rec.watch(t, u)
		inboxes[u] = newInbox(t, db, u)
	}
	sys := tidings.NewSystemContext(context.Background())

	type write struct {
		name string
		run  func() error
	}
	var published sync.Map // text → *tidings.PublishResult
	publishTo := func(u *tidings.User, text string) write {
		return write{"publish to " + u.Login, func() error {
			res, err := db.PublishMessage(as(alice), &tidings.Publication{Recipients: []string{u.Login}, Text: text})
			published.Store(text, res)
			return err
		}}
	}
	frank := &tidings.User{Login: "frank", Name: "Frank Fox", Email: "frank@example.org"}
	writes := []write{
		{"failing publish to erin", func() error { return db.FailingPublish(as(alice), alice, erin, "never for erin") }},
		publishTo(bob, "for bob"),
		{"duplicate bob", func() error {
			return db.CreateUser(sys, &tidings.User{Login: "bob", Name: "Another Bob", Email: "bob2@example.org"}, "password1")
		}},
		publishTo(carol, "for carol"),
		{"create frank", func() error { return db.CreateUser(sys, frank, "password1") }},
		publishTo(dave, "for dave"),
		{"failing publish to erin again", func() error { return db.FailingPublish(as(alice), alice, erin, "never for erin either") }},
	}

	release := db.HoldWriter()
	t.Cleanup(release) // a test that stops early must not leave Close waiting for the writer
	errs := make([]error, len(writes))
	var wg sync.WaitGroup
	for i, w := range writes {
		wg.Go(func() { errs[i] = w.run() })
		// One at a time, so that the batch holds them in this order.
		waitFor(t, w.name+" to queue behind the held writer", func() bool { return db.QueuedWrites() == i+1 })
	}
	release()
	wg.Wait()

	for i, w := range writes {
		switch w.name {
		case "failing publish to erin", "failing publish to erin again":
			if !errors.Is(errs[i], sqlstore.ErrWriteFailed) {
				t.Errorf("%s: err = %v, want its own error", w.name, errs[i])
			}
		case "duplicate bob":
			if code(errs[i]) != tidings.ECONFLICT || tidings.ErrorField(errs[i]) != "login" {
				t.Errorf("%s: err = %v, want a conflict on login", w.name, errs[i])
			}
		default:
			if errs[i] != nil {
				t.Errorf("%s: %v", w.name, errs[i])
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The good writes are stored and were committed together.
	var createdAt []time.Time
	for u, text := range map[*tidings.User]string{bob: "for bob", carol: "for carol", dave: "for dave"} {
		m := inboxes[u].one()
		if m.Text != text {
			t.Fatalf("%s reads %q, want %q", u.Login, m.Text, text)
		}
		if res, _ := published.Load(text); res.(*tidings.PublishResult).Recipients != 1 {
			t.Fatalf("publish %q answered %+v", text, res)
		}
		createdAt = append(createdAt, m.CreatedAt)
		if got, ok := rec.wokenFor(u.ID); !ok || len(got) != 1 || got[0] != text {
			t.Fatalf("when %s was woken, they could read %q (woken: %v); want %q", u.Login, got, ok, text)
		}
	}
	f, err := db.FindUserByLogin(sys, "frank")
	if err != nil {
		t.Fatalf("the user created in the batch: %v", err)
	}
	createdAt = append(createdAt, f.CreatedAt)
	for _, at := range createdAt[1:] {
		if !at.Equal(createdAt[0]) {
			t.Fatalf("the writes were committed at %v: not one batch, so this test proved nothing", createdAt)
		}
	}

	// Nothing of the failing writes is kept, and nobody was woken for them.
	if b, err := db.FindUserByLogin(sys, "bob"); err != nil || b.ID != bob.ID || b.Name != bob.Name {
		t.Fatalf("bob after the duplicate: %+v, %v", b, err)
	}
	if n, err := db.CountUsers(context.Background()); err != nil || n != 6 {
		t.Fatalf("%d users (%v), want alice, bob, carol, dave, erin and frank", n, err)
	}
	inboxes[erin].none()
	if got, ok := rec.wokenFor(erin.ID); ok {
		t.Fatalf("erin was woken for a write that failed; she could read %q", got)
	}
	// Erin's numbering has no hole where the failed messages were numbered.
	before := inboxes[erin].cursor
	publish(t, db, alice, tidings.Publication{Recipients: []string{"erin"}, Text: "really for erin"})
	m := inboxes[erin].one()
	if m.Text != "really for erin" || m.Cursor.Seq != before.Seq+1 {
		t.Fatalf("erin's next message is %q at %d, want it at %d", m.Text, m.Cursor.Seq, before.Seq+1)
	}
}

// latestMigration is the schema version this binary brings: the number of
// its last migration file.
func latestMigration(tb testing.TB) int {
	tb.Helper()
	entries, err := os.ReadDir("migrations")
	if err != nil {
		tb.Fatal(err)
	}
	latest := 0
	for _, e := range entries {
		n, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
		if err != nil {
			tb.Fatalf("migration %s does not start with its number", e.Name())
		}
		latest = max(latest, n)
	}
	if latest == 0 {
		tb.Fatal("no migrations")
	}
	return latest
}

// TestOpenRefusesNewerSchema: a database that a newer Tidings migrated is
// not opened by this one, which says both versions, and is left as it was.
func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tidings.db")
	db := sqlstore.NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	MustCreateUser(t, db, "alice", true)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	latest := latestMigration(t)
	newer := latest + 7
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, newer); err != nil {
		t.Fatal(err)
	}

	for range 2 { // and again: the refusal changed nothing that lets a second try in
		db := sqlstore.NewDB(path)
		err := db.Open()
		if err == nil {
			db.Close()
			t.Fatalf("a database with schema version %d opened in a binary of version %d", newer, latest)
		}
		msg := strings.ReplaceAll(err.Error(), path, "<path>")
		numbers := regexp.MustCompile(`\d+`).FindAllString(msg, -1)
		if !slices.Contains(numbers, strconv.Itoa(newer)) || !slices.Contains(numbers, strconv.Itoa(latest)) {
			t.Fatalf("the refusal %q does not name the database's version %d and this binary's %d", msg, newer, latest)
		}
	}
	var version, users int
	if err := raw.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRow(`SELECT COUNT(*) FROM users`).Scan(&users); err != nil {
		t.Fatal(err)
	}
	if version != newer || users != 1 {
		t.Fatalf("after the refusal: schema version %d, %d users; want %d and 1", version, users, newer)
	}
}
