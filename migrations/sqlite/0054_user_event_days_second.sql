-- A funnel's repeated step (`view,view`) without reading events (docs/architecture/
-- analytics-at-scale.md, "Funnels"): the rollup knew a user's first and last occurrence of a
-- day, not the one after the first, so the next step's time came from that day's events.
-- `second_ts` is the day's second occurrence in the scan's order (timestamp, then seq); NULL
-- with one event means there is none, NULL with more means unknown (below), and readers then
-- go to the events as before. Ingest keeps it exact (store::funnels::upsert_sql). People's
-- rows and bots' (0052) alike.
ALTER TABLE user_event_days ADD COLUMN second_ts INTEGER;
ALTER TABLE user_event_days_bots ADD COLUMN second_ts INTEGER;

-- The rows already stored, from their events, in one pass (a sort of every event): only where
-- the day's events are all still there (raw-event retention may have cut a day the rollup
-- keeps), else left unknown.
CREATE TEMP TABLE event_day_seconds AS
SELECT project_id, name, user_key, day, bot, COUNT(*) AS events,
       MAX(CASE WHEN rn = 2 THEN timestamp END) AS second_ts
FROM (
    SELECT project_id, name, user_key, day, bot, timestamp,
           ROW_NUMBER() OVER (PARTITION BY project_id, name, user_key, day, bot
                              ORDER BY timestamp, seq) AS rn
    FROM (
        SELECT project_id,
               CASE WHEN type = 'track' THEN event ELSE '$' || type END AS name,
               COALESCE(user_id, anonymous_id) AS user_key,
               timestamp - ((timestamp % 86400000) + 86400000) % 86400000 AS day,
               COALESCE(instr(body, '"bot"') > 0
                        AND json_type(body, '$.context.bot') = 'true', 0) AS bot,
               timestamp, seq
        FROM events
        WHERE COALESCE(user_id, anonymous_id) IS NOT NULL
          AND (type <> 'track' OR event IS NOT NULL)
    )
)
GROUP BY 1, 2, 3, 4, 5
HAVING COUNT(*) > 1;

UPDATE user_event_days
SET second_ts = s.second_ts
FROM temp.event_day_seconds AS s
WHERE s.bot = 0 AND user_event_days.project_id = s.project_id
  AND user_event_days.name = s.name AND user_event_days.user_key = s.user_key
  AND user_event_days.day = s.day AND user_event_days.events = s.events;

UPDATE user_event_days_bots
SET second_ts = s.second_ts
FROM temp.event_day_seconds AS s
WHERE s.bot = 1 AND user_event_days_bots.project_id = s.project_id
  AND user_event_days_bots.name = s.name AND user_event_days_bots.user_key = s.user_key
  AND user_event_days_bots.day = s.day AND user_event_days_bots.events = s.events;

DROP TABLE temp.event_day_seconds;
