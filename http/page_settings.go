package http

import (
	"net/http"

	"github.com/tidings/tidings"
)

// settingsPage is what the settings page shows.
type settingsPage struct {
	Settings *tidings.Settings
	Projects []*tidings.Project
}

func (s *Server) handleSettingsPage(w http.ResponseWriter, r *http.Request, v *view) error {
	settings, err := s.SettingsService.FindSettings(r.Context())
	if err != nil {
		return err
	}
	projects, _, err := s.ProjectService.FindProjects(r.Context(), tidings.ProjectFilter{Limit: tidings.MaxPageSize})
	if err != nil {
		return err
	}
	v.Title, v.Nav = "Settings", "settings"
	v.Data = settingsPage{Settings: settings, Projects: projects}
	return s.render(w, "settings", v)
}

// usersPage is what the user admin page shows.
type usersPage struct {
	Users []*tidings.User
}

func (s *Server) handleUsersPage(w http.ResponseWriter, r *http.Request, v *view) error {
	users, _, err := s.UserService.FindUsers(r.Context(), tidings.UserFilter{Limit: tidings.MaxPageSize})
	if err != nil {
		return err
	}
	v.Title, v.Nav = "Users", "users"
	v.Data = usersPage{Users: users}
	return s.render(w, "users", v)
}

func (s *Server) registerPages() {
	s.registerLoginPages()
	s.page("GET /{$}", s.handleDashboardPage)
	s.page("GET /projects/{id}", s.handleProjectPage)
	s.registerItemPages()
	s.page("GET /settings", s.handleSettingsPage)
	s.page("GET /admin/users", s.handleUsersPage)
}
