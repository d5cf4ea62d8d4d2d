package tidings

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"
)

// Project roles.
const (
	ProjectOwner  = "owner"
	ProjectMember = "member"
)

// Project groups items and the people who work on them. Only members see it.
type Project struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Role        string    `json:"role"` // the caller's role
	Members     []*Member `json:"members"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Member is a user's membership in a project.
type Member struct {
	UserID int64  `json:"-"`
	Login  string `json:"login"`
	Name   string `json:"name"`
	Role   string `json:"role"`
}

// Validate checks a project's fields before it is stored.
func (p *Project) Validate() error {
	p.Name = strings.TrimSpace(p.Name)
	if p.Name == "" {
		return Invalidf("name", "Name is required.")
	}
	if utf8.RuneCountInString(p.Name) > 200 {
		return Invalidf("name", "Name must have at most 200 characters.")
	}
	if utf8.RuneCountInString(p.Description) > 20000 {
		return Invalidf("description", "Description must have at most 20000 characters.")
	}
	return nil
}

// ValidateProjectRole checks a membership role.
func ValidateProjectRole(role string) error {
	if role != ProjectOwner && role != ProjectMember {
		return Invalidf("role", "Role must be %q or %q.", ProjectOwner, ProjectMember)
	}
	return nil
}

// ProjectUpdate changes the fields that are set.
type ProjectUpdate struct {
	Name        *string
	Description *string
}

// ProjectFilter selects the caller's projects for a list.
type ProjectFilter struct {
	Limit int
	After string // page token from a previous answer
}

// ProjectService manages projects and their members. Every method acts for
// the caller in the context and sees only the caller's projects; a project
// the caller is not a member of is ENOTFOUND.
type ProjectService interface {
	// FindProjectByID returns a project the caller belongs to.
	FindProjectByID(ctx context.Context, id int64) (*Project, error)

	// FindProjects returns a page of the caller's projects and the token of
	// the next page ("" at the end).
	FindProjects(ctx context.Context, filter ProjectFilter) ([]*Project, string, error)

	// CreateProject stores a project with the caller as its owner. EINVALID.
	CreateProject(ctx context.Context, project *Project) error

	// UpdateProject changes a project. EFORBIDDEN for non-owners; EINVALID.
	UpdateProject(ctx context.Context, id int64, upd ProjectUpdate) (*Project, error)

	// DeleteProject removes a project with its items. EFORBIDDEN for
	// non-owners.
	DeleteProject(ctx context.Context, id int64) error

	// SetMember adds a member or changes their role and returns the project.
	// EFORBIDDEN for non-owners; EINVALID for an unknown login or role;
	// ECONFLICT when the last owner would be demoted.
	SetMember(ctx context.Context, projectID int64, login, role string) (*Project, error)

	// RemoveMember removes a member. Owners may remove anyone, members
	// themselves. ECONFLICT for the last owner; ENOTFOUND for a login that is
	// not a member.
	RemoveMember(ctx context.Context, projectID int64, login string) error
}
