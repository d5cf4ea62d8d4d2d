package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/tidings/tidings"
	"github.com/tidings/tidings/sqlstore"
)

// DefaultDemoEvery is how often carol changes something in the demo.
const DefaultDemoEvery = 20 * time.Second

func ptr[T any](v T) *T { return &v }

// demoDate is a day from today.
func demoDate(days int) *tidings.Date {
	d := tidings.DateOf(time.Now().AddDate(0, 0, days))
	return &d
}

// demoAt is a time of day some days from now, in UTC.
func demoAt(days, hour int) time.Time {
	y, m, d := time.Now().UTC().AddDate(0, 0, days).Date()
	return time.Date(y, m, d, hour, 0, 0, 0, time.UTC)
}

// fillDemoProject gives a new demo project a few todos, notes and
// appointments, so that the pages are not empty.
func fillDemoProject(ctx context.Context, db *sqlstore.DB, project int64, alice, bob, carol *tidings.User) error {
	as := func(u *tidings.User) context.Context {
		return tidings.NewContextWithAuth(ctx, &tidings.Auth{User: u, Session: &tidings.Session{UserID: u.ID}})
	}
	ref := tidings.ProjectRef{ID: project}
	todos := []struct {
		by   *tidings.User
		todo tidings.Todo
	}{
		{alice, tidings.Todo{Title: "Book the moving company", Description: "Three quotes so far; the cheapest cannot do Saturdays.", Priority: tidings.PriorityHigh, Assignee: ptr("bob"), Due: demoDate(3)}},
		{alice, tidings.Todo{Title: "Cancel the old internet contract", Priority: tidings.PriorityUrgent, Due: demoDate(1)}},
		{carol, tidings.Todo{Title: "Label the boxes by room", Assignee: ptr("bob")}},
		{bob, tidings.Todo{Title: "Order desk chairs", Priority: tidings.PriorityLow, Assignee: ptr("carol"), Due: demoDate(10)}},
	}
	for _, t := range todos {
		t.todo.Project = ref
		if err := db.CreateTodo(as(t.by), &t.todo); err != nil {
			return err
		}
	}
	notes := []tidings.Note{
		{Title: "Floor plan", Body: "Desks by the windows, the meeting room in the corner, the printer next to the kitchen."},
		{Title: "Packing list", Body: "- Monitors in their boxes\n- Cables in labelled bags\n- The plants go last"},
	}
	for _, n := range notes {
		n.Project = ref
		if err := db.CreateNote(as(alice), &n); err != nil {
			return err
		}
	}
	appts := []tidings.Appointment{
		{Title: "Walk through the new office", Start: demoAt(1, 10), End: demoAt(1, 11), Participants: []string{"alice", "bob", "carol"}},
		{Title: "Movers arrive", Description: "Ring at the loading bay.", Start: demoAt(5, 8), End: demoAt(5, 12), Participants: []string{"alice", "bob"}},
	}
	for _, a := range appts {
		a.Project = ref
		if err := db.CreateAppointment(as(carol), &a); err != nil {
			return err
		}
	}
	return nil
}

// runDemoActivity lets carol change something every so often, so that
// somebody logged in as bob sees info boxes arrive without a second browser.
// It stops with ctx.
func runDemoActivity(ctx context.Context, db *sqlstore.DB, project int64, carol *tidings.User, every time.Duration, logger *slog.Logger) {
	as := tidings.NewContextWithAuth(ctx, &tidings.Auth{User: carol, Session: &tidings.Session{UserID: carol.ID}})
	ideas := []string{"Water the plants before the move", "Return the keys of the old office", "Order pizza for moving day", "Update the address on the website", "Find the spare key of the bike shed"}
	t := time.NewTicker(every)
	defer t.Stop()
	for step := 0; ; step++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := demoStep(as, db, project, step, ideas); err != nil && ctx.Err() == nil {
			logger.Debug("demo: carol's change", "err", err)
		}
	}
}

// demoStep is one of carol's changes: add a todo, move an appointment, make
// a todo urgent, add to a note, finish a todo.
func demoStep(ctx context.Context, db *sqlstore.DB, project int64, step int, ideas []string) error {
	switch step % 5 {
	case 0:
		todo := &tidings.Todo{Project: tidings.ProjectRef{ID: project}, Title: ideas[(step/5)%len(ideas)], Assignee: ptr("bob")}
		return db.CreateTodo(ctx, todo)
	case 1:
		appts, _, err := db.FindAppointments(ctx, tidings.AppointmentFilter{ProjectID: project, From: time.Now(), Limit: 1})
		if err != nil || len(appts) == 0 {
			return err
		}
		a := appts[0]
		start, end := a.Start.Add(30*time.Minute), a.End.Add(30*time.Minute)
		_, err = db.UpdateAppointment(ctx, a.ID, tidings.AppointmentUpdate{Start: &start, End: &end})
		return err
	case 2, 4:
		open := tidings.StatusOpen
		todos, _, err := db.FindTodos(ctx, tidings.TodoFilter{ProjectID: project, Status: &open, Limit: tidings.MaxPageSize})
		if err != nil || len(todos) == 0 {
			return err
		}
		t := todos[len(todos)-1]
		upd := tidings.TodoUpdate{Priority: ptr(tidings.PriorityUrgent)}
		if step%5 == 4 || t.Priority == tidings.PriorityUrgent {
			upd = tidings.TodoUpdate{Status: ptr(tidings.StatusDone)}
		}
		_, err = db.UpdateTodo(ctx, t.ID, upd)
		return err
	default:
		notes, _, err := db.FindNotes(ctx, tidings.NoteFilter{ProjectID: project, Limit: tidings.MaxPageSize})
		if err != nil || len(notes) == 0 {
			return err
		}
		n := notes[len(notes)-1]
		body := n.Body + fmt.Sprintf("\n- Checked by Carol at %s", time.Now().UTC().Format("15:04"))
		if len(body) > 5000 {
			body = "- Checked by Carol"
		}
		_, err = db.UpdateNote(ctx, n.ID, tidings.NoteUpdate{Body: &body})
		return err
	}
}
