package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/tidings/tidings"
	"github.com/tidings/tidings/sqlstore"
)

// fire runs the scheduler's work once, as RunScheduler would at this moment,
// and returns how many messages it delivered.
func (o *office) fire(t *testing.T) int {
	t.Helper()
	n, more, err := o.db.FireDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if more {
		t.Fatal("more due than one batch")
	}
	return n
}

// until moves the clock to the given time.
func (o *office) until(when time.Time) { o.clock.Advance(when.Sub(o.clock.Now())) }

func (o *office) nextDue(t *testing.T) (time.Time, bool) {
	t.Helper()
	next, ok, err := o.db.NextDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return next, ok
}

// The test clock starts at 2026-11-24 10:00 UTC: a meeting at noon that
// day, for an hour.
var (
	noon    = at(24, 12, 0)
	onePM   = at(24, 13, 0)
	meeting = tidings.Appointment{Title: "Team meeting", Start: noon, End: onePM, Participants: []string{"alice", "bob"}}
)

func TestReminderFiresAtStartMinusLead(t *testing.T) {
	o := newOffice(t)
	a := o.mustCreateAppointment(t, o.alice, meeting)
	alice, bob, carol := newInbox(t, o.db, o.alice), newInbox(t, o.db, o.bob), newInbox(t, o.db, o.carol)

	if next, ok := o.nextDue(t); !ok || !next.Equal(at(24, 11, 45)) {
		t.Fatalf("next due %v %v, want 11:45", next, ok)
	}
	o.until(at(24, 11, 45).Add(-time.Millisecond))
	if n := o.fire(t); n != 0 {
		t.Fatalf("fired %d before the lead", n)
	}
	bob.none()

	o.until(at(24, 11, 45))
	if n := o.fire(t); n != 2 {
		t.Fatalf("fired %d, want 2", n)
	}
	// The participants are reminded, the one who made the appointment too.
	for _, in := range []*inbox{alice, bob} {
		m := in.one()
		wantText(t, m, "Reminder: “Team meeting” in Office move starts at 12:00 UTC")
		if m.Process != "remind" || m.Module != "appointment" || m.Actor != nil || m.Urgent ||
			*m.Item != (tidings.ItemRef{ID: a.ID, Name: "Team meeting", URL: "/appointments/" + itoa(a.ID)}) ||
			*m.Project != (tidings.ProjectRef{ID: o.project.ID, Name: "Office move"}) ||
			!m.ValidFrom.Equal(at(24, 11, 45)) || !m.ValidUntil.Equal(onePM) {
			t.Fatalf("reminder %+v", m)
		}
	}
	carol.none() // a member, not a participant

	// Once only.
	o.until(at(24, 11, 50))
	if n := o.fire(t); n != 0 {
		t.Fatalf("fired %d again", n)
	}
	if _, ok := o.nextDue(t); ok {
		t.Fatal("something is still due")
	}
	// An edit after the reminder fired does not repeat it.
	if _, err := o.db.UpdateAppointment(as(o.carol), a.ID, tidings.AppointmentUpdate{Title: ptr("Weekly meeting")}); err != nil {
		t.Fatal(err)
	}
	wantText(t, bob.one(), "Carol Clark renamed the appointment “Team meeting” to “Weekly meeting” in Office move")
	o.fire(t)
	bob.none()

	// Still deliverable until the appointment ends, not after.
	o.until(onePM.Add(-time.Second))
	b, err := o.db.FindMessages(context.Background(), o.alice.ID, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Messages) != 1 || b.Messages[0].Process != "remind" {
		t.Fatalf("at 12:59:59 alice has %q", texts(b))
	}
	o.until(onePM)
	if b, err = o.db.FindMessages(context.Background(), o.alice.ID, nil, 0); err != nil || len(b.Messages) != 0 {
		t.Fatalf("at 13:00 alice has %q (%v)", texts(b), err)
	}
}

func TestReminderLeadFromSettings(t *testing.T) {
	o := newOffice(t)
	if _, err := o.db.UpdateSettings(as(o.bob), tidings.SettingsUpdate{ReminderLeadMinutes: ptr(60)}); err != nil {
		t.Fatal(err)
	}
	o.mustCreateAppointment(t, o.alice, meeting)
	alice, bob := newInbox(t, o.db, o.alice), newInbox(t, o.db, o.bob)

	o.until(at(24, 11, 0))
	o.fire(t)
	wantText(t, bob.one(), "Reminder: “Team meeting” in Office move starts at 12:00 UTC")
	alice.none()

	// Alice changes her lead: her reminder moves.
	if _, err := o.db.UpdateSettings(as(o.alice), tidings.SettingsUpdate{ReminderLeadMinutes: ptr(5)}); err != nil {
		t.Fatal(err)
	}
	o.until(at(24, 11, 45))
	o.fire(t)
	alice.none()
	o.until(at(24, 11, 55))
	o.fire(t)
	alice.one()

	// A lead that has already passed reminds at once, but never twice.
	o.mustCreateAppointment(t, o.alice, tidings.Appointment{Title: "Lunch", Start: at(24, 12, 30), End: onePM})
	if _, err := o.db.UpdateSettings(as(o.alice), tidings.SettingsUpdate{ReminderLeadMinutes: ptr(60)}); err != nil {
		t.Fatal(err)
	}
	wantText(t, alice.one(), "Reminder: “Lunch” in Office move starts at 12:30 UTC")
	if _, err := o.db.UpdateSettings(as(o.alice), tidings.SettingsUpdate{ReminderLeadMinutes: ptr(45)}); err != nil {
		t.Fatal(err)
	}
	o.fire(t)
	alice.none()
}

func TestReminderServerDefaultLead(t *testing.T) {
	clock := newTestClock()
	db := MustOpenDB(t, withClock(clock), func(db *sqlstore.DB) { db.ReminderLead = 30 * time.Minute })
	alice := mustCreatePerson(t, db, "alice", "Alice Adams")
	p := MustCreateProject(t, db, alice, "Office move")
	a := &tidings.Appointment{Project: tidings.ProjectRef{ID: p.ID}, Title: "Team meeting", Start: noon, End: onePM}
	if err := db.CreateAppointment(as(alice), a); err != nil {
		t.Fatal(err)
	}
	next, ok, err := db.NextDue(context.Background())
	if err != nil || !ok || !next.Equal(at(24, 11, 30)) {
		t.Fatalf("next due %v %v %v, want 11:30", next, ok, err)
	}
}

func TestReminderAtOnce(t *testing.T) {
	o := newOffice(t)
	alice, bob := newInbox(t, o.db, o.alice), newInbox(t, o.db, o.bob)
	// Ten minutes ahead, inside the lead: reminded at once, without the
	// scheduler.
	soon := tidings.Appointment{Title: "Stand-up", Start: at(24, 10, 10), End: at(24, 10, 20), Participants: []string{"alice", "bob"}}
	o.mustCreateAppointment(t, o.alice, soon)
	msgs := bob.read()
	if len(msgs) != 2 || msgs[0].Process != "add" || msgs[1].Process != "remind" {
		t.Fatalf("bob got %q", msgTexts(msgs))
	}
	wantText(t, msgs[1], "Reminder: “Stand-up” in Office move starts at 10:10 UTC")
	wantText(t, alice.one(), "Reminder: “Stand-up” in Office move starts at 10:10 UTC")

	// Already started: no reminder at all.
	past := tidings.Appointment{Title: "Breakfast", Start: at(24, 9, 50), End: at(24, 10, 30), Participants: []string{"alice", "bob"}}
	o.mustCreateAppointment(t, o.alice, past)
	wantText(t, bob.one(), "Alice Adams added the appointment “Breakfast” in Office move")
	alice.none()
	if n := o.fire(t); n != 0 {
		t.Fatalf("fired %d", n)
	}
	alice.none()
}

func TestReminderFollowsItsAppointment(t *testing.T) {
	o := newOffice(t)
	a := o.mustCreateAppointment(t, o.alice, meeting)
	deleted := o.mustCreateAppointment(t, o.alice, tidings.Appointment{Title: "Cancelled", Start: noon, End: onePM, Participants: []string{"alice", "bob"}})
	alice, bob := newInbox(t, o.db, o.alice), newInbox(t, o.db, o.bob)

	// Moved to two o'clock.
	if _, err := o.db.UpdateAppointment(as(o.alice), a.ID, tidings.AppointmentUpdate{Start: ptr(at(24, 14, 0)), End: ptr(at(24, 15, 0))}); err != nil {
		t.Fatal(err)
	}
	bob.one()
	if err := o.db.DeleteAppointment(as(o.alice), deleted.ID); err != nil {
		t.Fatal(err)
	}
	bob.one()
	if next, ok := o.nextDue(t); !ok || !next.Equal(at(24, 13, 45)) {
		t.Fatalf("next due %v %v, want 13:45", next, ok)
	}
	o.until(at(24, 11, 45))
	if n := o.fire(t); n != 0 {
		t.Fatalf("fired %d at the old time", n)
	}
	bob.none()
	alice.none()

	o.until(at(24, 13, 45))
	if n := o.fire(t); n != 2 {
		t.Fatalf("fired %d at the new time, want 2", n)
	}
	m := bob.one()
	wantText(t, m, "Reminder: “Team meeting” in Office move starts at 14:00 UTC")
	if !m.ValidUntil.Equal(at(24, 15, 0)) {
		t.Fatalf("valid until %v, want the new end", m.ValidUntil)
	}
	alice.one()

	// Moved again after it fired, inside the lead: reminded again, at once.
	if _, err := o.db.UpdateAppointment(as(o.alice), a.ID, tidings.AppointmentUpdate{Start: ptr(at(24, 13, 50))}); err != nil {
		t.Fatal(err)
	}
	msgs := bob.read()
	if len(msgs) != 2 || msgs[1].Text != "Reminder: “Team meeting” in Office move starts at 13:50 UTC" {
		t.Fatalf("bob got %q", msgTexts(msgs))
	}
}

func TestReminderOnlyForParticipants(t *testing.T) {
	o := newOffice(t)
	a := o.mustCreateAppointment(t, o.alice, meeting)
	bob, carol := newInbox(t, o.db, o.bob), newInbox(t, o.db, o.carol)

	// Bob is dropped, Carol joins.
	if _, err := o.db.UpdateAppointment(as(o.alice), a.ID, tidings.AppointmentUpdate{Participants: &[]string{"alice", "carol"}}); err != nil {
		t.Fatal(err)
	}
	m := bob.one()
	wantText(t, m, "Alice Adams changed the participants of “Team meeting” in Office move from Alice Adams, Bob Brown to Alice Adams, Carol Clark")
	carol.one()
	o.until(at(24, 11, 45))
	if n := o.fire(t); n != 2 {
		t.Fatalf("fired %d, want 2", n)
	}
	bob.none()
	wantText(t, carol.one(), "Reminder: “Team meeting” in Office move starts at 12:00 UTC")
}

func TestReminderChecksRecipientWhenDue(t *testing.T) {
	o := newOffice(t)
	erin := mustCreatePerson(t, o.db, "erin", "Erin Evans")
	if _, err := o.db.SetMember(as(o.alice), o.project.ID, "erin", tidings.ProjectMember); err != nil {
		t.Fatal(err)
	}
	m := meeting
	m.Participants = []string{"alice", "bob", "carol", "erin"}
	a := o.mustCreateAppointment(t, o.alice, m)
	alice, bob, carol, erinBox := newInbox(t, o.db, o.alice), newInbox(t, o.db, o.bob), newInbox(t, o.db, o.carol), newInbox(t, o.db, erin)

	// Meanwhile Bob leaves the project, Carol switches reminders off and
	// Erin mutes the project.
	if err := o.db.RemoveMember(as(o.bob), o.project.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := o.db.UpdateSettings(as(o.carol), tidings.SettingsUpdate{Reminders: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.db.UpdateSettings(as(erin), tidings.SettingsUpdate{MutedProjects: &[]int64{o.project.ID}}); err != nil {
		t.Fatal(err)
	}
	alice.read()
	carol.read()
	bob.read()
	erinBox.read()

	o.until(at(24, 11, 45))
	if n := o.fire(t); n != 1 {
		t.Fatalf("fired %d, want 1", n)
	}
	alice.one()
	bob.none()
	carol.none()
	erinBox.none()

	got, err := o.db.FindAppointmentByID(as(o.alice), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Participants) != 3 || got.Participants[1] != "carol" {
		t.Fatalf("participants %q: the former member should be gone", got.Participants)
	}
	// Nothing more about the project reaches the former member.
	if err := o.db.DeleteAppointment(as(o.alice), a.ID); err != nil {
		t.Fatal(err)
	}
	bob.none()
}

func TestReminderInRecipientsTimeZone(t *testing.T) {
	o := newOffice(t)
	sys := tidings.NewSystemContext(context.Background())
	if _, err := o.db.UpdateUser(sys, "bob", tidings.UserUpdate{TimeZone: ptr("Europe/Berlin")}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.db.UpdateSettings(as(o.alice), tidings.SettingsUpdate{ReminderLeadMinutes: ptr(tidings.MaxReminderLeadMinutes)}); err != nil {
		t.Fatal(err)
	}
	alice, bob := newInbox(t, o.db, o.alice), newInbox(t, o.db, o.bob)
	o.mustCreateAppointment(t, o.alice, tidings.Appointment{Title: "Team meeting", Start: at(25, 12, 0), End: at(25, 13, 0), Participants: []string{"alice", "bob"}})
	// Alice's week of lead has passed: reminded at once, with the date.
	wantText(t, alice.one(), "Reminder: “Team meeting” in Office move starts on 2026-11-25 at 12:00 UTC")
	bob.read()
	o.until(at(25, 11, 45))
	o.fire(t)
	wantText(t, bob.one(), "Reminder: “Team meeting” in Office move starts at 13:00 CET")
	alice.none()
}

func TestDeleteProjectDeletesItems(t *testing.T) {
	o := newOffice(t)
	todo := o.mustCreateTodo(t, o.alice, tidings.Todo{Title: "Fix the printer"})
	note := o.mustCreateNote(t, o.alice, tidings.Note{Title: "Floor plan"})
	a := o.mustCreateAppointment(t, o.alice, meeting)
	if _, ok := o.nextDue(t); !ok {
		t.Fatal("no reminder pending")
	}
	alice, bob := newInbox(t, o.db, o.alice), newInbox(t, o.db, o.bob)
	if err := o.db.DeleteProject(as(o.alice), o.project.ID); err != nil {
		t.Fatal(err)
	}
	wantText(t, bob.one(), "Alice Adams deleted the project “Office move”")

	sys := tidings.NewSystemContext(context.Background())
	_, err := o.db.FindTodoByID(sys, todo.ID)
	wantCode(t, err, tidings.ENOTFOUND, "")
	_, err = o.db.FindNoteByID(sys, note.ID)
	wantCode(t, err, tidings.ENOTFOUND, "")
	_, err = o.db.FindAppointmentByID(sys, a.ID)
	wantCode(t, err, tidings.ENOTFOUND, "")
	if next, ok := o.nextDue(t); ok {
		t.Fatalf("still due at %v", next)
	}
	o.until(at(24, 11, 45))
	if n := o.fire(t); n != 0 {
		t.Fatalf("fired %d", n)
	}
	alice.none()
	bob.none()
}
