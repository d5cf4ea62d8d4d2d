package http

import (
	"context"
	"net/http"
)

// The handlers below serve the parts of the item APIs that are the same for
// every kind: parse the path, call the service, render. The kinds differ
// only in their request bodies and list filters.

// readHandler answers GET …/{id} with the object find returns.
func readHandler[T any](what string, find func(context.Context, int64) (T, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "id", what)
		if err != nil {
			return err
		}
		v, err := find(r.Context(), id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, v)
		return nil
	}
}

// createHandler answers POST /api/v1/projects/{id}/…: it decodes a Req,
// builds the object in the project, and answers 201 with it as stored.
func createHandler[Req any, T any](build func(projectID int64, req *Req) (T, error), create func(context.Context, T) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		pid, err := projectID(r)
		if err != nil {
			return err
		}
		var req Req
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		v, err := build(pid, &req)
		if err != nil {
			return err
		}
		if err := create(r.Context(), v); err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, v)
		return nil
	}
}

// updateHandler answers PATCH …/{id}: it decodes a Req, turns it into the
// service's update, and answers with the object as updated.
func updateHandler[Req any, Upd any, T any](what string, convert func(*Req) (Upd, error), update func(context.Context, int64, Upd) (T, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "id", what)
		if err != nil {
			return err
		}
		var req Req
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		upd, err := convert(&req)
		if err != nil {
			return err
		}
		v, err := update(r.Context(), id, upd)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, v)
		return nil
	}
}

// deleteHandler answers DELETE …/{id} with 204.
func deleteHandler(what string, del func(context.Context, int64) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "id", what)
		if err != nil {
			return err
		}
		if err := del(r.Context(), id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
