package http_test

import (
	"fmt"
	"net/http"
	"testing"
)

// TestListLimitIsParsedStrictly: a limit is a canonical decimal from 1 to
// 500 or it is refused, naming the parameter; nothing after a number is
// silently dropped.
func TestListLimitIsParsedStrictly(t *testing.T) {
	s := MustOpenServer(t)
	_, alice := s.MustCreateUser(t, "alice", false)
	pid := s.MustCreateProject(t, alice, "Office move")
	for _, title := range []string{"one", "two"} {
		s.MustDo(t, "POST", fmt.Sprintf("/api/v1/projects/%d/todos", pid), alice, map[string]any{"title": title}, http.StatusCreated, nil)
	}
	lists := []string{
		"/api/v1/projects",
		fmt.Sprintf("/api/v1/projects/%d/todos", pid),
		fmt.Sprintf("/api/v1/projects/%d/notes", pid),
		fmt.Sprintf("/api/v1/projects/%d/appointments", pid),
	}
	for _, list := range lists {
		for _, query := range []string{
			"limit=5abc",
			"limit=7%208", // "7 8"
			"limit=%2B5",  // "+5"
			"limit=+5",    // a query's "+" is a space: " 5"
			"limit=0",
			"limit=501",
			"limit=",
			"limit",
			"limit=-1",
			"limit=05",
			"limit=1e2",
			"limit=5.0",
			"limit=0x10",
			"limit=%205",
			"limit=5%20",
			"limit=99999999999999999999",
			"limit=5&limit=6",
		} {
			s.MustFail(t, "GET", list+"?"+query, alice, nil, http.StatusBadRequest, "invalid", "limit")
		}
	}

	// The bounds themselves are numbers like any other.
	var page struct {
		Items []struct{ ID int64 }
		Next  *string
	}
	todos := lists[1]
	s.MustDo(t, "GET", todos+"?limit=1", alice, nil, http.StatusOK, &page)
	if len(page.Items) != 1 || page.Next == nil {
		t.Fatalf("limit=1 answered %d todos, next %v; want 1 and a next page", len(page.Items), page.Next)
	}
	s.MustDo(t, "GET", todos+"?limit=500", alice, nil, http.StatusOK, &page)
	if len(page.Items) != 2 || page.Next != nil {
		t.Fatalf("limit=500 answered %d todos, next %v; want both and no next page", len(page.Items), page.Next)
	}
	s.MustDo(t, "GET", todos, alice, nil, http.StatusOK, &page)
	if len(page.Items) != 2 {
		t.Fatalf("no limit answered %d todos, want both", len(page.Items))
	}
}

// TestPathIDIsParsedStrictly: an id in a path has one spelling; any other
// spelling of an existing item's id is a path that names nothing.
func TestPathIDIsParsedStrictly(t *testing.T) {
	s := MustOpenServer(t)
	_, alice := s.MustCreateUser(t, "alice", false)
	pid := s.MustCreateProject(t, alice, "Office move")
	// Enough todos that ids 1 and 7 name one: a lenient parse would turn
	// "+1" and "07" into them.
	var ids []int64
	for i := range 8 {
		var todo struct{ ID int64 }
		s.MustDo(t, "POST", fmt.Sprintf("/api/v1/projects/%d/todos", pid), alice, map[string]any{"title": fmt.Sprintf("todo %d", i)}, http.StatusCreated, &todo)
		ids = append(ids, todo.ID)
	}
	id := ids[len(ids)-1]
	var before map[string]any
	s.MustDo(t, "GET", fmt.Sprintf("/api/v1/todos/%d", id), alice, nil, http.StatusOK, &before)

	for _, v := range []string{
		"07", "1e3", "+1",
		fmt.Sprintf("0%d", id),
		fmt.Sprintf("+%d", id),
		fmt.Sprintf("%de0", id),
		fmt.Sprintf("%d.0", id),
		fmt.Sprintf("%%20%d", id),
		fmt.Sprintf("%d%%20", id),
		fmt.Sprintf("0x%x", id),
		"-1", "0", "99999999999999999999",
	} {
		path := "/api/v1/todos/" + v
		s.MustFail(t, "GET", path, alice, nil, http.StatusNotFound, "not_found", "")
		s.MustFail(t, "PATCH", path, alice, map[string]any{"title": "renamed"}, http.StatusNotFound, "not_found", "")
		s.MustFail(t, "DELETE", path, alice, nil, http.StatusNotFound, "not_found", "")
		s.MustFail(t, "GET", fmt.Sprintf("/api/v1/projects/%s/todos", v), alice, nil, http.StatusNotFound, "not_found", "")
	}
	s.MustFail(t, "GET", fmt.Sprintf("/api/v1/projects/0%d", pid), alice, nil, http.StatusNotFound, "not_found", "")

	// None of it touched the todos those spellings resemble.
	var list struct{ Items []map[string]any }
	s.MustDo(t, "GET", fmt.Sprintf("/api/v1/projects/%d/todos", pid), alice, nil, http.StatusOK, &list)
	if len(list.Items) != len(ids) {
		t.Fatalf("%d todos left of %d", len(list.Items), len(ids))
	}
	for _, item := range list.Items {
		if item["title"] == "renamed" {
			t.Fatalf("a PATCH to a malformed id renamed %v", item)
		}
	}
	var after map[string]any
	s.MustDo(t, "GET", fmt.Sprintf("/api/v1/todos/%d", id), alice, nil, http.StatusOK, &after)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("todo %d changed:\n%v\nwas\n%v", id, after, before)
	}
}
