package http_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"testing"
)

// fullMessage is a message with all a client shows.
type fullMessage struct {
	ID      string `json:"id"`
	Process string `json:"process"`
	Module  string `json:"module"`
	Text    string `json:"text"`
	Urgent  bool   `json:"urgent"`
	Item    *struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
		URL  string `json:"url"`
	} `json:"item"`
	Project *struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	} `json:"project"`
	Actor *struct {
		Login string `json:"login"`
	} `json:"actor"`
	Details []struct {
		Field string  `json:"field"`
		Label string  `json:"label"`
		Old   *string `json:"old"`
		New   *string `json:"new"`
	} `json:"details"`
}

// inbox follows one user's messages by cursor.
type inbox struct {
	s      *TestServer
	token  string
	cursor string
}

func newInbox(t *testing.T, s *TestServer, token string) *inbox {
	return &inbox{s: s, token: token, cursor: s.MustPoll(t, token, "timeout=0").Cursor}
}

// next returns the messages that arrived since the last call.
func (in *inbox) next(t *testing.T) []fullMessage {
	t.Helper()
	var p struct {
		Messages []fullMessage `json:"messages"`
		Cursor   string        `json:"cursor"`
	}
	in.s.MustDo(t, "GET", "/api/v1/poll?timeout=0&since="+in.cursor, in.token, nil, http.StatusOK, &p)
	in.cursor = p.Cursor
	return p.Messages
}

func TestTodoLifecycleMessages(t *testing.T) {
	s := MustOpenServer(t)
	_, alice := s.MustCreateUser(t, "alice", false)
	_, bob := s.MustCreateUser(t, "bob", false)
	_, carol := s.MustCreateUser(t, "carol", false)
	_, eve := s.MustCreateUser(t, "eve", false)
	pid := s.MustCreateProject(t, alice, "Office move", "bob", "carol")
	bobIn, carolIn, aliceIn, eveIn := newInbox(t, s, bob), newInbox(t, s, carol), newInbox(t, s, alice), newInbox(t, s, eve)

	var todo struct {
		ID       int64
		Title    string
		Priority string
		Status   string
		Assignee *string
		Due      *string
		Project  struct {
			ID   int64
			Name string
		}
	}
	s.MustDo(t, "POST", fmt.Sprintf("/api/v1/projects/%d/todos", pid), alice, map[string]any{"title": "Fix the printer"}, 201, &todo)
	if todo.Priority != "normal" || todo.Status != "open" || todo.Assignee != nil || todo.Due != nil || todo.Project.Name != "Office move" {
		t.Fatalf("created todo = %+v, want normal, open, unassigned, no due date", todo)
	}
	m := bobIn.next(t)
	if len(m) != 1 || m[0].Text != "Alice Tester added the todo “Fix the printer” in Office move" ||
		m[0].Item == nil || m[0].Item.URL != fmt.Sprintf("/todos/%d", todo.ID) || m[0].Process != "add" || m[0].Module != "todo" {
		t.Fatalf("bob got %+v", m)
	}
	if got := aliceIn.next(t); len(got) != 0 {
		t.Fatalf("the actor was told about her own change: %+v", got)
	}
	if got := eveIn.next(t); len(got) != 0 {
		t.Fatalf("a non-member was told: %+v", got)
	}
	carolIn.next(t)

	path := fmt.Sprintf("/api/v1/todos/%d", todo.ID)
	s.MustDo(t, "PATCH", path, alice, map[string]any{"priority": "urgent"}, 200, &todo)
	m = bobIn.next(t)
	if len(m) != 1 {
		t.Fatalf("bob got %d messages for the edit", len(m))
	}
	e := m[0]
	if e.Text != "Alice Tester changed the priority of “Fix the printer” in Office move from normal to urgent" || !e.Urgent || e.Process != "edit" {
		t.Fatalf("edit message = %q urgent=%v", e.Text, e.Urgent)
	}
	if len(e.Details) != 1 || e.Details[0].Field != "priority" || e.Details[0].Label != "Priority" ||
		*e.Details[0].Old != "normal" || *e.Details[0].New != "urgent" {
		b, _ := json.Marshal(e.Details)
		t.Fatalf("details = %s", b)
	}

	// Carol turns records off; bob mutes the project; both hear nothing.
	s.MustDo(t, "PUT", "/api/v1/me/settings", carol, map[string]any{"records": false}, 200, nil)
	s.MustDo(t, "PUT", "/api/v1/me/settings", bob, map[string]any{"muted_projects": []int64{pid}}, 200, nil)
	carolIn.next(t)
	s.MustDo(t, "PATCH", path, alice, map[string]any{"due": "2026-12-01"}, 200, &todo)
	if todo.Due == nil || *todo.Due != "2026-12-01" {
		t.Fatalf("due = %v", todo.Due)
	}
	if got := carolIn.next(t); len(got) != 0 {
		t.Fatalf("carol, with records off, got %+v", got)
	}
	if got := bobIn.next(t); len(got) != 0 {
		t.Fatalf("bob, who muted the project, got %+v", got)
	}

	// Setting due to null clears it; a bad date names its field.
	s.MustDo(t, "PATCH", path, alice, map[string]any{"due": nil}, 200, &todo)
	if todo.Due != nil {
		t.Fatalf("due after null = %v", *todo.Due)
	}
	// A refused update changes nothing, not even the parts of it that
	// were valid.
	unchanged := s.MustDo(t, "GET", path, alice, nil, 200, nil)
	s.MustFail(t, "PATCH", path, alice, map[string]any{"due": "next week"}, 400, "invalid", "due")
	s.MustFail(t, "PATCH", path, alice, map[string]any{"priority": "asap"}, 400, "invalid", "priority")
	s.MustFail(t, "PATCH", path, alice, map[string]any{"assignee": "eve"}, 400, "invalid", "assignee")
	s.MustFail(t, "PATCH", path, alice, map[string]any{"title": ""}, 400, "invalid", "title")
	s.MustFail(t, "PATCH", path, alice, map[string]any{"colour": "red"}, 400, "invalid", "colour")
	s.MustFail(t, "PATCH", path, alice, map[string]any{"title": "Renamed", "status": "done", "due": "next week"}, 400, "invalid", "due")
	s.MustFail(t, "PATCH", path, alice, map[string]any{"description": "Call IT", "assignee": "carol", "priority": "asap"}, 400, "invalid", "priority")
	s.MustFail(t, "PATCH", path, alice, map[string]any{"title": "Renamed", "colour": "red"}, 400, "invalid", "colour")
	s.MustFail(t, "PATCH", path, eve, map[string]any{"title": "Mine now"}, 404, "not_found", "")
	sameJSON(t, "the todo after refused edits", s.MustDo(t, "GET", path, alice, nil, 200, nil), unchanged)

	// The assignee hears about it even with the project muted? No: settings
	// are the user's word. But an unmuted assignee does.
	s.MustDo(t, "PUT", "/api/v1/me/settings", bob, map[string]any{"muted_projects": []int64{}}, 200, nil)
	s.MustDo(t, "PATCH", path, alice, map[string]any{"assignee": "bob"}, 200, &todo)
	if todo.Assignee == nil || *todo.Assignee != "bob" {
		t.Fatalf("assignee = %v", todo.Assignee)
	}
	m = bobIn.next(t)
	if len(m) != 1 || len(m[0].Details) != 1 || m[0].Details[0].Field != "assignee" || *m[0].Details[0].New != "Bob Tester" {
		t.Fatalf("assignment message = %+v", m)
	}

	var list struct {
		Items []struct{ ID int64 }
		Next  *string
	}
	s.MustDo(t, "GET", fmt.Sprintf("/api/v1/projects/%d/todos?assignee=bob&status=open", pid), carol, nil, 200, &list)
	if len(list.Items) != 1 {
		t.Fatalf("filtered list = %+v", list)
	}
	s.MustDo(t, "GET", fmt.Sprintf("/api/v1/projects/%d/todos?status=done", pid), carol, nil, 200, &list)
	if len(list.Items) != 0 {
		t.Fatalf("done list = %+v", list)
	}

	s.MustDo(t, "DELETE", path, bob, nil, 204, nil)
	m = aliceIn.next(t)
	if len(m) != 1 || m[0].Process != "delete" || m[0].Item == nil || m[0].Item.URL != "" {
		t.Fatalf("delete message = %+v (a deleted item has no link)", m)
	}
	s.MustFail(t, "GET", path, alice, nil, 404, "not_found", "")
}

// TestItemsNotFoundForNonMembers: every item endpoint of a project answers
// 404 to someone outside it, exactly as for things that do not exist.
func TestItemsNotFoundForNonMembers(t *testing.T) {
	s := MustOpenServer(t)
	_, alice := s.MustCreateUser(t, "alice", false)
	_, eve := s.MustCreateUser(t, "eve", false)
	pid := s.MustCreateProject(t, alice, "Secret")
	ids := map[string]int64{}
	for kind, body := range map[string]map[string]any{
		"todos":        {"title": "t"},
		"notes":        {"title": "n", "body": "b"},
		"appointments": {"title": "a", "start": "2030-01-01T10:00:00Z", "end": "2030-01-01T11:00:00Z"},
	} {
		var item struct{ ID int64 }
		s.MustDo(t, "POST", fmt.Sprintf("/api/v1/projects/%d/%s", pid, kind), alice, body, 201, &item)
		ids[kind] = item.ID
	}
	for kind, id := range ids {
		itemPath := fmt.Sprintf("/api/v1/%s/%d", kind, id)
		unchanged := s.MustDo(t, "GET", itemPath, alice, nil, 200, nil)
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"GET", fmt.Sprintf("/api/v1/projects/%d/%s", pid, kind), nil},
			{"POST", fmt.Sprintf("/api/v1/projects/%d/%s", pid, kind), map[string]any{"title": "intruder"}},
			{"GET", fmt.Sprintf("/api/v1/%s/%d", kind, id), nil},
			{"PATCH", fmt.Sprintf("/api/v1/%s/%d", kind, id), map[string]any{"title": "mine"}},
			{"DELETE", fmt.Sprintf("/api/v1/%s/%d", kind, id), nil},
			{"GET", fmt.Sprintf("/api/v1/%s/%d", kind, id+1000), nil},
		} {
			t.Run(c.method+" "+c.path, func(t *testing.T) {
				e := s.MustFail(t, c.method, c.path, eve, c.body, 404, "not_found", "")
				_ = e
			})
		}
		// And nothing changed for the members: the item, and the list
		// that an intruder's create would have grown.
		sameJSON(t, kind+" after the intruder", s.MustDo(t, "GET", itemPath, alice, nil, 200, nil), unchanged)
		var list struct{ Items []struct{ ID int64 } }
		s.MustDo(t, "GET", fmt.Sprintf("/api/v1/projects/%d/%s", pid, kind), alice, nil, 200, &list)
		if len(list.Items) != 1 || list.Items[0].ID != id {
			t.Fatalf("%s of the project after the intruder: %+v, want only %d", kind, list.Items, id)
		}
	}
}

// sameJSON fails the test unless two JSON answers hold the same values,
// field by field.
func sameJSON(t *testing.T, what string, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s is\n%s\nwas\n%s", what, got, want)
	}
}

func TestAppointmentsAndNotes(t *testing.T) {
	s := MustOpenServer(t)
	_, alice := s.MustCreateUser(t, "alice", false)
	_, bob := s.MustCreateUser(t, "bob", false)
	s.MustCreateUser(t, "eve", false)
	pid := s.MustCreateProject(t, alice, "Office move", "bob")
	base := fmt.Sprintf("/api/v1/projects/%d/appointments", pid)

	var a struct {
		ID           int64
		Start, End   string
		Participants []string
	}
	s.MustDo(t, "POST", base, alice, map[string]any{"title": "Team meeting", "start": "2030-01-01T10:00:00+01:00", "end": "2030-01-01T11:00:00+01:00"}, 201, &a)
	if a.Start != "2030-01-01T09:00:00Z" || len(a.Participants) != 1 || a.Participants[0] != "alice" {
		t.Fatalf("appointment = %+v, want UTC times and the creator as participant", a)
	}
	s.MustFail(t, "POST", base, alice, map[string]any{"title": "Backwards", "start": "2030-01-01T10:00:00Z", "end": "2030-01-01T09:00:00Z"}, 400, "invalid", "end")
	s.MustFail(t, "POST", base, alice, map[string]any{"title": "When?", "start": "tomorrow", "end": "2030-01-01T09:00:00Z"}, 400, "invalid", "start")
	s.MustFail(t, "POST", base, alice, map[string]any{"title": "Outsider", "start": "2030-01-01T10:00:00Z", "end": "2030-01-01T11:00:00Z", "participants": []string{"eve"}}, 400, "invalid", "participants")
	s.MustFail(t, "POST", base, alice, map[string]any{"start": "2030-01-01T10:00:00Z", "end": "2030-01-01T11:00:00Z"}, 400, "invalid", "title")

	var list struct{ Items []struct{ ID int64 } }
	s.MustDo(t, "GET", base+"?from=2030-01-01&to=2030-01-02", bob, nil, 200, &list)
	if len(list.Items) != 1 {
		t.Fatalf("range list = %+v", list)
	}
	s.MustDo(t, "GET", base+"?from=2030-02-01", bob, nil, 200, &list)
	if len(list.Items) != 0 {
		t.Fatalf("later range = %+v", list)
	}
	s.MustFail(t, "GET", base+"?from=someday", bob, nil, 400, "invalid", "from")

	var n struct{ ID int64 }
	s.MustDo(t, "POST", fmt.Sprintf("/api/v1/projects/%d/notes", pid), bob, map[string]any{"title": "Keys", "body": "With the caretaker"}, 201, &n)
	s.MustDo(t, "PATCH", fmt.Sprintf("/api/v1/notes/%d", n.ID), alice, map[string]any{"body": "With reception"}, 200, nil)
	s.MustFail(t, "POST", fmt.Sprintf("/api/v1/projects/%d/notes", pid), bob, map[string]any{"body": "untitled"}, 400, "invalid", "title")
}
