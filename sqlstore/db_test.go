package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
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

// openRaw opens the database file itself, past the store, to look at and
// write what the store does not show.
func openRaw(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { raw.Close() })
	return raw
}

var checkClause = regexp.MustCompile(`CHECK \((?:[^()]|\([^()]*\))*\)`)

// describeSchema lists, one line each, the columns, foreign keys, indexes
// and CHECKs of every table.
func describeSchema(tb testing.TB, raw *sql.DB) map[string]bool {
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
		if got := strings.Join(tables, " "); got != "appointments events notes pending projects todos tokens users" {
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

// TestNewerSchemaIsRefused: a Tidings never runs on a schema it does not
// know.
func TestNewerSchemaIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tidings.db")
	db := sqlstore.NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	older := sqlstore.NewDB(path)
	sqlstore.SetMaxVersion(older, 2)
	err := older.Open()
	if err == nil {
		older.Close()
		t.Fatal("an older Tidings opened a newer database")
	}
	if !strings.Contains(err.Error(), "schema version 3") || !strings.Contains(err.Error(), "(2)") {
		t.Fatalf("error %q does not name both versions", err)
	}
}
