package http

import (
	"net/http"
	"time"

	"github.com/tidings/tidings"
)

type tokenRequest struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

func (s *Server) handleTokenCreate(w http.ResponseWriter, r *http.Request) error {
	var req tokenRequest
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	if len(body) > 0 {
		if err := unmarshalJSON(body, &req); err != nil {
			return err
		}
	}
	t := &tidings.Token{Name: req.Name, Scopes: req.Scopes}
	if err := s.AuthService.CreateToken(r.Context(), t); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, struct {
		ID     int64    `json:"id"`
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
		Token  string   `json:"token"`
	}{t.ID, t.Name, t.Scopes, t.Secret})
	return nil
}

// tokenItem is a token in the list: never its secret, which is shown only
// when the token is created.
type tokenItem struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

func (s *Server) handleTokenList(w http.ResponseWriter, r *http.Request) error {
	tokens, err := s.AuthService.FindTokens(r.Context())
	if err != nil {
		return err
	}
	items := make([]tokenItem, 0, len(tokens))
	for _, t := range tokens {
		items = append(items, tokenItem{ID: t.ID, Name: t.Name, Scopes: t.Scopes, CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt})
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, newList(items, ""))
	return nil
}

func (s *Server) handleTokenDelete(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id", "Token")
	if err != nil {
		return err
	}
	if err := s.AuthService.DeleteToken(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
