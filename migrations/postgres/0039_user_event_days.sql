-- Funnels without scanning events (see migrations/sqlite/0039): per (project, event name,
-- user, UTC day) how many events and the first and last timestamps, maintained by ingest.
-- Text keys compare byte by byte, as the other rollups' (0008).
CREATE TABLE user_event_days (
    project_id BIGINT NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    user_key   TEXT COLLATE "C" NOT NULL,
    day        BIGINT NOT NULL,
    events     BIGINT NOT NULL,
    first_ts   BIGINT NOT NULL,
    last_ts    BIGINT NOT NULL,
    PRIMARY KEY (project_id, name, user_key, day)
);

INSERT INTO user_event_days (project_id, name, user_key, day, events, first_ts, last_ts)
SELECT project_id,
       CASE WHEN type = 'track' THEN event ELSE '$' || type END,
       COALESCE(user_id, anonymous_id),
       timestamp - mod(mod(timestamp, 86400000) + 86400000, 86400000),
       COUNT(*), MIN(timestamp), MAX(timestamp)
FROM events
WHERE COALESCE(user_id, anonymous_id) IS NOT NULL
  AND (type <> 'track' OR event IS NOT NULL)
  AND NOT COALESCE(strpos(body, '"bot"') > 0
                   AND (body::jsonb #> '{context,bot}') = 'true'::jsonb, false)
GROUP BY 1, 2, 3, 4;
