package http

import (
	"net/http"

	"github.com/tidings/tidings"
)

func (s *Server) registerNoteRoutes() {
	s.handle("GET /api/v1/projects/{id}/notes", userAccess, s.handleNoteList)
	s.handle("POST /api/v1/projects/{id}/notes", userAccess, s.handleNoteCreate)
	s.handle("GET /api/v1/notes/{id}", userAccess, s.handleNoteGet)
	s.handle("PATCH /api/v1/notes/{id}", userAccess, s.handleNoteUpdate)
	s.handle("DELETE /api/v1/notes/{id}", userAccess, s.handleNoteDelete)
}

func noteID(r *http.Request) (int64, error) { return pathID(r, "id", "Note") }

func (s *Server) handleNoteList(w http.ResponseWriter, r *http.Request) error {
	pid, err := projectID(r)
	if err != nil {
		return err
	}
	limit, after, err := pageParams(r)
	if err != nil {
		return err
	}
	notes, next, err := s.NoteService.FindNotes(r.Context(), tidings.NoteFilter{ProjectID: pid, Limit: limit, After: after})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(notes, next))
	return nil
}

func (s *Server) handleNoteCreate(w http.ResponseWriter, r *http.Request) error {
	pid, err := projectID(r)
	if err != nil {
		return err
	}
	var upd tidings.NoteUpdate
	if err := decodeJSON(w, r, &upd); err != nil {
		return err
	}
	n := &tidings.Note{Project: tidings.ProjectRef{ID: pid}}
	upd.Apply(n)
	if err := s.NoteService.CreateNote(r.Context(), n); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, n)
	return nil
}

func (s *Server) handleNoteGet(w http.ResponseWriter, r *http.Request) error {
	id, err := noteID(r)
	if err != nil {
		return err
	}
	n, err := s.NoteService.FindNoteByID(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, n)
	return nil
}

func (s *Server) handleNoteUpdate(w http.ResponseWriter, r *http.Request) error {
	id, err := noteID(r)
	if err != nil {
		return err
	}
	var upd tidings.NoteUpdate
	if err := decodeJSON(w, r, &upd); err != nil {
		return err
	}
	n, err := s.NoteService.UpdateNote(r.Context(), id, upd)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, n)
	return nil
}

func (s *Server) handleNoteDelete(w http.ResponseWriter, r *http.Request) error {
	id, err := noteID(r)
	if err != nil {
		return err
	}
	if err := s.NoteService.DeleteNote(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
