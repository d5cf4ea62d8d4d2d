//go:build unix

package sqlstore

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/tidings/tidings"
)

// lockServing takes the lock that marks path as served, held until the
// file returned is closed, and refuses when another store holds it. The
// lock is flock(2) on a file of its own beside the database: SQLite's
// locks on the database are fcntl(2) locks, which a process loses on
// closing any descriptor of the file, so the database itself is left
// alone. The kernel lets go of it when the process ends, killed or not;
// the file stays.
func lockServing(path string) (*os.File, error) {
	f, err := os.OpenFile(path+"-lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the database for this server: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, tidings.Errorf(tidings.ECONFLICT, "Another Tidings server is serving %s: stop it first, or give this server a database of its own (several servers share a PostgreSQL database, not a SQLite file).", path)
		}
		return nil, fmt.Errorf("lock %s: %w", path+"-lock", err)
	}
	return f, nil
}
