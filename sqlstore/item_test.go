package sqlstore_test

import (
	"context"
	"slices"
	"strconv"
	"testing"

	"github.com/tidings/tidings"
	"github.com/tidings/tidings/sqlstore"
)

// mustCreatePerson creates a user with a display name of their own.
func mustCreatePerson(tb testing.TB, db *sqlstore.DB, login, name string) *tidings.User {
	tb.Helper()
	u := &tidings.User{Login: login, Name: name, Email: login + "@example.org"}
	if err := db.CreateUser(tidings.NewSystemContext(context.Background()), u, "password1"); err != nil {
		tb.Fatal(err)
	}
	return u
}

// inbox reads one user's messages the way a client does: from the cursor of
// its last read.
type inbox struct {
	tb     testing.TB
	db     *sqlstore.DB
	user   *tidings.User
	cursor tidings.Cursor
}

// newInbox starts reading after the messages the user has now.
func newInbox(tb testing.TB, db *sqlstore.DB, u *tidings.User) *inbox {
	tb.Helper()
	c, err := db.CurrentCursor(context.Background(), u.ID)
	if err != nil {
		tb.Fatal(err)
	}
	return &inbox{tb: tb, db: db, user: u, cursor: c}
}

// read returns the messages that arrived since the last read.
func (in *inbox) read() []*tidings.Message {
	in.tb.Helper()
	b, err := in.db.FindMessages(context.Background(), in.user.ID, &in.cursor, 0)
	if err != nil {
		in.tb.Fatal(err)
	}
	if b.Missed != 0 {
		in.tb.Fatalf("%s missed %d messages", in.user.Login, b.Missed)
	}
	in.cursor = b.Cursor
	return b.Messages
}

// one returns the only message that arrived since the last read.
func (in *inbox) one() *tidings.Message {
	in.tb.Helper()
	msgs := in.read()
	if len(msgs) != 1 {
		in.tb.Fatalf("%s got %d messages, want 1: %q", in.user.Login, len(msgs), msgTexts(msgs))
	}
	return msgs[0]
}

// none checks that nothing arrived since the last read.
func (in *inbox) none() {
	in.tb.Helper()
	if msgs := in.read(); len(msgs) != 0 {
		in.tb.Fatalf("%s got %q, want nothing", in.user.Login, msgTexts(msgs))
	}
}

func msgTexts(msgs []*tidings.Message) []string {
	out := []string{}
	for _, m := range msgs {
		out = append(out, m.Text)
	}
	return out
}

// detail renders a message detail for comparisons: field|label|old|new,
// with null as "-".
func detail(d tidings.Detail) string {
	s := func(p *string) string {
		if p == nil {
			return "-"
		}
		return *p
	}
	return d.Field + "|" + d.Label + "|" + s(d.Old) + "|" + s(d.New)
}

func details(m *tidings.Message) []string {
	out := []string{}
	for _, d := range m.Details {
		out = append(out, detail(d))
	}
	return out
}

func wantDetails(tb testing.TB, m *tidings.Message, want ...string) {
	tb.Helper()
	if got := details(m); !slices.Equal(got, want) {
		tb.Fatalf("details = %q, want %q", got, want)
	}
}

func wantText(tb testing.TB, m *tidings.Message, want string) {
	tb.Helper()
	if m.Text != want {
		tb.Fatalf("text = %q, want %q", m.Text, want)
	}
}

func wantCode(tb testing.TB, err error, code, field string) {
	tb.Helper()
	if tidings.ErrorCode(err) != code || tidings.ErrorField(err) != field {
		tb.Fatalf("err = %v, want code %s field %q", err, code, field)
	}
}

// office is the cast of most item tests: Alice owns "Office move", Bob and
// Carol are members, Dave is not.
type office struct {
	db                      *sqlstore.DB
	clock                   *testClock
	alice, bob, carol, dave *tidings.User
	project                 *tidings.Project
}

func newOffice(t *testing.T) *office {
	t.Helper()
	clock := newTestClock()
	db := MustOpenDB(t, withClock(clock))
	o := &office{db: db, clock: clock}
	o.alice = mustCreatePerson(t, db, "alice", "Alice Adams")
	o.bob = mustCreatePerson(t, db, "bob", "Bob Brown")
	o.carol = mustCreatePerson(t, db, "carol", "Carol Clark")
	o.dave = mustCreatePerson(t, db, "dave", "Dave Doe")
	o.project = MustCreateProject(t, db, o.alice, "Office move", o.bob, o.carol)
	return o
}

func ptr[T any](v T) *T { return &v }

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
