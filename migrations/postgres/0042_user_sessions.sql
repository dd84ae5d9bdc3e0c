-- The Sessions page without scanning events (see migrations/sqlite/0042): per (project, user)
-- the user's sessions (no silence over 30 minutes), maintained by ingest. Text keys compare
-- byte by byte, as the other rollups' (0008).
CREATE TABLE user_sessions (
    project_id BIGINT NOT NULL,
    user_key   TEXT COLLATE "C" NOT NULL,
    start_ts   BIGINT NOT NULL,
    end_ts     BIGINT NOT NULL,
    events     BIGINT NOT NULL,
    PRIMARY KEY (project_id, user_key, start_ts)
);

-- The page's range aggregate reads only this index (sessions that start in the range).
CREATE INDEX user_sessions_by_start ON user_sessions (project_id, start_ts)
    INCLUDE (end_ts, events);

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
            SELECT project_id, COALESCE(user_id, anonymous_id) COLLATE "C" AS user_key,
                   timestamp
            FROM events
            WHERE COALESCE(user_id, anonymous_id) IS NOT NULL
              AND NOT COALESCE(strpos(body, '"bot"') > 0
                               AND (body::jsonb #> '{context,bot}') = 'true'::jsonb, false)
        ) AS keyed
    ) AS opened
) AS numbered
GROUP BY project_id, user_key, n;
