-- Bot events (`context.bot = true`, docs/web-analytics.md) per event name and hour. They are
-- counted in rollups_hourly too (alert rules and usage see every event); the dashboard's
-- analytics subtract these to leave bots out, and add nothing back with include_bots=true.
CREATE TABLE rollups_hourly_bots (
    project_id BIGINT NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,  -- byte order, as rollups_hourly (0008)
    hour       BIGINT NOT NULL,  -- unix milliseconds at the start of the hour
    events     BIGINT NOT NULL,
    PRIMARY KEY (project_id, name, hour)
);
