package http

import (
	"net/http"
	"sort"
	"time"

	"github.com/tidings/tidings"
)

// dashboard is what the dashboard shows.
type dashboard struct {
	Projects     []*tidings.Project
	Todos        []*tidings.Todo
	Appointments []*tidings.Appointment
	Today        string // YYYY-MM-DD in the user's time zone, to mark overdue todos
}

// upcomingDays is how far ahead the dashboard shows appointments.
const upcomingDays = 14

func (s *Server) handleDashboardPage(w http.ResponseWriter, r *http.Request, v *view) error {
	ctx := r.Context()
	projects, _, err := s.ProjectService.FindProjects(ctx, tidings.ProjectFilter{Limit: tidings.MaxPageSize})
	if err != nil {
		return err
	}
	open, me := tidings.StatusOpen, v.User.Login
	todos, _, err := s.TodoService.FindTodos(ctx, tidings.TodoFilter{Status: &open, Assignee: &me, Limit: tidings.MaxPageSize})
	if err != nil {
		return err
	}
	sortTodos(todos)
	now := time.Now()
	appts, _, err := s.AppointmentService.FindAppointments(ctx, tidings.AppointmentFilter{From: now, To: now.AddDate(0, 0, upcomingDays), Limit: 50})
	if err != nil {
		return err
	}
	v.Title, v.Nav = "Dashboard", "dashboard"
	v.Data = dashboard{Projects: projects, Todos: todos, Appointments: appts, Today: now.In(location(v.TZ)).Format("2006-01-02")}
	return s.render(w, "dashboard", v)
}

var priorityRank = map[string]int{tidings.PriorityUrgent: 0, tidings.PriorityHigh: 1, tidings.PriorityNormal: 2, tidings.PriorityLow: 3}

// sortTodos puts urgent todos first, then by due date (none last), then by
// age.
func sortTodos(todos []*tidings.Todo) {
	sort.SliceStable(todos, func(i, j int) bool {
		a, b := todos[i], todos[j]
		if pa, pb := priorityRank[a.Priority], priorityRank[b.Priority]; pa != pb {
			return pa < pb
		}
		switch {
		case a.Due != nil && b.Due == nil:
			return true
		case a.Due == nil && b.Due != nil:
			return false
		case a.Due != nil && b.Due != nil && *a.Due != *b.Due:
			return a.Due.String() < b.Due.String()
		}
		return a.ID < b.ID
	})
}
