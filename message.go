package tidings

import (
	"context"
	"encoding/json"
	"time"
	"unicode/utf8"
)

// Processes: what happened.
const (
	ProcessAdd     = "add"
	ProcessEdit    = "edit"
	ProcessDelete  = "delete"
	ProcessRemind  = "remind"
	ProcessLogin   = "login"
	ProcessLogout  = "logout"
	ProcessMessage = "message"
)

// Modules of the groupware; published messages may name their own.
const (
	ModuleProject     = "project"
	ModuleMember      = "member"
	ModuleTodo        = "todo"
	ModuleNote        = "note"
	ModuleAppointment = "appointment"
)

// Kinds of messages a user can switch off in their settings.
const (
	KindRecords   = "records"   // add, edit, delete
	KindPresence  = "presence"  // login, logout
	KindReminders = "reminders" // remind
	KindMessages  = "messages"  // published or user-written messages
)

// KindOf returns the settings kind a process belongs to.
func KindOf(process string) string {
	switch process {
	case ProcessLogin, ProcessLogout:
		return KindPresence
	case ProcessRemind:
		return KindReminders
	case ProcessMessage:
		return KindMessages
	default:
		return KindRecords
	}
}

// ItemRef names the item a message is about.
type ItemRef struct {
	ID   int64  `json:"id,omitempty"`
	Name string `json:"name"`
	URL  string `json:"url,omitempty"`
}

// ProjectRef names a project.
type ProjectRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// Actor names who did something.
type Actor struct {
	ID    int64  `json:"id"`
	Login string `json:"login"`
	Name  string `json:"name"`
}

// Detail is one field of an item that an event set or changed, with values
// readable by people (names, not ids; formatted dates).
type Detail struct {
	Field string  `json:"field"`
	Label string  `json:"label"`
	Old   *string `json:"old"`
	New   *string `json:"new"`
}

// Event is something that happened, once; it becomes one Message per
// recipient.
type Event struct {
	ID        int64
	Process   string
	Module    string
	Item      *ItemRef
	Project   *ProjectRef
	Actor     *Actor
	Text      string
	Details   []Detail
	Urgent    bool
	CreatedAt time.Time
}

// Message is an event as delivered to one recipient.
type Message struct {
	ID         string      `json:"id"`
	Event      int64       `json:"event"`
	Process    string      `json:"process"`
	Module     string      `json:"module"`
	Item       *ItemRef    `json:"item"`
	Project    *ProjectRef `json:"project"`
	Actor      *Actor      `json:"actor"`
	Text       string      `json:"text"`
	Details    []Detail    `json:"details"`
	Urgent     bool        `json:"urgent"`
	CreatedAt  time.Time   `json:"created_at"`
	ValidFrom  time.Time   `json:"valid_from"`
	ValidUntil time.Time   `json:"valid_until"`

	// Cursor is the message's position; ID is its string form.
	Cursor Cursor `json:"-"`
	// Committed is when this node committed the message, if it was kept
	// in memory since; zero for a message read from the database. It
	// measures commit-to-delivery more finely than ValidFrom, which is
	// whole milliseconds and taken before the commit.
	Committed time.Time `json:"-"`

	encoded []byte // the JSON, once MarshalJSON made it
}

// MarshalJSON encodes the message once and keeps the encoding, so that a
// batch can be measured in bytes and then sent without encoding it again.
// A message must not change once it was encoded.
func (m *Message) MarshalJSON() ([]byte, error) {
	if m.encoded == nil {
		type plain Message // the same fields, without this method
		b, err := json.Marshal((*plain)(m))
		if err != nil {
			return nil, err
		}
		m.encoded = b
	}
	return m.encoded, nil
}

// ClipDetail cuts a value for a message's details to MaxDetailLength
// characters, the last of them "…".
func ClipDetail(v string) string {
	if len(v) <= MaxDetailLength || utf8.RuneCountInString(v) <= MaxDetailLength {
		return v
	}
	n := 0
	for i := range v {
		if n == MaxDetailLength-1 {
			return v[:i] + "…"
		}
		n++
	}
	return v
}

// MessageBatch is one answer to a client: the messages after its cursor, the
// cursor to continue from, and how many messages expired unseen.
type MessageBatch struct {
	Messages []*Message `json:"messages"`
	Cursor   Cursor     `json:"cursor"`
	Missed   int64      `json:"missed"`
	More     bool       `json:"more,omitempty"`
}

// Publication is a message that a person or another application publishes.
type Publication struct {
	Recipients []string // logins
	ProjectID  int64    // 0: none
	Text       string
	Module     string
	Process    string
	Item       *ItemRef
	Urgent     bool
	ValidFrom  time.Time     // zero: now
	TTL        time.Duration // zero: the server's message TTL
}

// PublishResult says what a publication stored.
type PublishResult struct {
	Event      int64     `json:"event"`
	Recipients int       `json:"recipients"`
	ValidFrom  time.Time `json:"valid_from"`
	ValidUntil time.Time `json:"valid_until"`
}

// MessageService stores and reads messages.
type MessageService interface {
	// FindMessages returns up to limit messages of userID that became
	// deliverable after since and are still valid, oldest first. Without
	// since it returns the messages deliverable now. ECURSOR for a cursor of
	// another database or user, or one ahead of the sequence.
	FindMessages(ctx context.Context, userID int64, since *Cursor, limit int) (*MessageBatch, error)

	// PublishMessage stores a publication for its recipients. EINVALID for
	// bad fields or, for admins and publish tokens, unknown logins;
	// EFORBIDDEN for logins a plain user may not address; ENOTFOUND for a
	// project the caller does not belong to.
	PublishMessage(ctx context.Context, pub *Publication) (*PublishResult, error)

	// CurrentCursor returns a cursor after the user's newest message, for a
	// page that shows data read after it. EUNAUTHORIZED if the user is gone.
	CurrentCursor(ctx context.Context, userID int64) (Cursor, error)
}

// Signal is what a Hub tells a waiter; several may arrive as one.
type Signal uint8

const (
	// SignalWake: messages for the user committed.
	SignalWake Signal = 1 << iota

	// SignalAccess: some credential of the user ended — a session logged
	// out, a password changed, a token revoked, the user deleted. The
	// waiter checks its own credential again and ends if that one is gone.
	// A hub signals Access before the Wake of any later commit, so a waiter
	// that looks for Access before it sends never sends what was committed
	// after its credential ended.
	SignalAccess
)

// Hub wakes clients waiting for a user's messages. It knows nothing of the
// messages themselves: a woken client reads them from the MessageService.
type Hub interface {
	// Subscribe registers a waiter for userID. The hub calls notify on the
	// notifier's goroutine, outside its locks, so notify must not block; a
	// waiter parked without a goroutine of its own is woken by it. cancel
	// removes the waiter and may be called more than once.
	Subscribe(userID int64, notify func(Signal)) (cancel func())

	// Notify wakes every waiter of the given users.
	Notify(userIDs ...int64)

	// NotifyAccess tells every waiter of the given users that some of their
	// credentials ended.
	NotifyAccess(userIDs ...int64)

	// AccessChanges counts the calls of NotifyAccess. A request reads it
	// before it checks its credential; if it has changed once the request's
	// waiter is registered, a credential may have ended in between, unseen
	// by the waiter, and the request checks its own again.
	AccessChanges() uint64

	// AccessChangesFor counts what may have ended one user's credentials:
	// the calls of NotifyAccess that named them (the count may be shared
	// with other users) and whatever concerns everyone. A credential cache
	// believes an answer about the user while it stands still.
	AccessChangesFor(userID int64) uint64
}
