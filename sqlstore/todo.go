package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/tidings/tidings"
)

var _ tidings.TodoService = (*DB)(nil)

var todoFields = []fieldLabel{
	{"title", "Title"}, {"description", "Description"}, {"priority", "Priority"},
	{"status", "Status"}, {"assignee", "Assignee"}, {"due", "Due date"},
}

const todoSelect = `SELECT t.id, t.project_id, p.name, t.title, t.description, t.priority, t.status,
	t.assignee_id, u.login, u.name, t.due, t.created_at, t.updated_at
FROM todos t JOIN projects p ON p.id = t.project_id LEFT JOIN users u ON u.id = t.assignee_id`

// scanTodo reads a row of todoSelect and returns the todo and the id of its
// assignee (0: none).
func scanTodo(row rowScanner) (*tidings.Todo, int64, error) {
	var t tidings.Todo
	var assigneeID sql.NullInt64
	var login, name, due sql.NullString
	var created, updated int64
	if err := row.Scan(&t.ID, &t.Project.ID, &t.Project.Name, &t.Title, &t.Description, &t.Priority, &t.Status,
		&assigneeID, &login, &name, &due, &created, &updated); err != nil {
		return nil, 0, err
	}
	if login.Valid {
		t.Assignee, t.AssigneeName = &login.String, name.String
	}
	if due.Valid {
		d, err := tidings.ParseDate(due.String)
		if err != nil {
			return nil, 0, err
		}
		t.Due = &d
	}
	t.CreatedAt, t.UpdatedAt = fromMS(created), fromMS(updated)
	return &t, assigneeID.Int64, nil
}

// loadTodo reads a todo as reader (0: the system) sees it: ENOTFOUND unless
// a member of its project.
func loadTodo(ctx context.Context, q queryer, id, reader int64) (*tidings.Todo, int64, error) {
	t, assigneeID, err := scanTodo(q.QueryRowContext(ctx, todoSelect+`
		WHERE t.id = ? AND (CAST(? AS BIGINT) = 0 OR EXISTS (SELECT 1 FROM members WHERE project_id = t.project_id AND user_id = ?))`, id, reader, reader))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, itemNotFound("Todo", id)
	}
	return t, assigneeID, err
}

// todoValues are a todo's fields as people read them in details.
func todoValues(t *tidings.Todo) map[string]string {
	return map[string]string{
		"title": t.Title, "description": t.Description, "priority": t.Priority, "status": t.Status,
		"assignee": t.AssigneeName, "due": formatDate(t.Due),
	}
}

// FindTodoByID returns a todo of one of the caller's projects.
func (db *DB) FindTodoByID(ctx context.Context, id int64) (*tidings.Todo, error) {
	reader, err := itemReader(ctx)
	if err != nil {
		return nil, err
	}
	var t *tidings.Todo
	err = db.readTx(ctx, func(tx queryer) error {
		t, _, err = loadTodo(ctx, tx, id, reader)
		return err
	})
	return t, err
}

// FindTodos returns a page of todos, oldest first.
func (db *DB) FindTodos(ctx context.Context, filter tidings.TodoFilter) ([]*tidings.Todo, string, error) {
	reader, err := itemReader(ctx)
	if err != nil {
		return nil, "", err
	}
	limit := pageLimit(filter.Limit)
	after, err := parsePageToken(filter.After)
	if err != nil {
		return nil, "", err
	}
	if filter.Status != nil {
		if err := tidings.ValidateStatus(*filter.Status); err != nil {
			return nil, "", err
		}
	}
	var todos []*tidings.Todo
	var next string
	err = db.readTx(ctx, func(tx queryer) error {
		scope, args, err := listScope(ctx, tx, "t.project_id", filter.ProjectID, reader)
		if err != nil {
			return err
		}
		conds := []string{scope, "t.id > ?"}
		args = append(args, after)
		if filter.Status != nil {
			conds = append(conds, "t.status = ?")
			args = append(args, *filter.Status)
		}
		switch {
		case filter.Assignee == nil:
		case *filter.Assignee == "":
			conds = append(conds, "t.assignee_id IS NULL")
		default:
			conds = append(conds, "u.login = ?")
			args = append(args, *filter.Assignee)
		}
		args = append(args, limit+1)
		rows, err := tx.QueryContext(ctx, todoSelect+` WHERE `+strings.Join(conds, " AND ")+` ORDER BY t.id LIMIT ?`, args...)
		if err != nil {
			return err
		}
		scan := func(row rowScanner) (*tidings.Todo, error) {
			t, _, err := scanTodo(row)
			return t, err
		}
		todos, next, err = collectPage(rows, limit, scan, func(t *tidings.Todo) string { return pageToken(t.ID) })
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return todos, next, nil
}

// CreateTodo stores a todo; the project's other members learn of it.
func (db *DB) CreateTodo(ctx context.Context, t *tidings.Todo) error {
	uid, err := callerID(ctx)
	if err != nil {
		return err
	}
	actor := actorOf(ctx)
	return db.write(ctx, func(tx *Tx) error {
		pname, err := tx.requireMember(t.Project.ID, uid)
		if err != nil {
			return err
		}
		if err := t.Validate(); err != nil {
			return err
		}
		var assignee member
		if t.Assignee != nil {
			var ok bool
			if assignee, ok, err = tx.memberByLogin(t.Project.ID, *t.Assignee); err != nil {
				return err
			} else if !ok {
				return notMember("assignee", *t.Assignee, pname)
			}
		}
		t.AssigneeName = assignee.name
		if err := tx.queryRow(`INSERT INTO todos (project_id, title, description, priority, status, assignee_id, due, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			t.Project.ID, t.Title, t.Description, t.Priority, t.Status, nullInt(assignee.id), nullString(formatDate(t.Due)),
			ms(tx.now), ms(tx.now)).Scan(&t.ID); err != nil {
			return err
		}
		t.Project.Name = pname
		t.CreatedAt, t.UpdatedAt = tx.now, tx.now
		others, err := tx.othersOf(t.Project.ID, uid)
		if err != nil {
			return err
		}
		ev := &tidings.Event{
			Process: tidings.ProcessAdd, Module: tidings.ModuleTodo, Actor: actor,
			Item:    &tidings.ItemRef{ID: t.ID, Name: t.Title, URL: todoURL(t.ID)},
			Project: &tidings.ProjectRef{ID: t.Project.ID, Name: pname},
			Text:    itemAddText(actor, "todo", t.Title, pname),
			Details: setDetails(todoFields, todoValues(t)),
			Urgent:  t.Priority == tidings.PriorityUrgent,
		}
		return tx.emit(ev, without(append(others, assignee.id), uid))
	})
}

// UpdateTodo changes a todo; the project's other members learn what
// changed, the assignee before the change too.
func (db *DB) UpdateTodo(ctx context.Context, id int64, upd tidings.TodoUpdate) (*tidings.Todo, error) {
	uid, err := callerID(ctx)
	if err != nil {
		return nil, err
	}
	actor := actorOf(ctx)
	var out *tidings.Todo
	err = db.write(ctx, func(tx *Tx) error {
		t, oldAssignee, err := loadTodo(tx.ctx, tx.reads(), id, uid)
		if err != nil {
			return err
		}
		if err := upd.Validate(); err != nil {
			return err
		}
		before, oldTitle := todoValues(t), t.Title
		upd.Apply(t)
		if err := t.Validate(); err != nil {
			return err
		}
		newAssignee := oldAssignee
		if upd.Assignee.Set {
			newAssignee, t.AssigneeName = 0, ""
			if t.Assignee != nil {
				m, ok, err := tx.memberByLogin(t.Project.ID, *t.Assignee)
				if err != nil {
					return err
				}
				if !ok {
					return notMember("assignee", *t.Assignee, t.Project.Name)
				}
				newAssignee, t.AssigneeName = m.id, m.name
			}
		}
		after := todoValues(t)
		if newAssignee != oldAssignee && before["assignee"] == after["assignee"] && after["assignee"] != "" {
			// Two people of the same name: tell them apart by login.
			var oldLogin string
			if err := tx.queryRow(`SELECT login FROM users WHERE id = ?`, oldAssignee).Scan(&oldLogin); err != nil {
				return err
			}
			before["assignee"] += " (" + oldLogin + ")"
			after["assignee"] += " (" + *t.Assignee + ")"
		}
		details := changeDetails(todoFields, before, after)
		out = t
		if len(details) == 0 {
			return nil // nothing changed: no event
		}
		if _, err := tx.exec(`UPDATE todos SET title = ?, description = ?, priority = ?, status = ?, assignee_id = ?, due = ?, updated_at = ? WHERE id = ?`,
			t.Title, t.Description, t.Priority, t.Status, nullInt(newAssignee), nullString(formatDate(t.Due)), ms(tx.now), id); err != nil {
			return err
		}
		t.UpdatedAt = tx.now
		others, err := tx.othersOf(t.Project.ID, uid)
		if err != nil {
			return err
		}
		ev := &tidings.Event{
			Process: tidings.ProcessEdit, Module: tidings.ModuleTodo, Actor: actor,
			Item:    &tidings.ItemRef{ID: id, Name: t.Title, URL: todoURL(id)},
			Project: &tidings.ProjectRef{ID: t.Project.ID, Name: t.Project.Name},
			Text:    itemEditText(actor, "todo", oldTitle, t.Title, t.Project.Name, details),
			Details: details,
			Urgent:  t.Priority == tidings.PriorityUrgent,
		}
		return tx.emit(ev, without(append(others, newAssignee, oldAssignee), uid))
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteTodo removes a todo; the project's other members learn of it.
func (db *DB) DeleteTodo(ctx context.Context, id int64) error {
	uid, err := callerID(ctx)
	if err != nil {
		return err
	}
	actor := actorOf(ctx)
	return db.write(ctx, func(tx *Tx) error {
		t, assignee, err := loadTodo(tx.ctx, tx.reads(), id, uid)
		if err != nil {
			return err
		}
		if _, err := tx.exec(`DELETE FROM todos WHERE id = ?`, id); err != nil {
			return err
		}
		others, err := tx.othersOf(t.Project.ID, uid)
		if err != nil {
			return err
		}
		ev := &tidings.Event{
			Process: tidings.ProcessDelete, Module: tidings.ModuleTodo, Actor: actor,
			Item:    &tidings.ItemRef{ID: id, Name: t.Title},
			Project: &tidings.ProjectRef{ID: t.Project.ID, Name: t.Project.Name},
			Text:    itemDeleteText(actor, "todo", t.Title, t.Project.Name),
			Urgent:  t.Priority == tidings.PriorityUrgent,
		}
		return tx.emit(ev, without(append(others, assignee), uid))
	})
}
