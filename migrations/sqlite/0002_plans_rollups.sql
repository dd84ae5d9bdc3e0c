-- Plans: what a project may send per month and how long its data is kept. NULL = no limit.
CREATE TABLE plans (
    name             TEXT    PRIMARY KEY,
    events_per_month INTEGER,
    retention_days   INTEGER
);
INSERT INTO plans (name, events_per_month, retention_days) VALUES
    ('unlimited', NULL,      NULL),
    ('free',      1000000,   30),
    ('pro',       20000000,  365),
    ('agency',    200000000, 730);

ALTER TABLE projects ADD COLUMN plan TEXT NOT NULL DEFAULT 'unlimited' REFERENCES plans(name);

-- Newly stored events per calendar month (UTC): duplicates are not counted.
CREATE TABLE usage_monthly (
    project_id INTEGER NOT NULL REFERENCES projects(id),
    month      TEXT    NOT NULL,  -- 'YYYY-MM'
    events     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, month)
);

-- Counts per event name and hour of the event's timestamp, maintained in the commit that
-- stores the events: charts and alert rules read these instead of scanning events.
-- `name` is the track event, or '$page', '$identify', ... for other types.
CREATE TABLE rollups_hourly (
    project_id INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    hour       INTEGER NOT NULL,  -- unix milliseconds at the start of the hour
    events     INTEGER NOT NULL,
    PRIMARY KEY (project_id, name, hour)
) WITHOUT ROWID;

CREATE INDEX events_by_received ON events(received_at);
