package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/tidings/tidings"
)

var _ tidings.UserService = (*DB)(nil)

const userColumns = `id, login, name, email, role, time_zone, language, created_at, updated_at`

type rowScanner interface{ Scan(...any) error }

func scanUser(row rowScanner) (*tidings.User, error) {
	var u tidings.User
	var created, updated int64
	if err := row.Scan(&u.ID, &u.Login, &u.Name, &u.Email, &u.Role, &u.TimeZone, &u.Language, &created, &updated); err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = fromMS(created), fromMS(updated)
	return &u, nil
}

func userNotFound(login string) error {
	return tidings.Errorf(tidings.ENOTFOUND, "User %q was not found.", login)
}

// FindUserByLogin returns a user by login.
func (db *DB) FindUserByLogin(ctx context.Context, login string) (*tidings.User, error) {
	stmt, err := db.rstmt(`SELECT ` + userColumns + ` FROM users WHERE login = ?`)
	if err != nil {
		return nil, err
	}
	u, err := scanUser(stmt.QueryRowContext(ctx, login))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, userNotFound(login)
	}
	return u, db.translate(err)
}

// CountUsers returns how many users exist.
func (db *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := db.reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n)
	return n, db.translate(err)
}

func requireAdmin(ctx context.Context) error {
	a := tidings.AuthFromContext(ctx)
	switch {
	case a == nil:
		return tidings.Errorf(tidings.EUNAUTHORIZED, "Log in first.")
	case a.System, a.User != nil && a.User.Role == tidings.RoleAdmin:
		return nil
	default:
		return tidings.Errorf(tidings.EFORBIDDEN, "Only administrators may manage users.")
	}
}

// FindUsers returns a page of users ordered by id. Admins only.
func (db *DB) FindUsers(ctx context.Context, filter tidings.UserFilter) ([]*tidings.User, string, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, "", err
	}
	limit := pageLimit(filter.Limit)
	after, err := parsePageToken(filter.After)
	if err != nil {
		return nil, "", err
	}
	where, args := []string{"id > ?"}, []any{after}
	if filter.Login != nil {
		where, args = append(where, "login = ?"), append(args, *filter.Login)
	}
	rows, err := db.readQuery(ctx, `SELECT `+userColumns+` FROM users WHERE `+strings.Join(where, " AND ")+` ORDER BY id LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, "", db.translate(err)
	}
	users, next, err := collectPage(rows, limit, scanUser, func(u *tidings.User) string { return pageToken(u.ID) })
	if err != nil {
		return nil, "", db.translate(err)
	}
	return users, next, nil
}

// CreateUser stores a new user. The password is hashed before the write, so
// the slow hash never holds up the writer.
func (db *DB) CreateUser(ctx context.Context, u *tidings.User, password string) error {
	if err := requireAdmin(ctx); err != nil {
		return err
	}
	if err := u.Validate(); err != nil {
		return err
	}
	if err := tidings.ValidatePassword(password); err != nil {
		return err
	}
	hash, err := hashPassword(password)
	if err != nil {
		return err
	}
	return db.insertUser(ctx, u, hash)
}

// HashPassword returns the stored form of a password, for ImportUser.
func HashPassword(password string) (string, error) {
	if err := tidings.ValidatePassword(password); err != nil {
		return "", err
	}
	return hashPassword(password)
}

// ImportUser stores a user whose password is already hashed by
// HashPassword: for moving users between databases, and for setting up many
// users without paying the slow hash for each.
func (db *DB) ImportUser(ctx context.Context, u *tidings.User, passwordHash string) error {
	if err := requireAdmin(ctx); err != nil {
		return err
	}
	if err := u.Validate(); err != nil {
		return err
	}
	if !strings.HasPrefix(passwordHash, "$argon2id$") {
		return tidings.Invalidf("password", "The password hash is not an argon2id hash.")
	}
	return db.insertUser(ctx, u, passwordHash)
}

func (db *DB) insertUser(ctx context.Context, u *tidings.User, hash string) error {
	return db.write(ctx, func(tx *Tx) error {
		var taken int
		if err := tx.queryRow(`SELECT COUNT(*) FROM users WHERE login = ?`, u.Login).Scan(&taken); err != nil {
			return err
		}
		if taken > 0 {
			return &tidings.Error{Code: tidings.ECONFLICT, Field: "login", Message: fmt.Sprintf("Login %q is taken.", u.Login)}
		}
		u.CreatedAt, u.UpdatedAt = tx.now, tx.now
		err := tx.queryRow(`INSERT INTO users (login, name, email, password_hash, role, time_zone, language, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			u.Login, u.Name, u.Email, hash, u.Role, u.TimeZone, u.Language, ms(tx.now), ms(tx.now)).Scan(&u.ID)
		if err != nil {
			return err
		}
		_, err = tx.exec(`INSERT INTO inboxes (user_id, head) VALUES (?, 0)`, u.ID)
		return err
	})
}

// UpdateUser changes a user. Admins may change anyone and any field; a user
// may change their own name, email, password, time zone and language.
func (db *DB) UpdateUser(ctx context.Context, login string, upd tidings.UserUpdate) (*tidings.User, error) {
	a := tidings.AuthFromContext(ctx)
	if a == nil || (a.User == nil && !a.System) {
		return nil, tidings.Errorf(tidings.EUNAUTHORIZED, "Log in first.")
	}
	admin := a.System || a.User.Role == tidings.RoleAdmin
	if !admin && a.User.Login != login {
		return nil, tidings.Errorf(tidings.EFORBIDDEN, "Only administrators may change other users.")
	}
	if !admin && upd.Role != nil {
		return nil, &tidings.Error{Code: tidings.EFORBIDDEN, Field: "role", Message: "Only administrators may change roles."}
	}
	var hash string
	if upd.Password != nil {
		if err := tidings.ValidatePassword(*upd.Password); err != nil {
			return nil, err
		}
		var err error
		if hash, err = hashPassword(*upd.Password); err != nil {
			return nil, err
		}
	}
	var out *tidings.User
	err := db.write(ctx, func(tx *Tx) error {
		u, err := scanUser(tx.queryRow(`SELECT `+userColumns+` FROM users WHERE login = ?`, login))
		if errors.Is(err, sql.ErrNoRows) {
			return userNotFound(login)
		}
		if err != nil {
			return err
		}
		wasAdmin := u.Role == tidings.RoleAdmin
		for _, f := range []struct {
			from *string
			to   *string
		}{{upd.Name, &u.Name}, {upd.Email, &u.Email}, {upd.Role, &u.Role}, {upd.TimeZone, &u.TimeZone}, {upd.Language, &u.Language}} {
			if f.from != nil {
				*f.to = *f.from
			}
		}
		if upd.Role != nil && *upd.Role == "" {
			return tidings.Invalidf("role", "Role must be %q or %q.", tidings.RoleAdmin, tidings.RoleUser)
		}
		if err := u.Validate(); err != nil {
			return err
		}
		if wasAdmin && u.Role != tidings.RoleAdmin {
			if err := tx.keepAnAdmin(u.ID); err != nil {
				return err
			}
		}
		u.UpdatedAt = tx.now
		// Who the user is changed: whoever holds their credentials asks
		// again (a demoted admin loses the right to address anyone at once).
		tx.endAccess(u.ID)
		if _, err := tx.exec(`UPDATE users SET name = ?, email = ?, role = ?, time_zone = ?, language = ?, updated_at = ? WHERE id = ?`,
			u.Name, u.Email, u.Role, u.TimeZone, u.Language, ms(tx.now), u.ID); err != nil {
			return err
		}
		if hash != "" {
			if _, err := tx.exec(`UPDATE users SET password_hash = ? WHERE id = ?`, hash, u.ID); err != nil {
				return err
			}
			// A new password ends every other session of the user.
			keep := []byte{}
			if a.Session != nil && a.User != nil && a.User.ID == u.ID {
				keep = a.Session.Hash
			}
			if _, err := tx.exec(`DELETE FROM sessions WHERE user_id = ? AND hash <> ?`, u.ID, keep); err != nil {
				return err
			}
			tx.endAccess(u.ID)
		}
		out = u
		return nil
	})
	return out, err
}

// keepAnAdmin refuses a change that would leave no administrator.
func (tx *Tx) keepAnAdmin(losing int64) error {
	var others int
	if err := tx.queryRow(`SELECT COUNT(*) FROM users WHERE role = 'admin' AND id <> ?`, losing).Scan(&others); err != nil {
		return err
	}
	if others == 0 {
		return tidings.Errorf(tidings.ECONFLICT, "This is the last administrator; make someone else an administrator first.")
	}
	return nil
}

// DeleteUser removes a user with their sessions, tokens, messages and
// memberships; projects they were the only member of go with them.
func (db *DB) DeleteUser(ctx context.Context, login string) error {
	if err := requireAdmin(ctx); err != nil {
		return err
	}
	return db.write(ctx, func(tx *Tx) error {
		var id int64
		var role string
		err := tx.queryRow(`SELECT id, role FROM users WHERE login = ?`, login).Scan(&id, &role)
		if errors.Is(err, sql.ErrNoRows) {
			return userNotFound(login)
		}
		if err != nil {
			return err
		}
		if role == tidings.RoleAdmin {
			if err := tx.keepAnAdmin(id); err != nil {
				return err
			}
		}
		// A project must keep an owner while it has members.
		var name string
		err = tx.queryRow(`SELECT p.name FROM members m JOIN projects p ON p.id = m.project_id
			WHERE m.user_id = ? AND m.role = 'owner'
			AND NOT EXISTS (SELECT 1 FROM members o WHERE o.project_id = m.project_id AND o.user_id <> m.user_id AND o.role = 'owner')
			AND EXISTS (SELECT 1 FROM members o WHERE o.project_id = m.project_id AND o.user_id <> m.user_id)
			LIMIT 1`, id).Scan(&name)
		if err == nil {
			return tidings.Errorf(tidings.ECONFLICT, "%s is the last owner of the project %q; make someone else its owner first.", login, name)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.exec(`DELETE FROM projects WHERE id IN (SELECT project_id FROM members m WHERE m.user_id = ?
			AND NOT EXISTS (SELECT 1 FROM members o WHERE o.project_id = m.project_id AND o.user_id <> m.user_id))`, id); err != nil {
			return err
		}
		if _, err = tx.exec(`DELETE FROM users WHERE id = ?`, id); err != nil {
			return err
		}
		tx.endAccess(id)
		return nil
	})
}
