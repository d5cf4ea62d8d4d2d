-- Tidings schema 1: users, sessions, tokens, projects, members, settings and
-- the message engine. Times are Unix milliseconds (UTC), booleans 0 or 1.

CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

CREATE TABLE users (
	id                    INTEGER PRIMARY KEY,
	login                 TEXT    NOT NULL UNIQUE,
	name                  TEXT    NOT NULL,
	email                 TEXT    NOT NULL,
	password_hash         TEXT    NOT NULL,
	role                  TEXT    NOT NULL CHECK (role IN ('admin', 'user')),
	time_zone             TEXT    NOT NULL,
	language              TEXT    NOT NULL,
	notify_records        INTEGER NOT NULL DEFAULT 1,
	notify_presence       INTEGER NOT NULL DEFAULT 1,
	notify_reminders      INTEGER NOT NULL DEFAULT 1,
	notify_messages       INTEGER NOT NULL DEFAULT 1,
	reminder_lead_minutes INTEGER,          -- NULL: the server's default
	created_at            INTEGER NOT NULL,
	updated_at            INTEGER NOT NULL
);

-- A user's message sequence: head is the number of the last message that
-- became deliverable. It is raised in the transaction that stores the
-- message, so numbers commit in order and without gaps.
CREATE TABLE inboxes (
	user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	head    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE sessions (
	hash         BLOB    PRIMARY KEY,       -- SHA-256 of the cookie's secret
	user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at   INTEGER NOT NULL,
	last_used_at INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE tokens (
	id         INTEGER PRIMARY KEY,
	user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name       TEXT    NOT NULL,
	hash       BLOB    NOT NULL UNIQUE,     -- SHA-256 of the token
	scopes     TEXT    NOT NULL,            -- space-separated
	created_at INTEGER NOT NULL
);
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE projects (
	id          INTEGER PRIMARY KEY,
	name        TEXT    NOT NULL,
	description TEXT    NOT NULL,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);

CREATE TABLE members (
	project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role       TEXT    NOT NULL CHECK (role IN ('owner', 'member')),
	created_at INTEGER NOT NULL,
	PRIMARY KEY (project_id, user_id)
);
CREATE INDEX members_user ON members (user_id, project_id);

CREATE TABLE muted_projects (
	user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	PRIMARY KEY (user_id, project_id)
);
CREATE INDEX muted_projects_project ON muted_projects (project_id);

-- Events are what happened, once. They are history: no foreign keys, so that
-- deleting a project or user leaves the messages about it readable.
-- expires_at is the latest valid_until of the event's messages; the janitor
-- deletes an event after all of them.
CREATE TABLE events (
	id           INTEGER PRIMARY KEY,
	process      TEXT    NOT NULL,
	module       TEXT    NOT NULL,
	item_id      INTEGER,
	item_name    TEXT,                      -- NULL: no item
	item_url     TEXT,
	project_id   INTEGER,
	project_name TEXT,
	actor_id     INTEGER,
	actor_login  TEXT,
	actor_name   TEXT,
	text         TEXT    NOT NULL,
	details      TEXT,                      -- JSON array, NULL when empty
	urgent       INTEGER NOT NULL,
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL
);
CREATE INDEX events_expires ON events (expires_at);

-- Deliverable messages, numbered per user in the order they became
-- deliverable.
CREATE TABLE messages (
	user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	seq         INTEGER NOT NULL,
	event_id    INTEGER NOT NULL,
	valid_from  INTEGER NOT NULL,
	valid_until INTEGER NOT NULL,
	text        TEXT,                       -- NULL: the event's text
	PRIMARY KEY (user_id, seq)
) WITHOUT ROWID;
CREATE INDEX messages_valid_until ON messages (valid_until);

-- Messages that are not due yet. They get their number when they fire,
-- after their recipient's access is checked again.
CREATE TABLE pending (
	id          INTEGER PRIMARY KEY,
	user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	event_id    INTEGER NOT NULL,
	valid_from  INTEGER NOT NULL,
	valid_until INTEGER NOT NULL,
	via_project INTEGER,                    -- recipient must still be a member
	via_actor   INTEGER                     -- recipient must still share a project with this user
);
CREATE INDEX pending_due ON pending (valid_from);
CREATE INDEX pending_user ON pending (user_id);
