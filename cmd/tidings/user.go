package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/tidings/tidings"
	"github.com/tidings/tidings/sqlstore"
)

// openDB opens the database for a command other than serve.
func (m *Main) openDB(path string) (*sqlstore.DB, error) {
	if err := validateDB(path); err != nil {
		return nil, err
	}
	db := sqlstore.NewDB(path)
	if err := db.Open(); err != nil {
		return nil, err
	}
	return db, nil
}

func (m *Main) runUserAdd(ctx context.Context, args []string) error {
	c := DefaultConfig()
	fs := flagSet("tidings user add", m.Stderr)
	addDBFlag(fs, &c)
	login := fs.String("login", "", "the new user's login (a-z, 0-9, '.', '_', '-')")
	name := fs.String("name", "", "display name")
	email := fs.String("email", "", "email address")
	admin := fs.Bool("admin", false, "make the user an administrator")
	tz := fs.String("time-zone", "UTC", "IANA time zone, e.g. Europe/Berlin")
	if err := m.parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("user add takes no arguments, got %q", fs.Arg(0))
	}
	if *login == "" {
		return usagef("user add needs --login")
	}
	if *name == "" {
		*name = *login
	}
	if *email == "" {
		return usagef("user add needs --email")
	}
	u := &tidings.User{Login: *login, Name: *name, Email: *email, Role: tidings.RoleUser, TimeZone: *tz}
	if *admin {
		u.Role = tidings.RoleAdmin
	}
	if err := u.Validate(); err != nil {
		return flagError(err)
	}
	password, err := m.readPassword()
	if err != nil {
		return err
	}
	if err := tidings.ValidatePassword(password); err != nil {
		return errors.New(tidings.ErrorMessage(err))
	}
	db, err := m.openDB(c.DB)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.CreateUser(tidings.NewSystemContext(ctx), u, password); err != nil {
		return flagError(err)
	}
	fmt.Fprintf(m.Stdout, "Created %s %s (%s).\n", u.Role, u.Login, u.Name)
	return nil
}

// flagError words a domain error in terms of the command's flags.
func flagError(err error) error {
	if f := tidings.ErrorField(err); f != "" {
		return fmt.Errorf("--%s: %s", strings.ReplaceAll(f, "_", "-"), tidings.ErrorMessage(err))
	}
	if code := tidings.ErrorCode(err); code != tidings.EINTERNAL {
		return errors.New(tidings.ErrorMessage(err))
	}
	return err
}

// readPassword reads the password: asked twice without echo on a terminal,
// else the first line of standard input.
func (m *Main) readPassword() (string, error) {
	if f, ok := m.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(m.Stderr, "Password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(m.Stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(m.Stderr, "Password again: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(m.Stderr)
		if err != nil {
			return "", err
		}
		if string(p1) != string(p2) {
			return "", errors.New("the passwords differ")
		}
		return string(p1), nil
	}
	line, err := bufio.NewReader(io.LimitReader(m.Stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on standard input (give it as the first line)")
	}
	return line, nil
}

func (m *Main) runTokenCreate(ctx context.Context, args []string) error {
	c := DefaultConfig()
	fs := flagSet("tidings token create", m.Stderr)
	addDBFlag(fs, &c)
	login := fs.String("user", "", "login of the user the token acts as")
	name := fs.String("name", "", "a name to recognise the token by")
	var scopes []string
	fs.Func("scope", "scope: user (default) or publish; repeat or comma-separate for several", func(v string) error {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				scopes = append(scopes, s)
			}
		}
		return nil
	})
	if err := m.parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("token create takes no arguments, got %q", fs.Arg(0))
	}
	if *login == "" {
		return usagef("token create needs --user")
	}
	if _, err := tidings.ValidateScopes(scopes); err != nil {
		return usagef("--scope: %s", tidings.ErrorMessage(err))
	}
	db, err := m.openDB(c.DB)
	if err != nil {
		return err
	}
	defer db.Close()
	sys := tidings.NewSystemContext(ctx)
	u, err := db.FindUserByLogin(sys, *login)
	if err != nil {
		return fmt.Errorf("--user: %s", tidings.ErrorMessage(err))
	}
	t := &tidings.Token{UserID: u.ID, Name: *name, Scopes: scopes}
	if err := db.CreateToken(sys, t); err != nil {
		return flagError(err)
	}
	fmt.Fprintf(m.Stderr, "Token %q for %s with scopes %s (shown once; it is stored hashed):\n", t.Name, u.Login, strings.Join(t.Scopes, ", "))
	fmt.Fprintln(m.Stdout, t.Secret)
	return nil
}
