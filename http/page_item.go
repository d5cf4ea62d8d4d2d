package http

import (
	"net/http"
	"strconv"

	"github.com/tidings/tidings"
)

// itemPage is what an item's page shows: the item, its edit form, and the
// project's members for the fields that name people.
type itemPage[T any] struct {
	Item    T
	Project *tidings.Project
}

// itemPageHandler serves /todos/{id} and its kin: the page every message's
// item.url leads to.
func itemPageHandler[T any](s *Server, kind, viewName string, find func(*http.Request, int64) (T, int64, string, error)) pageFunc {
	return func(w http.ResponseWriter, r *http.Request, v *view) error {
		id, err := pathID(r, "id", kind)
		if err != nil {
			return err
		}
		item, projectID, title, err := find(r, id)
		if err != nil {
			return err
		}
		p, err := s.ProjectService.FindProjectByID(r.Context(), projectID)
		if err != nil {
			return err
		}
		v.Title, v.Nav, v.Project = title, "project", projectID
		v.Item = kind + " " + strconv.FormatInt(id, 10)
		v.Data = itemPage[T]{Item: item, Project: p}
		return s.render(w, viewName, v)
	}
}

func (s *Server) registerItemPages() {
	s.page("GET /todos/{id}", itemPageHandler(s, "todo", "todo", func(r *http.Request, id int64) (*tidings.Todo, int64, string, error) {
		t, err := s.TodoService.FindTodoByID(r.Context(), id)
		if err != nil {
			return nil, 0, "", err
		}
		return t, t.Project.ID, t.Title, nil
	}))
	s.page("GET /notes/{id}", itemPageHandler(s, "note", "note", func(r *http.Request, id int64) (*tidings.Note, int64, string, error) {
		n, err := s.NoteService.FindNoteByID(r.Context(), id)
		if err != nil {
			return nil, 0, "", err
		}
		return n, n.Project.ID, n.Title, nil
	}))
	s.page("GET /appointments/{id}", itemPageHandler(s, "appointment", "appointment", func(r *http.Request, id int64) (*tidings.Appointment, int64, string, error) {
		a, err := s.AppointmentService.FindAppointmentByID(r.Context(), id)
		if err != nil {
			return nil, 0, "", err
		}
		return a, a.Project.ID, a.Title, nil
	}))
}
