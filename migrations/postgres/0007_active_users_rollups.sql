-- DAU/WAU/MAU without scanning (see migrations/sqlite/0007): users per day, and each user's
-- latest active day, maintained from the rows ingest really adds to active_users_daily.
-- One statement-level trigger per ingest statement (a transition table of the new rows), its
-- upserts sorted so concurrent replicas take row locks in the same order.

CREATE TABLE active_users_days (
    project_id BIGINT NOT NULL,
    day        BIGINT NOT NULL,
    users      BIGINT NOT NULL,
    PRIMARY KEY (project_id, day)
);

CREATE TABLE users_last_seen (
    project_id BIGINT NOT NULL,
    user_key   TEXT   NOT NULL,
    last_day   BIGINT NOT NULL,
    PRIMARY KEY (project_id, user_key)
);

CREATE INDEX users_by_last_seen ON users_last_seen (project_id, last_day);

INSERT INTO active_users_days (project_id, day, users)
SELECT project_id, day, COUNT(*) FROM active_users_daily GROUP BY project_id, day;

INSERT INTO users_last_seen (project_id, user_key, last_day)
SELECT project_id, user_key, MAX(day) FROM active_users_daily GROUP BY project_id, user_key;

CREATE FUNCTION active_users_rollups() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO active_users_days (project_id, day, users)
    SELECT project_id, day, COUNT(*) FROM new_rows GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (project_id, day) DO UPDATE SET users = active_users_days.users + excluded.users;
    INSERT INTO users_last_seen (project_id, user_key, last_day)
    SELECT project_id, user_key, MAX(day) FROM new_rows GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (project_id, user_key) DO UPDATE SET last_day = excluded.last_day
    WHERE excluded.last_day > users_last_seen.last_day;
    RETURN NULL;
END $$;

CREATE TRIGGER active_users_rollups AFTER INSERT ON active_users_daily
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION active_users_rollups();
