package sqlstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidings/tidings"
	"github.com/tidings/tidings/sqlstore"
)

// copiedTables are the tables of the schema, as the copy writes them.
var copiedTables = []string{"meta", "users", "inboxes", "sessions", "tokens", "projects", "members",
	"muted_projects", "events", "messages", "pending", "todos", "notes", "appointments",
	"appointment_participants", "reminders"}

// copyTarget skips a test of copying into PostgreSQL in the SQLite half.
func copyTarget(tb testing.TB) {
	tb.Helper()
	if !onPostgres() {
		tb.Skip("copies into PostgreSQL; runs in the PostgreSQL half")
	}
}

// countRows counts the rows of every table of the schema, as the copy
// carries them: SQLite's record of the event ids it gave stays behind.
func countRows(tb testing.TB, raw rawConn) map[string]int64 {
	tb.Helper()
	out := map[string]int64{}
	for _, table := range copiedTables {
		query := `SELECT COUNT(*) FROM ` + table
		if table == "meta" {
			query += ` WHERE key <> 'event_ids'`
		}
		var n int64
		if err := raw.QueryRow(query).Scan(&n); err != nil {
			tb.Fatal(err)
		}
		out[table] = n
	}
	return out
}

// sameJSON fails unless got and want encode alike: what a client would see.
func sameJSON(tb testing.TB, what string, got, want any) {
	tb.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		tb.Fatal(err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		tb.Fatal(err)
	}
	if string(g) != string(w) {
		tb.Fatalf("%s on PostgreSQL:\n%s\nwant, as on SQLite:\n%s", what, g, w)
	}
}

// TestCopyKeepsEverythingAndCursors fills a SQLite store through the
// services, copies it into an empty PostgreSQL one and reads it back there:
// a client resumes from its old cursor and gets exactly what it would have
// got from SQLite (SPEC §7).
func TestCopyKeepsEverythingAndCursors(t *testing.T) {
	copyTarget(t)
	ctx := context.Background()
	sys := tidings.NewSystemContext(ctx)
	clock := newTestClock()
	src := mustOpen(t, filepath.Join(t.TempDir(), "tidings.db"), withClock(clock))

	o := &office{db: src, clock: clock}
	o.alice = MustCreateUser(t, src, "alice", true)
	o.bob = mustCreatePerson(t, src, "bob", "Bob Brown")
	o.carol = mustCreatePerson(t, src, "carol", "Carol Clark")
	o.dave = mustCreatePerson(t, src, "dave", "Dave Doe")
	o.project = MustCreateProject(t, src, o.alice, "Office move", o.bob, o.carol)
	attic := MustCreateProject(t, src, o.alice, "Attic", o.bob)
	spare := MustCreateProject(t, src, o.alice, "Spare room")

	// Settings that are stored as SQLite's 0 and 1 and as NULL.
	if _, err := src.UpdateSettings(as(o.bob), tidings.SettingsUpdate{
		Presence: ptr(false), ReminderLeadMinutes: ptr(30), MutedProjects: &[]int64{attic.ID},
	}); err != nil {
		t.Fatal(err)
	}
	_, session, err := src.Login(ctx, "bob", "password1")
	if err != nil {
		t.Fatal(err)
	}
	bobToken := &tidings.Token{UserID: o.bob.ID, Name: "laptop"}
	if err := src.CreateToken(sys, bobToken); err != nil {
		t.Fatal(err)
	}
	if _, err := src.AuthenticateToken(ctx, bobToken.Secret); err != nil { // sets last_used_at
		t.Fatal(err)
	}
	publishToken := &tidings.Token{UserID: o.alice.ID, Name: "ci", Scopes: []string{"publish"}}
	if err := src.CreateToken(sys, publishToken); err != nil {
		t.Fatal(err)
	}

	o.mustCreateTodo(t, o.alice, tidings.Todo{Title: "Pack the books", Assignee: ptr("bob"), Priority: "high"})
	o.mustCreateNote(t, o.alice, tidings.Note{Title: "Minutes", Body: "We move on Friday."})
	o.mustCreateAppointment(t, o.alice, tidings.Appointment{Title: "Team meeting", Start: noon, End: onePM, Participants: []string{"alice", "bob"}})
	publish(t, src, o.alice, tidings.Publication{Recipients: []string{"bob"}, Text: "before", TTL: time.Hour})
	cursor, err := src.CurrentCursor(ctx, o.bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, src, o.alice, tidings.Publication{Recipients: []string{"bob"}, Text: "short", TTL: time.Minute})
	publish(t, src, o.alice, tidings.Publication{Recipients: []string{"bob"}, Text: "two", TTL: time.Hour})
	o.mustCreateTodo(t, o.carol, tidings.Todo{Title: "Label the boxes"})
	publish(t, src, o.alice, tidings.Publication{Recipients: []string{"bob", "carol"}, Text: "three", TTL: time.Hour, Urgent: true})
	publish(t, src, o.alice, tidings.Publication{Recipients: []string{"bob"}, Text: "see you at half past", ValidFrom: clock.Now().Add(30 * time.Minute), TTL: time.Hour})

	// The newest row of each kind deleted: sqlite_sequence remembers its id.
	gone := o.mustCreateTodo(t, o.alice, tidings.Todo{Title: "Gone soon"})
	if err := src.DeleteTodo(as(o.alice), gone.ID); err != nil {
		t.Fatal(err)
	}
	goneNote := o.mustCreateNote(t, o.alice, tidings.Note{Title: "Draft"})
	if err := src.DeleteNote(as(o.alice), goneNote.ID); err != nil {
		t.Fatal(err)
	}
	if err := src.DeleteProject(as(o.alice), spare.ID); err != nil {
		t.Fatal(err)
	}
	daveToken := &tidings.Token{UserID: o.dave.ID, Name: "old"}
	if err := src.CreateToken(sys, daveToken); err != nil {
		t.Fatal(err)
	}
	if err := src.DeleteUser(sys, "dave"); err != nil {
		t.Fatal(err)
	}
	// More events and messages than one batch of the copy holds.
	var wg sync.WaitGroup
	errs := make(chan error, 1200)
	for i := range 1200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := src.PublishMessage(as(o.alice), &tidings.Publication{Recipients: []string{"carol"}, Text: fmt.Sprint("bulk ", i), TTL: time.Hour})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	swept := publish(t, src, o.alice, tidings.Publication{Recipients: []string{"carol"}, Text: "swept", TTL: time.Second})
	clock.Advance(2 * time.Minute) // "short" expired unseen
	if _, err := src.DeleteExpired(ctx); err != nil {
		t.Fatal(err)
	}

	srcRaw := openRaw(t, src.Path)
	lastID := map[string]int64{}
	for _, table := range []string{"users", "tokens", "projects", "events", "pending", "todos", "notes", "appointments"} {
		// What remembers the ids given: sqlite_sequence, or for events
		// (schema 4) meta's event_ids, which is ahead of them.
		memory := `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = ?), 0)`
		if table == "events" {
			memory = `SELECT COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'event_ids' AND ? <> ''), 0)`
		}
		var seq, maxID int64
		if err := srcRaw.QueryRow(memory+`, (SELECT COALESCE(MAX(id), 0) FROM `+table+`)`, table).Scan(&seq, &maxID); err != nil {
			t.Fatal(err)
		}
		lastID[table] = seq
		if table == "events" && maxID >= swept.Event {
			t.Fatalf("events: MAX(id) is %d, the newest event %d was not deleted", maxID, swept.Event)
		}
		if table != "pending" && table != "appointments" && seq <= maxID {
			t.Fatalf("%s: the last id given, %d, is not above MAX(id) %d: the test deleted no newest row", table, seq, maxID)
		}
	}
	want, err := src.FindMessages(ctx, o.bob.ID, &cursor, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Missed: "short", and carol's todo, whose message lived two minutes.
	if got := texts(want); want.Missed != 2 || len(got) != 2 || got[0] != "two" || got[1] != "three" {
		t.Fatalf("on SQLite bob has %q after his cursor, missed %d", got, want.Missed)
	}
	srcCounts := countRows(t, srcRaw)
	for _, table := range copiedTables {
		if srcCounts[table] == 0 {
			t.Fatalf("the source has no %s: the test does not fill every table", table)
		}
	}
	if srcCounts["messages"] <= 1000 || srcCounts["events"] <= 1000 {
		t.Fatalf("%d messages and %d events: fewer than two batches", srcCounts["messages"], srcCounts["events"])
	}

	dst := MustOpenDB(t, withClock(clock))
	stats, err := sqlstore.Copy(ctx, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range copiedTables {
		if stats.Rows(table) != srcCounts[table] {
			t.Errorf("copied %d %s, the source has %d", stats.Rows(table), table, srcCounts[table])
		}
	}
	if dst.Epoch() != src.Epoch() {
		t.Fatalf("the target store's epoch is %d, the source's %d", dst.Epoch(), src.Epoch())
	}

	// A server started on the copy.
	pg := mustOpen(t, dst.Path, withClock(clock))
	if pg.Epoch() != src.Epoch() {
		t.Fatalf("epoch %d on PostgreSQL, %d on SQLite", pg.Epoch(), src.Epoch())
	}
	if counts := countRows(t, rawDB(t, pg)); !equalCounts(counts, srcCounts) {
		t.Fatalf("rows on PostgreSQL %v, on SQLite %v", counts, srcCounts)
	}
	got, err := pg.FindMessages(ctx, o.bob.ID, &cursor, 0)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "bob's messages after his cursor", got, want)
	if got.Missed != want.Missed || got.Cursor != want.Cursor {
		t.Fatalf("missed %d cursor %v, want %d %v", got.Missed, got.Cursor, want.Missed, want.Cursor)
	}

	// Items, settings, users and tokens read back as they were.
	for _, u := range []*tidings.User{o.alice, o.bob, o.carol} {
		s1, err := src.FindSettings(as(u))
		if err != nil {
			t.Fatal(err)
		}
		s2, err := pg.FindSettings(as(u))
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, u.Login+"'s settings", s2, s1)
	}
	both := func(what string, read func(*sqlstore.DB) (any, error)) {
		t.Helper()
		w, err := read(src)
		if err != nil {
			t.Fatal(err)
		}
		g, err := read(pg)
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, what, g, w)
	}
	both("users", func(db *sqlstore.DB) (any, error) {
		l, _, err := db.FindUsers(sys, tidings.UserFilter{})
		return l, err
	})
	both("tokens", func(db *sqlstore.DB) (any, error) { return db.FindTokens(sys) })
	both("bob's projects", func(db *sqlstore.DB) (any, error) {
		l, _, err := db.FindProjects(as(o.bob), tidings.ProjectFilter{})
		return l, err
	})
	both("todos", func(db *sqlstore.DB) (any, error) {
		l, _, err := db.FindTodos(as(o.bob), tidings.TodoFilter{})
		return l, err
	})
	both("notes", func(db *sqlstore.DB) (any, error) {
		l, _, err := db.FindNotes(as(o.bob), tidings.NoteFilter{})
		return l, err
	})
	both("appointments", func(db *sqlstore.DB) (any, error) {
		l, _, err := db.FindAppointments(as(o.bob), tidings.AppointmentFilter{})
		return l, err
	})

	// What was not due yet fires on PostgreSQL when it is due, as it
	// fires on SQLite: the message at 10:30; bob's reminder at 11:30 (his
	// lead), alice's at 11:45. Reminders are new events: on PostgreSQL
	// their ids come after every id SQLite recorded as given (meta's
	// event_ids, which runs ahead of the ids), on SQLite after the last id
	// its writer gave; the rest of each message agrees.
	after := got.Cursor
	copiedEvents := swept.Event // the newest event before the copy
	for _, step := range []struct {
		until time.Time
		fired int
		texts []string
	}{
		{at(24, 10, 30), 1, []string{"see you at half past"}},
		{at(24, 11, 50), 2, []string{"Reminder: “Team meeting” in Office move starts at 12:00 UTC"}},
	} {
		o.until(step.until)
		for _, db := range []*sqlstore.DB{src, pg} {
			if n, more, err := db.FireDue(ctx); err != nil || more || n != step.fired {
				t.Fatalf("at %s fired %d (more %v, %v), want %d", step.until.Format("15:04"), n, more, err, step.fired)
			}
		}
		w, err := src.FindMessages(ctx, o.bob.ID, &after, 0)
		if err != nil {
			t.Fatal(err)
		}
		g, err := pg.FindMessages(ctx, o.bob.ID, &after, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := texts(g); strings.Join(got, "|") != strings.Join(step.texts, "|") || g.Missed != w.Missed {
			t.Fatalf("at %s bob got %q on PostgreSQL, missed %d; want %q, missed %d", step.until.Format("15:04"), got, g.Missed, step.texts, w.Missed)
		}
		// The batch as JSON, the ids of events made since the copy left out.
		newEvents := func(b *tidings.MessageBatch, above int64) any {
			data, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				Messages []map[string]any `json:"messages"`
				Cursor   string           `json:"cursor"`
				Missed   int64            `json:"missed"`
			}
			if err := json.Unmarshal(data, &c); err != nil {
				t.Fatal(err)
			}
			for _, m := range c.Messages {
				if id := int64(m["event"].(float64)); id > copiedEvents {
					if id <= above {
						t.Fatalf("at %s a new event got id %d, not above %d", step.until.Format("15:04"), id, above)
					}
					delete(m, "event")
				}
			}
			return c
		}
		sameJSON(t, "bob's messages at "+step.until.Format("15:04"), newEvents(g, lastID["events"]), newEvents(w, copiedEvents))
		after = g.Cursor
	}

	// Credentials made on SQLite work on PostgreSQL.
	if a, err := pg.AuthenticateSession(ctx, session.Secret); err != nil || a.User.Login != "bob" {
		t.Fatalf("bob's session on PostgreSQL: %v %v", a, err)
	}
	if a, err := pg.AuthenticateToken(ctx, bobToken.Secret); err != nil || a.User.Login != "bob" {
		t.Fatalf("bob's token on PostgreSQL: %v %v", a, err)
	}
	if a, err := pg.AuthenticateToken(ctx, publishToken.Secret); err != nil || a.User.Login != "alice" || !a.HasScope(tidings.ScopePublish) {
		t.Fatalf("alice's publish token on PostgreSQL: %v %v", a, err)
	}
	if _, _, err := pg.Login(ctx, "carol", "password1"); err != nil {
		t.Fatalf("carol's password on PostgreSQL: %v", err)
	}
	if _, err := pg.AuthenticateToken(ctx, daveToken.Secret); code(err) != tidings.EUNAUTHORIZED {
		t.Fatalf("the deleted user's token: %v", err)
	}

	// New rows get ids past every id the source ever gave.
	above := func(what string, id int64) {
		t.Helper()
		if id <= lastID[what] {
			t.Errorf("a new %s got id %d on PostgreSQL; the source gave up to %d", what, id, lastID[what])
		}
	}
	o.db = pg
	above("users", MustCreateUser(t, pg, "erin", false).ID)
	tok := &tidings.Token{UserID: o.bob.ID, Name: "phone"}
	if err := pg.CreateToken(sys, tok); err != nil {
		t.Fatal(err)
	}
	above("tokens", tok.ID)
	above("projects", MustCreateProject(t, pg, o.alice, "Cellar").ID)
	above("todos", o.mustCreateTodo(t, o.alice, tidings.Todo{Title: "New on PostgreSQL"}).ID)
	above("notes", o.mustCreateNote(t, o.alice, tidings.Note{Title: "New on PostgreSQL"}).ID)
	above("events", publish(t, pg, o.alice, tidings.Publication{Recipients: []string{"bob"}, Text: "hello from PostgreSQL"}).Event)

	// A second copy into the target, no longer empty, is refused and
	// changes nothing.
	before := countRows(t, rawDB(t, pg))
	if _, err := sqlstore.Copy(ctx, src, pg); err == nil || !strings.Contains(err.Error(), "not empty") || !strings.Contains(err.Error(), "users") {
		t.Fatalf("a copy into a target with users: %v", err)
	}
	if after := countRows(t, rawDB(t, pg)); !equalCounts(after, before) {
		t.Fatalf("the refused copy changed the target: %v, before %v", after, before)
	}
	if e, err := pg.CurrentCursor(ctx, o.bob.ID); err != nil || e.Epoch != src.Epoch() {
		t.Fatalf("after the refused copy: %v %v", e, err)
	}
}

func equalCounts(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestCopyRefusesWhatItCannotCopy: a source at another schema version, a
// target that is not PostgreSQL.
func TestCopyRefusesWhatItCannotCopy(t *testing.T) {
	copyTarget(t)
	ctx := context.Background()
	old := sqlstore.NewDB(filepath.Join(t.TempDir(), "old.db"))
	sqlstore.SetMaxVersion(old, 2)
	if err := old.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { old.Close() })
	dst := MustOpenDB(t)
	if _, err := sqlstore.Copy(ctx, old, dst); err == nil || !strings.Contains(err.Error(), "schema version 2") {
		t.Fatalf("a copy from schema 2: %v", err)
	}
	if counts := countRows(t, rawDB(t, dst)); counts["meta"] != 1 {
		t.Fatalf("the refused copy left %v", counts)
	}
	sqlite := mustOpen(t, filepath.Join(t.TempDir(), "other.db"))
	if _, err := sqlstore.Copy(ctx, sqlite, sqlite); err == nil || !strings.Contains(err.Error(), "not a PostgreSQL database") {
		t.Fatalf("a copy into SQLite: %v", err)
	}
}
