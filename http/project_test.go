package http_test

import (
	"fmt"
	"testing"
)

func TestProjectAccessAndEvents(t *testing.T) {
	s := MustOpenServer(t)
	_, aliceTok := s.MustCreateUser(t, "alice", false)
	_, bobTok := s.MustCreateUser(t, "bob", false)
	_, eveTok := s.MustCreateUser(t, "eve", false)
	bobStart := s.MustPoll(t, bobTok, "timeout=0").Cursor
	eveStart := s.MustPoll(t, eveTok, "timeout=0").Cursor

	id := s.MustCreateProject(t, aliceTok, "Office move", "bob")
	path := fmt.Sprintf("/api/v1/projects/%d", id)

	var p struct {
		ID      int64
		Name    string
		Role    string
		Members []struct{ Login, Name, Role string }
	}
	s.MustDo(t, "GET", path, bobTok, nil, 200, &p)
	if p.Name != "Office move" || p.Role != "member" || len(p.Members) != 2 {
		t.Fatalf("bob sees %+v", p)
	}

	// Somebody else's project does not exist for eve, whatever she tries.
	s.MustFail(t, "GET", path, eveTok, nil, 404, "not_found", "")
	s.MustFail(t, "PATCH", path, eveTok, map[string]any{"name": "Mine"}, 404, "not_found", "")
	s.MustFail(t, "DELETE", path, eveTok, nil, 404, "not_found", "")
	s.MustFail(t, "PUT", path+"/members/eve", eveTok, map[string]any{"role": "owner"}, 404, "not_found", "")
	s.MustFail(t, "GET", "/api/v1/projects/999", eveTok, nil, 404, "not_found", "")
	var list struct{ Items []any }
	s.MustDo(t, "GET", "/api/v1/projects", eveTok, nil, 200, &list)
	if len(list.Items) != 0 {
		t.Fatalf("eve lists %d projects", len(list.Items))
	}
	// A member who is not an owner may not edit the project.
	s.MustFail(t, "PATCH", path, bobTok, map[string]any{"name": "Bob's"}, 403, "forbidden", "")

	s.MustDo(t, "PATCH", path, aliceTok, map[string]any{"name": "Office move 2027"}, 200, nil)
	bp := s.MustPoll(t, bobTok, "timeout=0&since="+bobStart)
	var texts []string
	for _, m := range bp.Messages {
		texts = append(texts, m.Module+"/"+m.Process+": "+m.Text)
	}
	want := []string{
		"member/add: Alice Tester added you to Office move",
		"project/edit: Alice Tester renamed the project “Office move” to “Office move 2027”",
	}
	if fmt.Sprint(texts) != fmt.Sprint(want) {
		t.Fatalf("bob's messages:\n%q\nwant\n%q", texts, want)
	}
	if ep := s.MustPoll(t, eveTok, "timeout=0&since="+eveStart); len(ep.Messages) != 0 {
		t.Fatalf("eve received %d messages about a project she is not in", len(ep.Messages))
	}

	// The last owner cannot leave; a member can.
	s.MustFail(t, "DELETE", path+"/members/alice", aliceTok, nil, 409, "conflict", "")
	s.MustDo(t, "DELETE", path+"/members/bob", bobTok, nil, 204, nil)
	s.MustFail(t, "GET", path, bobTok, nil, 404, "not_found", "")
	after := s.MustPoll(t, bobTok, "timeout=0").Cursor
	s.MustDo(t, "PATCH", path, aliceTok, map[string]any{"description": "now without bob"}, 200, nil)
	if bp := s.MustPoll(t, bobTok, "timeout=0&since="+after); len(bp.Messages) != 0 {
		t.Fatalf("bob still hears about the project he left: %+v", bp.Messages)
	}
	s.MustDo(t, "DELETE", path, aliceTok, nil, 204, nil)
	s.MustFail(t, "GET", path, aliceTok, nil, 404, "not_found", "")
}

func TestUserAdmin(t *testing.T) {
	s := MustOpenServer(t)
	s.MustCreateUser(t, "alice", true)
	s.MustCreateUser(t, "bob", false)
	admin := loginClient(t, s, "alice")
	bob := loginClient(t, s, "bob")

	body := map[string]any{"login": "carol", "name": "Carol Clark", "email": "carol@example.org", "password": "long enough"}
	var u map[string]any
	admin.MustDo(t, "POST", "/api/v1/users", body, 201, &u)
	if u["login"] != "carol" || u["role"] != "user" || u["password"] != nil || u["password_hash"] != nil {
		t.Fatalf("created user = %v", u)
	}
	admin.MustFail(t, "POST", "/api/v1/users", body, 409, "conflict", "login")
	admin.MustFail(t, "POST", "/api/v1/users", map[string]any{"login": "Dave!", "name": "D", "email": "d@example.org", "password": "long enough"}, 400, "invalid", "login")
	admin.MustFail(t, "POST", "/api/v1/users", map[string]any{"login": "dave", "name": "D", "email": "d@example.org", "password": "short"}, 400, "invalid", "password")
	bob.MustFail(t, "POST", "/api/v1/users", map[string]any{"login": "dave", "name": "D", "email": "d@example.org", "password": "long enough"}, 403, "forbidden", "")
	bob.MustFail(t, "GET", "/api/v1/users", nil, 403, "forbidden", "")

	var list struct{ Items []map[string]any }
	admin.MustDo(t, "GET", "/api/v1/users", nil, 200, &list)
	if len(list.Items) != 3 {
		t.Fatalf("admin lists %d users, want 3", len(list.Items))
	}
	admin.MustDo(t, "PATCH", "/api/v1/users/carol", map[string]any{"role": "admin"}, 200, &u)
	if u["role"] != "admin" {
		t.Fatalf("patched user = %v", u)
	}
	admin.MustDo(t, "DELETE", "/api/v1/users/carol", nil, 204, nil)
	admin.MustFail(t, "DELETE", "/api/v1/users/carol", nil, 404, "not_found", "")
}

func TestSettings(t *testing.T) {
	s := MustOpenServer(t)
	_, tok := s.MustCreateUser(t, "bob", false)
	var got map[string]any
	s.MustDo(t, "GET", "/api/v1/me/settings", tok, nil, 200, &got)
	want := `map[messages:true muted_projects:[] presence:true records:true reminder_lead_minutes:15 reminders:true]`
	if fmt.Sprint(got) != want {
		t.Fatalf("defaults = %v\nwant %s", got, want)
	}
	id := s.MustCreateProject(t, tok, "Mine")
	s.MustDo(t, "PUT", "/api/v1/me/settings", tok, map[string]any{"presence": false, "muted_projects": []int64{id}}, 200, &got)
	want = fmt.Sprintf(`map[messages:true muted_projects:[%d] presence:false records:true reminder_lead_minutes:15 reminders:true]`, id)
	if fmt.Sprint(got) != want {
		t.Fatalf("after PUT = %v\nwant %s", got, want)
	}
	s.MustFail(t, "PUT", "/api/v1/me/settings", tok, map[string]any{"reminder_lead_minutes": -5}, 400, "invalid", "reminder_lead_minutes")
	s.MustFail(t, "PUT", "/api/v1/me/settings", tok, map[string]any{"muted_projects": []int64{424242}}, 404, "not_found", "muted_projects")
	s.MustFail(t, "PUT", "/api/v1/me/settings", tok, map[string]any{"sound": true}, 400, "invalid", "sound")
	// Nothing of the refused updates was kept.
	s.MustDo(t, "GET", "/api/v1/me/settings", tok, nil, 200, &got)
	if fmt.Sprint(got) != want {
		t.Fatalf("after refused PUTs = %v\nwant %s", got, want)
	}
}

// TestLastOwnerStays: a project's last owner can be neither removed —
// leaving, or deleting the user — nor demoted, and the refusals change
// nothing; once someone else owns it too, all of that works.
func TestLastOwnerStays(t *testing.T) {
	s := MustOpenServer(t)
	s.MustCreateUser(t, "root", true)
	_, aliceTok := s.MustCreateUser(t, "alice", false)
	_, bobTok := s.MustCreateUser(t, "bob", false)
	id := s.MustCreateProject(t, aliceTok, "Office move", "bob")
	path := fmt.Sprintf("/api/v1/projects/%d", id)
	admin := loginClient(t, s, "root")
	var before map[string]any
	s.MustDo(t, "GET", path, aliceTok, nil, 200, &before)

	s.MustFail(t, "PUT", path+"/members/alice", aliceTok, map[string]any{"role": "member"}, 409, "conflict", "")
	s.MustFail(t, "DELETE", path+"/members/alice", aliceTok, nil, 409, "conflict", "")
	admin.MustFail(t, "DELETE", "/api/v1/users/alice", nil, 409, "conflict", "")
	var after map[string]any
	s.MustDo(t, "GET", path, aliceTok, nil, 200, &after)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("after the refusals the project is\n%v\nwas\n%v", after, before)
	}
	// A member may not take the owner's place by removing her.
	s.MustFail(t, "DELETE", path+"/members/alice", bobTok, nil, 403, "forbidden", "")

	// With bob an owner too, alice may step down; then bob is the last.
	s.MustDo(t, "PUT", path+"/members/bob", aliceTok, map[string]any{"role": "owner"}, 200, nil)
	var p struct{ Role string }
	s.MustDo(t, "PUT", path+"/members/alice", aliceTok, map[string]any{"role": "member"}, 200, &p)
	if p.Role != "member" {
		t.Fatalf("alice's role after stepping down: %q", p.Role)
	}
	s.MustFail(t, "PUT", path+"/members/bob", bobTok, map[string]any{"role": "member"}, 409, "conflict", "")
	s.MustFail(t, "DELETE", path+"/members/bob", bobTok, nil, 409, "conflict", "")
	admin.MustFail(t, "DELETE", "/api/v1/users/bob", nil, 409, "conflict", "")
	s.MustDo(t, "GET", path, bobTok, nil, 200, &p)
	if p.Role != "owner" {
		t.Fatalf("bob's role after the refusals: %q", p.Role)
	}
	// alice, now a member, leaves; the project goes on with its owner.
	s.MustDo(t, "DELETE", path+"/members/alice", aliceTok, nil, 204, nil)
	s.MustFail(t, "GET", path, aliceTok, nil, 404, "not_found", "")
}
