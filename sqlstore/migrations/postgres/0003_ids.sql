-- Tidings schema 3 on PostgreSQL. SQLite's 0003 recreates every table so
-- that ids are never given again; identity columns never gave one again,
-- so here only the new columns are added, as in SQLite's 0003: tokens
-- remember when they were last used, and scheduled messages remember who
-- sent them with which right, so that a message fires only if its sender
-- may still send it (see SQLite's 0003 for the rights).

ALTER TABLE tokens ADD COLUMN last_used_at BIGINT; -- NULL: never used; written at most once a minute

-- No foreign keys: like via_project and via_actor they are checked when
-- the message fires, and ids are never given again.
ALTER TABLE pending ADD COLUMN sender_id BIGINT;       -- NULL: the system
ALTER TABLE pending ADD COLUMN sender_token_id BIGINT; -- NULL: not sent with a token
ALTER TABLE pending ADD COLUMN sender_right TEXT;
-- Schema 2 kept no sender; the rules are SQLite's 0003's.
UPDATE pending p SET
	sender_id = COALESCE(p.via_actor, (SELECT e.actor_id FROM events e WHERE e.id = p.event_id)),
	sender_right = CASE WHEN p.via_actor IS NOT NULL THEN 'user' ELSE 'anyone' END;
ALTER TABLE pending ALTER COLUMN sender_right SET NOT NULL;
ALTER TABLE pending ADD CHECK (sender_right IN ('anyone', 'admin', 'user'));
ALTER TABLE pending ADD CHECK (sender_id IS NOT NULL OR sender_right = 'anyone');
