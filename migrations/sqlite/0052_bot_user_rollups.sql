-- Funnels, retention and sessions with bots counted in, from rollups instead of a scan
-- (docs/architecture/analytics-at-scale.md, "Bots in the per-user rollups"): the bot events'
-- rows, of the same shape as the people's and kept apart, so the default views and ingest of
-- people's events are untouched. Ingest writes them for bot events only; person delete and
-- plan retention remove them like the people's rows; raw-event retention keeps them.
-- `include_bots=true` reads both: a key with people's and bot events is one user.

-- user_event_days (0039) of bot events.
CREATE TABLE user_event_days_bots (
    project_id INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    user_key   TEXT    NOT NULL,
    day        INTEGER NOT NULL,  -- unix milliseconds at 00:00 UTC
    events     INTEGER NOT NULL,
    first_ts   INTEGER NOT NULL,
    last_ts    INTEGER NOT NULL,
    PRIMARY KEY (project_id, name, user_key, day)
) WITHOUT ROWID;

-- active_users_daily (0006, local days since 0040) of bot events: retention's days; its weeks
-- are read from these days (no weekly table, no DAU/WAU/MAU counts: bots are not users there).
CREATE TABLE active_bots_daily (
    project_id INTEGER NOT NULL,
    day        INTEGER NOT NULL,  -- the project's local day key (store::local_days)
    user_key   TEXT    NOT NULL,
    PRIMARY KEY (project_id, day, user_key)
) WITHOUT ROWID;

-- user_sessions (0042) and sessions_hourly (0050) of bot events: sessions of a key's bot
-- events alone.
CREATE TABLE user_sessions_bots (
    project_id INTEGER NOT NULL,
    user_key   TEXT    NOT NULL,
    start_ts   INTEGER NOT NULL,
    end_ts     INTEGER NOT NULL,
    events     INTEGER NOT NULL,
    PRIMARY KEY (project_id, user_key, start_ts)
) WITHOUT ROWID;

CREATE INDEX user_sessions_bots_by_start
    ON user_sessions_bots(project_id, start_ts, end_ts, events);

CREATE TABLE sessions_hourly_bots (
    project_id INTEGER NOT NULL,
    hour       INTEGER NOT NULL,
    sessions   INTEGER NOT NULL,
    total_ms   INTEGER NOT NULL,
    bounces    INTEGER NOT NULL,
    PRIMARY KEY (project_id, hour)
) WITHOUT ROWID;

-- The bot events already stored: the same statements as 0039, 0042 and 0050, bots only.
INSERT INTO user_event_days_bots (project_id, name, user_key, day, events, first_ts, last_ts)
SELECT project_id,
       CASE WHEN type = 'track' THEN event ELSE '$' || type END,
       COALESCE(user_id, anonymous_id),
       timestamp - ((timestamp % 86400000) + 86400000) % 86400000,
       COUNT(*), MIN(timestamp), MAX(timestamp)
FROM events
WHERE COALESCE(user_id, anonymous_id) IS NOT NULL
  AND (type <> 'track' OR event IS NOT NULL)
  AND COALESCE(instr(body, '"bot"') > 0 AND json_type(body, '$.context.bot') = 'true', 0)
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
            SELECT project_id, COALESCE(user_id, anonymous_id) AS user_key, timestamp
            FROM events
            WHERE COALESCE(user_id, anonymous_id) IS NOT NULL
              AND COALESCE(instr(body, '"bot"') > 0
                           AND json_type(body, '$.context.bot') = 'true', 0)
        )
    )
)
GROUP BY project_id, user_key, n;

INSERT INTO sessions_hourly_bots (project_id, hour, sessions, total_ms, bounces)
SELECT project_id, start_ts - ((start_ts % 3600000) + 3600000) % 3600000,
       COUNT(*), SUM(end_ts - start_ts), SUM(CASE WHEN events = 1 THEN 1 ELSE 0 END)
FROM user_sessions_bots
GROUP BY 1, 2;

-- Local days need the tz database, which SQL has not: the days are keyed in UTC here, and a
-- project in another zone is re-keyed by the background day rebuild (as after 0040), which
-- recounts people's and bots' days from the events.
INSERT INTO active_bots_daily (project_id, day, user_key)
SELECT DISTINCT project_id, timestamp - ((timestamp % 86400000) + 86400000) % 86400000,
       COALESCE(user_id, anonymous_id)
FROM events
WHERE COALESCE(user_id, anonymous_id) IS NOT NULL
  AND COALESCE(instr(body, '"bot"') > 0 AND json_type(body, '$.context.bot') = 'true', 0);

UPDATE projects SET days_rebuild_next = -1
WHERE timezone <> 'UTC'
  AND EXISTS (SELECT 1 FROM active_bots_daily b WHERE b.project_id = projects.id);
