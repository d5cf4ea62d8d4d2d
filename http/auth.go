package http

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/tidings/tidings"
)

// SessionCookie is the name of the session cookie.
const SessionCookie = "tidings_session"

func (s *Server) registerAuthRoutes() {
	s.handle("POST /api/v1/login", public, s.handleLogin)
	s.handle("POST /api/v1/logout", userAccess, s.handleLogout)
	s.handle("POST /api/v1/tokens", sessionOnly, s.handleTokenCreate)
	s.handle("GET /api/v1/tokens", sessionOnly, s.handleTokenList)
	s.handle("DELETE /api/v1/tokens/{id}", sessionOnly, s.handleTokenDelete)
	s.handle("GET /api/v1/me", userAccess, s.handleMe)
}

// authenticate finds who sends the request: a bearer token, else the
// session cookie.
func (s *Server) authenticate(r *http.Request) (*tidings.Auth, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, secret, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
			return nil, tidings.Errorf(tidings.EUNAUTHORIZED, "The Authorization header must be \"Bearer <token>\".")
		}
		secret = strings.TrimSpace(secret)
		return s.authenticateCached("token", secret, func() (*tidings.Auth, error) {
			return s.AuthService.AuthenticateToken(r.Context(), secret)
		})
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil, tidings.Errorf(tidings.EUNAUTHORIZED, "Log in or send an API token.")
	}
	return s.authenticateCached("session", c.Value, func() (*tidings.Auth, error) {
		return s.AuthService.AuthenticateSession(r.Context(), c.Value)
	})
}

// refreshCookie renews the cookie's expiry after the session was extended,
// so that it stays valid 30 days from last use in the browser too.
func (s *Server) refreshCookie(w http.ResponseWriter, r *http.Request, auth *tidings.Auth) {
	if auth == nil || auth.Session == nil || time.Since(auth.Session.LastUsedAt) > time.Minute {
		return
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		s.setSessionCookie(w, r, c.Value, auth.Session.ExpiresAt)
	}
}

// setSessionCookie sets the session cookie, Secure when the client reached
// us over TLS: a browser then never sends it in the clear, while a cookie
// marked Secure on a plain-HTTP site would never be sent back at all.
func (s *Server) setSessionCookie(w http.ResponseWriter, r *http.Request, secret string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name:     SessionCookie,
		Value:    secret,
		Path:     "/",
		Expires:  expires,
		MaxAge:   int(time.Until(expires).Seconds()),
		HttpOnly: true,
		Secure:   s.viaHTTPS(r),
		SameSite: http.SameSiteLaxMode,
	})
}

func (s *Server) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.viaHTTPS(r), SameSite: http.SameSiteLaxMode,
	})
}

type loginRequest struct {
	Login    string `json:"login"`
	Password string `json:"password"`
}

// login checks a login and password and starts a session. It is shared
// with the login page, so that both are throttled alike: a refusal is
// ERATELIMITED with Retry-After already set on w.
func (s *Server) login(ctx context.Context, w http.ResponseWriter, r *http.Request, login, password string) (*tidings.User, error) {
	login = strings.TrimSpace(login)
	client := throttleKey(s.clientAddr(r))
	attempt, err := s.logins.begin(client, login)
	if err != nil {
		setRetryAfter(w, err)
		return nil, err
	}
	failed := false
	defer func() { attempt.finish(failed) }()
	release, ok := s.logins.acquireSlot(ctx.Done())
	if !ok {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		err := rateLimited(time.Second, "Too many logins at once; try again in a moment.")
		setRetryAfter(w, err)
		return nil, err
	}
	defer release()
	if s.onPasswordCheck != nil {
		s.onPasswordCheck(client)
	}
	user, session, err := s.AuthService.Login(ctx, login, password)
	if err != nil {
		failed = tidings.ErrorCode(err) == tidings.EUNAUTHORIZED
		if failed && s.TellLoginFailure != nil {
			// The other nodes count it too; a failure to tell them is no
			// reason to answer differently.
			if err := s.TellLoginFailure(ctx, loginFailureKey(client, login)); err != nil {
				s.Logger.Debug("tell the other nodes of a failed login", "err", err)
			}
		}
		return nil, err
	}
	s.setSessionCookie(w, r, session.Secret, session.ExpiresAt)
	return user, nil
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Login == "" {
		return tidings.Invalidf("login", "Login is required.")
	}
	if req.Password == "" {
		return tidings.Invalidf("password", "Password is required.")
	}
	user, err := s.login(r.Context(), w, r, req.Login, req.Password)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"user": user})
	return nil
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) error {
	auth := tidings.AuthFromContext(r.Context())
	if auth.Session != nil {
		if err := s.AuthService.Logout(r.Context(), auth.Session.Hash); err != nil {
			return err
		}
	}
	s.clearSessionCookie(w, r)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"user": tidings.UserFromContext(r.Context())})
	return nil
}
