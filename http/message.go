package http

import (
	"net/http"
	"strings"
	"time"

	"github.com/tidings/tidings"
)

func (s *Server) registerMessageRoutes() {
	s.handle("POST /api/v1/messages", publishable, s.handleMessagePublish)
}

type publishItem struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

type publishRequest struct {
	Recipients []string     `json:"recipients"`
	Project    int64        `json:"project"`
	Text       string       `json:"text"`
	Module     string       `json:"module"`
	Process    string       `json:"process"`
	Item       *publishItem `json:"item"`
	Urgent     bool         `json:"urgent"`
	ValidFrom  string       `json:"valid_from"`
	TTL        string       `json:"ttl"`
}

func (s *Server) handleMessagePublish(w http.ResponseWriter, r *http.Request) error {
	// Checked before the body is read: a refused client costs nothing more,
	// and a malformed publish counts like any other.
	if auth := tidings.AuthFromContext(r.Context()); publishLimited(auth) {
		if err := s.publishes.allow(auth.User.ID); err != nil {
			setRetryAfter(w, err)
			return err
		}
	}
	var req publishRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	pub := &tidings.Publication{
		Recipients: req.Recipients,
		ProjectID:  req.Project,
		Text:       req.Text,
		Module:     req.Module,
		Process:    req.Process,
		Urgent:     req.Urgent,
	}
	if req.Project < 0 {
		return tidings.Invalidf("project", "project must be a project id.")
	}
	if req.Item != nil {
		pub.Item = &tidings.ItemRef{Name: req.Item.Name, URL: req.Item.URL}
	}
	if v := strings.TrimSpace(req.ValidFrom); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return tidings.Invalidf("valid_from", "valid_from must be an RFC 3339 time such as 2026-11-24T17:45:00Z, not %q.", clipString(v, 60))
		}
		pub.ValidFrom = t
	}
	if v := strings.TrimSpace(req.TTL); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return tidings.Invalidf("ttl", "ttl must be a duration such as \"10m\" or \"2h\", not %q.", clipString(v, 40))
		}
		if d <= 0 {
			return tidings.Invalidf("ttl", "ttl must be positive.")
		}
		pub.TTL = d
	}
	res, err := s.MessageService.PublishMessage(r.Context(), pub)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, res)
	return nil
}

// publishLimited reports whether the caller publishes under the plain-user
// rate: admins and publish tokens feed other systems' notifications into
// Tidings and must not be slowed; everyone else is a person typing.
func publishLimited(auth *tidings.Auth) bool {
	if auth == nil || auth.User == nil || auth.System || auth.User.Role == tidings.RoleAdmin {
		return false
	}
	return !(auth.Token != nil && auth.HasScope(tidings.ScopePublish))
}
