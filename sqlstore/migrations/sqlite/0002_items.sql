-- Tidings schema 2: the items of projects — todos, notes, appointments and
-- their participants — and the reminders of appointments. Items go with their
-- project; a participant's reminder goes with their participation.

CREATE TABLE todos (
	id          INTEGER PRIMARY KEY,
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
CREATE INDEX todos_project ON todos (project_id);
CREATE INDEX todos_assignee ON todos (assignee_id);

CREATE TABLE notes (
	id         INTEGER PRIMARY KEY,
	project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	title      TEXT    NOT NULL,
	body       TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE INDEX notes_project ON notes (project_id);

CREATE TABLE appointments (
	id          INTEGER PRIMARY KEY,
	project_id  INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	title       TEXT    NOT NULL,
	description TEXT    NOT NULL,
	start_at    INTEGER NOT NULL,
	end_at      INTEGER NOT NULL CHECK (end_at > start_at),
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);
-- Lists are ordered by (start_at, id); the index holds the id as its rowid.
CREATE INDEX appointments_project ON appointments (project_id, start_at);

CREATE TABLE appointment_participants (
	appointment_id INTEGER NOT NULL REFERENCES appointments (id) ON DELETE CASCADE,
	user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	PRIMARY KEY (appointment_id, user_id)
) WITHOUT ROWID;
CREATE INDEX appointment_participants_user ON appointment_participants (user_id);

-- A participant's reminder that has not fired yet: at fire_at it becomes a
-- message valid until the appointment ends, after the recipient's access and
-- settings are checked again. A reminder that fired is deleted.
CREATE TABLE reminders (
	appointment_id INTEGER NOT NULL,
	user_id        INTEGER NOT NULL,
	fire_at        INTEGER NOT NULL,
	valid_until    INTEGER NOT NULL,
	PRIMARY KEY (appointment_id, user_id),
	FOREIGN KEY (appointment_id, user_id) REFERENCES appointment_participants (appointment_id, user_id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX reminders_due ON reminders (fire_at);
CREATE INDEX reminders_user ON reminders (user_id);
