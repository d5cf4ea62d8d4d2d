package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
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

// TestIDsAreNeverReused deletes the newest row of each kind and creates
// another: a link such as /todos/42 must never lead to something else.
func TestIDsAreNeverReused(t *testing.T) {
	o := newOffice(t)
	ctx := as(o.alice)
	sys := tidings.NewSystemContext(context.Background())
	fresh := func(what string, old, new int64) {
		t.Helper()
		if new <= old {
			t.Errorf("%s: new id %d after deleting %d, want a larger one", what, new, old)
		}
	}

	todo := o.mustCreateTodo(t, o.alice, tidings.Todo{Title: "Fix the printer"})
	if err := o.db.DeleteTodo(ctx, todo.ID); err != nil {
		t.Fatal(err)
	}
	fresh("todo", todo.ID, o.mustCreateTodo(t, o.alice, tidings.Todo{Title: "Buy paper"}).ID)

	note := o.mustCreateNote(t, o.alice, tidings.Note{Title: "Minutes"})
	if err := o.db.DeleteNote(ctx, note.ID); err != nil {
		t.Fatal(err)
	}
	fresh("note", note.ID, o.mustCreateNote(t, o.alice, tidings.Note{Title: "Agenda"}).ID)

	appt := o.mustCreateAppointment(t, o.alice, tidings.Appointment{Title: "Lunch", Start: at(30, 12, 0), End: at(30, 13, 0)})
	if err := o.db.DeleteAppointment(ctx, appt.ID); err != nil {
		t.Fatal(err)
	}
	fresh("appointment", appt.ID, o.mustCreateAppointment(t, o.alice, tidings.Appointment{Title: "Dinner", Start: at(30, 19, 0), End: at(30, 20, 0)}).ID)

	p := MustCreateProject(t, o.db, o.alice, "Spare room")
	if err := o.db.DeleteProject(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	fresh("project", p.ID, MustCreateProject(t, o.db, o.alice, "Attic").ID)

	erin := mustCreatePerson(t, o.db, "erin", "Erin Evans")
	tok := &tidings.Token{UserID: erin.ID, Name: "ci"}
	if err := o.db.CreateToken(sys, tok); err != nil {
		t.Fatal(err)
	}
	if err := o.db.DeleteUser(sys, "erin"); err != nil { // its token goes with it
		t.Fatal(err)
	}
	frank := mustCreatePerson(t, o.db, "frank", "Frank Fox")
	fresh("user", erin.ID, frank.ID)
	tok2 := &tidings.Token{UserID: frank.ID, Name: "ci"}
	if err := o.db.CreateToken(sys, tok2); err != nil {
		t.Fatal(err)
	}
	fresh("token", tok.ID, tok2.ID)
	if err := o.db.DeleteToken(sys, tok2.ID); err != nil {
		t.Fatal(err)
	}
	tok3 := &tidings.Token{UserID: frank.ID, Name: "ci"}
	if err := o.db.CreateToken(sys, tok3); err != nil {
		t.Fatal(err)
	}
	fresh("token", tok2.ID, tok3.ID)

	// Events are deleted by the janitor once their messages expired.
	first := publish(t, o.db, o.alice, tidings.Publication{Recipients: []string{"bob"}, Text: "soon gone", TTL: time.Second})
	o.clock.Advance(time.Hour)
	if _, err := o.db.DeleteExpired(context.Background()); err != nil {
		t.Fatal(err)
	}
	fresh("event", first.Event, publish(t, o.db, o.alice, tidings.Publication{Recipients: []string{"bob"}, Text: "new"}).Event)
}

var checkClause = regexp.MustCompile(`CHECK \((?:[^()]|\([^()]*\))*\)`)

// describeSchema lists, one line each, the columns, foreign keys, indexes
// and CHECKs of every table.
func describeSchema(tb testing.TB, raw rawConn) map[string]bool {
	tb.Helper()
	out := map[string]bool{}
	queryAll := func(q string, args ...any) [][]any {
		tb.Helper()
		rows, err := raw.Query(q, args...)
		if err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		var all [][]any
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				tb.Fatal(err)
			}
			all = append(all, vals)
		}
		if err := rows.Err(); err != nil {
			tb.Fatal(err)
		}
		return all
	}
	line := func(parts ...any) { out[fmt.Sprint(parts...)] = true }
	for _, tr := range queryAll(`SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`) {
		table, ddl := tr[0].(string), tr[1].(string)
		for _, c := range queryAll(`SELECT cid, name, type, "notnull", dflt_value, pk FROM pragma_table_info(?)`, table) {
			line(table, " column ", c)
		}
		for _, fk := range queryAll(`SELECT seq, "table", "from", "to", on_update, on_delete FROM pragma_foreign_key_list(?)`, table) {
			line(table, " foreign key ", fk)
		}
		for _, ix := range queryAll(`SELECT name, "unique", origin, partial FROM pragma_index_list(?)`, table) {
			var cols []string
			for _, c := range queryAll(`SELECT name FROM pragma_index_info(?) ORDER BY seqno`, ix[0]) {
				cols = append(cols, fmt.Sprint(c[0]))
			}
			line(table, " index ", ix, cols)
		}
		for _, c := range checkClause.FindAllString(ddl, -1) {
			line(table, " ", c)
		}
	}
	for _, ix := range queryAll(`SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL`) {
		line("index ", ix[0], ": ", ix[1])
	}
	return out
}

// TestMigrationFromSchema2 builds a database as a Tidings of schema 2 left
// it and opens it with this one: everything is still there and works, and
// ids are not given again.
func TestMigrationFromSchema2(t *testing.T) {
	sqliteOnly(t) // a schema-2 database exists only as a SQLite file: PostgreSQL came with schema 3
	clock := newTestClock()
	path := filepath.Join(t.TempDir(), "tidings.db")
	ctx := context.Background()
	sys := tidings.NewSystemContext(ctx)

	old := sqlstore.NewDB(path)
	old.Now = clock.Now
	sqlstore.SetMaxVersion(old, 2)
	if err := old.Open(); err != nil {
		t.Fatal(err)
	}
	alice := MustCreateUser(t, old, "alice", true)
	bob := MustCreateUser(t, old, "bob", false)
	carol := MustCreateUser(t, old, "carol", false)
	dave := MustCreateUser(t, old, "dave", false)
	_, session, err := old.Login(ctx, "bob", "password1")
	if err != nil {
		t.Fatal(err)
	}
	carolTok := &tidings.Token{UserID: carol.ID, Name: "ci"}
	if err := old.CreateToken(sys, carolTok); err != nil {
		t.Fatal(err)
	}
	daveTok := &tidings.Token{UserID: dave.ID, Name: "dave's"}
	if err := old.CreateToken(sys, daveTok); err != nil {
		t.Fatal(err)
	}
	office := MustCreateProject(t, old, alice, "Office move", bob, carol)
	spare := MustCreateProject(t, old, alice, "Spare room")
	if err := old.DeleteProject(as(alice), spare.ID); err != nil {
		t.Fatal(err)
	}
	todo := &tidings.Todo{Project: tidings.ProjectRef{ID: office.ID}, Title: "Fix the printer", Assignee: ptr("bob")}
	if err := old.CreateTodo(as(alice), todo); err != nil {
		t.Fatal(err)
	}
	gone := &tidings.Todo{Project: tidings.ProjectRef{ID: office.ID}, Title: "Gone soon"}
	if err := old.CreateTodo(as(alice), gone); err != nil {
		t.Fatal(err)
	}
	if err := old.DeleteTodo(as(alice), gone.ID); err != nil {
		t.Fatal(err)
	}
	note := &tidings.Note{Project: tidings.ProjectRef{ID: office.ID}, Title: "Minutes", Body: "None yet."}
	if err := old.CreateNote(as(bob), note); err != nil {
		t.Fatal(err)
	}
	appt := &tidings.Appointment{Project: tidings.ProjectRef{ID: office.ID}, Title: "Team meeting",
		Start: at(24, 12, 0), End: at(24, 13, 0), Participants: []string{"alice", "bob"}}
	if err := old.CreateAppointment(as(alice), appt); err != nil {
		t.Fatal(err)
	}
	erin := MustCreateUser(t, old, "erin", false)
	if _, _, err := old.Login(ctx, "erin", "password1"); err != nil { // an event names her
		t.Fatal(err)
	}
	if err := old.DeleteUser(sys, "erin"); err != nil {
		t.Fatal(err)
	}
	bobBefore, err := old.FindMessages(ctx, bob.ID, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(bobBefore.Messages) < 3 {
		t.Fatalf("bob has %d messages before the migration, want some", len(bobBefore.Messages))
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	// Scheduled messages as schema 2 stored them: a plain user's to a
	// project mate, an administrator's to anyone, one through a project.
	raw := openRaw(t, path)
	due := clock.Now().Add(10 * time.Minute)
	var lastEvent int64
	schedule := func(sender *tidings.User, text string, to []*tidings.User, viaProject, viaActor any) {
		t.Helper()
		err := raw.QueryRow(`INSERT INTO events (process, module, project_id, project_name, actor_id, actor_login, actor_name, text, urgent, created_at, expires_at)
			VALUES ('message', 'message', ?, ?, ?, ?, ?, ?, 0, ?, ?) RETURNING id`,
			viaProject, nil, sender.ID, sender.Login, sender.Name, text, clock.Now().UnixMilli(), due.Add(time.Hour).UnixMilli()).Scan(&lastEvent)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range to {
			if _, err := raw.Exec(`INSERT INTO pending (user_id, event_id, valid_from, valid_until, via_project, via_actor) VALUES (?, ?, ?, ?, ?, ?)`,
				u.ID, lastEvent, due.UnixMilli(), due.Add(time.Hour).UnixMilli(), viaProject, viaActor); err != nil {
				t.Fatal(err)
			}
		}
	}
	schedule(bob, "from bob", []*tidings.User{carol}, nil, bob.ID)
	schedule(alice, "from alice", []*tidings.User{dave}, nil, nil)
	schedule(alice, "to the project", []*tidings.User{bob, carol}, office.ID, nil)
	before := describeSchema(t, raw)
	raw.Close()

	db := sqlstore.NewDB(path)
	db.Now = clock.Now
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	t.Run("schema", func(t *testing.T) {
		raw := openRaw(t, path)
		after := describeSchema(t, raw)
		for l := range before {
			if !after[l] {
				t.Errorf("lost: %s", l)
			}
		}
		added := 0
		for l := range after {
			if !before[l] {
				added++
				if !strings.Contains(l, "last_used_at") && !strings.Contains(l, "sender_") {
					t.Errorf("unexpected: %s", l)
				}
			}
		}
		if added != 6 { // tokens.last_used_at, pending's three sender columns and two CHECKs
			t.Errorf("%d additions, want 6", added)
		}
		rows, err := raw.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%AUTOINCREMENT%' ORDER BY name`)
		if err != nil {
			t.Fatal(err)
		}
		var tables []string
		for rows.Next() {
			var name string
			rows.Scan(&name)
			tables = append(tables, name)
		}
		rows.Close()
		// Events give up theirs in schema 4: their writer gives their ids.
		if got := strings.Join(tables, " "); got != "appointments notes pending projects todos tokens users" {
			t.Errorf("tables with AUTOINCREMENT: %s", got)
		}
		var broken int
		if err := raw.QueryRow(`SELECT COUNT(*) FROM pragma_foreign_key_check`).Scan(&broken); err != nil || broken != 0 {
			t.Errorf("foreign key check: %d rows, %v", broken, err)
		}
	})

	t.Run("credentials", func(t *testing.T) {
		a, err := db.AuthenticateSession(ctx, session.Secret)
		if err != nil || a.User.ID != bob.ID {
			t.Fatalf("bob's session: %+v, %v", a, err)
		}
		a, err = db.AuthenticateToken(ctx, carolTok.Secret)
		if err != nil || a.User.ID != carol.ID || a.Token.ID != carolTok.ID {
			t.Fatalf("carol's token: %+v, %v", a, err)
		}
	})

	t.Run("groupware", func(t *testing.T) {
		p, err := db.FindProjectByID(as(bob), office.ID)
		if err != nil || p.Name != "Office move" || len(p.Members) != 3 {
			t.Fatalf("project: %+v, %v", p, err)
		}
		td, err := db.FindTodoByID(as(carol), todo.ID)
		if err != nil || td.Title != "Fix the printer" || td.Assignee == nil || *td.Assignee != "bob" {
			t.Fatalf("todo: %+v, %v", td, err)
		}
		n, err := db.FindNoteByID(as(alice), note.ID)
		if err != nil || n.Body != "None yet." {
			t.Fatalf("note: %+v, %v", n, err)
		}
		a, err := db.FindAppointmentByID(as(bob), appt.ID)
		if err != nil || strings.Join(a.Participants, ",") != "alice,bob" || !a.Start.Equal(appt.Start) {
			t.Fatalf("appointment: %+v, %v", a, err)
		}
	})

	t.Run("messages", func(t *testing.T) {
		after, err := db.FindMessages(ctx, bob.ID, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(after.Messages) != len(bobBefore.Messages) {
			t.Fatalf("bob has %d messages, had %d", len(after.Messages), len(bobBefore.Messages))
		}
		for i, m := range after.Messages {
			if was := bobBefore.Messages[i]; m.ID != was.ID || m.Text != was.Text || m.Event != was.Event {
				t.Fatalf("message %d is %+v, was %+v", i, m, was)
			}
		}
	})

	t.Run("scheduled messages and reminders fire", func(t *testing.T) {
		bobBox, carolBox, daveBox := newInbox(t, db, bob), newInbox(t, db, carol), newInbox(t, db, dave)
		clock.Advance(due.Sub(clock.Now()))
		if n, _, err := db.FireDue(ctx); err != nil || n != 4 {
			t.Fatalf("FireDue = %d, %v; want 4", n, err)
		}
		if got := msgTexts(carolBox.read()); strings.Join(got, "|") != "from bob|to the project" {
			t.Fatalf("carol got %q", got)
		}
		wantText(t, daveBox.one(), "from alice")
		wantText(t, bobBox.one(), "to the project")
		clock.Advance(at(24, 11, 45).Sub(clock.Now()))
		if n, _, err := db.FireDue(ctx); err != nil || n != 2 {
			t.Fatalf("reminders: FireDue = %d, %v; want 2", n, err)
		}
		wantText(t, bobBox.one(), "Reminder: “Team meeting” in Office move starts at 12:00 UTC")
	})

	t.Run("ids are not given again", func(t *testing.T) {
		if p := MustCreateProject(t, db, alice, "Attic"); p.ID <= spare.ID {
			t.Errorf("new project %d, deleted one was %d", p.ID, spare.ID)
		}
		td := &tidings.Todo{Project: tidings.ProjectRef{ID: office.ID}, Title: "New"}
		if err := db.CreateTodo(as(alice), td); err != nil {
			t.Fatal(err)
		}
		if td.ID <= gone.ID {
			t.Errorf("new todo %d, deleted one was %d", td.ID, gone.ID)
		}
		if u := MustCreateUser(t, db, "frank", false); u.ID <= erin.ID {
			t.Errorf("new user %d, deleted one was %d", u.ID, erin.ID)
		}
		if res := publish(t, db, alice, tidings.Publication{Recipients: []string{"bob"}, Text: "hello"}); res.Event <= lastEvent {
			t.Errorf("new event %d, the last one was %d", res.Event, lastEvent)
		}
	})

	t.Run("foreign keys still cascade", func(t *testing.T) {
		if err := db.DeleteProject(as(alice), office.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteUser(sys, "dave"); err != nil {
			t.Fatal(err)
		}
		raw := openRaw(t, path)
		for _, q := range []string{
			`SELECT COUNT(*) FROM todos`, `SELECT COUNT(*) FROM notes`, `SELECT COUNT(*) FROM appointments`,
			`SELECT COUNT(*) FROM appointment_participants`, `SELECT COUNT(*) FROM reminders`,
			`SELECT COUNT(*) FROM members WHERE project_id = ` + itoa(office.ID),
			`SELECT COUNT(*) FROM tokens WHERE user_id = ` + itoa(dave.ID),
			`SELECT COUNT(*) FROM inboxes WHERE user_id = ` + itoa(dave.ID),
		} {
			var n int
			if err := raw.QueryRow(q).Scan(&n); err != nil || n != 0 {
				t.Errorf("%s = %d, %v; want 0", q, n, err)
			}
		}
		if _, err := db.AuthenticateToken(ctx, daveTok.Secret); code(err) != tidings.EUNAUTHORIZED {
			t.Errorf("deleted user's token: %v", err)
		}
	})
}

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

// migrationVersions lists the versions of a dialect's migration files.
func migrationVersions(tb testing.TB, dialect string) []int {
	tb.Helper()
	entries, err := os.ReadDir(filepath.Join("migrations", dialect))
	if err != nil {
		tb.Fatal(err)
	}
	var versions []int
	for _, e := range entries {
		n, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
		if err != nil {
			tb.Fatalf("migration %s does not start with its number", e.Name())
		}
		versions = append(versions, n)
	}
	if len(versions) == 0 {
		tb.Fatal("no migrations")
	}
	slices.Sort(versions)
	return versions
}

// latestMigration is the schema version this binary brings: the number of
// its last migration file.
func latestMigration(tb testing.TB) int {
	tb.Helper()
	return slices.Max(migrationVersions(tb, dialectName()))
}

// Both databases go through the same schema versions, so that a version
// means one schema whichever database a node runs on.
func TestMigrationsHaveTheSameVersionsOnBothDatabases(t *testing.T) {
	if s, p := migrationVersions(t, "sqlite"), migrationVersions(t, "postgres"); !slices.Equal(s, p) {
		t.Fatalf("SQLite's migrations are versions %v, PostgreSQL's %v", s, p)
	}
}

// TestOpenRefusesNewerSchema: a database that a newer Tidings migrated is
// not opened by this one, which says both versions, and is left as it was.
func TestOpenRefusesNewerSchema(t *testing.T) {
	path := freshSource(t)
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
	raw := openRaw(t, path)
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
		msg := strings.ReplaceAll(err.Error(), sqlstore.Redact(path), "<path>")
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

// A SQLite file is served by one store at a time: a second serving store
// on it is refused with a message that says what to do, while a command's
// store (tidings user add) opens it beside the server, and the file can be
// served again once the first server has closed it. PostgreSQL is shared.
func TestASecondServerOnOneSQLiteFileIsRefused(t *testing.T) {
	source := freshSource(t)
	serving := func(db *sqlstore.DB) { db.Serving = true }
	first := mustOpen(t, source, serving)
	MustCreateUser(t, mustOpen(t, source), "bob", false) // a command beside the server

	second := sqlstore.NewDB(source)
	second.Serving = true
	err := second.Open()
	if onPostgres() {
		if err != nil {
			t.Fatalf("a second node on PostgreSQL: %v", err)
		}
		second.Close()
		return
	}
	if tidings.ErrorCode(err) != tidings.ECONFLICT || !strings.Contains(err.Error(), "Another Tidings server is serving") {
		t.Fatalf("a second server on the file: %v, want it refused as served already", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again := mustOpen(t, source, serving)
	if n, err := again.CountUsers(context.Background()); err != nil || n != 1 {
		t.Fatalf("served again: %d users, %v", n, err)
	}
}

// A server opens a SQLite file in a directory that does not exist yet, as
// the README's first command does on a fresh checkout (./tidings-data):
// the directory is made before the server's lock file goes into it.
func TestAServerOpensAFileInADirectoryNotMadeYet(t *testing.T) {
	sqliteOnly(t)
	path := filepath.Join(t.TempDir(), "tidings-data", "tidings.db")
	db := mustOpen(t, path, func(db *sqlstore.DB) { db.Serving = true })
	MustCreateUser(t, db, "alice", true)
	if _, err := os.Stat(path + "-lock"); err != nil {
		t.Fatalf("the server's lock file: %v", err)
	}
}
