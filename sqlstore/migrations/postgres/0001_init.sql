-- Tidings schema 1 on PostgreSQL: the same tables as SQLite's 0001, with
-- PostgreSQL's types. Times are Unix milliseconds (UTC); ids come from
-- identity columns, which never give an id again.
--
-- Logins compare and sort by their bytes, as in SQLite, whatever the
-- database's collation.

CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

CREATE TABLE users (
	id                    BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	login                 TEXT    COLLATE "C" NOT NULL UNIQUE,
	name                  TEXT    NOT NULL,
	email                 TEXT    NOT NULL,
	password_hash         TEXT    NOT NULL,
	role                  TEXT    NOT NULL CHECK (role IN ('admin', 'user')),
	time_zone             TEXT    NOT NULL,
	language              TEXT    NOT NULL,
	notify_records        BOOLEAN NOT NULL DEFAULT TRUE,
	notify_presence       BOOLEAN NOT NULL DEFAULT TRUE,
	notify_reminders      BOOLEAN NOT NULL DEFAULT TRUE,
	notify_messages       BOOLEAN NOT NULL DEFAULT TRUE,
	reminder_lead_minutes INTEGER,          -- NULL: the server's default
	created_at            BIGINT  NOT NULL,
	updated_at            BIGINT  NOT NULL
);

-- A user's message sequence: head is the number of the last message that
-- became deliverable. It is raised in the transaction that stores the
-- message; the row stays locked until that commits, so numbers commit in
-- order and without gaps, from every node.
CREATE TABLE inboxes (
	user_id BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	head    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE sessions (
	hash         BYTEA  PRIMARY KEY,        -- SHA-256 of the cookie's secret
	user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at   BIGINT NOT NULL,
	last_used_at BIGINT NOT NULL,
	expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE tokens (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name       TEXT   NOT NULL,
	hash       BYTEA  NOT NULL UNIQUE,      -- SHA-256 of the token
	scopes     TEXT   NOT NULL,             -- space-separated
	created_at BIGINT NOT NULL
);
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE projects (
	id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name        TEXT   NOT NULL,
	description TEXT   NOT NULL,
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);

CREATE TABLE members (
	project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role       TEXT   NOT NULL CHECK (role IN ('owner', 'member')),
	created_at BIGINT NOT NULL,
	PRIMARY KEY (project_id, user_id)
);
CREATE INDEX members_user ON members (user_id, project_id);

CREATE TABLE muted_projects (
	user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	PRIMARY KEY (user_id, project_id)
);
CREATE INDEX muted_projects_project ON muted_projects (project_id);

-- Events are what happened, once. They are history: no foreign keys, so that
-- deleting a project or user leaves the messages about it readable.
-- expires_at is the latest valid_until of the event's messages; the janitor
-- deletes an event after all of them.
CREATE TABLE events (
	id           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	process      TEXT    NOT NULL,
	module       TEXT    NOT NULL,
	item_id      BIGINT,
	item_name    TEXT,                      -- NULL: no item
	item_url     TEXT,
	project_id   BIGINT,
	project_name TEXT,
	actor_id     BIGINT,
	actor_login  TEXT,
	actor_name   TEXT,
	text         TEXT    NOT NULL,
	details      TEXT,                      -- JSON array, NULL when empty
	urgent       BOOLEAN NOT NULL,
	created_at   BIGINT  NOT NULL,
	expires_at   BIGINT  NOT NULL
);
CREATE INDEX events_expires ON events (expires_at);

-- Deliverable messages, numbered per user in the order they became
-- deliverable.
CREATE TABLE messages (
	user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	seq         BIGINT NOT NULL,
	event_id    BIGINT NOT NULL,
	valid_from  BIGINT NOT NULL,
	valid_until BIGINT NOT NULL,
	text        TEXT,                       -- NULL: the event's text
	PRIMARY KEY (user_id, seq)
);
CREATE INDEX messages_valid_until ON messages (valid_until);

-- Messages that are not due yet. They get their number when they fire,
-- after their recipient's access is checked again.
CREATE TABLE pending (
	id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	event_id    BIGINT NOT NULL,
	valid_from  BIGINT NOT NULL,
	valid_until BIGINT NOT NULL,
	via_project BIGINT,                     -- recipient must still be a member
	via_actor   BIGINT                      -- recipient must still share a project with this user
);
CREATE INDEX pending_due ON pending (valid_from);
CREATE INDEX pending_user ON pending (user_id);
