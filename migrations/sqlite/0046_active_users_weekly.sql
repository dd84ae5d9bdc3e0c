-- Retention by week without reading user-days (docs/architecture/analytics-at-scale.md,
-- "Retention"): who was active in which local week, one row per (project, week, user).
-- `week` is the day key (store::local_days) of the week's Monday: weeks are made of the
-- project's local days exactly as active_users_daily keys them, so this table is a function
-- of that one, kept by the triggers below through everything that writes it (ingest, the
-- time zone rebuild, person delete, retention).
CREATE TABLE active_users_weekly (
    project_id INTEGER NOT NULL,
    week       INTEGER NOT NULL,  -- the Monday's day key: its date's 00:00 UTC in unix ms
    user_key   TEXT    NOT NULL,
    PRIMARY KEY (project_id, week, user_key)
) WITHOUT ROWID;

-- Day key 0 (1970-01-01) is a Thursday, three days after a Monday; `+ 10` keeps the
-- remainder positive for keys before 1970.
INSERT INTO active_users_weekly (project_id, week, user_key)
SELECT DISTINCT project_id, day - (((day / 86400000) % 7 + 10) % 7) * 86400000, user_key
FROM active_users_daily;

-- Fires only for the rows really inserted (ingest uses INSERT OR IGNORE).
CREATE TRIGGER active_users_weekly_add AFTER INSERT ON active_users_daily
BEGIN
    INSERT INTO active_users_weekly (project_id, week, user_key)
    VALUES (NEW.project_id, NEW.day - (((NEW.day / 86400000) % 7 + 10) % 7) * 86400000,
            NEW.user_key)
    ON CONFLICT DO NOTHING;
END;

-- A user leaves a week when their last day of it goes: seven primary-key probes.
CREATE TRIGGER active_users_weekly_remove AFTER DELETE ON active_users_daily
BEGIN
    DELETE FROM active_users_weekly
    WHERE project_id = OLD.project_id AND user_key = OLD.user_key
      AND week = OLD.day - (((OLD.day / 86400000) % 7 + 10) % 7) * 86400000
      AND NOT EXISTS (
          SELECT 1 FROM active_users_daily a
          WHERE a.project_id = OLD.project_id AND a.user_key = OLD.user_key
            AND a.day IN (active_users_weekly.week,
                          active_users_weekly.week + 86400000,
                          active_users_weekly.week + 2 * 86400000,
                          active_users_weekly.week + 3 * 86400000,
                          active_users_weekly.week + 4 * 86400000,
                          active_users_weekly.week + 5 * 86400000,
                          active_users_weekly.week + 6 * 86400000));
END;
