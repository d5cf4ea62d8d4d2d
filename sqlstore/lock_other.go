//go:build !unix

package sqlstore

import "os"

// lockServing takes no lock where flock(2) is missing: two servers on one
// SQLite file are not refused there.
func lockServing(path string) (*os.File, error) { return nil, nil }
