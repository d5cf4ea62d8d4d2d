package sqlstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tidings/tidings"
)

func (o *office) mustCreateTodo(t *testing.T, by *tidings.User, todo tidings.Todo) *tidings.Todo {
	t.Helper()
	if todo.Project.ID == 0 {
		todo.Project.ID = o.project.ID
	}
	if err := o.db.CreateTodo(as(by), &todo); err != nil {
		t.Fatal(err)
	}
	return &todo
}

func TestCreateTodo(t *testing.T) {
	o := newOffice(t)
	erin := mustCreatePerson(t, o.db, "erin", "Erin Evans")
	frank := mustCreatePerson(t, o.db, "frank", "Frank Fox")
	for _, u := range []*tidings.User{erin, frank} {
		if _, err := o.db.SetMember(as(o.alice), o.project.ID, u.Login, tidings.ProjectMember); err != nil {
			t.Fatal(err)
		}
	}
	// Erin turned records off; Frank muted the project.
	if _, err := o.db.UpdateSettings(as(erin), tidings.SettingsUpdate{Records: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.db.UpdateSettings(as(frank), tidings.SettingsUpdate{MutedProjects: &[]int64{o.project.ID}}); err != nil {
		t.Fatal(err)
	}
	alice, bob, carol, dave := newInbox(t, o.db, o.alice), newInbox(t, o.db, o.bob), newInbox(t, o.db, o.carol), newInbox(t, o.db, o.dave)
	erinBox, frankBox := newInbox(t, o.db, erin), newInbox(t, o.db, frank)

	todo := o.mustCreateTodo(t, o.alice, tidings.Todo{Title: "  Fix the printer ", Assignee: ptr("carol")})
	if todo.ID == 0 || todo.Title != "Fix the printer" || todo.Priority != "normal" || todo.Status != "open" ||
		todo.Project.Name != "Office move" || todo.Due != nil || *todo.Assignee != "carol" {
		t.Fatalf("created %+v", todo)
	}

	for _, in := range []*inbox{bob, carol} {
		m := in.one()
		wantText(t, m, "Alice Adams added the todo “Fix the printer” in Office move")
		if m.Process != "add" || m.Module != "todo" || m.Urgent ||
			*m.Item != (tidings.ItemRef{ID: todo.ID, Name: "Fix the printer", URL: "/todos/" + itoa(todo.ID)}) ||
			*m.Project != (tidings.ProjectRef{ID: o.project.ID, Name: "Office move"}) ||
			*m.Actor != (tidings.Actor{ID: o.alice.ID, Login: "alice", Name: "Alice Adams"}) {
			t.Fatalf("message %+v", m)
		}
		wantDetails(t, m, "title|Title|-|Fix the printer", "priority|Priority|-|normal", "status|Status|-|open", "assignee|Assignee|-|Carol Clark")
	}
	for _, in := range []*inbox{alice, dave, erinBox, frankBox} {
		in.none()
	}

	got, err := o.db.FindTodoByID(as(o.bob), todo.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != todo.Title || *got.Assignee != "carol" || got.AssigneeName != "Carol Clark" || !got.CreatedAt.Equal(o.clock.Now()) {
		t.Fatalf("found %+v", got)
	}

	// An urgent todo's messages are urgent.
	o.mustCreateTodo(t, o.bob, tidings.Todo{Title: "Call the movers", Priority: "urgent", Due: &tidings.Date{Year: 2026, Month: 11, Day: 30}})
	m := alice.one()
	if !m.Urgent {
		t.Fatal("the message about an urgent todo is not urgent")
	}
	wantDetails(t, m, "title|Title|-|Call the movers", "priority|Priority|-|urgent", "status|Status|-|open", "due|Due date|-|2026-11-30")
	bob.none()
}

func TestUpdateTodo(t *testing.T) {
	o := newOffice(t)
	todo := o.mustCreateTodo(t, o.alice, tidings.Todo{Title: "Fix the printer"})
	alice, bob, carol := newInbox(t, o.db, o.alice), newInbox(t, o.db, o.bob), newInbox(t, o.db, o.carol)

	// One field: the sentence tells old and new value.
	upd, err := o.db.UpdateTodo(as(o.alice), todo.ID, tidings.TodoUpdate{Priority: ptr("urgent")})
	if err != nil {
		t.Fatal(err)
	}
	if upd.Priority != "urgent" || upd.Title != "Fix the printer" {
		t.Fatalf("updated %+v", upd)
	}
	m := bob.one()
	wantText(t, m, "Alice Adams changed the priority of “Fix the printer” in Office move from normal to urgent")
	wantDetails(t, m, "priority|Priority|normal|urgent")
	if !m.Urgent || m.Process != "edit" || m.Item.URL != "/todos/"+itoa(todo.ID) {
		t.Fatalf("message %+v", m)
	}
	carol.one()
	alice.none()

	// Several fields: the sentence names them.
	if _, err := o.db.UpdateTodo(as(o.alice), todo.ID, tidings.TodoUpdate{
		Priority: ptr("high"), Due: tidings.SetValue(tidings.Date{Year: 2026, Month: 11, Day: 30}),
	}); err != nil {
		t.Fatal(err)
	}
	m = bob.one()
	wantText(t, m, "Alice Adams changed “Fix the printer” in Office move: priority, due date")
	wantDetails(t, m, "priority|Priority|urgent|high", "due|Due date|-|2026-11-30")
	if m.Urgent {
		t.Fatal("no longer urgent, yet the message is")
	}
	carol.one()

	// The assignee by name, old and new.
	if _, err := o.db.UpdateTodo(as(o.alice), todo.ID, tidings.TodoUpdate{Assignee: tidings.SetValue("bob")}); err != nil {
		t.Fatal(err)
	}
	m = bob.one()
	wantText(t, m, "Alice Adams assigned “Fix the printer” in Office move to Bob Brown")
	wantDetails(t, m, "assignee|Assignee|-|Bob Brown")
	carol.one()

	if _, err := o.db.UpdateTodo(as(o.carol), todo.ID, tidings.TodoUpdate{Assignee: tidings.SetValue("alice"), Due: tidings.SetNull[tidings.Date]()}); err != nil {
		t.Fatal(err)
	}
	m = bob.one() // the previous assignee is told
	wantText(t, m, "Carol Clark changed “Fix the printer” in Office move: assignee, due date")
	wantDetails(t, m, "assignee|Assignee|Bob Brown|Alice Adams", "due|Due date|2026-11-30|-")
	alice.one() // the new one too
	carol.none()

	if _, err := o.db.UpdateTodo(as(o.bob), todo.ID, tidings.TodoUpdate{Assignee: tidings.SetNull[string]()}); err != nil {
		t.Fatal(err)
	}
	wantText(t, alice.one(), "Bob Brown unassigned Alice Adams from “Fix the printer” in Office move")

	if _, err := o.db.UpdateTodo(as(o.bob), todo.ID, tidings.TodoUpdate{Title: ptr("Fix the big printer"), Status: ptr("done")}); err != nil {
		t.Fatal(err)
	}
	m = alice.one()
	wantText(t, m, "Bob Brown changed “Fix the big printer” in Office move: title, status")
	wantDetails(t, m, "title|Title|Fix the printer|Fix the big printer", "status|Status|open|done")

	if _, err := o.db.UpdateTodo(as(o.bob), todo.ID, tidings.TodoUpdate{Title: ptr("Fix the printer")}); err != nil {
		t.Fatal(err)
	}
	wantText(t, alice.one(), "Bob Brown renamed the todo “Fix the big printer” to “Fix the printer” in Office move")

	if _, err := o.db.UpdateTodo(as(o.bob), todo.ID, tidings.TodoUpdate{Description: ptr("Paper jam in tray 2")}); err != nil {
		t.Fatal(err)
	}
	m = alice.one()
	wantText(t, m, "Bob Brown changed the description of “Fix the printer” in Office move")
	wantDetails(t, m, "description|Description|-|Paper jam in tray 2")

	// Nothing changed: no message.
	got, err := o.db.UpdateTodo(as(o.bob), todo.ID, tidings.TodoUpdate{Status: ptr("done")})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "done" || got.Assignee != nil || got.Due != nil || got.Description != "Paper jam in tray 2" {
		t.Fatalf("todo %+v", got)
	}
	alice.none()
	carol.read()

	// A delete has no link.
	if err := o.db.DeleteTodo(as(o.carol), todo.ID); err != nil {
		t.Fatal(err)
	}
	m = alice.one()
	wantText(t, m, "Carol Clark deleted the todo “Fix the printer” in Office move")
	if m.Process != "delete" || m.Item.URL != "" || m.Item.ID != todo.ID || len(m.Details) != 0 {
		t.Fatalf("message %+v", m)
	}
	bob.one()
	carol.none()
	if _, err := o.db.FindTodoByID(as(o.alice), todo.ID); code(err) != tidings.ENOTFOUND {
		t.Fatalf("find deleted: %v", err)
	}
}

func TestTodoBadInput(t *testing.T) {
	o := newOffice(t)
	bob := newInbox(t, o.db, o.bob)
	for _, tc := range []struct {
		todo  tidings.Todo
		field string
	}{
		{tidings.Todo{}, "title"},
		{tidings.Todo{Title: "   "}, "title"},
		{tidings.Todo{Title: strings.Repeat("x", 201)}, "title"},
		{tidings.Todo{Title: "t", Description: strings.Repeat("x", 20001)}, "description"},
		{tidings.Todo{Title: "t", Priority: "asap"}, "priority"},
		{tidings.Todo{Title: "t", Status: "closed"}, "status"},
		{tidings.Todo{Title: "t", Assignee: ptr("dave")}, "assignee"},
		{tidings.Todo{Title: "t", Assignee: ptr("nobody")}, "assignee"},
	} {
		tc.todo.Project.ID = o.project.ID
		wantCode(t, o.db.CreateTodo(as(o.alice), &tc.todo), tidings.EINVALID, tc.field)
	}
	todos, _, err := o.db.FindTodos(as(o.alice), tidings.TodoFilter{ProjectID: o.project.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(todos) != 0 {
		t.Fatalf("stored %d todos", len(todos))
	}
	bob.none()

	todo := o.mustCreateTodo(t, o.alice, tidings.Todo{Title: "Fix the printer"})
	bob.read()
	for _, tc := range []struct {
		upd   tidings.TodoUpdate
		field string
	}{
		{tidings.TodoUpdate{Title: ptr("")}, "title"},
		{tidings.TodoUpdate{Priority: ptr("")}, "priority"},
		{tidings.TodoUpdate{Priority: ptr("top")}, "priority"},
		{tidings.TodoUpdate{Status: ptr("")}, "status"},
		{tidings.TodoUpdate{Status: ptr("open"), Assignee: tidings.SetValue("dave")}, "assignee"},
	} {
		_, err := o.db.UpdateTodo(as(o.alice), todo.ID, tc.upd)
		wantCode(t, err, tidings.EINVALID, tc.field)
	}
	got, err := o.db.FindTodoByID(as(o.alice), todo.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != "Fix the printer" || got.Priority != "normal" || got.Assignee != nil || !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Fatalf("todo changed: %+v", got)
	}
	bob.none()
	_, _, err = o.db.FindTodos(as(o.alice), tidings.TodoFilter{ProjectID: o.project.ID, Status: ptr("closed")})
	wantCode(t, err, tidings.EINVALID, "status")
	_, _, err = o.db.FindTodos(as(o.alice), tidings.TodoFilter{ProjectID: o.project.ID, After: "garbage"})
	wantCode(t, err, tidings.EINVALID, "after")
}

func TestTodoNotFound(t *testing.T) {
	o := newOffice(t)
	todo := o.mustCreateTodo(t, o.alice, tidings.Todo{Title: "Fix the printer"})
	other := MustCreateProject(t, o.db, o.dave, "Garden")
	bob := newInbox(t, o.db, o.bob)
	dave := as(o.dave)

	_, err := o.db.FindTodoByID(dave, todo.ID)
	wantCode(t, err, tidings.ENOTFOUND, "")
	_, missing := o.db.FindTodoByID(as(o.alice), todo.ID+100)
	if tidings.ErrorMessage(err) != strings.Replace(tidings.ErrorMessage(missing), itoa(todo.ID+100), itoa(todo.ID), 1) {
		t.Fatalf("messages differ: %q and %q", tidings.ErrorMessage(err), tidings.ErrorMessage(missing))
	}
	_, _, err = o.db.FindTodos(dave, tidings.TodoFilter{ProjectID: o.project.ID})
	wantCode(t, err, tidings.ENOTFOUND, "")
	err = o.db.CreateTodo(dave, &tidings.Todo{Project: tidings.ProjectRef{ID: o.project.ID}, Title: "Sneak in"})
	wantCode(t, err, tidings.ENOTFOUND, "")
	err = o.db.CreateTodo(as(o.alice), &tidings.Todo{Project: tidings.ProjectRef{ID: other.ID}, Title: "Sneak in"})
	wantCode(t, err, tidings.ENOTFOUND, "")
	_, err = o.db.UpdateTodo(dave, todo.ID, tidings.TodoUpdate{Title: ptr("Mine now")})
	wantCode(t, err, tidings.ENOTFOUND, "")
	wantCode(t, o.db.DeleteTodo(dave, todo.ID), tidings.ENOTFOUND, "")
	_, err = o.db.UpdateTodo(as(o.alice), todo.ID+100, tidings.TodoUpdate{Title: ptr("x")})
	wantCode(t, err, tidings.ENOTFOUND, "")
	wantCode(t, o.db.DeleteTodo(as(o.alice), todo.ID+100), tidings.ENOTFOUND, "")
	if _, err := o.db.FindTodoByID(context.Background(), todo.ID); code(err) != tidings.EUNAUTHORIZED {
		t.Fatalf("without a caller: %v", err)
	}

	got, err := o.db.FindTodoByID(as(o.bob), todo.ID)
	if err != nil || got.Title != "Fix the printer" {
		t.Fatalf("todo after attempts: %+v, %v", got, err)
	}
	bob.none()
}

func TestFindTodos(t *testing.T) {
	o := newOffice(t)
	for _, tc := range []tidings.Todo{
		{Title: "one", Assignee: ptr("bob")},
		{Title: "two", Status: "done", Assignee: ptr("bob")},
		{Title: "three"},
		{Title: "four", Assignee: ptr("carol")},
		{Title: "five", Assignee: ptr("bob")},
	} {
		o.mustCreateTodo(t, o.alice, tc)
	}
	garden := MustCreateProject(t, o.db, o.bob, "Garden")
	o.mustCreateTodo(t, o.bob, tidings.Todo{Project: tidings.ProjectRef{ID: garden.ID}, Title: "six", Assignee: ptr("bob")})

	titles := func(filter tidings.TodoFilter, u *tidings.User) ([]string, string) {
		t.Helper()
		todos, next, err := o.db.FindTodos(as(u), filter)
		if err != nil {
			t.Fatal(err)
		}
		out := []string{}
		for _, td := range todos {
			out = append(out, td.Title)
		}
		return out, next
	}
	check := func(filter tidings.TodoFilter, u *tidings.User, want string) string {
		t.Helper()
		got, next := titles(filter, u)
		if strings.Join(got, " ") != want {
			t.Fatalf("%+v: %q, want %q", filter, got, want)
		}
		return next
	}
	p := o.project.ID
	check(tidings.TodoFilter{ProjectID: p}, o.carol, "one two three four five")
	check(tidings.TodoFilter{ProjectID: p, Status: ptr("open")}, o.carol, "one three four five")
	check(tidings.TodoFilter{ProjectID: p, Assignee: ptr("bob")}, o.carol, "one two five")
	check(tidings.TodoFilter{ProjectID: p, Assignee: ptr("bob"), Status: ptr("open")}, o.carol, "one five")
	check(tidings.TodoFilter{ProjectID: p, Assignee: ptr("")}, o.carol, "three")
	check(tidings.TodoFilter{ProjectID: p, Assignee: ptr("nobody")}, o.carol, "")
	// Without a project: the caller's projects.
	check(tidings.TodoFilter{Assignee: ptr("bob"), Status: ptr("open")}, o.bob, "one five six")
	check(tidings.TodoFilter{Assignee: ptr("bob")}, o.carol, "one two five")

	next := check(tidings.TodoFilter{ProjectID: p, Limit: 2}, o.carol, "one two")
	next = check(tidings.TodoFilter{ProjectID: p, Limit: 2, After: next}, o.carol, "three four")
	next = check(tidings.TodoFilter{ProjectID: p, Limit: 2, After: next}, o.carol, "five")
	if next != "" {
		t.Fatalf("next after the last page: %q", next)
	}
}

func TestTodoAfterMemberRemoved(t *testing.T) {
	o := newOffice(t)
	todo := o.mustCreateTodo(t, o.alice, tidings.Todo{Title: "Fix the printer", Assignee: ptr("bob")})
	bob := newInbox(t, o.db, o.bob)
	if err := o.db.RemoveMember(as(o.alice), o.project.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	wantText(t, bob.one(), "Alice Adams removed you from Office move")
	got, err := o.db.FindTodoByID(as(o.alice), todo.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Assignee != nil {
		t.Fatalf("the former member is still the assignee: %q", *got.Assignee)
	}
	if _, err := o.db.UpdateTodo(as(o.alice), todo.ID, tidings.TodoUpdate{Priority: ptr("urgent")}); err != nil {
		t.Fatal(err)
	}
	o.mustCreateTodo(t, o.carol, tidings.Todo{Title: "Pack the books"})
	if err := o.db.DeleteTodo(as(o.alice), todo.ID); err != nil {
		t.Fatal(err)
	}
	bob.none()
	_, err = o.db.FindTodoByID(as(o.bob), todo.ID)
	wantCode(t, err, tidings.ENOTFOUND, "")
}
