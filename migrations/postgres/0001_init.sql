-- PostgreSQL schema, the same model as migrations/sqlite with two differences for scale:
-- events are partitioned by day of receipt, and dedupe lives in `event_ids` (a unique key on a
-- partitioned table would have to include the partition key, and so could not dedupe).

CREATE TABLE plans (
    name             TEXT   PRIMARY KEY,
    events_per_month BIGINT,
    retention_days   INTEGER
);
INSERT INTO plans (name, events_per_month, retention_days) VALUES
    ('unlimited', NULL,      NULL),
    ('free',      1000000,   30),
    ('pro',       20000000,  365),
    ('agency',    200000000, 730);

CREATE TABLE projects (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,  -- unix milliseconds
    plan        TEXT   NOT NULL DEFAULT 'unlimited' REFERENCES plans(name)
);

CREATE TABLE api_keys (
    id          BIGSERIAL PRIMARY KEY,
    project_id  BIGINT NOT NULL REFERENCES projects(id),
    kind        TEXT   NOT NULL CHECK (kind IN ('write', 'secret')),
    key_hash    BYTEA  NOT NULL UNIQUE,
    prefix      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX api_keys_by_project ON api_keys(project_id);

-- Exactly-once storage across every replica: a message is stored only if its id is new here.
-- Rows older than the project's retention are removed with the events (the dedupe window).
CREATE TABLE event_ids (
    project_id  BIGINT NOT NULL,
    message_id  TEXT   NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, message_id)
);
CREATE INDEX event_ids_by_received ON event_ids(received_at);

CREATE SEQUENCE events_seq;
CREATE TABLE events (
    seq          BIGINT NOT NULL DEFAULT nextval('events_seq'),
    project_id   BIGINT NOT NULL,
    message_id   TEXT   NOT NULL,
    type         TEXT   NOT NULL,
    event        TEXT,
    user_id      TEXT,
    anonymous_id TEXT,
    timestamp    BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    body         TEXT   NOT NULL
) PARTITION BY RANGE (received_at);
-- Daily partitions are created ahead of time by the collector; this catches anything else.
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE INDEX events_recent  ON events(project_id, seq);
CREATE INDEX events_by_name ON events(project_id, event, seq);

CREATE TABLE project_usage (
    project_id   BIGINT PRIMARY KEY REFERENCES projects(id),
    events_total BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE usage_monthly (
    project_id BIGINT NOT NULL REFERENCES projects(id),
    month      TEXT   NOT NULL,
    events     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, month)
);

CREATE TABLE rollups_hourly (
    project_id BIGINT NOT NULL,
    name       TEXT   NOT NULL,
    hour       BIGINT NOT NULL,
    events     BIGINT NOT NULL,
    PRIMARY KEY (project_id, name, hour)
);
