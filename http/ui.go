package http

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/tidings/tidings"
)

// The web pages: server-rendered views in a common layout, plain JavaScript
// under /static/ that keeps them live. Pages and the API share the services
// and the error codes; a page answers an error as an HTML page with the
// error's status.

//go:embed html/*.html
var htmlFS embed.FS

// contentSecurityPolicy is the header of every page. No inline script, and
// Trusted Types make the browser refuse any string that reaches an HTML
// sink, so nothing a user typed can become markup.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; " +
	"frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types tidings"

// views are parsed once: each with the layout.
type views map[string]*template.Template

func (s *Server) loadViews() (views, error) {
	funcs := template.FuncMap{
		"asset": s.assetURL,
		"local": localTime,
		"day":   localDay,
		"inputTime": func(tz string, t time.Time) string {
			return t.In(location(tz)).Format("2006-01-02T15:04")
		},
		"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"initial": func(name string) string {
			for _, r := range name {
				return strings.ToUpper(string(r))
			}
			return "?"
		},
		"has": func(list []string, v string) bool {
			for _, x := range list {
				if x == v {
					return true
				}
			}
			return false
		},
		"hasID": func(list []int64, v int64) bool {
			for _, x := range list {
				if x == v {
					return true
				}
			}
			return false
		},
		"deref": func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		},
		"list4": func(a, b, c, d string) []string { return []string{a, b, c, d} },
		"dict2": func(it, ctx any) map[string]any { return map[string]any{"It": it, "Ctx": ctx} },
		"plural": func(n int, one, many string) string {
			if n == 1 {
				return one
			}
			return many
		},
	}
	layout, err := fs.ReadFile(htmlFS, "html/layout.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(htmlFS, "html/*.html")
	if err != nil {
		return nil, err
	}
	// Files whose names start with "_" hold partials every view may use.
	var partials []string
	for _, name := range names {
		if strings.HasPrefix(path.Base(name), "_") {
			b, err := fs.ReadFile(htmlFS, name)
			if err != nil {
				return nil, err
			}
			partials = append(partials, string(b))
		}
	}
	v := views{}
	for _, name := range names {
		base := path.Base(name)
		if base == "layout.html" || strings.HasPrefix(base, "_") {
			continue
		}
		body, err := fs.ReadFile(htmlFS, name)
		if err != nil {
			return nil, err
		}
		t, err := template.New("layout").Funcs(funcs).Parse(string(layout))
		if err != nil {
			return nil, fmt.Errorf("layout: %w", err)
		}
		for _, p := range partials {
			if _, err := t.Parse(p); err != nil {
				return nil, fmt.Errorf("partials: %w", err)
			}
		}
		if _, err := t.Parse(string(body)); err != nil {
			return nil, fmt.Errorf("%s: %w", base, err)
		}
		v[strings.TrimSuffix(base, ".html")] = t
	}
	return v, nil
}

func location(tz string) *time.Location {
	if loc, err := time.LoadLocation(tz); err == nil {
		return loc
	}
	return time.UTC
}

// localTime shows a moment in the user's time zone.
func localTime(tz string, t time.Time) string {
	return t.In(location(tz)).Format("Mon 2 Jan 2006, 15:04")
}

// localDay shows a date.
func localDay(d *tidings.Date) string {
	if d == nil {
		return ""
	}
	t, err := time.Parse("2006-01-02", d.String())
	if err != nil {
		return d.String()
	}
	return t.Format("Mon 2 Jan 2006")
}

// view is what every page gives its template.
type view struct {
	Title   string
	Nav     string // the active navigation entry
	User    *tidings.User
	TZ      string
	Cursor  string // taken before the page's data was read
	Project int64  // the project the page is about, if any
	Item    string // "todo 42": the item the page is about, if any
	Data    any
	Error   string
	Status  int
}

// page is a handler of a page that needs a session.
type pageFunc func(w http.ResponseWriter, r *http.Request, v *view) error

// page registers a page that needs a session: a visitor without one is sent
// to /login and, after logging in, back here. The page's cursor is taken
// before the handler reads anything, so that the live client misses nothing
// that happened after the data was read.
func (s *Server) page(pattern string, h pageFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		auth, err := s.authenticatePage(r)
		if err != nil {
			if tidings.ErrorCode(err) == tidings.EUNAUTHORIZED {
				s.redirectToLogin(w, r)
				return
			}
			s.writePageError(w, r, nil, err)
			return
		}
		r = r.WithContext(tidings.NewContextWithAuth(r.Context(), auth))
		v := &view{User: auth.User, TZ: auth.User.TimeZone, Status: http.StatusOK}
		if c, err := s.MessageService.CurrentCursor(r.Context(), auth.User.ID); err == nil {
			v.Cursor = c.String()
		} else {
			s.writePageError(w, r, v, err)
			return
		}
		if err := h(w, r, v); err != nil {
			s.writePageError(w, r, v, err)
		}
	})
}

// authenticatePage finds the session of a page request: pages take the
// cookie only.
func (s *Server) authenticatePage(r *http.Request) (*tidings.Auth, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil, tidings.Errorf(tidings.EUNAUTHORIZED, "Log in first.")
	}
	return s.AuthService.AuthenticateSession(r.Context(), c.Value)
}

func (s *Server) redirectToLogin(w http.ResponseWriter, r *http.Request) {
	target := "/login"
	if r.Method == http.MethodGet && r.URL.Path != "/" {
		target += "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// safeNext accepts a path on this server as a place to return to after
// login; anything else (another host, a scheme) is the dashboard.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return next
}

// render answers a page.
func (s *Server) render(w http.ResponseWriter, name string, v *view) error {
	t, ok := s.views[name]
	if !ok {
		return fmt.Errorf("http: no view %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	status := v.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	w.Write(buf.Bytes())
	return nil
}

// writePageError answers an error as a page with the error's status.
func (s *Server) writePageError(w http.ResponseWriter, r *http.Request, v *view, err error) {
	code := tidings.ErrorCode(err)
	if code == tidings.EUNAUTHORIZED {
		s.redirectToLogin(w, r)
		return
	}
	if code == tidings.EINTERNAL {
		s.Logger.Error("page failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if v == nil {
		v = &view{TZ: "UTC"}
	}
	v.Status = ErrorStatus(code)
	v.Title = http.StatusText(v.Status)
	v.Error = tidings.ErrorMessage(err)
	v.Data = nil
	if err := s.render(w, "error", v); err != nil {
		s.Logger.Error("render error page", "err", err)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
	}
}

// isPagePath reports whether a path belongs to the web pages rather than
// the API or the static files.
func isPagePath(p string) bool {
	return !strings.HasPrefix(p, "/api/") && !strings.HasPrefix(p, "/static/") && p != "/healthz"
}
