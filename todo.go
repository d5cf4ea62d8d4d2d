package tidings

import (
	"context"
	"time"
)

// Todo priorities.
const (
	PriorityLow    = "low"
	PriorityNormal = "normal"
	PriorityHigh   = "high"
	PriorityUrgent = "urgent"
)

// Todo statuses.
const (
	StatusOpen = "open"
	StatusDone = "done"
)

// Todo is a task in a project, perhaps assigned to one of its members.
type Todo struct {
	ID int64 `json:"id"`

	// Project is where the todo belongs; CreateTodo reads Project.ID and
	// fills in the name.
	Project ProjectRef `json:"project"`

	Title       string `json:"title"`
	Description string `json:"description"`
	Priority    string `json:"priority"` // low, normal, high or urgent
	Status      string `json:"status"`   // open or done

	// Assignee is the login of the member the todo is assigned to; nil for
	// nobody. AssigneeName is their display name, for pages.
	Assignee     *string `json:"assignee"`
	AssigneeName string  `json:"-"`

	// Due is the day the todo is due; nil for none.
	Due *Date `json:"due"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Validate checks a todo's own fields before it is stored, filling in the
// defaults: priority normal, status open. Whether the assignee is a member
// is the store's check.
func (t *Todo) Validate() error {
	if err := validateTitle(&t.Title); err != nil {
		return err
	}
	if err := validateText("description", "Description", t.Description); err != nil {
		return err
	}
	if t.Priority == "" {
		t.Priority = PriorityNormal
	}
	if err := ValidatePriority(t.Priority); err != nil {
		return err
	}
	if t.Status == "" {
		t.Status = StatusOpen
	}
	if err := ValidateStatus(t.Status); err != nil {
		return err
	}
	if t.Assignee != nil && *t.Assignee == "" {
		t.Assignee = nil // an empty login is nobody
	}
	return nil
}

// ValidatePriority checks a todo priority.
func ValidatePriority(p string) error {
	switch p {
	case PriorityLow, PriorityNormal, PriorityHigh, PriorityUrgent:
		return nil
	}
	return Invalidf("priority", "Priority must be low, normal, high or urgent.")
}

// ValidateStatus checks a todo status.
func ValidateStatus(s string) error {
	switch s {
	case StatusOpen, StatusDone:
		return nil
	}
	return Invalidf("status", "Status must be open or done.")
}

// TodoUpdate changes the fields that are set; the others keep their values.
// Its JSON tags match the todo's, so a PATCH body decodes straight into it:
// a field left out is nil (or an unset Optional), and "assignee": null or
// "due": null clears the field.
type TodoUpdate struct {
	Title       *string          `json:"title"`
	Description *string          `json:"description"`
	Priority    *string          `json:"priority"`
	Status      *string          `json:"status"`
	Assignee    Optional[string] `json:"assignee,omitzero"` // a login; null or "" for nobody
	Due         Optional[Date]   `json:"due,omitzero"`
}

// Apply copies the fields that are set onto t. Validate t afterwards.
func (u *TodoUpdate) Apply(t *Todo) {
	if u.Title != nil {
		t.Title = *u.Title
	}
	if u.Description != nil {
		t.Description = *u.Description
	}
	if u.Priority != nil {
		t.Priority = *u.Priority
	}
	if u.Status != nil {
		t.Status = *u.Status
	}
	if u.Assignee.Set {
		t.Assignee = u.Assignee.Value
	}
	if u.Due.Set {
		t.Due = u.Due.Value
		if t.Due != nil && t.Due.IsZero() {
			t.Due = nil
		}
	}
}

// Validate checks the values an update sets that Todo.Validate would
// otherwise replace by defaults.
func (u *TodoUpdate) Validate() error {
	if u.Priority != nil {
		if err := ValidatePriority(*u.Priority); err != nil {
			return err
		}
	}
	if u.Status != nil {
		if err := ValidateStatus(*u.Status); err != nil {
			return err
		}
	}
	return nil
}

// TodoFilter selects todos for a list, oldest first.
type TodoFilter struct {
	// ProjectID is the project whose todos are listed; 0 lists the todos of
	// all the caller's projects (for a dashboard).
	ProjectID int64

	Status   *string // open or done; nil for both
	Assignee *string // a login; "" for unassigned todos; nil for all

	Limit int
	After string // page token from a previous answer
}

// TodoService manages the todos of projects. Every method acts for the
// caller in the context; only members of a project see and change its
// todos, and any member may. A todo of a project the caller is not a member
// of is ENOTFOUND, like one that does not exist. Without a caller, methods
// return EUNAUTHORIZED.
type TodoService interface {
	// FindTodoByID returns a todo. ENOTFOUND.
	FindTodoByID(ctx context.Context, id int64) (*Todo, error)

	// FindTodos returns a page of todos and the token of the next page (""
	// at the end). ENOTFOUND for a project the caller is not a member of;
	// EINVALID for a bad status or page token.
	FindTodos(ctx context.Context, filter TodoFilter) ([]*Todo, string, error)

	// CreateTodo stores a todo in the project todo.Project.ID and fills in
	// its id, project name and times. ENOTFOUND for the project; EINVALID
	// for bad fields or an assignee who is not a member.
	CreateTodo(ctx context.Context, todo *Todo) error

	// UpdateTodo changes a todo and returns it. ENOTFOUND; EINVALID.
	UpdateTodo(ctx context.Context, id int64, upd TodoUpdate) (*Todo, error)

	// DeleteTodo removes a todo. ENOTFOUND.
	DeleteTodo(ctx context.Context, id int64) error
}
