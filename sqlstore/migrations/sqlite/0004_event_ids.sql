-- Tidings schema 4: events without AUTOINCREMENT. The writer gives events
-- their ids itself (see eventids.go), so AUTOINCREMENT only cost every
-- INSERT of events a look through sqlite_sequence and every commit one
-- page more. What it guaranteed stays: meta's 'event_ids' holds an id at
-- least as large as any event ever had, raised by the writer ahead of the
-- ids it gives, in the commit that first uses them, and the writer counts
-- on from past it and past max(id). It starts at the largest id that
-- AUTOINCREMENT remembered or an event has (or that a writer of this
-- version recorded in an older schema). Columns and indexes stay as
-- they were.

INSERT INTO meta (key, value)
SELECT 'event_ids', CAST(MAX(
	COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
	COALESCE((SELECT MAX(id) FROM events), 0),
	COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'event_ids'), 0)) AS TEXT) WHERE true
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- Events are history: no foreign keys, so that deleting a project or user
-- leaves the messages about it readable.
CREATE TABLE new_events (
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
INSERT INTO new_events (id, process, module, item_id, item_name, item_url, project_id, project_name,
	actor_id, actor_login, actor_name, text, details, urgent, created_at, expires_at)
SELECT id, process, module, item_id, item_name, item_url, project_id, project_name,
	actor_id, actor_login, actor_name, text, details, urgent, created_at, expires_at
FROM events;
DROP TABLE events;
ALTER TABLE new_events RENAME TO events;
CREATE INDEX events_expires ON events (expires_at);
