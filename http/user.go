package http

import (
	"net/http"

	"github.com/tidings/tidings"
)

func (s *Server) registerUserRoutes() {
	s.handle("GET /api/v1/users", sessionOnly, s.handleUserList)
	s.handle("POST /api/v1/users", sessionOnly, s.handleUserCreate)
	s.handle("PATCH /api/v1/users/{login}", sessionOnly, s.handleUserUpdate)
	s.handle("DELETE /api/v1/users/{login}", sessionOnly, s.handleUserDelete)
}

func (s *Server) handleUserList(w http.ResponseWriter, r *http.Request) error {
	limit, after, err := pageParams(r)
	if err != nil {
		return err
	}
	f := tidings.UserFilter{Limit: limit, After: after}
	if login := r.URL.Query().Get("login"); login != "" {
		f.Login = &login
	}
	users, next, err := s.UserService.FindUsers(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(users, next))
	return nil
}

type userCreateRequest struct {
	Login    string `json:"login"`
	Name     string `json:"name"`
	Email    string `json:"email"`
	Password string `json:"password"`
	Role     string `json:"role"`
	TimeZone string `json:"time_zone"`
	Language string `json:"language"`
}

func (s *Server) handleUserCreate(w http.ResponseWriter, r *http.Request) error {
	var req userCreateRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	u := &tidings.User{Login: req.Login, Name: req.Name, Email: req.Email, Role: req.Role, TimeZone: req.TimeZone, Language: req.Language}
	if err := s.UserService.CreateUser(r.Context(), u, req.Password); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, u)
	return nil
}

type userUpdateRequest struct {
	Name     *string `json:"name"`
	Email    *string `json:"email"`
	Password *string `json:"password"`
	Role     *string `json:"role"`
	TimeZone *string `json:"time_zone"`
	Language *string `json:"language"`
}

func (s *Server) handleUserUpdate(w http.ResponseWriter, r *http.Request) error {
	var req userUpdateRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	u, err := s.UserService.UpdateUser(r.Context(), r.PathValue("login"), tidings.UserUpdate(req))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

func (s *Server) handleUserDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.UserService.DeleteUser(r.Context(), r.PathValue("login")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
