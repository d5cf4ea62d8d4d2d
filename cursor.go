package tidings

import (
	"encoding/base64"
	"encoding/binary"
	"strconv"
)

// Cursor is a client's position in one user's message sequence. Every
// message id is a cursor; a cursor is valid only for the database (Epoch)
// and the user it was made for.
type Cursor struct {
	// Epoch identifies the database; it is drawn at random when the
	// database is created, so a cursor from a replaced or reset database is
	// recognised.
	Epoch uint64
	// UserID is the user whose sequence this is.
	UserID int64
	// Seq is the number of the last message the client has.
	Seq int64
}

const cursorVersion = 1

// String encodes the cursor as an opaque URL-safe string.
func (c Cursor) String() string {
	buf := make([]byte, 0, 1+8+2*binary.MaxVarintLen64)
	buf = append(buf, cursorVersion)
	buf = binary.BigEndian.AppendUint64(buf, c.Epoch)
	buf = binary.AppendUvarint(buf, uint64(c.UserID))
	buf = binary.AppendUvarint(buf, uint64(c.Seq))
	return base64.RawURLEncoding.EncodeToString(buf)
}

// MarshalText implements encoding.TextMarshaler.
func (c Cursor) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// ParseCursor decodes a cursor. It returns ECURSOR for anything malformed;
// whether the cursor belongs to this database and user is the store's check.
func ParseCursor(s string) (Cursor, error) {
	bad := &Error{Code: ECURSOR, Field: "since", Message: "The cursor " + strconv.Quote(clip(s, 60)) + " is not valid; start over without one."}
	if len(s) == 0 || len(s) > 64 {
		return Cursor{}, bad
	}
	buf, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(buf) < 1+8+2 || buf[0] != cursorVersion {
		return Cursor{}, bad
	}
	c := Cursor{Epoch: binary.BigEndian.Uint64(buf[1:9])}
	rest := buf[9:]
	user, n := binary.Uvarint(rest)
	if n <= 0 || user == 0 || user > 1<<62 {
		return Cursor{}, bad
	}
	rest = rest[n:]
	seq, n := binary.Uvarint(rest)
	if n <= 0 || n != len(rest) || seq > 1<<62 {
		return Cursor{}, bad
	}
	c.UserID, c.Seq = int64(user), int64(seq)
	// Only the canonical encoding is accepted, so one position has one cursor.
	if c.String() != s {
		return Cursor{}, bad
	}
	return c, nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
