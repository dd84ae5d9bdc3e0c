-- DAU/WAU/MAU without scanning: counting the rows of active_users_daily for 30 days is a scan
-- of up to (users × 30) index entries, seconds at ten million events. Two rollups of it,
-- maintained by a trigger whenever ingest adds a (project, day, user) row that was not there:
--   active_users_days: users per day (the daily-active chart, DAU);
--   users_last_seen:   each user's latest active day (WAU/MAU: users whose latest day is
--                      inside the window, one index range count).

CREATE TABLE active_users_days (
    project_id INTEGER NOT NULL,
    day        INTEGER NOT NULL,  -- unix milliseconds at 00:00 UTC
    users      INTEGER NOT NULL,
    PRIMARY KEY (project_id, day)
) WITHOUT ROWID;

CREATE TABLE users_last_seen (
    project_id INTEGER NOT NULL,
    user_key   TEXT    NOT NULL,
    last_day   INTEGER NOT NULL,  -- unix milliseconds at 00:00 UTC
    PRIMARY KEY (project_id, user_key)
) WITHOUT ROWID;

CREATE INDEX users_by_last_seen ON users_last_seen (project_id, last_day);

INSERT INTO active_users_days (project_id, day, users)
SELECT project_id, day, COUNT(*) FROM active_users_daily GROUP BY project_id, day;

INSERT INTO users_last_seen (project_id, user_key, last_day)
SELECT project_id, user_key, MAX(day) FROM active_users_daily GROUP BY project_id, user_key;

-- INSERT OR IGNORE fires this only for rows it really inserted, so each (day, user) counts once.
CREATE TRIGGER active_users_rollups AFTER INSERT ON active_users_daily
BEGIN
    INSERT INTO active_users_days (project_id, day, users) VALUES (NEW.project_id, NEW.day, 1)
        ON CONFLICT (project_id, day) DO UPDATE SET users = users + 1;
    INSERT INTO users_last_seen (project_id, user_key, last_day)
        VALUES (NEW.project_id, NEW.user_key, NEW.day)
        ON CONFLICT (project_id, user_key) DO UPDATE SET last_day = excluded.last_day
        WHERE excluded.last_day > last_day;
END;
