-- Tidings schema 2 on PostgreSQL: the items of projects — todos, notes,
-- appointments and their participants — and the reminders of appointments,
-- as in SQLite's 0002.

CREATE TABLE todos (
	id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	project_id  BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	title       TEXT   NOT NULL,
	description TEXT   NOT NULL,
	priority    TEXT   NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
	status      TEXT   NOT NULL CHECK (status IN ('open', 'done')),
	assignee_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
	due         TEXT,                       -- YYYY-MM-DD, NULL: none
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);
CREATE INDEX todos_project ON todos (project_id);
CREATE INDEX todos_assignee ON todos (assignee_id);

CREATE TABLE notes (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	title      TEXT   NOT NULL,
	body       TEXT   NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE INDEX notes_project ON notes (project_id);

CREATE TABLE appointments (
	id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	project_id  BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	title       TEXT   NOT NULL,
	description TEXT   NOT NULL,
	start_at    BIGINT NOT NULL,
	end_at      BIGINT NOT NULL CHECK (end_at > start_at),
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);
-- Lists are ordered by (start_at, id).
CREATE INDEX appointments_project ON appointments (project_id, start_at, id);

CREATE TABLE appointment_participants (
	appointment_id BIGINT NOT NULL REFERENCES appointments (id) ON DELETE CASCADE,
	user_id        BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	PRIMARY KEY (appointment_id, user_id)
);
CREATE INDEX appointment_participants_user ON appointment_participants (user_id);

-- A participant's reminder that has not fired yet: at fire_at it becomes a
-- message valid until the appointment ends, after the recipient's access and
-- settings are checked again. A reminder that fired is deleted.
CREATE TABLE reminders (
	appointment_id BIGINT NOT NULL,
	user_id        BIGINT NOT NULL,
	fire_at        BIGINT NOT NULL,
	valid_until    BIGINT NOT NULL,
	PRIMARY KEY (appointment_id, user_id),
	FOREIGN KEY (appointment_id, user_id) REFERENCES appointment_participants (appointment_id, user_id) ON DELETE CASCADE
);
CREATE INDEX reminders_due ON reminders (fire_at);
CREATE INDEX reminders_user ON reminders (user_id);
