package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/tidings/tidings"
)

var _ tidings.AppointmentService = (*DB)(nil)

var appointmentFields = []fieldLabel{
	{"title", "Title"}, {"description", "Description"}, {"start", "Start"}, {"end", "End"},
	{"participants", "Participants"},
}

// maxParticipants bounds the logins one request may name.
const maxParticipants = 1000

const appointmentSelect = `SELECT a.id, a.project_id, p.name, a.title, a.description, a.start_at, a.end_at, a.created_at, a.updated_at
FROM appointments a JOIN projects p ON p.id = a.project_id`

func scanAppointment(row rowScanner) (*tidings.Appointment, error) {
	var a tidings.Appointment
	var start, end, created, updated int64
	if err := row.Scan(&a.ID, &a.Project.ID, &a.Project.Name, &a.Title, &a.Description, &start, &end, &created, &updated); err != nil {
		return nil, err
	}
	a.Start, a.End = fromMS(start), fromMS(end)
	a.CreatedAt, a.UpdatedAt = fromMS(created), fromMS(updated)
	a.Participants = []string{}
	return &a, nil
}

// loadParticipants fills in the participants of the given appointments and
// returns them by appointment, in login order.
func loadParticipants(ctx context.Context, q queryer, appts []*tidings.Appointment) (map[int64][]member, error) {
	out := make(map[int64][]member, len(appts))
	if len(appts) == 0 {
		return out, nil
	}
	byID := make(map[int64]*tidings.Appointment, len(appts))
	args := make([]any, 0, len(appts))
	for _, a := range appts {
		a.Participants = []string{}
		byID[a.ID] = a
		args = append(args, a.ID)
	}
	rows, err := q.QueryContext(ctx, `SELECT ap.appointment_id, u.id, u.login, u.name FROM appointment_participants ap JOIN users u ON u.id = ap.user_id
		WHERE ap.appointment_id IN (`+placeholders(len(args))+`) ORDER BY ap.appointment_id, u.login`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var aid int64
		var m member
		if err := rows.Scan(&aid, &m.id, &m.login, &m.name); err != nil {
			return nil, err
		}
		byID[aid].Participants = append(byID[aid].Participants, m.login)
		out[aid] = append(out[aid], m)
	}
	return out, rows.Err()
}

// loadAppointment reads an appointment as reader (0: the system) sees it:
// ENOTFOUND unless a member of its project.
func loadAppointment(ctx context.Context, q queryer, id, reader int64) (*tidings.Appointment, []member, error) {
	a, err := scanAppointment(q.QueryRowContext(ctx, appointmentSelect+`
		WHERE a.id = ? AND (CAST(? AS BIGINT) = 0 OR EXISTS (SELECT 1 FROM members WHERE project_id = a.project_id AND user_id = ?))`, id, reader, reader))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, itemNotFound("Appointment", id)
	}
	if err != nil {
		return nil, nil, err
	}
	parts, err := loadParticipants(ctx, q, []*tidings.Appointment{a})
	if err != nil {
		return nil, nil, err
	}
	return a, parts[a.ID], nil
}

// appointmentValues are an appointment's fields as people read them.
func appointmentValues(a *tidings.Appointment, parts []member) map[string]string {
	names := make([]string, len(parts))
	for i, m := range parts {
		names[i] = m.name
	}
	return map[string]string{
		"title": a.Title, "description": a.Description, "start": formatTime(a.Start), "end": formatTime(a.End),
		"participants": strings.Join(names, ", "),
	}
}

// resolveParticipants turns logins into members of the project, once each,
// in login order. EINVALID for a login that is not a member.
func (tx *Tx) resolveParticipants(projectID int64, project string, logins []string) ([]member, error) {
	if len(logins) > maxParticipants {
		return nil, tidings.Invalidf("participants", "An appointment has at most %d participants.", maxParticipants)
	}
	out := make([]member, 0, len(logins))
	seen := make(map[string]bool, len(logins))
	for _, login := range logins {
		if seen[login] {
			continue
		}
		seen[login] = true
		m, ok, err := tx.memberByLogin(projectID, login)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, notMember("participants", login, project)
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b member) int { return strings.Compare(a.login, b.login) })
	return out, nil
}

func logins(parts []member) []string {
	out := make([]string, len(parts))
	for i, m := range parts {
		out[i] = m.login
	}
	return out
}

// FindAppointmentByID returns an appointment of one of the caller's projects.
func (db *DB) FindAppointmentByID(ctx context.Context, id int64) (*tidings.Appointment, error) {
	reader, err := itemReader(ctx)
	if err != nil {
		return nil, err
	}
	var a *tidings.Appointment
	err = db.readTx(ctx, func(tx queryer) error {
		a, _, err = loadAppointment(ctx, tx, id, reader)
		return err
	})
	return a, err
}

// FindAppointments returns a page of appointments, earliest start first.
func (db *DB) FindAppointments(ctx context.Context, filter tidings.AppointmentFilter) ([]*tidings.Appointment, string, error) {
	reader, err := itemReader(ctx)
	if err != nil {
		return nil, "", err
	}
	limit := pageLimit(filter.Limit)
	afterStart, afterID, paged, err := parsePageTokenAt(filter.After)
	if err != nil {
		return nil, "", err
	}
	if !filter.From.IsZero() && !filter.To.IsZero() && !filter.To.After(filter.From) {
		return nil, "", tidings.Invalidf("to", "The end of the range must be after its start.")
	}
	appts := []*tidings.Appointment{}
	next := ""
	err = db.readTx(ctx, func(tx queryer) error {
		scope, args, err := listScope(ctx, tx, "a.project_id", filter.ProjectID, reader)
		if err != nil {
			return err
		}
		conds := []string{scope}
		if !filter.To.IsZero() {
			conds = append(conds, "a.start_at < ?")
			args = append(args, ms(filter.To))
		}
		if !filter.From.IsZero() {
			conds = append(conds, "a.end_at > ?")
			args = append(args, ms(filter.From))
		}
		if paged {
			conds = append(conds, "(a.start_at, a.id) > (?, ?)")
			args = append(args, afterStart, afterID)
		}
		args = append(args, limit+1)
		rows, err := tx.QueryContext(ctx, appointmentSelect+` WHERE `+strings.Join(conds, " AND ")+` ORDER BY a.start_at, a.id LIMIT ?`, args...)
		if err != nil {
			return err
		}
		appts, next, err = collectPage(rows, limit, scanAppointment, func(a *tidings.Appointment) string { return pageTokenAt(ms(a.Start), a.ID) })
		if err != nil {
			return err
		}
		_, err = loadParticipants(ctx, tx, appts)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return appts, next, nil
}

// CreateAppointment stores an appointment and schedules its participants'
// reminders; the project's other members learn of it.
func (db *DB) CreateAppointment(ctx context.Context, a *tidings.Appointment) error {
	uid, err := callerID(ctx)
	if err != nil {
		return err
	}
	actor := actorOf(ctx)
	return db.write(ctx, func(tx *Tx) error {
		pname, err := tx.requireMember(a.Project.ID, uid)
		if err != nil {
			return err
		}
		if a.Participants == nil {
			a.Participants = []string{actor.Login}
		}
		if err := a.Validate(); err != nil {
			return err
		}
		parts, err := tx.resolveParticipants(a.Project.ID, pname, a.Participants)
		if err != nil {
			return err
		}
		if err := tx.queryRow(`INSERT INTO appointments (project_id, title, description, start_at, end_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			a.Project.ID, a.Title, a.Description, ms(a.Start), ms(a.End), ms(tx.now), ms(tx.now)).Scan(&a.ID); err != nil {
			return err
		}
		for _, m := range parts {
			if _, err := tx.exec(`INSERT INTO appointment_participants (appointment_id, user_id) VALUES (?, ?)`, a.ID, m.id); err != nil {
				return err
			}
		}
		a.Project.Name = pname
		a.Participants = logins(parts)
		a.CreatedAt, a.UpdatedAt = tx.now, tx.now
		others, err := tx.othersOf(a.Project.ID, uid)
		if err != nil {
			return err
		}
		if err := tx.emit(&tidings.Event{
			Process: tidings.ProcessAdd, Module: tidings.ModuleAppointment, Actor: actor,
			Item:    &tidings.ItemRef{ID: a.ID, Name: a.Title, URL: appointmentURL(a.ID)},
			Project: &tidings.ProjectRef{ID: a.Project.ID, Name: pname},
			Text:    itemAddText(actor, "appointment", a.Title, pname),
			Details: setDetails(appointmentFields, appointmentValues(a, parts)),
		}, others); err != nil {
			return err
		}
		// After the event, so that a reminder that fires at once comes
		// after the news of the appointment.
		r := reminderAppointment{id: a.ID, start: a.Start, end: a.End}
		for _, m := range parts {
			if err := tx.scheduleReminder(r, m.id); err != nil {
				return err
			}
		}
		return nil
	})
}

// UpdateAppointment changes an appointment and moves its reminders with it;
// the project's other members learn what changed.
func (db *DB) UpdateAppointment(ctx context.Context, id int64, upd tidings.AppointmentUpdate) (*tidings.Appointment, error) {
	uid, err := callerID(ctx)
	if err != nil {
		return nil, err
	}
	actor := actorOf(ctx)
	var out *tidings.Appointment
	err = db.write(ctx, func(tx *Tx) error {
		a, oldParts, err := loadAppointment(tx.ctx, tx.reads(), id, uid)
		if err != nil {
			return err
		}
		before, oldTitle, oldStart, oldEnd := appointmentValues(a, oldParts), a.Title, a.Start, a.End
		upd.Apply(a)
		if err := a.Validate(); err != nil {
			return err
		}
		parts := oldParts
		if upd.Participants != nil {
			if parts, err = tx.resolveParticipants(a.Project.ID, a.Project.Name, a.Participants); err != nil {
				return err
			}
		}
		a.Participants = logins(parts)
		after := appointmentValues(a, parts)
		added, removed := diffMembers(oldParts, parts)
		if (len(added) > 0 || len(removed) > 0) && before["participants"] == after["participants"] {
			// People of the same name: tell them apart by login.
			before["participants"] += " (" + strings.Join(logins(oldParts), ", ") + ")"
			after["participants"] += " (" + strings.Join(a.Participants, ", ") + ")"
		}
		details := changeDetails(appointmentFields, before, after)
		moved, endMoved := !a.Start.Equal(oldStart), !a.End.Equal(oldEnd)
		out = a
		if len(details) == 0 {
			return nil // nothing changed: no event
		}
		if _, err := tx.exec(`UPDATE appointments SET title = ?, description = ?, start_at = ?, end_at = ?, updated_at = ? WHERE id = ?`,
			a.Title, a.Description, ms(a.Start), ms(a.End), ms(tx.now), id); err != nil {
			return err
		}
		a.UpdatedAt = tx.now
		for _, m := range removed { // their reminders go with them
			if _, err := tx.exec(`DELETE FROM appointment_participants WHERE appointment_id = ? AND user_id = ?`, id, m.id); err != nil {
				return err
			}
		}
		for _, m := range added {
			if _, err := tx.exec(`INSERT INTO appointment_participants (appointment_id, user_id) VALUES (?, ?)`, id, m.id); err != nil {
				return err
			}
		}
		others, err := tx.othersOf(a.Project.ID, uid)
		if err != nil {
			return err
		}
		if err := tx.emit(&tidings.Event{
			Process: tidings.ProcessEdit, Module: tidings.ModuleAppointment, Actor: actor,
			Item:    &tidings.ItemRef{ID: id, Name: a.Title, URL: appointmentURL(id)},
			Project: &tidings.ProjectRef{ID: a.Project.ID, Name: a.Project.Name},
			Text:    itemEditText(actor, "appointment", oldTitle, a.Title, a.Project.Name, details),
			Details: details,
		}, others); err != nil {
			return err
		}
		r := reminderAppointment{id: id, start: a.Start, end: a.End}
		resched := added
		if moved {
			resched = parts // everyone is reminded of the new time
		} else if endMoved {
			if _, err := tx.exec(`UPDATE reminders SET valid_until = ? WHERE appointment_id = ?`, ms(a.End), id); err != nil {
				return err
			}
		}
		for _, m := range resched {
			if err := tx.scheduleReminder(r, m.id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// diffMembers returns who is in to but not in from, and who the reverse.
func diffMembers(from, to []member) (added, removed []member) {
	in := func(list []member, id int64) bool {
		return slices.ContainsFunc(list, func(m member) bool { return m.id == id })
	}
	for _, m := range to {
		if !in(from, m.id) {
			added = append(added, m)
		}
	}
	for _, m := range from {
		if !in(to, m.id) {
			removed = append(removed, m)
		}
	}
	return added, removed
}

// DeleteAppointment removes an appointment with its reminders; the
// project's other members learn of it.
func (db *DB) DeleteAppointment(ctx context.Context, id int64) error {
	uid, err := callerID(ctx)
	if err != nil {
		return err
	}
	actor := actorOf(ctx)
	return db.write(ctx, func(tx *Tx) error {
		a, _, err := loadAppointment(tx.ctx, tx.reads(), id, uid)
		if err != nil {
			return err
		}
		// Participants and their reminders go with it.
		if _, err := tx.exec(`DELETE FROM appointments WHERE id = ?`, id); err != nil {
			return err
		}
		others, err := tx.othersOf(a.Project.ID, uid)
		if err != nil {
			return err
		}
		return tx.emit(&tidings.Event{
			Process: tidings.ProcessDelete, Module: tidings.ModuleAppointment, Actor: actor,
			Item:    &tidings.ItemRef{ID: id, Name: a.Title},
			Project: &tidings.ProjectRef{ID: a.Project.ID, Name: a.Project.Name},
			Text:    itemDeleteText(actor, "appointment", a.Title, a.Project.Name),
		}, others)
	})
}

// reminderAppointment is what scheduling a reminder needs of its
// appointment.
type reminderAppointment struct {
	id         int64
	start, end time.Time
}
