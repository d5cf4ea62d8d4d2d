-- Tidings schema 4 on PostgreSQL. SQLite's 0004 takes AUTOINCREMENT off its
-- events, whose ids its writer gives; here events take theirs from their
-- identity sequence, as before, so nothing changes.

SELECT 1;
