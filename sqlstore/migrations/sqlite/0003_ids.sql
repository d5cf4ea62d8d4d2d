-- tidings: foreign_keys off
-- Tidings schema 3: ids are never given again. Without AUTOINCREMENT SQLite
-- hands out max(id)+1, so deleting the newest row of a table frees its id
-- for the next one, and a link such as /todos/42 in a message or a scheduled
-- message's project check could meet a different row. Every table whose id
-- is generated is recreated with AUTOINCREMENT, the way SQLite documents
-- for tables that take part in foreign keys (create new_X, copy, drop X,
-- rename; foreign keys are off for the migration and checked before it
-- commits). Columns, CHECKs, foreign keys and indexes stay as they were.
--
-- Also: tokens remember when they were last used, and scheduled messages
-- remember who sent them with which right, so that a message fires only if
-- its sender may still send it.

CREATE TABLE new_users (
	id                    INTEGER PRIMARY KEY AUTOINCREMENT,
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
INSERT INTO new_users (id, login, name, email, password_hash, role, time_zone, language,
	notify_records, notify_presence, notify_reminders, notify_messages, reminder_lead_minutes, created_at, updated_at)
SELECT id, login, name, email, password_hash, role, time_zone, language,
	notify_records, notify_presence, notify_reminders, notify_messages, reminder_lead_minutes, created_at, updated_at
FROM users;
DROP TABLE users;
ALTER TABLE new_users RENAME TO users;

CREATE TABLE new_tokens (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name         TEXT    NOT NULL,
	hash         BLOB    NOT NULL UNIQUE,   -- SHA-256 of the token
	scopes       TEXT    NOT NULL,          -- space-separated
	created_at   INTEGER NOT NULL,
	last_used_at INTEGER                    -- NULL: never used; written at most once a minute
);
INSERT INTO new_tokens (id, user_id, name, hash, scopes, created_at)
SELECT id, user_id, name, hash, scopes, created_at FROM tokens;
DROP TABLE tokens;
ALTER TABLE new_tokens RENAME TO tokens;
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE new_projects (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	name        TEXT    NOT NULL,
	description TEXT    NOT NULL,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);
INSERT INTO new_projects (id, name, description, created_at, updated_at)
SELECT id, name, description, created_at, updated_at FROM projects;
DROP TABLE projects;
ALTER TABLE new_projects RENAME TO projects;

-- Events are history: no foreign keys, so that deleting a project or user
-- leaves the messages about it readable.
CREATE TABLE new_events (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
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
INSERT INTO new_events (id, process, module, item_id, item_name, item_url, project_id, project_name,
	actor_id, actor_login, actor_name, text, details, urgent, created_at, expires_at)
SELECT id, process, module, item_id, item_name, item_url, project_id, project_name,
	actor_id, actor_login, actor_name, text, details, urgent, created_at, expires_at
FROM events;
DROP TABLE events;
ALTER TABLE new_events RENAME TO events;
CREATE INDEX events_expires ON events (expires_at);

-- A scheduled message is sent with a right, checked again when it fires:
-- 'anyone' (a publish token or the system), 'admin' (an administrator, who
-- falls back to the rule of plain users once no longer one), 'user' (a plain
-- user: a recipient addressed by login must still share a project with the
-- sender; one addressed through a project must still be a member of it, and
-- so must the sender). The sender and the token it was sent with must still
-- exist. No foreign keys: like via_project and via_actor they are checked
-- when the message fires, and ids are never given again.
CREATE TABLE new_pending (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	event_id        INTEGER NOT NULL,
	valid_from      INTEGER NOT NULL,
	valid_until     INTEGER NOT NULL,
	via_project     INTEGER,                -- recipient must still be a member
	via_actor       INTEGER,                -- recipient must still share a project with this user
	sender_id       INTEGER,                -- NULL: the system
	sender_token_id INTEGER,                -- NULL: not sent with a token
	sender_right    TEXT    NOT NULL CHECK (sender_right IN ('anyone', 'admin', 'user')),
	CHECK (sender_id IS NOT NULL OR sender_right = 'anyone')
);
-- Schema 2 kept no sender. A message addressed under a plain user's right
-- has via_actor, its sender; the others keep the rule they were stored
-- under, which did not look at the sender: 'anyone', sent by the event's
-- actor.
INSERT INTO new_pending (id, user_id, event_id, valid_from, valid_until, via_project, via_actor, sender_id, sender_right)
SELECT p.id, p.user_id, p.event_id, p.valid_from, p.valid_until, p.via_project, p.via_actor,
	COALESCE(p.via_actor, (SELECT e.actor_id FROM events e WHERE e.id = p.event_id)),
	CASE WHEN p.via_actor IS NOT NULL THEN 'user' ELSE 'anyone' END
FROM pending p;
DROP TABLE pending;
ALTER TABLE new_pending RENAME TO pending;
CREATE INDEX pending_due ON pending (valid_from);
CREATE INDEX pending_user ON pending (user_id);

CREATE TABLE new_todos (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	project_id  INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	title       TEXT    NOT NULL,
	description TEXT    NOT NULL,
	priority    TEXT    NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
	status      TEXT    NOT NULL CHECK (status IN ('open', 'done')),
	assignee_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
	due         TEXT,                       -- YYYY-MM-DD, NULL: none
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);
INSERT INTO new_todos (id, project_id, title, description, priority, status, assignee_id, due, created_at, updated_at)
SELECT id, project_id, title, description, priority, status, assignee_id, due, created_at, updated_at FROM todos;
DROP TABLE todos;
ALTER TABLE new_todos RENAME TO todos;
CREATE INDEX todos_project ON todos (project_id);
CREATE INDEX todos_assignee ON todos (assignee_id);

CREATE TABLE new_notes (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	title      TEXT    NOT NULL,
	body       TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
INSERT INTO new_notes (id, project_id, title, body, created_at, updated_at)
SELECT id, project_id, title, body, created_at, updated_at FROM notes;
DROP TABLE notes;
ALTER TABLE new_notes RENAME TO notes;
CREATE INDEX notes_project ON notes (project_id);

CREATE TABLE new_appointments (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	project_id  INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	title       TEXT    NOT NULL,
	description TEXT    NOT NULL,
	start_at    INTEGER NOT NULL,
	end_at      INTEGER NOT NULL CHECK (end_at > start_at),
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);
INSERT INTO new_appointments (id, project_id, title, description, start_at, end_at, created_at, updated_at)
SELECT id, project_id, title, description, start_at, end_at, created_at, updated_at FROM appointments;
DROP TABLE appointments;
ALTER TABLE new_appointments RENAME TO appointments;
-- Lists are ordered by (start_at, id); the index holds the id as its rowid.
CREATE INDEX appointments_project ON appointments (project_id, start_at);

-- The copies above started each sequence at the largest id still stored.
-- An id of a row deleted earlier may still be named elsewhere — by an
-- event (its actor, project or item), a message or a scheduled message —
-- so each sequence starts beyond those too. Ids named nowhere any more
-- cannot be known.
INSERT INTO sqlite_sequence (name, seq)
SELECT t.name, 0 FROM (SELECT 'users' AS name UNION ALL SELECT 'tokens' UNION ALL SELECT 'projects'
	UNION ALL SELECT 'events' UNION ALL SELECT 'pending' UNION ALL SELECT 'todos' UNION ALL SELECT 'notes'
	UNION ALL SELECT 'appointments') t
WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence s WHERE s.name = t.name);

UPDATE sqlite_sequence SET seq = MAX(seq,
	COALESCE((SELECT MAX(actor_id) FROM events), 0),
	COALESCE((SELECT MAX(item_id) FROM events WHERE module = 'member'), 0),
	COALESCE((SELECT MAX(via_actor) FROM pending), 0))
WHERE name = 'users';
UPDATE sqlite_sequence SET seq = MAX(seq,
	COALESCE((SELECT MAX(project_id) FROM events), 0),
	COALESCE((SELECT MAX(item_id) FROM events WHERE module = 'project'), 0),
	COALESCE((SELECT MAX(via_project) FROM pending), 0))
WHERE name = 'projects';
UPDATE sqlite_sequence SET seq = MAX(seq,
	COALESCE((SELECT MAX(event_id) FROM messages), 0),
	COALESCE((SELECT MAX(event_id) FROM pending), 0))
WHERE name = 'events';
UPDATE sqlite_sequence SET seq = MAX(seq, COALESCE((SELECT MAX(item_id) FROM events WHERE module = 'todo'), 0))
WHERE name = 'todos';
UPDATE sqlite_sequence SET seq = MAX(seq, COALESCE((SELECT MAX(item_id) FROM events WHERE module = 'note'), 0))
WHERE name = 'notes';
UPDATE sqlite_sequence SET seq = MAX(seq, COALESCE((SELECT MAX(item_id) FROM events WHERE module = 'appointment'), 0))
WHERE name = 'appointments';
