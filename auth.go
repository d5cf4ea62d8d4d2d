package tidings

import (
	"context"
	"time"
)

// Token scopes.
const (
	// ScopeUser lets a token do what its user may, except managing tokens
	// and users.
	ScopeUser = "user"
	// ScopePublish lets a token publish messages to anyone, and nothing else.
	ScopePublish = "publish"
)

// SessionLifetime is how long a session lives after its last use.
const SessionLifetime = 30 * 24 * time.Hour

// Session is a browser login. Only a hash of Secret is stored; Secret is set
// only when the session is created.
type Session struct {
	Secret     string
	Hash       []byte
	UserID     int64
	CreatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time
}

// Token is an API token. Only a hash of Secret is stored; Secret is set only
// when the token is created.
type Token struct {
	ID        int64     `json:"id"`
	UserID    int64     `json:"-"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	Secret    string    `json:"token,omitempty"`
	CreatedAt time.Time `json:"created_at"`

	// LastUsedAt is when the token last authenticated a request, to within
	// a minute; nil if it never did.
	LastUsedAt *time.Time `json:"last_used_at"`
}

// ValidateScopes checks and normalizes a scope list; empty means ["user"].
func ValidateScopes(scopes []string) ([]string, error) {
	if len(scopes) == 0 {
		return []string{ScopeUser}, nil
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		if s != ScopeUser && s != ScopePublish {
			return nil, Invalidf("scopes", "Unknown scope %q; scopes are %q and %q.", s, ScopeUser, ScopePublish)
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, nil
}

// AuthService checks credentials and keeps sessions and tokens.
type AuthService interface {
	// Login checks a login and password and opens a session. EUNAUTHORIZED
	// for a wrong login or password alike.
	Login(ctx context.Context, login, password string) (*User, *Session, error)

	// Logout ends the session with the given hash.
	Logout(ctx context.Context, sessionHash []byte) error

	// AuthenticateSession returns who holds the session secret, extending the
	// session's life. EUNAUTHORIZED if it is unknown or expired.
	AuthenticateSession(ctx context.Context, secret string) (*Auth, error)

	// AuthenticateToken returns who holds the token secret. EUNAUTHORIZED if
	// it is unknown.
	AuthenticateToken(ctx context.Context, secret string) (*Auth, error)

	// CreateToken makes a token for the user token.UserID (the caller, unless
	// the context is the system's) and sets its Secret. EINVALID for bad
	// scopes or name; EFORBIDDEN, field "scopes", when a caller other than
	// an administrator or the system asks for the publish scope, and
	// EFORBIDDEN when a token asks; ENOTFOUND for an unknown user.
	CreateToken(ctx context.Context, token *Token) error

	// FindTokens returns the caller's tokens, oldest first, without their
	// secrets; the system's context gets every user's. EUNAUTHORIZED
	// without a caller; EFORBIDDEN when the caller is a token.
	FindTokens(ctx context.Context) ([]*Token, error)

	// DeleteToken revokes one of the caller's tokens (any, in the system's
	// context); requests it authenticated, held or streaming, end.
	// ENOTFOUND for an unknown id and for another user's token alike;
	// EUNAUTHORIZED without a caller; EFORBIDDEN when the caller is a token.
	DeleteToken(ctx context.Context, id int64) error
}
