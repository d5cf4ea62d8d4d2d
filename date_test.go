package tidings_test

import (
	"encoding/json"
	"testing"

	"github.com/tidings/tidings"
)

func TestDateJSON(t *testing.T) {
	var v struct {
		Due  *tidings.Date `json:"due"`
		Zero tidings.Date  `json:"zero"`
	}
	if err := json.Unmarshal([]byte(`{"due": "2026-11-30"}`), &v); err != nil {
		t.Fatal(err)
	}
	if *v.Due != (tidings.Date{Year: 2026, Month: 11, Day: 30}) {
		t.Fatalf("due = %+v", v.Due)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"due":"2026-11-30","zero":null}` {
		t.Fatalf("marshal = %s", b)
	}
	for _, bad := range []string{`"2026-11-31"`, `"30.11.2026"`, `"2026-11-30T10:00:00Z"`, `20261130`} {
		err := json.Unmarshal([]byte(`{"due": `+bad+`}`), &v)
		if tidings.ErrorCode(err) != tidings.EINVALID {
			t.Errorf("%s: err = %v, want invalid", bad, err)
		}
	}
}

func TestOptionalJSON(t *testing.T) {
	decode := func(body string) tidings.TodoUpdate {
		t.Helper()
		var u tidings.TodoUpdate
		if err := json.Unmarshal([]byte(body), &u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	u := decode(`{"title": "x"}`)
	if u.Assignee.Set || u.Due.Set || *u.Title != "x" {
		t.Fatalf("absent fields: %+v", u)
	}
	u = decode(`{"assignee": null, "due": null}`)
	if !u.Assignee.Set || u.Assignee.Value != nil || !u.Due.Set || u.Due.Value != nil {
		t.Fatalf("null fields: %+v", u)
	}
	u = decode(`{"assignee": "bob", "due": "2026-11-30"}`)
	if *u.Assignee.Value != "bob" || u.Due.Value.String() != "2026-11-30" {
		t.Fatalf("set fields: %+v", u)
	}
	var bad tidings.TodoUpdate
	if err := json.Unmarshal([]byte(`{"due": "soon"}`), &bad); tidings.ErrorCode(err) != tidings.EINVALID {
		t.Fatalf("bad date: %v", err)
	}
	b, err := json.Marshal(tidings.TodoUpdate{Due: tidings.SetNull[tidings.Date]()})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"title":null,"description":null,"priority":null,"status":null,"due":null}` {
		t.Fatalf("marshal = %s", b)
	}
}
