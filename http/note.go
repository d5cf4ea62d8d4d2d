package http

import (
	"net/http"

	"github.com/tidings/tidings"
)

func (s *Server) registerNoteRoutes() {
	s.handle("GET /api/v1/projects/{id}/notes", userAccess, s.handleNoteList)
	s.handle("POST /api/v1/projects/{id}/notes", userAccess, createHandler(newNote, s.NoteService.CreateNote))
	s.handle("GET /api/v1/notes/{id}", userAccess, readHandler("Note", s.NoteService.FindNoteByID))
	s.handle("PATCH /api/v1/notes/{id}", userAccess, updateHandler("Note", noteUpdate, s.NoteService.UpdateNote))
	s.handle("DELETE /api/v1/notes/{id}", userAccess, deleteHandler("Note", s.NoteService.DeleteNote))
}

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

func newNote(projectID int64, req *tidings.NoteUpdate) (*tidings.Note, error) {
	n := &tidings.Note{Project: tidings.ProjectRef{ID: projectID}}
	req.Apply(n)
	return n, nil
}

func noteUpdate(req *tidings.NoteUpdate) (tidings.NoteUpdate, error) { return *req, nil }
