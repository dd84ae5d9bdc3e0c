-- Funnels, retention and sessions with bots counted in, from rollups instead of a scan
-- (docs/architecture/analytics-at-scale.md, "Bots in the per-user rollups"): the bot events'
-- rows, of the same shape as the people's and kept apart, so the default views and ingest of
-- people's events are untouched. Ingest writes them for bot events only; person delete and
-- plan retention remove them like the people's rows; raw-event retention keeps them.
-- `include_bots=true` reads both: a key with people's and bot events is one user.

-- user_event_days (0039) of bot events.
CREATE TABLE user_event_days_bots (
    project_id BIGINT NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    user_key   TEXT COLLATE "C" NOT NULL,
    day        BIGINT NOT NULL,  -- unix milliseconds at 00:00 UTC
    events     BIGINT NOT NULL,
    first_ts   BIGINT NOT NULL,
    last_ts    BIGINT NOT NULL,
    PRIMARY KEY (project_id, name, user_key, day) INCLUDE (first_ts, last_ts)
);

-- active_users_daily (0006, local days since 0040) of bot events: retention's days; its weeks
-- are read from these days (no weekly table, no DAU/WAU/MAU counts: bots are not users there).
CREATE TABLE active_bots_daily (
    project_id BIGINT NOT NULL,
    day        BIGINT NOT NULL,  -- the project's local day key (store::local_days)
    user_key   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project_id, day, user_key)
);

-- user_sessions (0042) and sessions_hourly (0050) of bot events: sessions of a key's bot
-- events alone.
CREATE TABLE user_sessions_bots (
    project_id BIGINT NOT NULL,
    user_key   TEXT COLLATE "C" NOT NULL,
    start_ts   BIGINT NOT NULL,
    end_ts     BIGINT NOT NULL,
    events     BIGINT NOT NULL,
    PRIMARY KEY (project_id, user_key, start_ts)
);

CREATE INDEX user_sessions_bots_by_start ON user_sessions_bots (project_id, start_ts)
    INCLUDE (end_ts, events);

CREATE TABLE sessions_hourly_bots (
    project_id BIGINT NOT NULL,
    hour       BIGINT NOT NULL,
    sessions   BIGINT NOT NULL,
    total_ms   BIGINT NOT NULL,
    bounces    BIGINT NOT NULL,
    PRIMARY KEY (project_id, hour)
);

-- The bot events already stored: the same statements as 0039, 0042 and 0050, bots only.
INSERT INTO user_event_days_bots (project_id, name, user_key, day, events, first_ts, last_ts)
SELECT project_id,
       CASE WHEN type = 'track' THEN event ELSE '$' || type END,
       COALESCE(user_id, anonymous_id),
       timestamp - mod(mod(timestamp, 86400000) + 86400000, 86400000),
       COUNT(*), MIN(timestamp), MAX(timestamp)
FROM events
WHERE COALESCE(user_id, anonymous_id) IS NOT NULL
  AND (type <> 'track' OR event IS NOT NULL)
  AND COALESCE(strpos(body, '"bot"') > 0
               AND (body::jsonb #> '{context,bot}') = 'true'::jsonb, false)
GROUP BY 1, 2, 3, 4;

INSERT INTO user_sessions_bots (project_id, user_key, start_ts, end_ts, events)
SELECT project_id, user_key, MIN(timestamp), MAX(timestamp), COUNT(*)
FROM (
    SELECT project_id, user_key, timestamp,
           SUM(opens) OVER (PARTITION BY project_id, user_key ORDER BY timestamp
                            ROWS UNBOUNDED PRECEDING) AS n
    FROM (
        SELECT project_id, user_key, timestamp,
               CASE WHEN timestamp - LAG(timestamp) OVER (PARTITION BY project_id, user_key
                                                          ORDER BY timestamp) <= 1800000
                    THEN 0 ELSE 1 END AS opens
        FROM (
            SELECT project_id, COALESCE(user_id, anonymous_id) COLLATE "C" AS user_key,
                   timestamp
            FROM events
            WHERE COALESCE(user_id, anonymous_id) IS NOT NULL
              AND COALESCE(strpos(body, '"bot"') > 0
                           AND (body::jsonb #> '{context,bot}') = 'true'::jsonb, false)
        ) AS keyed
    ) AS opened
) AS numbered
GROUP BY project_id, user_key, n;

INSERT INTO sessions_hourly_bots (project_id, hour, sessions, total_ms, bounces)
SELECT project_id, start_ts - ((start_ts % 3600000) + 3600000) % 3600000,
       COUNT(*), SUM(end_ts - start_ts), SUM(CASE WHEN events = 1 THEN 1 ELSE 0 END)
FROM user_sessions_bots
GROUP BY 1, 2;

-- Local days are keyed in UTC here, as on SQLite (whose SQL has no tz database), and a
-- project in another zone is re-keyed by the background day rebuild (as after 0040), which
-- recounts people's and bots' days from the events.
INSERT INTO active_bots_daily (project_id, day, user_key)
SELECT DISTINCT project_id, timestamp - mod(mod(timestamp, 86400000) + 86400000, 86400000),
       COALESCE(user_id, anonymous_id)
FROM events
WHERE COALESCE(user_id, anonymous_id) IS NOT NULL
  AND COALESCE(strpos(body, '"bot"') > 0
               AND (body::jsonb #> '{context,bot}') = 'true'::jsonb, false);

UPDATE projects SET days_rebuild_next = -1
WHERE timezone <> 'UTC'
  AND EXISTS (SELECT 1 FROM active_bots_daily b WHERE b.project_id = projects.id);
