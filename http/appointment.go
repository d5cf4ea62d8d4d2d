package http

import (
	"net/http"
	"strings"
	"time"

	"github.com/tidings/tidings"
)

func (s *Server) registerAppointmentRoutes() {
	s.handle("GET /api/v1/projects/{id}/appointments", userAccess, s.handleAppointmentList)
	s.handle("POST /api/v1/projects/{id}/appointments", userAccess, createHandler(newAppointment, s.AppointmentService.CreateAppointment))
	s.handle("GET /api/v1/appointments/{id}", userAccess, readHandler("Appointment", s.AppointmentService.FindAppointmentByID))
	s.handle("PATCH /api/v1/appointments/{id}", userAccess, updateHandler("Appointment", (*appointmentRequest).update, s.AppointmentService.UpdateAppointment))
	s.handle("DELETE /api/v1/appointments/{id}", userAccess, deleteHandler("Appointment", s.AppointmentService.DeleteAppointment))
}

// parseTimeParam reads an RFC 3339 time or a date (its midnight, UTC).
func parseTimeParam(field, v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	if d, err := time.Parse(tidings.DateLayout, v); err == nil {
		return d, nil
	}
	return time.Time{}, tidings.Invalidf(field, "%s must be an RFC 3339 time such as 2026-11-30T14:00:00Z or a date such as 2026-11-30, not %q.", field, clipString(v, 40))
}

// handleAppointmentList lists a project's appointments; ?from= and ?to=
// keep those that overlap the range.
func (s *Server) handleAppointmentList(w http.ResponseWriter, r *http.Request) error {
	pid, err := projectID(r)
	if err != nil {
		return err
	}
	limit, after, err := pageParams(r)
	if err != nil {
		return err
	}
	f := tidings.AppointmentFilter{ProjectID: pid, Limit: limit, After: after}
	q := r.URL.Query()
	if v := q.Get("from"); v != "" {
		if f.From, err = parseTimeParam("from", v); err != nil {
			return err
		}
	}
	if v := q.Get("to"); v != "" {
		if f.To, err = parseTimeParam("to", v); err != nil {
			return err
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		return tidings.Invalidf("to", "to must be after from.")
	}
	appts, next, err := s.AppointmentService.FindAppointments(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(appts, next))
	return nil
}

// appointmentRequest is the body of an appointment create or update; times
// are parsed here so that a bad one is reported with its field.
type appointmentRequest struct {
	Title        *string   `json:"title"`
	Description  *string   `json:"description"`
	Start        *string   `json:"start"`
	End          *string   `json:"end"`
	Participants *[]string `json:"participants"`
}

func (req *appointmentRequest) update() (tidings.AppointmentUpdate, error) {
	u := tidings.AppointmentUpdate{Title: req.Title, Description: req.Description, Participants: req.Participants}
	for _, f := range []struct {
		name string
		in   *string
		out  **time.Time
	}{{"start", req.Start, &u.Start}, {"end", req.End, &u.End}} {
		if f.in == nil {
			continue
		}
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(*f.in))
		if err != nil {
			return u, tidings.Invalidf(f.name, "%s must be an RFC 3339 time such as 2026-11-30T14:00:00Z, not %q.", f.name, clipString(*f.in, 40))
		}
		*f.out = &t
	}
	return u, nil
}

func newAppointment(projectID int64, req *appointmentRequest) (*tidings.Appointment, error) {
	upd, err := req.update()
	if err != nil {
		return nil, err
	}
	a := &tidings.Appointment{Project: tidings.ProjectRef{ID: projectID}}
	upd.Apply(a)
	return a, nil
}
