package tidings

import (
	"context"
	"time"
)

// Appointment is a meeting of members of a project. Each participant is
// reminded before it starts, by their reminder lead time.
type Appointment struct {
	ID int64 `json:"id"`

	// Project is where the appointment belongs; CreateAppointment reads
	// Project.ID and fills in the name.
	Project ProjectRef `json:"project"`

	Title       string    `json:"title"`
	Description string    `json:"description"`
	Start       time.Time `json:"start"` // UTC
	End         time.Time `json:"end"`   // UTC, after Start

	// Participants are the logins of the members who take part, in login
	// order. On create, nil means the creator alone; an empty list means
	// nobody.
	Participants []string `json:"participants"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Validate checks an appointment's own fields before it is stored and
// brings its times to UTC milliseconds. Whether the participants are
// members is the store's check.
func (a *Appointment) Validate() error {
	if err := validateTitle(&a.Title); err != nil {
		return err
	}
	if err := validateText("description", "Description", a.Description); err != nil {
		return err
	}
	if a.Start.IsZero() {
		return Invalidf("start", "Start is required.")
	}
	if a.End.IsZero() {
		return Invalidf("end", "End is required.")
	}
	a.Start = a.Start.UTC().Truncate(time.Millisecond)
	a.End = a.End.UTC().Truncate(time.Millisecond)
	if !a.End.After(a.Start) {
		return Invalidf("end", "End must be after start.")
	}
	for _, login := range a.Participants {
		if login == "" {
			return Invalidf("participants", "A participant's login is empty.")
		}
	}
	return nil
}

// AppointmentUpdate changes the fields that are set; the others keep their
// values. Its JSON tags match the appointment's, so a PATCH body decodes
// straight into it; "participants": [] removes every participant.
type AppointmentUpdate struct {
	Title        *string    `json:"title"`
	Description  *string    `json:"description"`
	Start        *time.Time `json:"start"`
	End          *time.Time `json:"end"`
	Participants *[]string  `json:"participants"` // logins
}

// Apply copies the fields that are set onto a. Validate a afterwards.
func (u *AppointmentUpdate) Apply(a *Appointment) {
	if u.Title != nil {
		a.Title = *u.Title
	}
	if u.Description != nil {
		a.Description = *u.Description
	}
	if u.Start != nil {
		a.Start = *u.Start
	}
	if u.End != nil {
		a.End = *u.End
	}
	if u.Participants != nil {
		a.Participants = append([]string{}, *u.Participants...)
	}
}

// AppointmentFilter selects appointments for a list, by start time.
type AppointmentFilter struct {
	// ProjectID is the project whose appointments are listed; 0 lists the
	// appointments of all the caller's projects (for a dashboard).
	ProjectID int64

	// From and To select the appointments that overlap [From, To): those
	// that end after From and start before To. A zero time is no bound.
	From time.Time
	To   time.Time

	Limit int
	After string // page token from a previous answer
}

// AppointmentService manages the appointments of projects and their
// reminders, with the access rules of TodoService: members only, any member
// may change them, ENOTFOUND for everyone else, EUNAUTHORIZED without a
// caller.
type AppointmentService interface {
	// FindAppointmentByID returns an appointment. ENOTFOUND.
	FindAppointmentByID(ctx context.Context, id int64) (*Appointment, error)

	// FindAppointments returns a page of appointments, earliest start
	// first, and the token of the next page ("" at the end). ENOTFOUND for a
	// project the caller is not a member of; EINVALID for a range that ends
	// before it starts or a bad page token.
	FindAppointments(ctx context.Context, filter AppointmentFilter) ([]*Appointment, string, error)

	// CreateAppointment stores an appointment in the project
	// appt.Project.ID, schedules its participants' reminders and fills in
	// its id, project name, participants and times. ENOTFOUND for the
	// project; EINVALID for bad fields or a participant who is not a member.
	CreateAppointment(ctx context.Context, appt *Appointment) error

	// UpdateAppointment changes an appointment, moving its reminders with
	// it, and returns it. ENOTFOUND; EINVALID.
	UpdateAppointment(ctx context.Context, id int64, upd AppointmentUpdate) (*Appointment, error)

	// DeleteAppointment removes an appointment and its reminders. ENOTFOUND.
	DeleteAppointment(ctx context.Context, id int64) error
}
