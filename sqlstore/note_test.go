package sqlstore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tidings/tidings"
)

func (o *office) mustCreateNote(t *testing.T, by *tidings.User, note tidings.Note) *tidings.Note {
	t.Helper()
	if note.Project.ID == 0 {
		note.Project.ID = o.project.ID
	}
	if err := o.db.CreateNote(as(by), &note); err != nil {
		t.Fatal(err)
	}
	return &note
}

func TestNoteLifecycle(t *testing.T) {
	o := newOffice(t)
	if _, err := o.db.UpdateSettings(as(o.carol), tidings.SettingsUpdate{Records: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	alice, bob, carol, dave := newInbox(t, o.db, o.alice), newInbox(t, o.db, o.bob), newInbox(t, o.db, o.carol), newInbox(t, o.db, o.dave)

	note := o.mustCreateNote(t, o.alice, tidings.Note{Title: "Floor plan", Body: "Desks by the window."})
	if note.ID == 0 || note.Project.Name != "Office move" || note.CreatedAt.IsZero() {
		t.Fatalf("created %+v", note)
	}
	m := bob.one()
	wantText(t, m, "Alice Adams added the note “Floor plan” in Office move")
	wantDetails(t, m, "title|Title|-|Floor plan", "body|Text|-|Desks by the window.")
	if m.Module != "note" || m.Item.URL != "/notes/"+itoa(note.ID) || m.Urgent {
		t.Fatalf("message %+v", m)
	}
	alice.none()
	carol.none() // records off
	dave.none()  // not a member

	o.clock.Advance(time.Second)
	upd, err := o.db.UpdateNote(as(o.bob), note.ID, tidings.NoteUpdate{Body: ptr("Desks by the door.")})
	if err != nil {
		t.Fatal(err)
	}
	if upd.Body != "Desks by the door." || upd.Title != "Floor plan" || !upd.UpdatedAt.After(upd.CreatedAt) {
		t.Fatalf("updated %+v", upd)
	}
	m = alice.one()
	wantText(t, m, "Bob Brown changed the text of “Floor plan” in Office move")
	wantDetails(t, m, "body|Text|Desks by the window.|Desks by the door.")
	bob.none()

	if _, err := o.db.UpdateNote(as(o.bob), note.ID, tidings.NoteUpdate{Title: ptr("Plan"), Body: ptr("")}); err != nil {
		t.Fatal(err)
	}
	m = alice.one()
	wantText(t, m, "Bob Brown changed “Plan” in Office move: title, text")
	wantDetails(t, m, "title|Title|Floor plan|Plan", "body|Text|Desks by the door.|-")

	got, err := o.db.FindNoteByID(as(o.carol), note.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != "Plan" || got.Body != "" {
		t.Fatalf("found %+v", got)
	}

	if err := o.db.DeleteNote(as(o.carol), note.ID); err != nil {
		t.Fatal(err)
	}
	for _, in := range []*inbox{alice, bob} {
		m := in.one()
		wantText(t, m, "Carol Clark deleted the note “Plan” in Office move")
		if m.Item.URL != "" || m.Process != "delete" {
			t.Fatalf("message %+v", m)
		}
	}
	carol.none()
	_, err = o.db.FindNoteByID(as(o.alice), note.ID)
	wantCode(t, err, tidings.ENOTFOUND, "")
}

func TestNoteBadInput(t *testing.T) {
	o := newOffice(t)
	bob := newInbox(t, o.db, o.bob)
	for _, tc := range []struct {
		note  tidings.Note
		field string
	}{
		{tidings.Note{}, "title"},
		{tidings.Note{Title: strings.Repeat("é", 201)}, "title"},
		{tidings.Note{Title: "t", Body: strings.Repeat("x", 20001)}, "body"},
	} {
		tc.note.Project.ID = o.project.ID
		wantCode(t, o.db.CreateNote(as(o.alice), &tc.note), tidings.EINVALID, tc.field)
	}
	notes, _, err := o.db.FindNotes(as(o.alice), tidings.NoteFilter{ProjectID: o.project.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 0 {
		t.Fatalf("stored %d notes", len(notes))
	}
	bob.none()

	note := o.mustCreateNote(t, o.alice, tidings.Note{Title: strings.Repeat("é", 200), Body: strings.Repeat("x", 20000)})
	bob.read()
	_, err = o.db.UpdateNote(as(o.alice), note.ID, tidings.NoteUpdate{Title: ptr(" ")})
	wantCode(t, err, tidings.EINVALID, "title")
	bob.none()
}

func TestNoteNotFound(t *testing.T) {
	o := newOffice(t)
	note := o.mustCreateNote(t, o.alice, tidings.Note{Title: "Floor plan"})
	bob := newInbox(t, o.db, o.bob)
	dave := as(o.dave)
	_, err := o.db.FindNoteByID(dave, note.ID)
	wantCode(t, err, tidings.ENOTFOUND, "")
	_, _, err = o.db.FindNotes(dave, tidings.NoteFilter{ProjectID: o.project.ID})
	wantCode(t, err, tidings.ENOTFOUND, "")
	_, _, err = o.db.FindNotes(dave, tidings.NoteFilter{ProjectID: o.project.ID + 100})
	wantCode(t, err, tidings.ENOTFOUND, "")
	wantCode(t, o.db.CreateNote(dave, &tidings.Note{Project: tidings.ProjectRef{ID: o.project.ID}, Title: "x"}), tidings.ENOTFOUND, "")
	_, err = o.db.UpdateNote(dave, note.ID, tidings.NoteUpdate{Title: ptr("x")})
	wantCode(t, err, tidings.ENOTFOUND, "")
	wantCode(t, o.db.DeleteNote(dave, note.ID), tidings.ENOTFOUND, "")
	_, err = o.db.FindNoteByID(as(o.alice), note.ID+1)
	wantCode(t, err, tidings.ENOTFOUND, "")
	if got, err := o.db.FindNoteByID(as(o.bob), note.ID); err != nil || got.Title != "Floor plan" {
		t.Fatalf("note after attempts: %+v, %v", got, err)
	}
	bob.none()
}

func TestFindNotes(t *testing.T) {
	o := newOffice(t)
	for _, title := range []string{"a", "b", "c"} {
		o.mustCreateNote(t, o.alice, tidings.Note{Title: title})
	}
	var got []string
	after := ""
	for page := 0; ; page++ {
		notes, next, err := o.db.FindNotes(as(o.carol), tidings.NoteFilter{ProjectID: o.project.ID, Limit: 2, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range notes {
			got = append(got, n.Title)
		}
		if next == "" {
			break
		}
		if page > 3 {
			t.Fatal("paging does not end")
		}
		after = next
	}
	if strings.Join(got, "") != "abc" {
		t.Fatalf("pages = %q", got)
	}
}
