package sqlstore_test

import (
	"context"
	"testing"

	"github.com/tidings/tidings"
)

func TestFindAndDeleteTokens(t *testing.T) {
	db := MustOpenDB(t)
	sys := tidings.NewSystemContext(context.Background())
	alice := MustCreateUser(t, db, "alice", false)
	bob := MustCreateUser(t, db, "bob", false)
	mine := &tidings.Token{Name: "mine"}
	if err := db.CreateToken(as(alice), mine); err != nil {
		t.Fatal(err)
	}
	theirs := &tidings.Token{UserID: bob.ID, Name: "theirs"}
	if err := db.CreateToken(sys, theirs); err != nil {
		t.Fatal(err)
	}

	list, err := db.FindTokens(as(alice))
	if err != nil || len(list) != 1 || list[0].ID != mine.ID || list[0].Secret != "" || list[0].LastUsedAt != nil {
		t.Fatalf("alice's tokens = %+v, %v", list, err)
	}
	if all, err := db.FindTokens(sys); err != nil || len(all) != 2 {
		t.Fatalf("every token = %+v, %v", all, err)
	}
	if err := db.DeleteToken(as(alice), theirs.ID); code(err) != tidings.ENOTFOUND {
		t.Fatalf("deleting bob's token as alice: %v, want not_found", err)
	}
	if _, err := db.AuthenticateToken(context.Background(), theirs.Secret); err != nil {
		t.Fatalf("bob's token after alice's attempt: %v", err)
	}
	auth, err := db.AuthenticateToken(context.Background(), mine.Secret)
	if err != nil {
		t.Fatal(err)
	}
	byToken := tidings.NewContextWithAuth(context.Background(), auth)
	if _, err := db.FindTokens(byToken); code(err) != tidings.EFORBIDDEN {
		t.Fatalf("a token listing tokens: %v, want forbidden", err)
	}
	if err := db.DeleteToken(byToken, mine.ID); code(err) != tidings.EFORBIDDEN {
		t.Fatalf("a token revoking itself: %v, want forbidden", err)
	}
	if err := db.DeleteToken(as(alice), mine.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AuthenticateToken(context.Background(), mine.Secret); code(err) != tidings.EUNAUTHORIZED {
		t.Fatalf("a revoked token: %v, want unauthorized", err)
	}
	if err := db.DeleteToken(sys, theirs.ID); err != nil {
		t.Fatal(err)
	}
}

func TestOnlyAdminsAndTheSystemMakePublishTokens(t *testing.T) {
	db := MustOpenDB(t)
	sys := tidings.NewSystemContext(context.Background())
	admin := MustCreateUser(t, db, "alice", true)
	bob := MustCreateUser(t, db, "bob", false)

	err := db.CreateToken(as(bob), &tidings.Token{Scopes: []string{tidings.ScopePublish}})
	wantCode(t, err, tidings.EFORBIDDEN, "scopes")
	if list, err := db.FindTokens(as(bob)); err != nil || len(list) != 0 {
		t.Fatalf("bob's tokens after the refusal = %+v, %v", list, err)
	}
	if err := db.CreateToken(as(admin), &tidings.Token{Scopes: []string{tidings.ScopePublish}}); err != nil {
		t.Fatalf("an administrator: %v", err)
	}
	if err := db.CreateToken(sys, &tidings.Token{UserID: bob.ID, Scopes: []string{tidings.ScopePublish}}); err != nil {
		t.Fatalf("the system, for bob: %v", err)
	}
}
