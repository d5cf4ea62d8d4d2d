package sqlstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidings/tidings"
)

var _ tidings.AuthService = (*DB)(nil)

// sessionTouchInterval is how stale a session's last use may get before it
// is written again: a session is not a write per request.
const sessionTouchInterval = time.Hour

// tokenTouchInterval is the same for tokens, whose last use their owner
// sees in the list of tokens, to the hour: a program that polls all day
// costs the database a lookup and a write an hour (see tidings.Auth's
// Recheck), not one a minute.
const tokenTouchInterval = time.Hour

// TokenPrefix starts every API token, so that a leaked one is recognisable.
const TokenPrefix = "tdg_"

func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// HashSecret returns the stored form of a session or token secret. Secrets
// are 256 random bits, so a fast hash is enough to make a stolen database
// useless for logging in.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func badCredentials() error {
	return tidings.Errorf(tidings.EUNAUTHORIZED, "Wrong login or password.")
}

// Login checks the password and opens a session.
func (db *DB) Login(ctx context.Context, login, password string) (*tidings.User, *tidings.Session, error) {
	var hash string
	var u *tidings.User
	err := errors.New("unknown login")
	if tidings.ValidateLogin(login) == nil && len(password) <= 1024 {
		var stmt *sql.Stmt
		if stmt, err = db.rstmt(`SELECT password_hash, ` + userColumns + ` FROM users WHERE login = ?`); err != nil {
			return nil, nil, err
		}
		row := stmt.QueryRowContext(ctx, login)
		var created, updated int64
		u = &tidings.User{}
		err = row.Scan(&hash, &u.ID, &u.Login, &u.Name, &u.Email, &u.Role, &u.TimeZone, &u.Language, &created, &updated)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, nil, db.translate(err)
		}
		u.CreatedAt, u.UpdatedAt = fromMS(created), fromMS(updated)
	}
	if err != nil {
		checkPassword(dummyHash, password)
		return nil, nil, badCredentials()
	}
	if !checkPassword(hash, password) {
		return nil, nil, badCredentials()
	}
	secret, err := newSecret()
	if err != nil {
		return nil, nil, err
	}
	s := &tidings.Session{Secret: secret, Hash: HashSecret(secret), UserID: u.ID}
	err = db.write(ctx, func(tx *Tx) error {
		s.CreatedAt, s.LastUsedAt, s.ExpiresAt = tx.now, tx.now, tx.now.Add(tidings.SessionLifetime)
		if _, err := tx.exec(`INSERT INTO sessions (hash, user_id, created_at, last_used_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			s.Hash, s.UserID, ms(s.CreatedAt), ms(s.LastUsedAt), ms(s.ExpiresAt)); err != nil {
			return err
		}
		return tx.announcePresence(u, tidings.ProcessLogin)
	})
	if err != nil {
		return nil, nil, err
	}
	return u, s, nil
}

// Logout ends a session.
func (db *DB) Logout(ctx context.Context, sessionHash []byte) error {
	return db.write(ctx, func(tx *Tx) error {
		var userID int64
		err := tx.queryRow(`DELETE FROM sessions WHERE hash = ? RETURNING user_id`, sessionHash).Scan(&userID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		tx.endAccess(userID)
		u, err := scanUser(tx.queryRow(`SELECT `+userColumns+` FROM users WHERE id = ?`, userID))
		if err != nil {
			return err
		}
		return tx.announcePresence(u, tidings.ProcessLogout)
	})
}

// announcePresence tells the people who share a project with u that u logged
// in or out. Those who switched presence notices off are left out.
func (tx *Tx) announcePresence(u *tidings.User, process string) error {
	rows, err := tx.query(`SELECT DISTINCT b.user_id FROM members a JOIN members b ON b.project_id = a.project_id
		WHERE a.user_id = ? AND b.user_id <> ? ORDER BY b.user_id`, u.ID, u.ID)
	if err != nil {
		return err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	verb := "logged in"
	if process == tidings.ProcessLogout {
		verb = "logged out"
	}
	ev := &tidings.Event{
		Process: process,
		Module:  "user",
		Actor:   &tidings.Actor{ID: u.ID, Login: u.Login, Name: u.Name},
		Text:    u.Name + " " + verb,
	}
	return tx.emit(ev, ids)
}

// AuthenticateSession returns the holder of a session secret and extends the
// session, at most once per sessionTouchInterval.
func (db *DB) AuthenticateSession(ctx context.Context, secret string) (*tidings.Auth, error) {
	if secret == "" || len(secret) > 128 {
		return nil, tidings.Errorf(tidings.EUNAUTHORIZED, "The session has ended; log in again.")
	}
	hash := HashSecret(secret)
	stmt, err := db.rstmt(`SELECT s.created_at, s.last_used_at, s.expires_at, u.id, u.login, u.name, u.email, u.role, u.time_zone, u.language, u.created_at, u.updated_at
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.hash = ?`)
	if err != nil {
		return nil, err
	}
	var created, lastUsed, expires int64
	var u tidings.User
	var uc, uu int64
	err = stmt.QueryRowContext(ctx, hash).Scan(&created, &lastUsed, &expires, &u.ID, &u.Login, &u.Name, &u.Email, &u.Role, &u.TimeZone, &u.Language, &uc, &uu)
	now := db.Now()
	if errors.Is(err, sql.ErrNoRows) || (err == nil && expires <= ms(now)) {
		return nil, tidings.Errorf(tidings.EUNAUTHORIZED, "The session has ended; log in again.")
	}
	if err != nil {
		return nil, db.translate(err)
	}
	u.CreatedAt, u.UpdatedAt = fromMS(uc), fromMS(uu)
	s := &tidings.Session{Hash: hash, UserID: u.ID, CreatedAt: fromMS(created), LastUsedAt: fromMS(lastUsed), ExpiresAt: fromMS(expires)}
	if now.Sub(s.LastUsedAt) >= sessionTouchInterval {
		err := db.write(ctx, func(tx *Tx) error {
			s.LastUsedAt, s.ExpiresAt = tx.now, tx.now.Add(tidings.SessionLifetime)
			_, err := tx.exec(`UPDATE sessions SET last_used_at = ?, expires_at = ? WHERE hash = ?`, ms(s.LastUsedAt), ms(s.ExpiresAt), hash)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	recheck := s.LastUsedAt.Add(sessionTouchInterval)
	if s.ExpiresAt.Before(recheck) {
		recheck = s.ExpiresAt
	}
	return &tidings.Auth{User: &u, Session: s, Recheck: recheck}, nil
}

// AuthenticateToken returns the holder of an API token and records its use,
// at most once per tokenTouchInterval.
func (db *DB) AuthenticateToken(ctx context.Context, secret string) (*tidings.Auth, error) {
	if !strings.HasPrefix(secret, TokenPrefix) || len(secret) > 128 {
		return nil, tidings.Errorf(tidings.EUNAUTHORIZED, "The API token is not valid.")
	}
	stmt, err := db.rstmt(`SELECT t.id, t.name, t.scopes, t.created_at, t.last_used_at, u.id, u.login, u.name, u.email, u.role, u.time_zone, u.language, u.created_at, u.updated_at
		FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?`)
	if err != nil {
		return nil, err
	}
	var t tidings.Token
	var u tidings.User
	var scopes string
	var tc, uc, uu int64
	var lastUsed sql.NullInt64
	err = stmt.QueryRowContext(ctx, HashSecret(secret)).Scan(&t.ID, &t.Name, &scopes, &tc, &lastUsed, &u.ID, &u.Login, &u.Name, &u.Email, &u.Role, &u.TimeZone, &u.Language, &uc, &uu)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, tidings.Errorf(tidings.EUNAUTHORIZED, "The API token is not valid.")
	}
	if err != nil {
		return nil, db.translate(err)
	}
	t.UserID, t.Scopes, t.CreatedAt = u.ID, strings.Fields(scopes), fromMS(tc)
	if lastUsed.Valid {
		t.LastUsedAt = new(fromMS(lastUsed.Int64))
	}
	u.CreatedAt, u.UpdatedAt = fromMS(uc), fromMS(uu)
	if t.LastUsedAt == nil || db.Now().Sub(*t.LastUsedAt) >= tokenTouchInterval {
		err := db.write(ctx, func(tx *Tx) error {
			t.LastUsedAt = new(tx.now)
			_, err := tx.exec(`UPDATE tokens SET last_used_at = ? WHERE id = ?`, ms(tx.now), t.ID)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return &tidings.Auth{User: &u, Token: &t, Recheck: t.LastUsedAt.Add(tokenTouchInterval)}, nil
}

// AccessEnds tells whether every end of a credential reaches this process
// at once (see tidings.AccessEnds): on SQLite, where this process is the
// only one that writes, always; on PostgreSQL while a Listener of this
// store listens for the other nodes' notices, since the last time it began
// to (what was missed before that is not known).
func (db *DB) AccessEnds() (heard bool, since uint64) {
	if db.dialect != postgresDialect {
		return true, 0
	}
	return db.inboxes.on.Load(), db.inboxes.listens.Load()
}

// tokenManager returns the caller of a call that manages tokens: a user
// through a session, or the system. Tokens may not manage tokens: a leaked
// one could otherwise make more.
func tokenManager(ctx context.Context) (*tidings.Auth, error) {
	a := tidings.AuthFromContext(ctx)
	switch {
	case a == nil:
		return nil, tidings.Errorf(tidings.EUNAUTHORIZED, "Log in first.")
	case a.System:
		return a, nil
	case a.User == nil || a.Token != nil:
		return nil, tidings.Errorf(tidings.EFORBIDDEN, "API tokens cannot manage tokens; log in.")
	}
	return a, nil
}

// CreateToken makes an API token for the caller, or for any user when the
// context is the system's. Only administrators and the system may make
// publish tokens, which address anyone.
func (db *DB) CreateToken(ctx context.Context, t *tidings.Token) error {
	a, err := tokenManager(ctx)
	if err != nil {
		return err
	}
	if !a.System {
		t.UserID = a.User.ID
	}
	t.Name = strings.TrimSpace(t.Name)
	if t.Name == "" {
		t.Name = "API token"
	}
	if utf8.RuneCountInString(t.Name) > 100 {
		return tidings.Invalidf("name", "Name must have at most 100 characters.")
	}
	scopes, err := tidings.ValidateScopes(t.Scopes)
	if err != nil {
		return err
	}
	t.Scopes = scopes
	if !a.System && a.User.Role != tidings.RoleAdmin && slices.Contains(t.Scopes, tidings.ScopePublish) {
		return &tidings.Error{Code: tidings.EFORBIDDEN, Field: "scopes",
			Message: fmt.Sprintf("Only administrators may create tokens with the %q scope.", tidings.ScopePublish)}
	}
	secret, err := newSecret()
	if err != nil {
		return err
	}
	t.Secret = TokenPrefix + secret
	return db.write(ctx, func(tx *Tx) error {
		var exists int
		if err := tx.queryRow(`SELECT COUNT(*) FROM users WHERE id = ?`, t.UserID).Scan(&exists); err != nil {
			return err
		}
		if exists == 0 {
			return tidings.Errorf(tidings.ENOTFOUND, "The user was not found.")
		}
		t.CreatedAt, t.LastUsedAt = tx.now, nil
		return tx.queryRow(`INSERT INTO tokens (user_id, name, hash, scopes, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			t.UserID, t.Name, HashSecret(t.Secret), strings.Join(t.Scopes, " "), ms(tx.now)).Scan(&t.ID)
	})
}

// FindTokens returns the caller's tokens, or everyone's for the system,
// oldest first. A user has few; they are not paged.
func (db *DB) FindTokens(ctx context.Context) ([]*tidings.Token, error) {
	a, err := tokenManager(ctx)
	if err != nil {
		return nil, err
	}
	query, args := `SELECT id, user_id, name, scopes, created_at, last_used_at FROM tokens WHERE user_id = ? ORDER BY id`, []any{}
	if a.System {
		query = `SELECT id, user_id, name, scopes, created_at, last_used_at FROM tokens ORDER BY id`
	} else {
		args = append(args, a.User.ID)
	}
	stmt, err := db.rstmt(query)
	if err != nil {
		return nil, err
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return nil, db.translate(err)
	}
	defer rows.Close()
	tokens := []*tidings.Token{}
	for rows.Next() {
		var t tidings.Token
		var scopes string
		var created int64
		var lastUsed sql.NullInt64
		if err := rows.Scan(&t.ID, &t.UserID, &t.Name, &scopes, &created, &lastUsed); err != nil {
			return nil, db.translate(err)
		}
		t.Scopes, t.CreatedAt = strings.Fields(scopes), fromMS(created)
		if lastUsed.Valid {
			t.LastUsedAt = new(fromMS(lastUsed.Int64))
		}
		tokens = append(tokens, &t)
	}
	if err := rows.Err(); err != nil {
		return nil, db.translate(err)
	}
	return tokens, nil
}

// DeleteToken revokes a token of the caller, or any token for the system.
// The polls and streams it holds open are told to check it again, so they
// end.
func (db *DB) DeleteToken(ctx context.Context, id int64) error {
	a, err := tokenManager(ctx)
	if err != nil {
		return err
	}
	return db.write(ctx, func(tx *Tx) error {
		var userID int64
		var err error
		if a.System {
			err = tx.queryRow(`DELETE FROM tokens WHERE id = ? RETURNING user_id`, id).Scan(&userID)
		} else {
			// Another user's token is not found either: its id says nothing.
			err = tx.queryRow(`DELETE FROM tokens WHERE id = ? AND user_id = ? RETURNING user_id`, id, a.User.ID).Scan(&userID)
		}
		if errors.Is(err, sql.ErrNoRows) {
			return tidings.Errorf(tidings.ENOTFOUND, "Token %d was not found.", id)
		}
		if err != nil {
			return err
		}
		tx.endAccess(userID)
		return nil
	})
}
