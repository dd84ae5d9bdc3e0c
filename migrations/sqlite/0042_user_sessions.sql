-- The Sessions page without scanning events (docs/architecture/analytics-at-scale.md,
-- "Sessions at ingest"): per (project, user) the user's sessions, runs of events with no
-- silence over 30 minutes (analytics::SESSION_GAP_MS). Ingest merges the rows it stores into
-- them (bots left out, as in every analytics rollup); deleting a person removes theirs; plan
-- retention removes those that ended before its cutoff day; raw-event retention keeps them.
-- (`sessions` is the dashboard's login sessions, 0006.)
CREATE TABLE user_sessions (
    project_id INTEGER NOT NULL,
    user_key   TEXT    NOT NULL,  -- userId, else anonymousId
    start_ts   INTEGER NOT NULL,  -- the first event's time, unix milliseconds
    end_ts     INTEGER NOT NULL,  -- the last event's
    events     INTEGER NOT NULL,
    PRIMARY KEY (project_id, user_key, start_ts)
) WITHOUT ROWID;

-- The page's range aggregate reads only this index (sessions that start in the range).
CREATE INDEX user_sessions_by_start ON user_sessions(project_id, start_ts, end_ts, events);

-- The events already stored: each user's events in time order, a new session wherever the
-- silence since the previous event exceeds 30 minutes (a sort of every event).
INSERT INTO user_sessions (project_id, user_key, start_ts, end_ts, events)
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
              AND NOT COALESCE(instr(body, '"bot"') > 0
                               AND json_type(body, '$.context.bot') = 'true', 0)
        )
    )
)
GROUP BY project_id, user_key, n;
