-- A funnel's repeated step without reading events (see migrations/sqlite/0054): the day's
-- second occurrence in the scan's order; NULL with one event means none, NULL with more means
-- unknown (readers then go to the events). In the key's covering index with `events`, so the
-- next step's seeks stay index-only scans (0047). People's rows and bots' (0052) alike.
ALTER TABLE user_event_days ADD COLUMN second_ts BIGINT;
ALTER TABLE user_event_days_bots ADD COLUMN second_ts BIGINT;

CREATE TEMP TABLE event_day_seconds ON COMMIT DROP AS
SELECT project_id, name, user_key, day, bot, COUNT(*) AS events,
       MAX(CASE WHEN rn = 2 THEN timestamp END) AS second_ts
FROM (
    SELECT project_id, name, user_key, day, bot, timestamp,
           ROW_NUMBER() OVER (PARTITION BY project_id, name, user_key, day, bot
                              ORDER BY timestamp, seq) AS rn
    FROM (
        SELECT project_id,
               CASE WHEN type = 'track' THEN event ELSE '$' || type END COLLATE "C" AS name,
               COALESCE(user_id, anonymous_id) COLLATE "C" AS user_key,
               timestamp - mod(mod(timestamp, 86400000) + 86400000, 86400000) AS day,
               COALESCE(strpos(body, '"bot"') > 0
                        AND (body::jsonb #> '{context,bot}') = 'true'::jsonb, false) AS bot,
               timestamp, seq
        FROM events
        WHERE COALESCE(user_id, anonymous_id) IS NOT NULL
          AND (type <> 'track' OR event IS NOT NULL)
    ) AS named
) AS ranked
GROUP BY 1, 2, 3, 4, 5
HAVING COUNT(*) > 1;

UPDATE user_event_days AS u
SET second_ts = s.second_ts
FROM event_day_seconds AS s
WHERE NOT s.bot AND u.project_id = s.project_id AND u.name = s.name
  AND u.user_key = s.user_key AND u.day = s.day AND u.events = s.events;

UPDATE user_event_days_bots AS u
SET second_ts = s.second_ts
FROM event_day_seconds AS s
WHERE s.bot AND u.project_id = s.project_id AND u.name = s.name
  AND u.user_key = s.user_key AND u.day = s.day AND u.events = s.events;

ALTER TABLE user_event_days
    DROP CONSTRAINT user_event_days_pkey,
    ADD CONSTRAINT user_event_days_pkey PRIMARY KEY (project_id, name, user_key, day)
        INCLUDE (first_ts, last_ts, events, second_ts);
ALTER TABLE user_event_days_bots
    DROP CONSTRAINT user_event_days_bots_pkey,
    ADD CONSTRAINT user_event_days_bots_pkey PRIMARY KEY (project_id, name, user_key, day)
        INCLUDE (first_ts, last_ts, events, second_ts);
