package http

import (
	"net/http"
	"net/url"

	"github.com/tidings/tidings"
)

// loginForm is what the login page shows and takes back.
type loginForm struct {
	Login string
	Next  string
}

func (s *Server) registerLoginPages() {
	s.mux.HandleFunc("GET /login", s.handleLoginPage)
	s.mux.HandleFunc("POST /login", s.handleLoginSubmit)
	s.mux.HandleFunc("POST /logout", s.handleLogoutSubmit)
}

// handleLoginPage shows the login form; someone already logged in goes on.
func (s *Server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if _, err := s.authenticatePage(r); err == nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	v := &view{Title: "Log in", TZ: "UTC", Data: loginForm{Next: next}}
	if err := s.render(w, "login", v); err != nil {
		s.writePageError(w, r, nil, err)
	}
}

// handleLoginSubmit takes the plain form, which works without JavaScript:
// on success back to where the visitor was going, else the form again with
// the error and the login typed.
func (s *Server) handleLoginSubmit(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(w, r)
	if err != nil {
		s.writePageError(w, r, nil, err)
		return
	}
	f := loginForm{Login: form.Get("login"), Next: safeNext(form.Get("next"))}
	password := form.Get("password")
	if f.Login == "" || password == "" {
		err = tidings.Errorf(tidings.EINVALID, "Enter your login and password.")
	} else {
		_, err = s.login(r.Context(), w, r, f.Login, password)
	}
	if err != nil {
		if r.Context().Err() != nil {
			return
		}
		v := &view{Title: "Log in", TZ: "UTC", Data: f, Error: tidings.ErrorMessage(err), Status: ErrorStatus(tidings.ErrorCode(err))}
		if tidings.ErrorCode(err) == tidings.EINTERNAL {
			s.Logger.Error("login page", "err", err)
		}
		if err := s.render(w, "login", v); err != nil {
			s.writePageError(w, r, nil, err)
		}
		return
	}
	http.Redirect(w, r, f.Next, http.StatusSeeOther)
}

// handleLogoutSubmit ends the session of the browser.
func (s *Server) handleLogoutSubmit(w http.ResponseWriter, r *http.Request) {
	if auth, err := s.authenticatePage(r); err == nil && auth.Session != nil {
		if err := s.AuthService.Logout(r.Context(), auth.Session.Hash); err != nil {
			s.writePageError(w, r, nil, err)
			return
		}
	}
	s.clearSessionCookie(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// readForm reads a form body, bounded like every body.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	body, err := readBody(w, r)
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, tidings.Errorf(tidings.EINVALID, "The form is malformed.")
	}
	return form, nil
}
