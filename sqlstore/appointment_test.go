package sqlstore_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tidings/tidings"
)

// at returns a time on 2026-11-30 (a week after the test clock's start), or
// on another day of November 2026.
func at(day, hour, minute int) time.Time {
	return time.Date(2026, 11, day, hour, minute, 0, 0, time.UTC)
}

func (o *office) mustCreateAppointment(t *testing.T, by *tidings.User, a tidings.Appointment) *tidings.Appointment {
	t.Helper()
	if a.Project.ID == 0 {
		a.Project.ID = o.project.ID
	}
	if err := o.db.CreateAppointment(as(by), &a); err != nil {
		t.Fatal(err)
	}
	return &a
}

func TestCreateAppointment(t *testing.T) {
	o := newOffice(t)
	alice, bob, carol, dave := newInbox(t, o.db, o.alice), newInbox(t, o.db, o.bob), newInbox(t, o.db, o.carol), newInbox(t, o.db, o.dave)
	berlin := time.FixedZone("CET", 3600)
	a := o.mustCreateAppointment(t, o.alice, tidings.Appointment{
		Title: "Team meeting", Start: at(30, 14, 0).In(berlin), End: at(30, 15, 0),
	})
	if strings.Join(a.Participants, ",") != "alice" || a.Start != at(30, 14, 0) || a.Project.Name != "Office move" {
		t.Fatalf("created %+v", a)
	}
	for _, in := range []*inbox{bob, carol} {
		m := in.one()
		wantText(t, m, "Alice Adams added the appointment “Team meeting” in Office move")
		wantDetails(t, m, "title|Title|-|Team meeting", "start|Start|-|2026-11-30 14:00 UTC",
			"end|End|-|2026-11-30 15:00 UTC", "participants|Participants|-|Alice Adams")
		if m.Module != "appointment" || m.Item.URL != "/appointments/"+itoa(a.ID) {
			t.Fatalf("message %+v", m)
		}
	}
	alice.none()
	dave.none()

	got, err := o.db.FindAppointmentByID(as(o.carol), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var shape map[string]any
	if err := json.Unmarshal(b, &shape); err != nil {
		t.Fatal(err)
	}
	if shape["start"] != "2026-11-30T14:00:00Z" || shape["end"] != "2026-11-30T15:00:00Z" ||
		len(shape) != 9 || shape["project"].(map[string]any)["name"] != "Office move" {
		t.Fatalf("JSON %s", b)
	}

	// Participants are members, once each, in login order.
	b2 := o.mustCreateAppointment(t, o.bob, tidings.Appointment{
		Title: "Packing", Start: at(28, 9, 0), End: at(28, 17, 0), Participants: []string{"carol", "bob", "carol"},
	})
	if strings.Join(b2.Participants, ",") != "bob,carol" {
		t.Fatalf("participants %q", b2.Participants)
	}
	wantDetails(t, alice.one(), "title|Title|-|Packing", "start|Start|-|2026-11-28 09:00 UTC",
		"end|End|-|2026-11-28 17:00 UTC", "participants|Participants|-|Bob Brown, Carol Clark")

	// An explicit empty list is nobody.
	c := o.mustCreateAppointment(t, o.bob, tidings.Appointment{Title: "Open house", Start: at(29, 9, 0), End: at(29, 10, 0), Participants: []string{}})
	if c.Participants == nil || len(c.Participants) != 0 {
		t.Fatalf("participants %#v", c.Participants)
	}
}

func TestAppointmentBadInput(t *testing.T) {
	o := newOffice(t)
	bob := newInbox(t, o.db, o.bob)
	start, end := at(30, 14, 0), at(30, 15, 0)
	for _, tc := range []struct {
		a     tidings.Appointment
		field string
	}{
		{tidings.Appointment{Start: start, End: end}, "title"},
		{tidings.Appointment{Title: strings.Repeat("x", 201), Start: start, End: end}, "title"},
		{tidings.Appointment{Title: "t", Description: strings.Repeat("x", 20001), Start: start, End: end}, "description"},
		{tidings.Appointment{Title: "t", End: end}, "start"},
		{tidings.Appointment{Title: "t", Start: start}, "end"},
		{tidings.Appointment{Title: "t", Start: start, End: start}, "end"},
		{tidings.Appointment{Title: "t", Start: end, End: start}, "end"},
		{tidings.Appointment{Title: "t", Start: start, End: end, Participants: []string{"bob", "dave"}}, "participants"},
		{tidings.Appointment{Title: "t", Start: start, End: end, Participants: []string{"nobody"}}, "participants"},
	} {
		tc.a.Project.ID = o.project.ID
		wantCode(t, o.db.CreateAppointment(as(o.alice), &tc.a), tidings.EINVALID, tc.field)
	}
	list, _, err := o.db.FindAppointments(as(o.alice), tidings.AppointmentFilter{ProjectID: o.project.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Fatalf("stored %d appointments", len(list))
	}
	bob.none()

	a := o.mustCreateAppointment(t, o.alice, tidings.Appointment{Title: "Team meeting", Start: start, End: end})
	bob.read()
	for _, tc := range []struct {
		upd   tidings.AppointmentUpdate
		field string
	}{
		{tidings.AppointmentUpdate{Title: ptr("")}, "title"},
		{tidings.AppointmentUpdate{End: ptr(start.Add(-time.Hour))}, "end"},
		{tidings.AppointmentUpdate{Start: ptr(end)}, "end"},
		{tidings.AppointmentUpdate{Participants: &[]string{"dave"}}, "participants"},
	} {
		_, err := o.db.UpdateAppointment(as(o.alice), a.ID, tc.upd)
		wantCode(t, err, tidings.EINVALID, tc.field)
	}
	got, err := o.db.FindAppointmentByID(as(o.alice), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Start.Equal(start) || !got.End.Equal(end) || strings.Join(got.Participants, ",") != "alice" {
		t.Fatalf("appointment changed: %+v", got)
	}
	bob.none()
	_, _, err = o.db.FindAppointments(as(o.alice), tidings.AppointmentFilter{ProjectID: o.project.ID, From: end, To: start})
	wantCode(t, err, tidings.EINVALID, "to")
}

func TestUpdateAppointment(t *testing.T) {
	o := newOffice(t)
	a := o.mustCreateAppointment(t, o.alice, tidings.Appointment{Title: "Team meeting", Start: at(30, 14, 0), End: at(30, 15, 0)})
	alice, bob := newInbox(t, o.db, o.alice), newInbox(t, o.db, o.bob)

	got, err := o.db.UpdateAppointment(as(o.alice), a.ID, tidings.AppointmentUpdate{Start: ptr(at(30, 13, 30))})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Start.Equal(at(30, 13, 30)) || !got.End.Equal(at(30, 15, 0)) || got.Title != "Team meeting" {
		t.Fatalf("updated %+v", got)
	}
	m := bob.one()
	wantText(t, m, "Alice Adams changed the start of “Team meeting” in Office move from 2026-11-30 14:00 UTC to 2026-11-30 13:30 UTC")
	wantDetails(t, m, "start|Start|2026-11-30 14:00 UTC|2026-11-30 13:30 UTC")

	if _, err := o.db.UpdateAppointment(as(o.bob), a.ID, tidings.AppointmentUpdate{
		Start: ptr(at(30, 16, 0)), End: ptr(at(30, 17, 0)), Participants: &[]string{"alice", "bob"},
	}); err != nil {
		t.Fatal(err)
	}
	m = alice.one()
	wantText(t, m, "Bob Brown changed “Team meeting” in Office move: start, end, participants")
	wantDetails(t, m, "start|Start|2026-11-30 13:30 UTC|2026-11-30 16:00 UTC", "end|End|2026-11-30 15:00 UTC|2026-11-30 17:00 UTC",
		"participants|Participants|Alice Adams|Alice Adams, Bob Brown")

	// Nothing changed: no message.
	if _, err := o.db.UpdateAppointment(as(o.bob), a.ID, tidings.AppointmentUpdate{Participants: &[]string{"bob", "alice"}, Title: ptr("Team meeting")}); err != nil {
		t.Fatal(err)
	}
	alice.none()

	if err := o.db.DeleteAppointment(as(o.bob), a.ID); err != nil {
		t.Fatal(err)
	}
	m = alice.one()
	wantText(t, m, "Bob Brown deleted the appointment “Team meeting” in Office move")
	if m.Item.URL != "" {
		t.Fatalf("a deleted appointment has a link: %q", m.Item.URL)
	}
	bob.none()
}

func TestAppointmentNotFound(t *testing.T) {
	o := newOffice(t)
	a := o.mustCreateAppointment(t, o.alice, tidings.Appointment{Title: "Team meeting", Start: at(30, 14, 0), End: at(30, 15, 0)})
	bob := newInbox(t, o.db, o.bob)
	dave := as(o.dave)
	_, err := o.db.FindAppointmentByID(dave, a.ID)
	wantCode(t, err, tidings.ENOTFOUND, "")
	_, _, err = o.db.FindAppointments(dave, tidings.AppointmentFilter{ProjectID: o.project.ID})
	wantCode(t, err, tidings.ENOTFOUND, "")
	err = o.db.CreateAppointment(dave, &tidings.Appointment{Project: tidings.ProjectRef{ID: o.project.ID}, Title: "x", Start: at(30, 9, 0), End: at(30, 10, 0)})
	wantCode(t, err, tidings.ENOTFOUND, "")
	_, err = o.db.UpdateAppointment(dave, a.ID, tidings.AppointmentUpdate{Title: ptr("x")})
	wantCode(t, err, tidings.ENOTFOUND, "")
	wantCode(t, o.db.DeleteAppointment(dave, a.ID), tidings.ENOTFOUND, "")
	_, err = o.db.FindAppointmentByID(as(o.alice), a.ID+1)
	wantCode(t, err, tidings.ENOTFOUND, "")
	if got, err := o.db.FindAppointmentByID(as(o.bob), a.ID); err != nil || got.Title != "Team meeting" {
		t.Fatalf("appointment after attempts: %+v, %v", got, err)
	}
	bob.none()
}

func TestFindAppointments(t *testing.T) {
	o := newOffice(t)
	for _, a := range []tidings.Appointment{
		{Title: "late", Start: at(30, 16, 0), End: at(30, 17, 0)},
		{Title: "early", Start: at(30, 8, 0), End: at(30, 9, 0)},
		{Title: "long", Start: at(29, 8, 0), End: at(30, 12, 0)},
		{Title: "noon", Start: at(30, 12, 0), End: at(30, 13, 0)},
		{Title: "next week", Start: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)},
	} {
		o.mustCreateAppointment(t, o.alice, a)
	}
	garden := MustCreateProject(t, o.db, o.carol, "Garden")
	o.mustCreateAppointment(t, o.carol, tidings.Appointment{Project: tidings.ProjectRef{ID: garden.ID}, Title: "digging", Start: at(30, 10, 0), End: at(30, 11, 0)})

	check := func(u *tidings.User, f tidings.AppointmentFilter, want string) string {
		t.Helper()
		list, next, err := o.db.FindAppointments(as(u), f)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range list {
			got = append(got, a.Title)
		}
		if strings.Join(got, ", ") != want {
			t.Fatalf("%+v: %q, want %q", f, got, want)
		}
		return next
	}
	p := o.project.ID
	check(o.bob, tidings.AppointmentFilter{ProjectID: p}, "long, early, noon, late, next week")
	// The day of 2026-11-30: what overlaps it.
	day := tidings.AppointmentFilter{ProjectID: p, From: at(30, 0, 0), To: at(30, 0, 0).AddDate(0, 0, 1)}
	check(o.bob, day, "long, early, noon, late")
	check(o.bob, tidings.AppointmentFilter{ProjectID: p, From: at(30, 12, 0)}, "noon, late, next week")
	check(o.bob, tidings.AppointmentFilter{ProjectID: p, To: at(30, 12, 0)}, "long, early")
	// All the caller's projects.
	check(o.carol, tidings.AppointmentFilter{From: at(30, 9, 30), To: at(30, 12, 30)}, "long, digging, noon")

	day.Limit = 3
	next := check(o.bob, day, "long, early, noon")
	day.After = next
	if next = check(o.bob, day, "late"); next != "" {
		t.Fatalf("next after the last page: %q", next)
	}
}
