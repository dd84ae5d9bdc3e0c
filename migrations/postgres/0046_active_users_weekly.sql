-- Retention by week without reading user-days (see migrations/sqlite/0046): who was active in
-- which local week, `week` being the day key of its Monday, kept from active_users_daily by
-- statement-level triggers through everything that writes that table. Text keys compare byte
-- by byte, as the other rollups' (0008).
CREATE TABLE active_users_weekly (
    project_id BIGINT NOT NULL,
    week       BIGINT NOT NULL,
    user_key   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project_id, week, user_key)
);

INSERT INTO active_users_weekly (project_id, week, user_key)
SELECT DISTINCT project_id, day - mod(mod(day / 86400000, 7) + 10, 7) * 86400000, user_key
FROM active_users_daily;

-- Upserts sorted, so replicas committing together take row locks in the same order.
CREATE FUNCTION active_users_weekly_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO active_users_weekly (project_id, week, user_key)
    SELECT DISTINCT project_id, day - mod(mod(day / 86400000, 7) + 10, 7) * 86400000, user_key
    FROM new_rows ORDER BY 1, 2, 3
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER active_users_weekly_add AFTER INSERT ON active_users_daily
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION active_users_weekly_add();

-- A user leaves a week when their last day of it goes: seven primary-key probes each.
CREATE FUNCTION active_users_weekly_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM active_users_weekly w
    USING (SELECT DISTINCT project_id,
                  day - mod(mod(day / 86400000, 7) + 10, 7) * 86400000 AS week, user_key
           FROM old_rows) o
    WHERE w.project_id = o.project_id AND w.week = o.week AND w.user_key = o.user_key
      AND NOT EXISTS (
          SELECT 1 FROM active_users_daily a
          WHERE a.project_id = o.project_id AND a.user_key = o.user_key
            AND a.day = ANY (ARRAY[o.week, o.week + 86400000, o.week + 2 * 86400000,
                                   o.week + 3 * 86400000, o.week + 4 * 86400000,
                                   o.week + 5 * 86400000, o.week + 6 * 86400000]));
    RETURN NULL;
END $$;

CREATE TRIGGER active_users_weekly_remove AFTER DELETE ON active_users_daily
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION active_users_weekly_remove();
