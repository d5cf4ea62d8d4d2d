package tidings

import (
	"context"
	"time"
)

type contextKey int

const authContextKey contextKey = iota + 1

// Auth says who makes a request and how: through a browser session or an API
// token with scopes.
type Auth struct {
	User *User

	// Session is set when the request came with a session cookie; its hash
	// identifies the session for logout.
	Session *Session

	// Token is set when the request came with a bearer token.
	Token *Token

	// System is set for the command line and start-up work on the database
	// itself, which acts without a user and is not limited by one.
	System bool

	// Recheck, if set, is when the store wants the credential looked up
	// again: its use is due to be recorded (a session's use extends it),
	// or it expires. A cache that hears of every credential's end (see
	// AccessEnds) may believe the answer until then.
	Recheck time.Time
}

// AccessEnds tells whether whoever caches credentials hears of every end
// of one (a logout, a revoked token, a changed or deleted user) at once,
// and since when: heard false, or another since than a cached answer's,
// and the answer may be stale.
type AccessEnds func() (heard bool, since uint64)

// HasScope reports whether the request may act within scope. A session may do
// everything its user may; a token only what its scopes allow.
func (a *Auth) HasScope(scope string) bool {
	if a == nil {
		return false
	}
	if a.Token == nil {
		return a.Session != nil
	}
	for _, s := range a.Token.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// MayAddressAnyone reports whether the caller may publish to any user: admins
// and tokens with the publish scope.
func (a *Auth) MayAddressAnyone() bool {
	if a == nil {
		return false
	}
	if a.System {
		return true
	}
	if a.User == nil {
		return false
	}
	if a.Token != nil && a.HasScope(ScopePublish) {
		return true
	}
	return a.User.Role == RoleAdmin
}

// NewSystemContext returns a context for work done by the operator through
// the command line: it may create users and tokens for anyone.
func NewSystemContext(ctx context.Context) context.Context {
	return NewContextWithAuth(ctx, &Auth{System: true})
}

// NewContextWithAuth returns a context that carries auth.
func NewContextWithAuth(ctx context.Context, auth *Auth) context.Context {
	return context.WithValue(ctx, authContextKey, auth)
}

// AuthFromContext returns the Auth of the request, or nil.
func AuthFromContext(ctx context.Context) *Auth {
	a, _ := ctx.Value(authContextKey).(*Auth)
	return a
}

// UserFromContext returns the acting user, or nil.
func UserFromContext(ctx context.Context) *User {
	if a := AuthFromContext(ctx); a != nil {
		return a.User
	}
	return nil
}

// UserIDFromContext returns the acting user's id, or 0.
func UserIDFromContext(ctx context.Context) int64 {
	if u := UserFromContext(ctx); u != nil {
		return u.ID
	}
	return 0
}
