package tidings

import (
	"context"
	"time"
)

// Note is a piece of text kept in a project.
type Note struct {
	ID int64 `json:"id"`

	// Project is where the note belongs; CreateNote reads Project.ID and
	// fills in the name.
	Project ProjectRef `json:"project"`

	Title string `json:"title"`
	Body  string `json:"body"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Validate checks a note's fields before it is stored.
func (n *Note) Validate() error {
	if err := validateTitle(&n.Title); err != nil {
		return err
	}
	return validateText("body", "Text", n.Body)
}

// NoteUpdate changes the fields that are set; the others keep their values.
// Its JSON tags match the note's, so a PATCH body decodes straight into it.
type NoteUpdate struct {
	Title *string `json:"title"`
	Body  *string `json:"body"`
}

// Apply copies the fields that are set onto n. Validate n afterwards.
func (u *NoteUpdate) Apply(n *Note) {
	if u.Title != nil {
		n.Title = *u.Title
	}
	if u.Body != nil {
		n.Body = *u.Body
	}
}

// NoteFilter selects notes for a list, oldest first.
type NoteFilter struct {
	// ProjectID is the project whose notes are listed; 0 lists the notes of
	// all the caller's projects.
	ProjectID int64

	Limit int
	After string // page token from a previous answer
}

// NoteService manages the notes of projects, with the access rules of
// TodoService: members only, any member may change them, ENOTFOUND for
// everyone else, EUNAUTHORIZED without a caller.
type NoteService interface {
	// FindNoteByID returns a note. ENOTFOUND.
	FindNoteByID(ctx context.Context, id int64) (*Note, error)

	// FindNotes returns a page of notes and the token of the next page (""
	// at the end). ENOTFOUND for a project the caller is not a member of;
	// EINVALID for a bad page token.
	FindNotes(ctx context.Context, filter NoteFilter) ([]*Note, string, error)

	// CreateNote stores a note in the project note.Project.ID and fills in
	// its id, project name and times. ENOTFOUND for the project; EINVALID.
	CreateNote(ctx context.Context, note *Note) error

	// UpdateNote changes a note and returns it. ENOTFOUND; EINVALID.
	UpdateNote(ctx context.Context, id int64, upd NoteUpdate) (*Note, error)

	// DeleteNote removes a note. ENOTFOUND.
	DeleteNote(ctx context.Context, id int64) error
}
