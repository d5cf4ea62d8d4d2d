package sqlstore

import (
	"database/sql"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/tidings/tidings"
)

// pageLimit clamps a requested page size.
func pageLimit(n int) int {
	switch {
	case n <= 0:
		return tidings.DefaultPageSize
	case n > tidings.MaxPageSize:
		return tidings.MaxPageSize
	}
	return n
}

// pageToken encodes the position after which the next page starts.
func pageToken(afterID int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("p1:" + strconv.FormatInt(afterID, 10)))
}

// parsePageToken decodes a token made by pageToken; "" is the first page.
func parsePageToken(token string) (int64, error) {
	if token == "" {
		return 0, nil
	}
	bad := tidings.Invalidf("after", "The page token is not valid.")
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, bad
	}
	s, ok := strings.CutPrefix(string(b), "p1:")
	if !ok {
		return 0, bad
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 0 {
		return 0, bad
	}
	return id, nil
}

// pageTokenAt encodes the position after which the next page of a list
// ordered by (key, id) starts.
func pageTokenAt(key, afterID int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("p2:" + strconv.FormatInt(key, 10) + ":" + strconv.FormatInt(afterID, 10)))
}

// parsePageTokenAt decodes a token made by pageTokenAt; ok is false for ""
// (the first page).
func parsePageTokenAt(token string) (key, afterID int64, ok bool, err error) {
	if token == "" {
		return 0, 0, false, nil
	}
	bad := tidings.Invalidf("after", "The page token is not valid.")
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, 0, false, bad
	}
	s, found := strings.CutPrefix(string(b), "p2:")
	if !found {
		return 0, 0, false, bad
	}
	k, i, found := strings.Cut(s, ":")
	if !found {
		return 0, 0, false, bad
	}
	if key, err = strconv.ParseInt(k, 10, 64); err != nil {
		return 0, 0, false, bad
	}
	if afterID, err = strconv.ParseInt(i, 10, 64); err != nil || afterID < 0 {
		return 0, 0, false, bad
	}
	return key, afterID, true, nil
}

// collectPage reads the rows of a list query that asked for limit+1 rows,
// closes them, and returns the first limit and, when there are more, the
// token of the next page, made by next from the last one returned.
func collectPage[T any](rows *sql.Rows, limit int, scan func(rowScanner) (T, error), next func(last T) string) ([]T, string, error) {
	defer rows.Close()
	items := make([]T, 0, min(limit, 64))
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, "", err
		}
		items = append(items, v)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if len(items) <= limit {
		return items, "", nil
	}
	items = items[:limit]
	return items, next(items[limit-1]), nil
}
