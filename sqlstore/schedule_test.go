package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/tidings/tidings"
	"github.com/tidings/tidings/sqlstore"
)

// senders is the cast of the tests of scheduled messages: Alice is an
// administrator, Bob and Carol share "Office move" (Alice's), Dave shares
// nothing, Root is the other administrator.
type senders struct {
	db                            *sqlstore.DB
	clock                         *testClock
	alice, bob, carol, dave, root *tidings.User
	project                       *tidings.Project
}

func newSenders(t *testing.T) *senders {
	t.Helper()
	clock := newTestClock()
	db := MustOpenDB(t, withClock(clock))
	s := &senders{db: db, clock: clock}
	s.alice = MustCreateUser(t, db, "alice", true)
	s.root = MustCreateUser(t, db, "root", true)
	s.bob = MustCreateUser(t, db, "bob", false)
	s.carol = MustCreateUser(t, db, "carol", false)
	s.dave = MustCreateUser(t, db, "dave", false)
	s.project = MustCreateProject(t, db, s.alice, "Office move", s.bob, s.carol)
	return s
}

// schedule publishes, in the caller's context, a message due in ten
// minutes.
func (s *senders) schedule(t *testing.T, ctx context.Context, pub tidings.Publication) {
	t.Helper()
	pub.ValidFrom = s.clock.Now().Add(10 * time.Minute)
	res, err := s.db.PublishMessage(ctx, &pub)
	if err != nil {
		t.Fatalf("publish %q: %v", pub.Text, err)
	}
	if res.Recipients == 0 {
		t.Fatalf("publish %q stored for nobody", pub.Text)
	}
}

// fire moves the clock to when the scheduled messages are due, fires them
// and checks that none is left waiting.
func (s *senders) fire(t *testing.T) int {
	t.Helper()
	s.clock.Advance(10 * time.Minute)
	n, _, err := s.db.FireDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.db.NextDue(context.Background()); err != nil || ok {
		t.Fatalf("still scheduled after firing: %v %v", ok, err)
	}
	return n
}

// withToken returns a context acting as u through a new token with scopes,
// made as the command line makes it.
func (s *senders) withToken(t *testing.T, u *tidings.User, scopes ...string) (context.Context, *tidings.Token) {
	t.Helper()
	tok := &tidings.Token{UserID: u.ID, Name: "test", Scopes: scopes}
	if err := s.db.CreateToken(tidings.NewSystemContext(context.Background()), tok); err != nil {
		t.Fatal(err)
	}
	auth, err := s.db.AuthenticateToken(context.Background(), tok.Secret)
	if err != nil {
		t.Fatal(err)
	}
	return tidings.NewContextWithAuth(context.Background(), auth), tok
}

// TestScheduledMessageNeedsTheSendersRight: when a scheduled message fires,
// its sender must still exist and may still address its recipient (SPEC §2).
func TestScheduledMessageNeedsTheSendersRight(t *testing.T) {
	sys := tidings.NewSystemContext(context.Background())

	t.Run("a plain user who left the shared project", func(t *testing.T) {
		s := newSenders(t)
		carol := newInbox(t, s.db, s.carol)
		s.schedule(t, as(s.bob), tidings.Publication{Recipients: []string{"carol"}, Text: "see you"})
		if err := s.db.RemoveMember(as(s.bob), s.project.ID, "bob"); err != nil {
			t.Fatal(err)
		}
		carol.read()
		if n := s.fire(t); n != 0 {
			t.Fatalf("fired %d", n)
		}
		carol.none()
	})

	t.Run("a plain user who was deleted", func(t *testing.T) {
		s := newSenders(t)
		carol := newInbox(t, s.db, s.carol)
		s.schedule(t, as(s.bob), tidings.Publication{Recipients: []string{"carol"}, Text: "see you"})
		if err := s.db.DeleteUser(sys, "bob"); err != nil {
			t.Fatal(err)
		}
		carol.read()
		if n := s.fire(t); n != 0 {
			t.Fatalf("fired %d", n)
		}
		carol.none()
	})

	t.Run("a plain user who left the project he addressed", func(t *testing.T) {
		s := newSenders(t)
		carol := newInbox(t, s.db, s.carol)
		s.schedule(t, as(s.bob), tidings.Publication{ProjectID: s.project.ID, Text: "to the project"})
		if err := s.db.RemoveMember(as(s.bob), s.project.ID, "bob"); err != nil {
			t.Fatal(err)
		}
		carol.read()
		if n := s.fire(t); n != 0 {
			t.Fatalf("fired %d", n)
		}
		carol.none()
	})

	t.Run("a publish token whose user was deleted", func(t *testing.T) {
		s := newSenders(t)
		dave := newInbox(t, s.db, s.dave)
		ctx, _ := s.withToken(t, s.bob, tidings.ScopePublish)
		s.schedule(t, ctx, tidings.Publication{Recipients: []string{"dave"}, Text: "ops notice"})
		if err := s.db.DeleteUser(sys, "bob"); err != nil {
			t.Fatal(err)
		}
		if n := s.fire(t); n != 0 {
			t.Fatalf("fired %d", n)
		}
		dave.none()
	})

	t.Run("a token that was revoked", func(t *testing.T) {
		s := newSenders(t)
		carol, dave := newInbox(t, s.db, s.carol), newInbox(t, s.db, s.dave)
		pubCtx, pubTok := s.withToken(t, s.bob, tidings.ScopePublish)
		s.schedule(t, pubCtx, tidings.Publication{Recipients: []string{"dave"}, Text: "ops notice"})
		userCtx, userTok := s.withToken(t, s.bob, tidings.ScopeUser)
		s.schedule(t, userCtx, tidings.Publication{Recipients: []string{"carol"}, Text: "see you"})
		for _, tok := range []*tidings.Token{pubTok, userTok} {
			if err := s.db.DeleteToken(as(s.bob), tok.ID); err != nil {
				t.Fatal(err)
			}
		}
		if n := s.fire(t); n != 0 {
			t.Fatalf("fired %d", n)
		}
		dave.none()
		carol.none()
	})

	t.Run("an administrator who is one no longer", func(t *testing.T) {
		s := newSenders(t)
		carol, dave := newInbox(t, s.db, s.carol), newInbox(t, s.db, s.dave)
		// Dave shares no project with Alice; Carol does.
		s.schedule(t, as(s.alice), tidings.Publication{Recipients: []string{"dave", "carol"}, Text: "from alice"})
		if _, err := s.db.UpdateUser(sys, "alice", tidings.UserUpdate{Role: ptr(tidings.RoleUser)}); err != nil {
			t.Fatal(err)
		}
		if n := s.fire(t); n != 1 {
			t.Fatalf("fired %d, want 1", n)
		}
		dave.none()
		wantText(t, carol.one(), "from alice")
	})

	t.Run("an administrator's and a publish token's messages arrive", func(t *testing.T) {
		s := newSenders(t)
		dave := newInbox(t, s.db, s.dave)
		ctx, _ := s.withToken(t, s.bob, tidings.ScopePublish)
		s.schedule(t, ctx, tidings.Publication{Recipients: []string{"dave"}, Text: "from the token"})
		s.schedule(t, as(s.alice), tidings.Publication{Recipients: []string{"dave"}, Text: "from alice"})
		adminTok, _ := s.withToken(t, s.root, tidings.ScopeUser)
		s.schedule(t, adminTok, tidings.Publication{Recipients: []string{"dave"}, Text: "from root's token"})
		s.schedule(t, as(s.bob), tidings.Publication{Recipients: []string{"bob"}, Text: "note to self"})
		if n := s.fire(t); n != 4 {
			t.Fatalf("fired %d, want 4", n)
		}
		if got := msgTexts(dave.read()); len(got) != 3 || got[0] != "from the token" || got[1] != "from alice" || got[2] != "from root's token" {
			t.Fatalf("dave got %q", got)
		}
	})

	t.Run("a plain user's message still arrives while he may send it", func(t *testing.T) {
		s := newSenders(t)
		carol := newInbox(t, s.db, s.carol)
		s.schedule(t, as(s.bob), tidings.Publication{Recipients: []string{"carol"}, Text: "by login"})
		s.schedule(t, as(s.bob), tidings.Publication{ProjectID: s.project.ID, Text: "to the project"})
		carol.read()
		if n := s.fire(t); n != 3 { // Alice is a member of the project too
			t.Fatalf("fired %d, want 3", n)
		}
		if got := msgTexts(carol.read()); len(got) != 2 {
			t.Fatalf("carol got %q", got)
		}
	})
}
