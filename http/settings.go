package http

import (
	"net/http"

	"github.com/tidings/tidings"
)

func (s *Server) registerSettingsRoutes() {
	s.handle("GET /api/v1/me/settings", userAccess, s.handleSettingsGet)
	s.handle("PUT /api/v1/me/settings", userAccess, s.handleSettingsUpdate)
}

func (s *Server) handleSettingsGet(w http.ResponseWriter, r *http.Request) error {
	settings, err := s.SettingsService.FindSettings(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, settings)
	return nil
}

type settingsRequest struct {
	Records             *bool    `json:"records"`
	Presence            *bool    `json:"presence"`
	Reminders           *bool    `json:"reminders"`
	Messages            *bool    `json:"messages"`
	MutedProjects       *[]int64 `json:"muted_projects"`
	ReminderLeadMinutes *int     `json:"reminder_lead_minutes"`
}

func (s *Server) handleSettingsUpdate(w http.ResponseWriter, r *http.Request) error {
	var req settingsRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	settings, err := s.SettingsService.UpdateSettings(r.Context(), tidings.SettingsUpdate(req))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, settings)
	return nil
}
