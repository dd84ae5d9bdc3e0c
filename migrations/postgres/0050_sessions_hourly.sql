-- The Sessions page at any volume (docs/architecture/analytics-at-scale.md, "Sessions at
-- ingest"): per project and UTC hour, the sessions of user_sessions that start in it — how
-- many, their summed length and how many hold one event. Every writer of user_sessions (the
-- ingest commit, person delete, plan retention) applies the same difference here in its
-- transaction, so the sums are always those of user_sessions; a range reads its whole hours
-- here and only its partial edge hours from user_sessions.
CREATE TABLE sessions_hourly (
    project_id BIGINT NOT NULL,
    hour       BIGINT NOT NULL,  -- the start's UTC hour, unix milliseconds
    sessions   BIGINT NOT NULL,
    total_ms   BIGINT NOT NULL,  -- sum of end_ts - start_ts
    bounces    BIGINT NOT NULL,  -- sessions of one event
    PRIMARY KEY (project_id, hour)
);

INSERT INTO sessions_hourly (project_id, hour, sessions, total_ms, bounces)
SELECT project_id, start_ts - ((start_ts % 3600000) + 3600000) % 3600000,
       COUNT(*), SUM(end_ts - start_ts), SUM(CASE WHEN events = 1 THEN 1 ELSE 0 END)
FROM user_sessions
GROUP BY 1, 2;
