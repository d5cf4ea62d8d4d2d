package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/tidings/tidings"
)

var _ tidings.ProjectService = (*DB)(nil)

// queryer is what both a pool and a transaction offer for reading.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func callerID(ctx context.Context) (int64, error) {
	id := tidings.UserIDFromContext(ctx)
	if id == 0 {
		return 0, tidings.Errorf(tidings.EUNAUTHORIZED, "Log in first.")
	}
	return id, nil
}

func projectNotFound(id int64) error {
	return tidings.Errorf(tidings.ENOTFOUND, "Project %d was not found.", id)
}

// ProjectURL is the page of a project.
func ProjectURL(id int64) string { return "/projects/" + strconv.FormatInt(id, 10) }

// loadProject reads a project as seen by userID: ENOTFOUND unless a member.
func loadProject(ctx context.Context, q queryer, id, userID int64) (*tidings.Project, error) {
	var p tidings.Project
	var created, updated int64
	err := q.QueryRowContext(ctx, `SELECT p.id, p.name, p.description, m.role, p.created_at, p.updated_at
		FROM projects p JOIN members m ON m.project_id = p.id AND m.user_id = ? WHERE p.id = ?`, userID, id).
		Scan(&p.ID, &p.Name, &p.Description, &p.Role, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, projectNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	p.CreatedAt, p.UpdatedAt = fromMS(created), fromMS(updated)
	if err := loadMembers(ctx, q, []*tidings.Project{&p}); err != nil {
		return nil, err
	}
	return &p, nil
}

// loadMembers fills in the members of the given projects.
func loadMembers(ctx context.Context, q queryer, projects []*tidings.Project) error {
	if len(projects) == 0 {
		return nil
	}
	byID := make(map[int64]*tidings.Project, len(projects))
	args := make([]any, 0, len(projects))
	for _, p := range projects {
		p.Members = []*tidings.Member{}
		byID[p.ID] = p
		args = append(args, p.ID)
	}
	rows, err := q.QueryContext(ctx, `SELECT m.project_id, u.id, u.login, u.name, m.role FROM members m JOIN users u ON u.id = m.user_id
		WHERE m.project_id IN (`+placeholders(len(args))+`) ORDER BY m.project_id, u.login`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var pid int64
		var m tidings.Member
		if err := rows.Scan(&pid, &m.UserID, &m.Login, &m.Name, &m.Role); err != nil {
			return err
		}
		byID[pid].Members = append(byID[pid].Members, &m)
	}
	return rows.Err()
}

// FindProjectByID returns a project the caller belongs to.
func (db *DB) FindProjectByID(ctx context.Context, id int64) (*tidings.Project, error) {
	uid, err := callerID(ctx)
	if err != nil {
		return nil, err
	}
	var p *tidings.Project
	err = db.readTx(ctx, func(tx queryer) error {
		p, err = loadProject(ctx, tx, id, uid)
		return err
	})
	return p, err
}

// FindProjects returns a page of the caller's projects, oldest first.
func (db *DB) FindProjects(ctx context.Context, filter tidings.ProjectFilter) ([]*tidings.Project, string, error) {
	uid, err := callerID(ctx)
	if err != nil {
		return nil, "", err
	}
	limit := pageLimit(filter.Limit)
	after, err := parsePageToken(filter.After)
	if err != nil {
		return nil, "", err
	}
	var projects []*tidings.Project
	var next string
	err = db.readTx(ctx, func(tx queryer) error {
		rows, err := tx.QueryContext(ctx, `SELECT p.id, p.name, p.description, m.role, p.created_at, p.updated_at
			FROM members m JOIN projects p ON p.id = m.project_id WHERE m.user_id = ? AND p.id > ? ORDER BY p.id LIMIT ?`, uid, after, limit+1)
		if err != nil {
			return err
		}
		projects, next, err = collectPage(rows, limit, scanMembership, func(p *tidings.Project) string { return pageToken(p.ID) })
		if err != nil {
			return err
		}
		return loadMembers(ctx, tx, projects)
	})
	if err != nil {
		return nil, "", err
	}
	return projects, next, nil
}

// scanMembership scans a project with the caller's role in it.
func scanMembership(row rowScanner) (*tidings.Project, error) {
	var p tidings.Project
	var created, updated int64
	if err := row.Scan(&p.ID, &p.Name, &p.Description, &p.Role, &created, &updated); err != nil {
		return nil, err
	}
	p.CreatedAt, p.UpdatedAt = fromMS(created), fromMS(updated)
	return &p, nil
}

// actorOf returns the calling user as an event's actor.
func actorOf(ctx context.Context) *tidings.Actor {
	u := tidings.UserFromContext(ctx)
	return &tidings.Actor{ID: u.ID, Login: u.Login, Name: u.Name}
}

// CreateProject stores a project with the caller as its owner.
func (db *DB) CreateProject(ctx context.Context, p *tidings.Project) error {
	uid, err := callerID(ctx)
	if err != nil {
		return err
	}
	if err := p.Validate(); err != nil {
		return err
	}
	actor := actorOf(ctx)
	return db.write(ctx, func(tx *Tx) error {
		err := tx.queryRow(`INSERT INTO projects (name, description, created_at, updated_at) VALUES (?, ?, ?, ?) RETURNING id`,
			p.Name, p.Description, ms(tx.now), ms(tx.now)).Scan(&p.ID)
		if err != nil {
			return err
		}
		if _, err := tx.exec(`INSERT INTO members (project_id, user_id, role, created_at) VALUES (?, ?, 'owner', ?)`, p.ID, uid, ms(tx.now)); err != nil {
			return err
		}
		ev := &tidings.Event{
			Process: tidings.ProcessAdd, Module: tidings.ModuleProject, Actor: actor,
			Item:    &tidings.ItemRef{ID: p.ID, Name: p.Name, URL: ProjectURL(p.ID)},
			Project: &tidings.ProjectRef{ID: p.ID, Name: p.Name},
			Text:    fmt.Sprintf("%s created the project “%s”", actor.Name, p.Name),
			Details: setDetails(projectFields, map[string]string{"name": p.Name, "description": p.Description}),
		}
		// The creator is the only member, and actors are not told of their
		// own changes: the event is recorded for no one.
		if err := tx.emit(ev, nil); err != nil {
			return err
		}
		loaded, err := loadProject(tx.ctx, tx.reads(), p.ID, uid)
		if err != nil {
			return err
		}
		*p = *loaded
		return nil
	})
}

var projectFields = []fieldLabel{{"name", "Name"}, {"description", "Description"}}

// requireOwner returns the project's name if userID owns it: ENOTFOUND for
// non-members, EFORBIDDEN for members.
func (tx *Tx) requireOwner(projectID, userID int64) (string, error) {
	var name, role string
	err := tx.queryRow(`SELECT p.name, m.role FROM projects p JOIN members m ON m.project_id = p.id AND m.user_id = ? WHERE p.id = ?`,
		userID, projectID).Scan(&name, &role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", projectNotFound(projectID)
	}
	if err != nil {
		return "", err
	}
	if role != tidings.ProjectOwner {
		return "", tidings.Errorf(tidings.EFORBIDDEN, "Only the project's owners may do this.")
	}
	return name, nil
}

// othersOf returns the project's members except the actor.
func (tx *Tx) othersOf(projectID, actorID int64) ([]int64, error) {
	ids, err := tx.memberIDs(projectID)
	if err != nil {
		return nil, err
	}
	out := ids[:0]
	for _, id := range ids {
		if id != actorID {
			out = append(out, id)
		}
	}
	return out, nil
}

// UpdateProject changes a project's name or description.
func (db *DB) UpdateProject(ctx context.Context, id int64, upd tidings.ProjectUpdate) (*tidings.Project, error) {
	uid, err := callerID(ctx)
	if err != nil {
		return nil, err
	}
	actor := actorOf(ctx)
	var out *tidings.Project
	err = db.write(ctx, func(tx *Tx) error {
		if _, err := tx.requireOwner(id, uid); err != nil {
			return err
		}
		p, err := loadProject(tx.ctx, tx.reads(), id, uid)
		if err != nil {
			return err
		}
		before := map[string]string{"name": p.Name, "description": p.Description}
		if upd.Name != nil {
			p.Name = *upd.Name
		}
		if upd.Description != nil {
			p.Description = *upd.Description
		}
		if err := p.Validate(); err != nil {
			return err
		}
		details := changeDetails(projectFields, before, map[string]string{"name": p.Name, "description": p.Description})
		if len(details) == 0 {
			out = p
			return nil // nothing changed: no event
		}
		if _, err := tx.exec(`UPDATE projects SET name = ?, description = ?, updated_at = ? WHERE id = ?`, p.Name, p.Description, ms(tx.now), id); err != nil {
			return err
		}
		p.UpdatedAt = tx.now
		text := fmt.Sprintf("%s changed the project “%s”", actor.Name, p.Name)
		if before["name"] != p.Name {
			text = fmt.Sprintf("%s renamed the project “%s” to “%s”", actor.Name, before["name"], p.Name)
		} else if len(details) == 1 {
			text = fmt.Sprintf("%s changed the description of the project “%s”", actor.Name, p.Name)
		}
		others, err := tx.othersOf(id, uid)
		if err != nil {
			return err
		}
		ev := &tidings.Event{
			Process: tidings.ProcessEdit, Module: tidings.ModuleProject, Actor: actor,
			Item:    &tidings.ItemRef{ID: id, Name: p.Name, URL: ProjectURL(id)},
			Project: &tidings.ProjectRef{ID: id, Name: p.Name},
			Text:    text, Details: details,
		}
		if err := tx.emit(ev, others); err != nil {
			return err
		}
		out = p
		return nil
	})
	return out, err
}

// DeleteProject removes a project, its memberships and its items; the
// members learn of it.
func (db *DB) DeleteProject(ctx context.Context, id int64) error {
	uid, err := callerID(ctx)
	if err != nil {
		return err
	}
	actor := actorOf(ctx)
	return db.write(ctx, func(tx *Tx) error {
		name, err := tx.requireOwner(id, uid)
		if err != nil {
			return err
		}
		others, err := tx.othersOf(id, uid)
		if err != nil {
			return err
		}
		ev := &tidings.Event{
			Process: tidings.ProcessDelete, Module: tidings.ModuleProject, Actor: actor,
			Item:    &tidings.ItemRef{ID: id, Name: name},
			Project: &tidings.ProjectRef{ID: id, Name: name},
			Text:    fmt.Sprintf("%s deleted the project “%s”", actor.Name, name),
		}
		if err := tx.emit(ev, others); err != nil {
			return err
		}
		if err := tx.beforeProjectDelete(id); err != nil {
			return err
		}
		_, err = tx.exec(`DELETE FROM projects WHERE id = ?`, id)
		return err
	})
}

// beforeProjectDelete removes what refers to a project without a foreign
// key: messages not yet due that were addressed through it.
func (tx *Tx) beforeProjectDelete(id int64) error {
	_, err := tx.exec(`DELETE FROM pending WHERE via_project = ?`, id)
	return err
}

// SetMember adds a member or changes a member's role.
func (db *DB) SetMember(ctx context.Context, projectID int64, login, role string) (*tidings.Project, error) {
	uid, err := callerID(ctx)
	if err != nil {
		return nil, err
	}
	if role == "" {
		role = tidings.ProjectMember
	}
	if err := tidings.ValidateProjectRole(role); err != nil {
		return nil, err
	}
	actor := actorOf(ctx)
	var out *tidings.Project
	err = db.write(ctx, func(tx *Tx) error {
		pname, err := tx.requireOwner(projectID, uid)
		if err != nil {
			return err
		}
		target, known, err := tx.userIDByLogin(login)
		if err != nil {
			return err
		}
		if !known {
			return &tidings.Error{Code: tidings.ENOTFOUND, Field: "login", Message: fmt.Sprintf("User %q was not found.", login)}
		}
		var name, oldRole string
		err = tx.queryRow(`SELECT u.name, COALESCE(m.role, '') FROM users u LEFT JOIN members m ON m.user_id = u.id AND m.project_id = ? WHERE u.id = ?`,
			projectID, target).Scan(&name, &oldRole)
		if err != nil {
			return err
		}
		ev := &tidings.Event{
			Module:  tidings.ModuleMember,
			Actor:   actor,
			Item:    &tidings.ItemRef{ID: target, Name: name, URL: ProjectURL(projectID)},
			Project: &tidings.ProjectRef{ID: projectID, Name: pname},
		}
		personal := ""
		switch oldRole {
		case role:
			out, err = loadProject(tx.ctx, tx.reads(), projectID, uid)
			return err // no change, no event
		case "":
			if _, err := tx.exec(`INSERT INTO members (project_id, user_id, role, created_at) VALUES (?, ?, ?, ?)`, projectID, target, role, ms(tx.now)); err != nil {
				return err
			}
			ev.Process = tidings.ProcessAdd
			ev.Text = fmt.Sprintf("%s added %s to %s", actor.Name, name, pname)
			personal = fmt.Sprintf("%s added you to %s", actor.Name, pname)
			if role == tidings.ProjectOwner {
				ev.Text += " as an owner"
				personal += " as an owner"
			}
			ev.Details = setDetails(memberFields, map[string]string{"role": role})
		default:
			if oldRole == tidings.ProjectOwner {
				if err := tx.keepAnOwner(projectID, target); err != nil {
					return err
				}
			}
			if _, err := tx.exec(`UPDATE members SET role = ? WHERE project_id = ? AND user_id = ?`, role, projectID, target); err != nil {
				return err
			}
			ev.Process = tidings.ProcessEdit
			article := "a member"
			if role == tidings.ProjectOwner {
				article = "an owner"
			}
			ev.Text = fmt.Sprintf("%s made %s %s of %s", actor.Name, name, article, pname)
			personal = fmt.Sprintf("%s made you %s of %s", actor.Name, article, pname)
			ev.Details = changeDetails(memberFields, map[string]string{"role": oldRole}, map[string]string{"role": role})
		}
		if _, err := tx.exec(`UPDATE projects SET updated_at = ? WHERE id = ?`, ms(tx.now), projectID); err != nil {
			return err
		}
		// Told after the change: the new member too.
		others, err := tx.othersOf(projectID, uid)
		if err != nil {
			return err
		}
		if err := tx.emitPersonal(ev, others, map[int64]string{target: personal}); err != nil {
			return err
		}
		out, err = loadProject(tx.ctx, tx.reads(), projectID, uid)
		return err
	})
	return out, err
}

var memberFields = []fieldLabel{{"role", "Role"}}

// keepAnOwner refuses a change that would leave the project without owner.
func (tx *Tx) keepAnOwner(projectID, losing int64) error {
	var others int
	if err := tx.queryRow(`SELECT COUNT(*) FROM members WHERE project_id = ? AND role = 'owner' AND user_id <> ?`, projectID, losing).Scan(&others); err != nil {
		return err
	}
	if others == 0 {
		return tidings.Errorf(tidings.ECONFLICT, "A project needs an owner: make someone else an owner first.")
	}
	return nil
}

// RemoveMember removes a member: owners may remove anyone, members
// themselves.
func (db *DB) RemoveMember(ctx context.Context, projectID int64, login string) error {
	uid, err := callerID(ctx)
	if err != nil {
		return err
	}
	actor := actorOf(ctx)
	return db.write(ctx, func(tx *Tx) error {
		var pname, callerRole string
		err := tx.queryRow(`SELECT p.name, m.role FROM projects p JOIN members m ON m.project_id = p.id AND m.user_id = ? WHERE p.id = ?`,
			uid, projectID).Scan(&pname, &callerRole)
		if errors.Is(err, sql.ErrNoRows) {
			return projectNotFound(projectID)
		}
		if err != nil {
			return err
		}
		var target int64
		var name, role string
		err = tx.queryRow(`SELECT u.id, u.name, m.role FROM members m JOIN users u ON u.id = m.user_id WHERE m.project_id = ? AND u.login = ?`,
			projectID, login).Scan(&target, &name, &role)
		if errors.Is(err, sql.ErrNoRows) {
			return &tidings.Error{Code: tidings.ENOTFOUND, Field: "login", Message: fmt.Sprintf("%q is not a member of this project.", login)}
		}
		if err != nil {
			return err
		}
		if target != uid && callerRole != tidings.ProjectOwner {
			return tidings.Errorf(tidings.EFORBIDDEN, "Only the project's owners may remove other members.")
		}
		if role == tidings.ProjectOwner {
			if err := tx.keepAnOwner(projectID, target); err != nil {
				return err
			}
		}
		ev := &tidings.Event{
			Process: tidings.ProcessDelete, Module: tidings.ModuleMember, Actor: actor,
			Item:    &tidings.ItemRef{ID: target, Name: name},
			Project: &tidings.ProjectRef{ID: projectID, Name: pname},
			Text:    fmt.Sprintf("%s removed %s from %s", actor.Name, name, pname),
		}
		personal := fmt.Sprintf("%s removed you from %s", actor.Name, pname)
		if target == uid {
			ev.Text = fmt.Sprintf("%s left %s", actor.Name, pname)
		}
		// Told before the change: the removed member learns of it.
		others, err := tx.othersOf(projectID, uid)
		if err != nil {
			return err
		}
		if err := tx.emitPersonal(ev, others, map[int64]string{target: personal}); err != nil {
			return err
		}
		if err := tx.afterMemberRemoved(projectID, target); err != nil {
			return err
		}
		if _, err := tx.exec(`DELETE FROM members WHERE project_id = ? AND user_id = ?`, projectID, target); err != nil {
			return err
		}
		_, err = tx.exec(`UPDATE projects SET updated_at = ? WHERE id = ?`, ms(tx.now), projectID)
		return err
	})
}

// afterMemberRemoved drops what a former member should no longer get and
// what only members may be: the assignee of the project's todos (they become
// unassigned) and a participant of its appointments (with their reminders).
// The items change without events of their own: the members are told of the
// removal itself.
func (tx *Tx) afterMemberRemoved(projectID, userID int64) error {
	steps := []struct {
		query string
		args  []any
	}{
		{`DELETE FROM muted_projects WHERE user_id = ? AND project_id = ?`, []any{userID, projectID}},
		{`DELETE FROM pending WHERE user_id = ? AND via_project = ?`, []any{userID, projectID}},
		{`UPDATE todos SET assignee_id = NULL, updated_at = ? WHERE assignee_id = ? AND project_id = ?`, []any{ms(tx.now), userID, projectID}},
		{`UPDATE appointments SET updated_at = ? WHERE project_id = ? AND id IN (SELECT appointment_id FROM appointment_participants WHERE user_id = ?)`,
			[]any{ms(tx.now), projectID, userID}},
		{`DELETE FROM appointment_participants WHERE user_id = ? AND appointment_id IN (SELECT id FROM appointments WHERE project_id = ?)`,
			[]any{userID, projectID}},
	}
	for _, s := range steps {
		if _, err := tx.exec(s.query, s.args...); err != nil {
			return err
		}
	}
	return nil
}
