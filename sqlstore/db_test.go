package sqlstore_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tidings/tidings"
	"github.com/tidings/tidings/sqlstore"
)

// testClock is a clock that tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// MustOpenDB opens a store in a temporary directory, closed when the test ends.
func MustOpenDB(tb testing.TB, opts ...func(*sqlstore.DB)) *sqlstore.DB {
	tb.Helper()
	db := sqlstore.NewDB(filepath.Join(tb.TempDir(), "tidings.db"))
	for _, o := range opts {
		o(db)
	}
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	return db
}

func withClock(c *testClock) func(*sqlstore.DB) {
	return func(db *sqlstore.DB) { db.Now = c.Now }
}

// MustCreateUser creates a user with the password "password1".
func MustCreateUser(tb testing.TB, db *sqlstore.DB, login string, admin bool) *tidings.User {
	tb.Helper()
	u := &tidings.User{Login: login, Name: login + " Name", Email: login + "@example.org"}
	if admin {
		u.Role = tidings.RoleAdmin
	}
	if err := db.CreateUser(tidings.NewSystemContext(context.Background()), u, "password1"); err != nil {
		tb.Fatal(err)
	}
	return u
}

// as returns a context acting as u through a session.
func as(u *tidings.User) context.Context {
	return tidings.NewContextWithAuth(context.Background(), &tidings.Auth{User: u, Session: &tidings.Session{UserID: u.ID}})
}

// MustCreateProject creates a project owned by owner with the given members.
func MustCreateProject(tb testing.TB, db *sqlstore.DB, owner *tidings.User, name string, members ...*tidings.User) *tidings.Project {
	tb.Helper()
	p := &tidings.Project{Name: name}
	if err := db.CreateProject(as(owner), p); err != nil {
		tb.Fatal(err)
	}
	for _, m := range members {
		var err error
		if p, err = db.SetMember(as(owner), p.ID, m.Login, tidings.ProjectMember); err != nil {
			tb.Fatal(err)
		}
	}
	return p
}

func code(err error) string { return tidings.ErrorCode(err) }
