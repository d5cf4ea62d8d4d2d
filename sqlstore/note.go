package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/tidings/tidings"
)

var _ tidings.NoteService = (*DB)(nil)

var noteFields = []fieldLabel{{"title", "Title"}, {"body", "Text"}}

const noteSelect = `SELECT n.id, n.project_id, p.name, n.title, n.body, n.created_at, n.updated_at
FROM notes n JOIN projects p ON p.id = n.project_id`

func scanNote(row rowScanner) (*tidings.Note, error) {
	var n tidings.Note
	var created, updated int64
	if err := row.Scan(&n.ID, &n.Project.ID, &n.Project.Name, &n.Title, &n.Body, &created, &updated); err != nil {
		return nil, err
	}
	n.CreatedAt, n.UpdatedAt = fromMS(created), fromMS(updated)
	return &n, nil
}

// loadNote reads a note as reader (0: the system) sees it: ENOTFOUND unless
// a member of its project.
func loadNote(ctx context.Context, q queryer, id, reader int64) (*tidings.Note, error) {
	n, err := scanNote(q.QueryRowContext(ctx, noteSelect+`
		WHERE n.id = ? AND (CAST(? AS BIGINT) = 0 OR EXISTS (SELECT 1 FROM members WHERE project_id = n.project_id AND user_id = ?))`, id, reader, reader))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, itemNotFound("Note", id)
	}
	return n, err
}

func noteValues(n *tidings.Note) map[string]string {
	return map[string]string{"title": n.Title, "body": n.Body}
}

// FindNoteByID returns a note of one of the caller's projects.
func (db *DB) FindNoteByID(ctx context.Context, id int64) (*tidings.Note, error) {
	reader, err := itemReader(ctx)
	if err != nil {
		return nil, err
	}
	var n *tidings.Note
	err = db.readTx(ctx, func(tx queryer) error {
		n, err = loadNote(ctx, tx, id, reader)
		return err
	})
	return n, err
}

// FindNotes returns a page of notes, oldest first.
func (db *DB) FindNotes(ctx context.Context, filter tidings.NoteFilter) ([]*tidings.Note, string, error) {
	reader, err := itemReader(ctx)
	if err != nil {
		return nil, "", err
	}
	limit := pageLimit(filter.Limit)
	after, err := parsePageToken(filter.After)
	if err != nil {
		return nil, "", err
	}
	var notes []*tidings.Note
	var next string
	err = db.readTx(ctx, func(tx queryer) error {
		scope, args, err := listScope(ctx, tx, "n.project_id", filter.ProjectID, reader)
		if err != nil {
			return err
		}
		args = append(args, after, limit+1)
		rows, err := tx.QueryContext(ctx, noteSelect+` WHERE `+scope+` AND n.id > ? ORDER BY n.id LIMIT ?`, args...)
		if err != nil {
			return err
		}
		notes, next, err = collectPage(rows, limit, scanNote, func(n *tidings.Note) string { return pageToken(n.ID) })
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return notes, next, nil
}

// CreateNote stores a note; the project's other members learn of it.
func (db *DB) CreateNote(ctx context.Context, n *tidings.Note) error {
	uid, err := callerID(ctx)
	if err != nil {
		return err
	}
	actor := actorOf(ctx)
	return db.write(ctx, func(tx *Tx) error {
		pname, err := tx.requireMember(n.Project.ID, uid)
		if err != nil {
			return err
		}
		if err := n.Validate(); err != nil {
			return err
		}
		if err := tx.queryRow(`INSERT INTO notes (project_id, title, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			n.Project.ID, n.Title, n.Body, ms(tx.now), ms(tx.now)).Scan(&n.ID); err != nil {
			return err
		}
		n.Project.Name = pname
		n.CreatedAt, n.UpdatedAt = tx.now, tx.now
		others, err := tx.othersOf(n.Project.ID, uid)
		if err != nil {
			return err
		}
		return tx.emit(&tidings.Event{
			Process: tidings.ProcessAdd, Module: tidings.ModuleNote, Actor: actor,
			Item:    &tidings.ItemRef{ID: n.ID, Name: n.Title, URL: noteURL(n.ID)},
			Project: &tidings.ProjectRef{ID: n.Project.ID, Name: pname},
			Text:    itemAddText(actor, "note", n.Title, pname),
			Details: setDetails(noteFields, noteValues(n)),
		}, others)
	})
}

// UpdateNote changes a note; the project's other members learn what changed.
func (db *DB) UpdateNote(ctx context.Context, id int64, upd tidings.NoteUpdate) (*tidings.Note, error) {
	uid, err := callerID(ctx)
	if err != nil {
		return nil, err
	}
	actor := actorOf(ctx)
	var out *tidings.Note
	err = db.write(ctx, func(tx *Tx) error {
		n, err := loadNote(tx.ctx, tx.reads(), id, uid)
		if err != nil {
			return err
		}
		before, oldTitle := noteValues(n), n.Title
		upd.Apply(n)
		if err := n.Validate(); err != nil {
			return err
		}
		details := changeDetails(noteFields, before, noteValues(n))
		out = n
		if len(details) == 0 {
			return nil // nothing changed: no event
		}
		if _, err := tx.exec(`UPDATE notes SET title = ?, body = ?, updated_at = ? WHERE id = ?`, n.Title, n.Body, ms(tx.now), id); err != nil {
			return err
		}
		n.UpdatedAt = tx.now
		others, err := tx.othersOf(n.Project.ID, uid)
		if err != nil {
			return err
		}
		return tx.emit(&tidings.Event{
			Process: tidings.ProcessEdit, Module: tidings.ModuleNote, Actor: actor,
			Item:    &tidings.ItemRef{ID: id, Name: n.Title, URL: noteURL(id)},
			Project: &tidings.ProjectRef{ID: n.Project.ID, Name: n.Project.Name},
			Text:    itemEditText(actor, "note", oldTitle, n.Title, n.Project.Name, details),
			Details: details,
		}, others)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteNote removes a note; the project's other members learn of it.
func (db *DB) DeleteNote(ctx context.Context, id int64) error {
	uid, err := callerID(ctx)
	if err != nil {
		return err
	}
	actor := actorOf(ctx)
	return db.write(ctx, func(tx *Tx) error {
		n, err := loadNote(tx.ctx, tx.reads(), id, uid)
		if err != nil {
			return err
		}
		if _, err := tx.exec(`DELETE FROM notes WHERE id = ?`, id); err != nil {
			return err
		}
		others, err := tx.othersOf(n.Project.ID, uid)
		if err != nil {
			return err
		}
		return tx.emit(&tidings.Event{
			Process: tidings.ProcessDelete, Module: tidings.ModuleNote, Actor: actor,
			Item:    &tidings.ItemRef{ID: id, Name: n.Title},
			Project: &tidings.ProjectRef{ID: n.Project.ID, Name: n.Project.Name},
			Text:    itemDeleteText(actor, "note", n.Title, n.Project.Name),
		}, others)
	})
}
