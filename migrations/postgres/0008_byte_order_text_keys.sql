-- Text keys that ingest writes on every event compare byte by byte ("C"), as SQLite's BINARY
-- does: a message id, an event name or a user key has no linguistic order, and the server's
-- default collation (a libc locale, even C.UTF-8) costs a strcoll call per comparison in every
-- index insert. Measured in examples/loadgen/RESULTS.md (PostgreSQL CPU per event).
ALTER TABLE event_ids          ALTER COLUMN message_id TYPE TEXT COLLATE "C";
ALTER TABLE events             ALTER COLUMN message_id TYPE TEXT COLLATE "C";
ALTER TABLE events             ALTER COLUMN event      TYPE TEXT COLLATE "C";
ALTER TABLE rollups_hourly     ALTER COLUMN name       TYPE TEXT COLLATE "C";
ALTER TABLE active_users_daily ALTER COLUMN user_key   TYPE TEXT COLLATE "C";
ALTER TABLE users_last_seen    ALTER COLUMN user_key   TYPE TEXT COLLATE "C";
ALTER TABLE usage_monthly      ALTER COLUMN month      TYPE TEXT COLLATE "C";
