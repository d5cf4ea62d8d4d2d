package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tidings/tidings"
)

var _ tidings.MessageService = (*DB)(nil)

// insertEvent stores ev, valid until expiresAt, and sets its ID and time.
func (tx *Tx) insertEvent(ev *tidings.Event, expiresAt time.Time) error {
	var itemID, itemName, itemURL, projectID, projectName, actorID, actorLogin, actorName, details any
	if ev.Item != nil {
		itemName, itemURL = ev.Item.Name, nullString(ev.Item.URL)
		if ev.Item.ID != 0 {
			itemID = ev.Item.ID
		}
	}
	if ev.Project != nil {
		projectID, projectName = ev.Project.ID, ev.Project.Name
	}
	if ev.Actor != nil {
		actorID, actorLogin, actorName = ev.Actor.ID, ev.Actor.Login, ev.Actor.Name
	}
	if len(ev.Details) > 0 {
		b, err := json.Marshal(ev.Details)
		if err != nil {
			return err
		}
		details = string(b)
	}
	ev.CreatedAt = tx.now
	// The id is known at once, the row goes in with the batch's others in
	// one INSERT before the commit.
	id, err := tx.batch.ids.take(tx)
	if err != nil {
		return err
	}
	ev.ID = id
	tx.newEvents = append(tx.newEvents, id, ev.Process, ev.Module, itemID, itemName, itemURL, projectID, projectName,
		actorID, actorLogin, actorName, ev.Text, details, ev.Urgent, ms(ev.CreatedAt), ms(expiresAt))
	if tx.events == nil {
		tx.events = make(map[int64]*eventMessage)
	}
	tx.events[ev.ID] = newEventMessage(ev, ms(expiresAt))
	return nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// deliver numbers the event's message for each user and stores it. A user
// who no longer exists is skipped.
func (tx *Tx) deliver(eventID int64, userIDs []int64, validFrom, validUntil time.Time) error {
	for _, id := range userIDs {
		if err := tx.deliverOne(eventID, id, validFrom, validUntil, ""); err != nil {
			return err
		}
	}
	return nil
}

// delivery is a message that gets its number when its batch commits.
type delivery struct {
	userID, eventID       int64
	validFrom, validUntil time.Time
	text                  string
	event                 *eventMessage // nil: not in memory (inserted by an earlier transaction)
}

// deliverOne gives userID's message the next number of their sequence, at
// the end of the batch: see numberDeliveries.
func (tx *Tx) deliverOne(eventID, userID int64, validFrom, validUntil time.Time, text string) error {
	tx.deliveries = append(tx.deliveries, delivery{userID, eventID, validFrom, validUntil, text, tx.events[eventID]})
	return nil
}

// numberDeliveries numbers and stores the messages of a batch's jobs that
// succeeded, last thing before the commit. Each recipient's head row is
// raised once, and stays locked by the update until the commit, so numbers
// commit in order: nobody can read number 11 before number 10 is there, on
// this node or another. The rows are locked in ascending user id, and only
// at the end: two nodes' batches to the same people wait for each other
// briefly instead of each holding an inbox the other needs. A user who no
// longer exists is skipped. The messages go in with as few INSERTs as the
// size of the batch allows. It returns what each user got.
func (tx *Tx) numberDeliveries(list []delivery) ([]committed, error) {
	slices.SortStableFunc(list, func(a, b delivery) int { return cmp.Compare(a.userID, b.userID) })
	var out []committed
	rows := make([]any, 0, messageColumns*len(list))
	for i := 0; i < len(list); {
		userID, n := list[i].userID, 1
		for i+n < len(list) && list[i+n].userID == userID {
			n++
		}
		mine := list[i : i+n]
		i += n
		head, err := tx.raiseHead(userID, n)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("number messages: %w", err)
		}
		for k, d := range mine {
			seq := head - int64(n-1-k)
			rows = append(rows, userID, seq, d.eventID, ms(d.validFrom), ms(d.validUntil), nullString(d.text))
		}
		out = append(out, committed{userID: userID, head: head, list: mine})
	}
	if err := tx.insertRows(insertMessagesHead, messageColumns, rows); err != nil {
		return nil, fmt.Errorf("store messages: %w", err)
	}
	return out, nil
}

// raiseHead raises userID's inbox head by n and returns the new head, or
// sql.ErrNoRows if the user no longer exists. The writer being the SQLite
// database's only one until the data version says otherwise, a head its
// commits left is raised by a plain UPDATE: reading it back with RETURNING
// cost a lone publish about 6 µs more.
func (tx *Tx) raiseHead(userID int64, n int) (int64, error) {
	if head, ok := tx.batch.heads[userID]; ok {
		res, err := tx.exec(`UPDATE inboxes SET head = ? WHERE user_id = ?`, head+int64(n), userID)
		if err != nil {
			return 0, err
		}
		if changed, err := res.RowsAffected(); err != nil || changed == 0 {
			delete(tx.batch.heads, userID)
			if err == nil {
				err = sql.ErrNoRows
			}
			return 0, err
		}
		tx.batch.heads[userID] = head + int64(n)
		return head + int64(n), nil
	}
	var head int64
	if err := tx.queryRow(`UPDATE inboxes SET head = head + ? WHERE user_id = ? RETURNING head`, n, userID).Scan(&head); err != nil {
		return 0, err
	}
	if tx.batch.heads == nil {
		tx.batch.heads = make(map[int64]int64)
	}
	tx.batch.heads[userID] = head
	return head, nil
}

// storeBatch stores the events and numbers and stores the messages of a
// batch's jobs that succeeded, last thing before the commit, on SQLite
// (PostgreSQL's is storeBatchOnPostgres).
func (tx *Tx) storeBatch(events []any, list []delivery) ([]committed, error) {
	if len(events) > 0 {
		if err := tx.insertEvents(events); err != nil {
			return nil, fmt.Errorf("store events: %w", err)
		}
		if err := tx.batch.ids.record(tx); err != nil {
			return nil, err
		}
	}
	if len(list) == 0 {
		return nil, nil
	}
	return tx.numberDeliveries(list)
}

// deliveryUsers returns the users a batch stores messages for, each once.
func deliveryUsers(list []delivery) []int64 {
	var ids []int64
	for _, d := range list {
		ids = append(ids, d.userID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// storeBatchOnPostgres is storeBatch and the pg_notify of the batch's
// notices in one statement: each of its parts is a round trip to the
// server of its own otherwise, and the writer waits for each in turn.
// PostgreSQL runs the parts of a WITH together: the events go in, the
// recipients' head rows are locked in ascending user id (the locked CTE,
// wholly run before the UPDATE that needs its array) and raised, and the
// messages take their numbers from the raised heads. A user who no longer
// exists has no head row, and gets no messages. The notices name every
// user the batch had messages for; a node woken for a user who got none
// reads nothing new.
func (tx *Tx) storeBatchOnPostgres(events []any, list []delivery, notices []string) ([]committed, error) {
	slices.SortStableFunc(list, func(a, b delivery) int { return cmp.Compare(a.userID, b.userID) })
	var users, counts []int64
	msgUsers, backs, eventIDs := make([]int64, len(list)), make([]int64, len(list)), make([]int64, len(list))
	froms, untils, texts := make([]int64, len(list)), make([]int64, len(list)), make([]*string, len(list))
	for i := 0; i < len(list); {
		userID, n := list[i].userID, 1
		for i+n < len(list) && list[i+n].userID == userID {
			n++
		}
		users, counts = append(users, userID), append(counts, int64(n))
		for k := range n {
			d := list[i+k]
			msgUsers[i+k], backs[i+k], eventIDs[i+k] = userID, int64(n-1-k), d.eventID
			froms[i+k], untils[i+k] = ms(d.validFrom), ms(d.validUntil)
			if d.text != "" {
				texts[i+k] = &d.text
			}
		}
		i += n
	}
	var query string
	var args []any
	if rows := len(events) / eventColumns; rows > 0 && rows <= maxInsertRows {
		query = "WITH ev AS (" + valuesQuery(insertEventsHead+" OVERRIDING SYSTEM VALUE", eventColumns, rows) + "),\n"
		args = append(args, events...)
	} else {
		if err := tx.insertEvents(events); err != nil { // more than one INSERT's worth
			return nil, fmt.Errorf("store events: %w", err)
		}
		query = "WITH "
	}
	args = append(args, users, users, counts, msgUsers, backs, eventIDs, froms, untils, texts, NotifyChannel, notices)
	rows, err := tx.query(query+storeBatchPostgresTail, args...)
	if err != nil {
		return nil, fmt.Errorf("store the batch: %w", err)
	}
	defer rows.Close()
	heads := make(map[int64]int64, len(users))
	for rows.Next() {
		var userID, head sql.NullInt64
		if err := rows.Scan(&userID, &head); err != nil {
			return nil, err
		}
		if userID.Valid {
			heads[userID.Int64] = head.Int64
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store the batch: %w", err)
	}
	var out []committed
	for i, j := 0, 0; j < len(users); j++ {
		n := int(counts[j])
		if head, ok := heads[users[j]]; ok {
			out = append(out, committed{userID: users[j], head: head, list: list[i : i+n]})
		}
		i += n
	}
	return out, nil
}

// storeBatchPostgresTail is storeBatchOnPostgres's statement after the
// events' INSERT. Its one row, or a row per user given messages, comes
// from the notices' CTE, which is run whether or not anyone got messages.
const storeBatchPostgresTail = `locked AS MATERIALIZED (
	SELECT user_id FROM inboxes WHERE user_id = ANY (?::bigint[]) ORDER BY user_id FOR UPDATE),
raised AS (
	UPDATE inboxes SET head = inboxes.head + c.n
	FROM unnest(?::bigint[], ?::bigint[]) AS c (user_id, n)
	WHERE inboxes.user_id = c.user_id AND inboxes.user_id = ANY ((SELECT array_agg(user_id) FROM locked)::bigint[])
	RETURNING inboxes.user_id, inboxes.head),
stored AS (
	INSERT INTO messages (user_id, seq, event_id, valid_from, valid_until, text)
	SELECT d.user_id, raised.head - d.back, d.event_id, d.valid_from, d.valid_until, d.text
	FROM unnest(?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::text[])
		AS d (user_id, back, event_id, valid_from, valid_until, text)
	JOIN raised ON raised.user_id = d.user_id),
notified AS (SELECT pg_notify(?, p) FROM unnest(?::text[]) AS p)
SELECT raised.user_id, raised.head FROM (SELECT count(*) FROM notified) AS n LEFT JOIN raised ON true`

// The multi-row INSERTs of a batch, up to their VALUES, and how many values
// a row of each takes.
const (
	insertMessagesHead = `INSERT INTO messages (user_id, seq, event_id, valid_from, valid_until, text)`
	messageColumns     = 6
	insertEventsHead   = `INSERT INTO events (id, process, module, item_id, item_name, item_url, project_id, project_name,
		actor_id, actor_login, actor_name, text, details, urgent, created_at, expires_at)`
	eventColumns = 16
)

// insertEvents stores the events a batch's jobs made, with the ids they
// were given.
func (tx *Tx) insertEvents(rows []any) error {
	head := insertEventsHead
	if tx.db.dialect == postgresDialect {
		head += ` OVERRIDING SYSTEM VALUE` // the ids come from the identity's own sequence
	}
	return tx.insertRows(head, eventColumns, rows)
}

// maxInsertRows bounds the rows of one multi-row INSERT, and so the number
// of such statements the store prepares (one per row count).
const maxInsertRows = 64

// insertRows runs head (an INSERT up to its VALUES) for rows, columns values
// each, in as few statements as maxInsertRows allows.
func (tx *Tx) insertRows(head string, columns int, rows []any) error {
	for len(rows) > 0 {
		n := min(len(rows)/columns, maxInsertRows)
		if _, err := tx.exec(valuesQuery(head, columns, n), rows[:n*columns]...); err != nil {
			return err
		}
		rows = rows[n*columns:]
	}
	return nil
}

// valuesQuery returns head with n rows of columns marks, made once.
func valuesQuery(head string, columns, n int) string {
	key := valuesKey{head, n}
	if q, ok := valuesQueries.Load(key); ok {
		return q.(string)
	}
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", columns), ", ") + ")"
	q := head + " VALUES " + strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
	valuesQueries.Store(key, q)
	return q
}

type valuesKey struct {
	head string
	n    int
}

var valuesQueries sync.Map // valuesKey → string

// wants reports whether userID's settings let a message of kind about
// projectID (0: none) through.
func (tx *Tx) wants(userID int64, kind string, projectID int64) (bool, error) {
	var records, presence, reminders, messages, muted bool
	err := tx.queryRow(`SELECT notify_records, notify_presence, notify_reminders, notify_messages,
		EXISTS (SELECT 1 FROM muted_projects WHERE user_id = users.id AND project_id = ?)
		FROM users WHERE id = ?`, projectID, userID).Scan(&records, &presence, &reminders, &messages, &muted)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	s := tidings.Settings{Records: records, Presence: presence, Reminders: reminders, Messages: messages}
	if muted {
		s.MutedProjects = []int64{projectID}
	}
	return s.Wants(kind, projectID), nil
}

// emit stores an event of the groupware and delivers it now, for the message
// TTL, to those of the candidates whose settings want it.
func (tx *Tx) emit(ev *tidings.Event, candidates []int64) error {
	return tx.emitPersonal(ev, candidates, nil)
}

const findMessagesQuery = `SELECT i.head, m.seq, m.event_id, m.valid_from, m.valid_until, COALESCE(m.text, e.text),
	e.process, e.module, e.item_id, e.item_name, e.item_url, e.project_id, e.project_name,
	e.actor_id, e.actor_login, e.actor_name, e.details, e.urgent, e.created_at
FROM inboxes i
LEFT JOIN messages m ON m.user_id = i.user_id AND m.seq > ? AND m.valid_until > ?
LEFT JOIN events e ON e.id = m.event_id
WHERE i.user_id = ?
ORDER BY m.seq
LIMIT ?`

// FindMessages reads, in one statement and so from one snapshot, the user's
// head and the valid messages after since. Messages are numbered without
// gaps, so every number between since and the last one returned (or the head)
// that is not returned expired unseen: that count is missed. A message is
// read only together with its event: one whose event the janitor took has
// expired by the janitor's clock, and counts as missed rather than arriving
// blank.
func (db *DB) FindMessages(ctx context.Context, userID int64, since *tidings.Cursor, limit int) (*tidings.MessageBatch, error) {
	after, limit, err := db.readBounds(userID, since, limit)
	if err != nil {
		return nil, err
	}
	if since != nil {
		// The messages the commit that woke the caller just stored are
		// most likely in memory still.
		batch, ok, err := db.inboxes.read(db.epoch, userID, after, ms(db.Now()), limit)
		if err != nil {
			return nil, err
		}
		if ok {
			db.inboxReads.Add(1)
			return batch, nil
		}
	}
	return db.findAndSeed(ctx, userID, since, limit)
}

// findAndSeed is FindMessages from the database, which leaves an empty
// inbox at the head it found: an idle client's next poll comes from there,
// and the inbox answers it without the database. It is a function of its
// own so that FindMessages' frame stays small: a delivery answered from
// memory runs on a goroutine with a small stack, and a larger frame made
// each of them grow it.
func (db *DB) findAndSeed(ctx context.Context, userID int64, since *tidings.Cursor, limit int) (*tidings.MessageBatch, error) {
	mark := db.inboxes.mark(userID)
	batch, head, err := db.findStoredMessages(ctx, userID, since, limit)
	if err != nil {
		return nil, err
	}
	if db.storedRead != nil {
		db.storedRead()
	}
	db.inboxes.seed(userID, head, mark)
	return batch, nil
}

// readBounds checks a read's cursor and returns the number it reads after
// and its limit, bounded by tidings.MaxBatch.
func (db *DB) readBounds(userID int64, since *tidings.Cursor, limit int) (after int64, bounded int, err error) {
	if limit <= 0 || limit > tidings.MaxBatch {
		limit = tidings.MaxBatch
	}
	if since != nil {
		if since.Epoch != db.epoch || since.UserID != userID {
			return 0, 0, invalidCursor()
		}
		after = since.Seq
	}
	return after, limit, nil
}

// findStoredMessages is FindMessages from the database, for a cursor and
// limit that readBounds checked. It returns the user's head too.
func (db *DB) findStoredMessages(ctx context.Context, userID int64, since *tidings.Cursor, limit int) (_ *tidings.MessageBatch, head int64, err error) {
	var after int64
	if since != nil {
		after = since.Seq
	}
	stmt, err := db.rstmt(findMessagesQuery)
	if err != nil {
		return nil, 0, err
	}
	rows, err := stmt.QueryContext(ctx, after, ms(db.Now()), userID, limit+1)
	if err != nil {
		return nil, 0, db.translate(err)
	}
	defer rows.Close()

	batch := &tidings.MessageBatch{Messages: []*tidings.Message{}}
	found, size, rowsRead := false, 0, 0
	for rows.Next() {
		found = true
		var (
			seq, eventID, itemID, projectID, actorID              sql.NullInt64
			validFrom, validUntil, createdAt                      sql.NullInt64
			text, process, module, itemName, itemURL, projectName sql.NullString
			actorLogin, actorName, details                        sql.NullString
			urgent                                                sql.NullBool
		)
		if err := rows.Scan(&head, &seq, &eventID, &validFrom, &validUntil, &text,
			&process, &module, &itemID, &itemName, &itemURL, &projectID, &projectName,
			&actorID, &actorLogin, &actorName, &details, &urgent, &createdAt); err != nil {
			return nil, 0, err
		}
		if !seq.Valid {
			break // the LEFT JOIN found no message
		}
		rowsRead++
		if !process.Valid {
			// The janitor took the event, by a clock a little ahead of
			// ours: the message has expired, and counts as missed.
			continue
		}
		if len(batch.Messages) == limit {
			batch.More = true
			break
		}
		m := &tidings.Message{
			Cursor:     tidings.Cursor{Epoch: db.epoch, UserID: userID, Seq: seq.Int64},
			Event:      eventID.Int64,
			Process:    process.String,
			Module:     module.String,
			Text:       text.String,
			Urgent:     urgent.Bool,
			CreatedAt:  fromMS(createdAt.Int64),
			ValidFrom:  fromMS(validFrom.Int64),
			ValidUntil: fromMS(validUntil.Int64),
			Details:    []tidings.Detail{},
		}
		m.ID = m.Cursor.String()
		if itemName.Valid {
			m.Item = &tidings.ItemRef{ID: itemID.Int64, Name: itemName.String, URL: itemURL.String}
		}
		if projectID.Valid {
			m.Project = &tidings.ProjectRef{ID: projectID.Int64, Name: projectName.String}
		}
		if actorID.Valid {
			m.Actor = &tidings.Actor{ID: actorID.Int64, Login: actorLogin.String, Name: actorName.String}
		}
		if details.Valid {
			if err := json.Unmarshal([]byte(details.String), &m.Details); err != nil {
				return nil, 0, fmt.Errorf("event %d details: %w", m.Event, err)
			}
		}
		// Bounded in bytes too: the first message goes even when it alone
		// is larger, so that a client is never stuck behind it.
		b, err := m.MarshalJSON()
		if err != nil {
			return nil, 0, fmt.Errorf("encode message %s: %w", m.ID, err)
		}
		if size += len(b) + 1; size > tidings.MaxBatchBytes-answerEnvelope && len(batch.Messages) > 0 {
			batch.More = true
			break
		}
		batch.Messages = append(batch.Messages, m)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, db.translate(err)
	}
	if rowsRead > limit {
		batch.More = true // also when skipped rows made the batch short
	}
	if !found {
		return nil, 0, tidings.Errorf(tidings.EUNAUTHORIZED, "The user no longer exists.")
	}
	if after > head {
		// Ahead of this database: it was restored from an older copy.
		return nil, 0, invalidCursor()
	}
	// An answer with messages ends at its last one, so that its cursor is
	// that message's id; messages that expired after it are reported as
	// missed by the next read.
	upTo := head
	if n := len(batch.Messages); n > 0 {
		upTo = batch.Messages[n-1].Cursor.Seq
	}
	batch.Cursor = tidings.Cursor{Epoch: db.epoch, UserID: userID, Seq: upTo}
	if since != nil {
		batch.Missed = upTo - after - int64(len(batch.Messages))
	}
	return batch, head, nil
}

// answerEnvelope is room left in a batch's byte bound for what an answer
// wraps around its messages (cursor, missed, more).
const answerEnvelope = 256

func invalidCursor() error {
	return &tidings.Error{Code: tidings.ECURSOR, Field: "since", Message: "The cursor belongs to another database or user; start over without one."}
}

var processes = map[string]bool{
	tidings.ProcessAdd: true, tidings.ProcessEdit: true, tidings.ProcessDelete: true,
	tidings.ProcessRemind: true, tidings.ProcessLogin: true, tidings.ProcessLogout: true,
	tidings.ProcessMessage: true,
}

const maxRecipients = 1000

// validatePublication checks a publication's own fields and fills defaults.
func (db *DB) validatePublication(pub *tidings.Publication, now time.Time) error {
	pub.Text = strings.TrimSpace(pub.Text)
	if pub.Text == "" {
		return tidings.Invalidf("text", "Text is required.")
	}
	if utf8.RuneCountInString(pub.Text) > 2000 {
		return tidings.Invalidf("text", "Text must have at most 2000 characters.")
	}
	if len(pub.Recipients) == 0 && pub.ProjectID == 0 {
		return tidings.Invalidf("recipients", "Name the recipients, a project, or both.")
	}
	if len(pub.Recipients) > maxRecipients {
		return tidings.Invalidf("recipients", "At most %d recipients; address a project instead.", maxRecipients)
	}
	if pub.ProjectID < 0 {
		return tidings.Invalidf("project", "Project %d is not valid.", pub.ProjectID)
	}
	if pub.Module == "" {
		pub.Module = "message"
	}
	if !tidings.IsIdentifier(pub.Module) || pub.Module[0] < 'a' || pub.Module[0] > 'z' {
		return tidings.Invalidf("module", "Module %q must be 1 to 64 characters of a-z, 0-9, '_', '.' and '-', starting with a letter.", pub.Module)
	}
	if pub.Process == "" {
		pub.Process = tidings.ProcessMessage
	}
	if !processes[pub.Process] {
		return tidings.Invalidf("process", "Process %q is not one of add, edit, delete, remind, login, logout, message.", pub.Process)
	}
	if pub.Item != nil {
		pub.Item.Name = strings.TrimSpace(pub.Item.Name)
		if pub.Item.Name == "" {
			return tidings.Invalidf("item.name", "An item needs a name.")
		}
		if utf8.RuneCountInString(pub.Item.Name) > 200 {
			return tidings.Invalidf("item.name", "Item name must have at most 200 characters.")
		}
		if err := validateLink(pub.Item.URL); err != nil {
			return err
		}
	}
	if pub.TTL == 0 {
		pub.TTL = db.MessageTTL
	}
	if pub.TTL < time.Second || pub.TTL > tidings.MaxPublishTTL {
		return tidings.Invalidf("ttl", "TTL must be between 1s and %s.", "24h")
	}
	if pub.ValidFrom.IsZero() {
		pub.ValidFrom = now
	}
	pub.ValidFrom = pub.ValidFrom.UTC().Truncate(time.Millisecond)
	if pub.ValidFrom.After(now.Add(tidings.MaxPublishAhead)) {
		return tidings.Invalidf("valid_from", "valid_from must be at most 30 days ahead.")
	}
	if !pub.ValidFrom.Add(pub.TTL).After(now) {
		return tidings.Invalidf("valid_from", "The message would have expired already: valid_from plus ttl lies in the past.")
	}
	return nil
}

// validateLink accepts an absolute http(s) URL or a path on this server, so
// that no link in anybody's page can run script.
func validateLink(link string) error {
	if link == "" {
		return nil
	}
	if len(link) > 2000 {
		return tidings.Invalidf("item.url", "The item's URL must have at most 2000 characters.")
	}
	u, err := url.Parse(link)
	ok := err == nil
	switch {
	case !ok:
	case u.Scheme == "http" || u.Scheme == "https":
		ok = u.Host != ""
	case u.Scheme == "" && u.Host == "":
		ok = strings.HasPrefix(link, "/") && !strings.HasPrefix(link, "//") && !strings.HasPrefix(link, "/\\")
	default:
		ok = false
	}
	if !ok {
		return tidings.Invalidf("item.url", "The item's URL must be an http or https address or a path starting with /.")
	}
	return nil
}

// publishTarget is a resolved recipient and the access to re-check for a
// message that fires later.
type publishTarget struct {
	userID     int64
	viaProject int64 // 0: not addressed through a project
	viaActor   int64 // 0: no shared project needed

	// settled: wanted says whether the recipient's settings let the
	// message through, read together with the login.
	settled, wanted bool
}

// PublishMessage stores a publication: at once for its recipients if it is
// valid now, else aside until it is due.
func (db *DB) PublishMessage(ctx context.Context, pub *tidings.Publication) (*tidings.PublishResult, error) {
	auth := tidings.AuthFromContext(ctx)
	if auth == nil || auth.User == nil {
		return nil, tidings.Errorf(tidings.EUNAUTHORIZED, "Log in to publish messages.")
	}
	if err := db.validatePublication(pub, db.Now()); err != nil {
		return nil, err
	}
	actor := auth.User
	anyone := auth.MayAddressAnyone()
	right := sendRight(auth)
	var tokenID int64
	if auth.Token != nil {
		tokenID = auth.Token.ID
	}
	var res *tidings.PublishResult
	err := db.writeSharing(ctx, func(tx *Tx) error {
		targets, project, err := tx.resolvePublication(pub, actor, anyone)
		if err != nil {
			return err
		}
		validUntil := pub.ValidFrom.Add(pub.TTL)
		ev := &tidings.Event{
			Process: pub.Process,
			Module:  pub.Module,
			Project: project,
			Actor:   &tidings.Actor{ID: actor.ID, Login: actor.Login, Name: actor.Name},
			Text:    pub.Text,
			Urgent:  pub.Urgent,
		}
		if pub.Item != nil {
			item := *pub.Item
			ev.Item = &item
		}
		if err := tx.insertEvent(ev, validUntil); err != nil {
			return err
		}
		var projectID int64
		if project != nil {
			projectID = project.ID
		}
		due := !pub.ValidFrom.After(tx.now)
		stored := 0
		for _, t := range targets {
			ok := t.wanted
			if !t.settled {
				if ok, err = tx.wants(t.userID, tidings.KindMessages, projectID); err != nil {
					return err
				}
			}
			if !ok {
				continue
			}
			stored++
			if due {
				if err := tx.deliverOne(ev.ID, t.userID, pub.ValidFrom, validUntil, ""); err != nil {
					return err
				}
				continue
			}
			if _, err := tx.exec(`INSERT INTO pending (user_id, event_id, valid_from, valid_until, via_project, via_actor, sender_id, sender_token_id, sender_right)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				t.userID, ev.ID, ms(pub.ValidFrom), ms(validUntil), nullInt(t.viaProject), nullInt(t.viaActor),
				actor.ID, nullInt(tokenID), right); err != nil {
				return err
			}
			tx.scheduled = true
		}
		if !anyone {
			// Counts against the publish limit on every node.
			tx.published = append(tx.published, actor.ID)
		}
		res = &tidings.PublishResult{Event: ev.ID, Recipients: stored, ValidFrom: pub.ValidFrom, ValidUntil: validUntil}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// The rights a message can be sent under. A scheduled message keeps its
// sender's and is checked again when it fires (see firePending).
const (
	rightAnyone = "anyone" // a publish token or the system: anyone
	rightAdmin  = "admin"  // an administrator: anyone while still one
	rightUser   = "user"   // a plain user: people and projects they share
)

// sendRight returns the right a caller publishes under. It grants what
// MayAddressAnyone does, but tells apart an administrator, whose right
// ends with the role, from a publish token, whose right is the token's.
func sendRight(a *tidings.Auth) string {
	switch {
	case a.System, a.Token != nil && a.HasScope(tidings.ScopePublish):
		return rightAnyone
	case a.User != nil && a.User.Role == tidings.RoleAdmin:
		return rightAdmin
	}
	return rightUser
}

func nullInt(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

// resolvePublication turns logins and a project into recipients, applying
// who may address whom.
func (tx *Tx) resolvePublication(pub *tidings.Publication, actor *tidings.User, anyone bool) ([]publishTarget, *tidings.ProjectRef, error) {
	var targets []publishTarget
	index := map[int64]int{}
	add := func(t publishTarget) {
		if i, ok := index[t.userID]; ok {
			// Addressed by login as well as through the project: the login
			// is the stronger claim, so only the login's check remains.
			if t.viaProject == 0 {
				targets[i] = t
			}
			return
		}
		index[t.userID] = len(targets)
		targets = append(targets, t)
	}
	for _, login := range pub.Recipients {
		id, known, wanted, err := tx.recipientByLogin(login, pub.ProjectID)
		if err != nil {
			return nil, nil, err
		}
		if anyone {
			if !known {
				return nil, nil, tidings.Invalidf("recipients", "Unknown recipient %q.", login)
			}
			add(publishTarget{userID: id, settled: true, wanted: wanted})
			continue
		}
		if known && id != actor.ID {
			var shared int
			err := tx.queryRow(`SELECT COUNT(*) FROM members a JOIN members b ON b.project_id = a.project_id AND b.user_id = ? WHERE a.user_id = ?`, id, actor.ID).Scan(&shared)
			if err != nil {
				return nil, nil, err
			}
			known = shared > 0
		}
		if !known {
			return nil, nil, &tidings.Error{Code: tidings.EFORBIDDEN, Field: "recipients",
				Message: fmt.Sprintf("You may not send messages to %q: you share no project with such a user.", login)}
		}
		t := publishTarget{userID: id, settled: true, wanted: wanted}
		if id != actor.ID {
			t.viaActor = actor.ID
		}
		add(t)
	}
	var project *tidings.ProjectRef
	if pub.ProjectID != 0 {
		notFound := &tidings.Error{Code: tidings.ENOTFOUND, Field: "project", Message: fmt.Sprintf("Project %d was not found.", pub.ProjectID)}
		project = &tidings.ProjectRef{ID: pub.ProjectID}
		var member bool
		err := tx.queryRow(`SELECT name, EXISTS (SELECT 1 FROM members WHERE project_id = projects.id AND user_id = ?) FROM projects WHERE id = ?`,
			actor.ID, pub.ProjectID).Scan(&project.Name, &member)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && !member && !anyone) {
			return nil, nil, notFound
		}
		if err != nil {
			return nil, nil, err
		}
		members, err := tx.memberIDs(pub.ProjectID)
		if err != nil {
			return nil, nil, err
		}
		for _, id := range members {
			if id != actor.ID {
				add(publishTarget{userID: id, viaProject: pub.ProjectID})
			}
		}
	}
	return targets, project, nil
}

// userIDByLogin looks a login up; a malformed login is simply unknown.
func (tx *Tx) userIDByLogin(login string) (int64, bool, error) {
	if tidings.ValidateLogin(login) != nil {
		return 0, false, nil
	}
	var id int64
	err := tx.queryRow(`SELECT id FROM users WHERE login = ?`, login).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return id, err == nil, err
}

// recipientByLogin looks a recipient up by login, and reads at once whether
// their settings want a published message about projectID (0: none): one
// statement instead of two, per recipient of every publication. A malformed
// login is simply unknown.
func (tx *Tx) recipientByLogin(login string, projectID int64) (id int64, known, wanted bool, err error) {
	if tidings.ValidateLogin(login) != nil {
		return 0, false, false, nil
	}
	key := recipientKey{login, projectID}
	if r, ok := tx.batch.recipients[key]; ok {
		return r.id, r.known, r.wanted, nil
	}
	id, known, wanted, err = tx.lookUpRecipient(login, projectID)
	if err == nil {
		if tx.batch.recipients == nil {
			tx.batch.recipients = make(map[recipientKey]recipient)
		}
		tx.batch.recipients[key] = recipient{id, known, wanted}
	}
	return id, known, wanted, err
}

// recipientKey and recipient are a lookup of recipientByLogin and its
// answer. Jobs that change no user, setting or membership share them
// within a try of a batch: many publishes to the same people, committed
// together, look each of them up once. The next batches share
// them too (see keptRecipients).
type recipientKey struct {
	login     string
	projectID int64
}

type recipient struct {
	id            int64
	known, wanted bool
}

func (tx *Tx) lookUpRecipient(login string, projectID int64) (id int64, known, wanted bool, err error) {
	var messages, muted bool
	err = tx.queryRow(`SELECT id, notify_messages,
		EXISTS (SELECT 1 FROM muted_projects WHERE user_id = users.id AND project_id = ?)
		FROM users WHERE login = ?`, projectID, login).Scan(&id, &messages, &muted)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, false, nil
	}
	if err != nil {
		return 0, false, false, err
	}
	s := tidings.Settings{Messages: messages}
	if muted {
		s.MutedProjects = []int64{projectID}
	}
	return id, true, s.Wants(tidings.KindMessages, projectID), nil
}

// memberIDs returns the ids of a project's members.
func (tx *Tx) memberIDs(projectID int64) ([]int64, error) {
	rows, err := tx.query(`SELECT user_id FROM members WHERE project_id = ? ORDER BY user_id`, projectID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// CurrentCursor returns the cursor of the user's newest message: a page
// embeds it before it reads the data it shows.
func (db *DB) CurrentCursor(ctx context.Context, userID int64) (tidings.Cursor, error) {
	stmt, err := db.rstmt(`SELECT head FROM inboxes WHERE user_id = ?`)
	if err != nil {
		return tidings.Cursor{}, err
	}
	var head int64
	if err := stmt.QueryRowContext(ctx, userID).Scan(&head); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return tidings.Cursor{}, tidings.Errorf(tidings.EUNAUTHORIZED, "The user no longer exists.")
		}
		return tidings.Cursor{}, db.translate(err)
	}
	return tidings.Cursor{Epoch: db.epoch, UserID: userID, Seq: head}, nil
}
