package http

import (
	"net/http"
	"time"

	"github.com/tidings/tidings"
)

// projectPage is what a project's page shows.
type projectPage struct {
	Project      *tidings.Project
	Owner        bool
	Todos        []*tidings.Todo
	Notes        []*tidings.Note
	Appointments []*tidings.Appointment
	Today        string
	Muted        bool
}

func (s *Server) handleProjectPage(w http.ResponseWriter, r *http.Request, v *view) error {
	id, err := pathID(r, "id", "Project")
	if err != nil {
		return err
	}
	ctx := r.Context()
	p, err := s.ProjectService.FindProjectByID(ctx, id)
	if err != nil {
		return err
	}
	todos, _, err := s.TodoService.FindTodos(ctx, tidings.TodoFilter{ProjectID: id, Limit: tidings.MaxPageSize})
	if err != nil {
		return err
	}
	sortTodos(todos)
	notes, _, err := s.NoteService.FindNotes(ctx, tidings.NoteFilter{ProjectID: id, Limit: tidings.MaxPageSize})
	if err != nil {
		return err
	}
	now := time.Now()
	appts, _, err := s.AppointmentService.FindAppointments(ctx, tidings.AppointmentFilter{ProjectID: id, From: now.AddDate(0, 0, -7), Limit: tidings.MaxPageSize})
	if err != nil {
		return err
	}
	v.Title, v.Nav, v.Project = p.Name, "project", p.ID
	v.Data = projectPage{
		Project: p, Owner: p.Role == tidings.ProjectOwner,
		Todos: todos, Notes: notes, Appointments: appts,
		Today: now.In(location(v.TZ)).Format("2006-01-02"),
	}
	return s.render(w, "project", v)
}
