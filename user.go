package tidings

import (
	"context"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// User roles.
const (
	RoleAdmin = "admin"
	RoleUser  = "user"
)

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 8

// User is a person who logs in. The password hash never leaves the store.
type User struct {
	ID        int64     `json:"id"`
	Login     string    `json:"login"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	TimeZone  string    `json:"time_zone"`
	Language  string    `json:"language"`
	CreatedAt time.Time `json:"-"`
	UpdatedAt time.Time `json:"-"`
}

var languagePattern = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)

// ValidateLogin checks a login against [a-z0-9._-]{1,64}.
func ValidateLogin(login string) error {
	if login == "" {
		return Invalidf("login", "Login is required.")
	}
	if !IsIdentifier(login) {
		return Invalidf("login", "Login %q must be 1 to 64 characters of a-z, 0-9, '.', '_' and '-'.", login)
	}
	return nil
}

// IsIdentifier reports whether s is 1 to 64 characters of a-z, 0-9, '.',
// '_' and '-', as logins and message modules are. It is a loop rather than
// a regular expression: each publish checks its module and every login it
// addresses, some of them while it holds the write lock.
func IsIdentifier(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidatePassword checks that a password is long enough and not absurdly long.
func ValidatePassword(password string) error {
	if utf8.RuneCountInString(password) < MinPasswordLength {
		return Invalidf("password", "Password must have at least %d characters.", MinPasswordLength)
	}
	if len(password) > 1024 {
		return Invalidf("password", "Password must have at most 1024 bytes.")
	}
	return nil
}

// Validate checks the fields of a user before it is stored, filling in
// defaults for role, time zone and language.
func (u *User) Validate() error {
	if err := ValidateLogin(u.Login); err != nil {
		return err
	}
	u.Name = strings.TrimSpace(u.Name)
	if u.Name == "" {
		return Invalidf("name", "Name is required.")
	}
	if utf8.RuneCountInString(u.Name) > 200 {
		return Invalidf("name", "Name must have at most 200 characters.")
	}
	u.Email = strings.TrimSpace(u.Email)
	if err := validateEmail(u.Email); err != nil {
		return err
	}
	if u.Role == "" {
		u.Role = RoleUser
	}
	if u.Role != RoleAdmin && u.Role != RoleUser {
		return Invalidf("role", "Role must be %q or %q.", RoleAdmin, RoleUser)
	}
	if u.TimeZone == "" {
		u.TimeZone = "UTC"
	}
	if _, err := time.LoadLocation(u.TimeZone); err != nil || u.TimeZone == "Local" {
		return Invalidf("time_zone", "Time zone %q is not a known IANA time zone.", u.TimeZone)
	}
	if u.Language == "" {
		u.Language = "en"
	}
	if !languagePattern.MatchString(u.Language) {
		return Invalidf("language", "Language %q is not a language tag such as \"en\" or \"de-AT\".", u.Language)
	}
	return nil
}

func validateEmail(email string) error {
	if email == "" {
		return Invalidf("email", "Email is required.")
	}
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 || len(email) > 254 || strings.ContainsAny(email, " \t\r\n<>\"") {
		return Invalidf("email", "Email %q is not an email address.", email)
	}
	return nil
}

// UserUpdate changes the fields that are set.
type UserUpdate struct {
	Name     *string
	Email    *string
	Password *string
	Role     *string
	TimeZone *string
	Language *string
}

// UserFilter selects users for a list.
type UserFilter struct {
	Login *string
	Limit int
	After string // page token from a previous answer
}

// UserService manages users. Listing and changing other users is for admins.
type UserService interface {
	// FindUserByLogin returns a user; ENOTFOUND if there is none.
	FindUserByLogin(ctx context.Context, login string) (*User, error)

	// FindUsers returns a page of users and the token of the next page ("" at
	// the end). EFORBIDDEN unless the caller is an admin.
	FindUsers(ctx context.Context, filter UserFilter) ([]*User, string, error)

	// CreateUser stores a new user with the given password. EINVALID for bad
	// fields, ECONFLICT for a taken login, EFORBIDDEN unless the caller is an
	// admin (or the system).
	CreateUser(ctx context.Context, user *User, password string) error

	// UpdateUser changes a user. EFORBIDDEN unless the caller is an admin;
	// ENOTFOUND, EINVALID; ECONFLICT when the last admin would lose the role.
	UpdateUser(ctx context.Context, login string, upd UserUpdate) (*User, error)

	// DeleteUser removes a user and everything that is theirs alone.
	// EFORBIDDEN, ENOTFOUND; ECONFLICT for the last admin or the last owner
	// of a project that has other members.
	DeleteUser(ctx context.Context, login string) error

	// CountUsers returns how many users exist.
	CountUsers(ctx context.Context) (int, error)
}
