package http

import (
	"net/http"

	"github.com/tidings/tidings"
)

func (s *Server) registerProjectRoutes() {
	s.handle("GET /api/v1/projects", userAccess, s.handleProjectList)
	s.handle("POST /api/v1/projects", userAccess, s.handleProjectCreate)
	s.handle("GET /api/v1/projects/{id}", userAccess, readHandler("Project", s.ProjectService.FindProjectByID))
	s.handle("PATCH /api/v1/projects/{id}", userAccess, s.handleProjectUpdate)
	s.handle("DELETE /api/v1/projects/{id}", userAccess, deleteHandler("Project", s.ProjectService.DeleteProject))
	s.handle("PUT /api/v1/projects/{id}/members/{login}", userAccess, s.handleMemberSet)
	s.handle("DELETE /api/v1/projects/{id}/members/{login}", userAccess, s.handleMemberRemove)
}

func projectID(r *http.Request) (int64, error) { return pathID(r, "id", "Project") }

func (s *Server) handleProjectList(w http.ResponseWriter, r *http.Request) error {
	limit, after, err := pageParams(r)
	if err != nil {
		return err
	}
	projects, next, err := s.ProjectService.FindProjects(r.Context(), tidings.ProjectFilter{Limit: limit, After: after})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(projects, next))
	return nil
}

type projectRequest struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
}

func (s *Server) handleProjectCreate(w http.ResponseWriter, r *http.Request) error {
	var req projectRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	p := &tidings.Project{}
	if req.Name != nil {
		p.Name = *req.Name
	}
	if req.Description != nil {
		p.Description = *req.Description
	}
	if err := s.ProjectService.CreateProject(r.Context(), p); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, p)
	return nil
}

func (s *Server) handleProjectUpdate(w http.ResponseWriter, r *http.Request) error {
	id, err := projectID(r)
	if err != nil {
		return err
	}
	var req projectRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	p, err := s.ProjectService.UpdateProject(r.Context(), id, tidings.ProjectUpdate(req))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

type memberRequest struct {
	Role string `json:"role"`
}

func (s *Server) handleMemberSet(w http.ResponseWriter, r *http.Request) error {
	id, err := projectID(r)
	if err != nil {
		return err
	}
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	req := memberRequest{Role: tidings.ProjectMember}
	if len(body) > 0 {
		if err := unmarshalJSON(body, &req); err != nil {
			return err
		}
	}
	p, err := s.ProjectService.SetMember(r.Context(), id, r.PathValue("login"), req.Role)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) handleMemberRemove(w http.ResponseWriter, r *http.Request) error {
	id, err := projectID(r)
	if err != nil {
		return err
	}
	if err := s.ProjectService.RemoveMember(r.Context(), id, r.PathValue("login")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
