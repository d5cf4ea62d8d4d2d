package http

import (
	"net/http"
	"strings"

	"github.com/tidings/tidings"
)

func (s *Server) registerTodoRoutes() {
	s.handle("GET /api/v1/projects/{id}/todos", userAccess, s.handleTodoList)
	s.handle("POST /api/v1/projects/{id}/todos", userAccess, createHandler(newTodo, s.TodoService.CreateTodo))
	s.handle("GET /api/v1/todos/{id}", userAccess, readHandler("Todo", s.TodoService.FindTodoByID))
	s.handle("PATCH /api/v1/todos/{id}", userAccess, updateHandler("Todo", (*todoRequest).update, s.TodoService.UpdateTodo))
	s.handle("DELETE /api/v1/todos/{id}", userAccess, deleteHandler("Todo", s.TodoService.DeleteTodo))
}

// handleTodoList lists a project's todos; ?status=open|done filters by
// status, ?assignee=login by assignee and ?assignee= (empty) finds the
// unassigned ones.
func (s *Server) handleTodoList(w http.ResponseWriter, r *http.Request) error {
	pid, err := projectID(r)
	if err != nil {
		return err
	}
	limit, after, err := pageParams(r)
	if err != nil {
		return err
	}
	f := tidings.TodoFilter{ProjectID: pid, Limit: limit, After: after}
	q := r.URL.Query()
	if q.Has("status") {
		st := q.Get("status")
		if err := tidings.ValidateStatus(st); err != nil {
			return err
		}
		f.Status = &st
	}
	if q.Has("assignee") {
		a := strings.TrimSpace(q.Get("assignee"))
		f.Assignee = &a
	}
	todos, next, err := s.TodoService.FindTodos(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(todos, next))
	return nil
}

// todoRequest is the body of a todo create or update. Dates are parsed
// here, so that a bad one is reported with its field.
type todoRequest struct {
	Title       *string                  `json:"title"`
	Description *string                  `json:"description"`
	Priority    *string                  `json:"priority"`
	Status      *string                  `json:"status"`
	Assignee    tidings.Optional[string] `json:"assignee"`
	Due         tidings.Optional[string] `json:"due"`
}

func (req *todoRequest) update() (tidings.TodoUpdate, error) {
	u := tidings.TodoUpdate{
		Title:       req.Title,
		Description: req.Description,
		Priority:    req.Priority,
		Status:      req.Status,
		Assignee:    req.Assignee,
	}
	if req.Due.Set {
		u.Due = tidings.SetNull[tidings.Date]()
		if req.Due.Value != nil && *req.Due.Value != "" {
			d, err := tidings.ParseDate(*req.Due.Value)
			if err != nil {
				return u, tidings.Invalidf("due", "%s", tidings.ErrorMessage(err))
			}
			u.Due = tidings.SetValue(d)
		}
	}
	return u, nil
}

func newTodo(projectID int64, req *todoRequest) (*tidings.Todo, error) {
	upd, err := req.update()
	if err != nil {
		return nil, err
	}
	t := &tidings.Todo{Project: tidings.ProjectRef{ID: projectID}}
	upd.Apply(t)
	return t, nil
}
