-- no-transaction
-- Ids are never reused. An `INTEGER PRIMARY KEY` without AUTOINCREMENT hands out max(id) + 1,
-- so after a delete the next row gets the id of the row just deleted: a channel deleted by one
-- project came back as another project's channel, and the first project's pending deliveries,
-- which name the channel by id, went to the second project's webhook (issue 16).
--
-- Every table whose id something else refers to is rebuilt with AUTOINCREMENT (SQLite's
-- documented 12-step procedure: foreign keys off, new table, copy, drop, rename, indexes).
-- Existing rows keep their ids; each table's sequence starts above the largest id that any row
-- anywhere still names, so an id that was already deleted is not handed out again either.
-- Not rebuilt: delivery_attempts (nothing refers to its ids), events (seq is an ordering
-- cursor within a project, and rebuilding would copy every stored event), and alert_events and
-- audit_log (already AUTOINCREMENT).
--
-- `-- no-transaction`: PRAGMA foreign_keys is a no-op inside a transaction, and with foreign
-- keys on, dropping `users` would cascade-delete every session and membership. The rebuild is
-- still one transaction, opened below.
PRAGMA foreign_keys = OFF;
BEGIN;

CREATE TABLE new_projects (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    plan        TEXT    NOT NULL DEFAULT 'unlimited' REFERENCES plans(name)
);
INSERT INTO new_projects (id, name, created_at, plan)
SELECT id, name, created_at, plan FROM projects;
DROP TABLE projects;
ALTER TABLE new_projects RENAME TO projects;

CREATE TABLE new_api_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    kind        TEXT    NOT NULL CHECK (kind IN ('write', 'secret')),
    key_hash    BLOB    NOT NULL UNIQUE,
    prefix      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
INSERT INTO new_api_keys (id, project_id, kind, key_hash, prefix, created_at, revoked_at)
SELECT id, project_id, kind, key_hash, prefix, created_at, revoked_at FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE new_api_keys RENAME TO api_keys;
CREATE INDEX api_keys_by_project ON api_keys(project_id);

CREATE TABLE new_users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);
INSERT INTO new_users (id, email, password_hash, is_admin, created_at)
SELECT id, email, password_hash, is_admin, created_at FROM users;
DROP TABLE users;
ALTER TABLE new_users RENAME TO users;

CREATE TABLE new_notification_channels (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL REFERENCES projects(id),
    name            TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('discord', 'slack', 'webhook', 'email')),
    target          TEXT    NOT NULL,
    secret          TEXT,
    disabled_reason TEXT,
    disabled_at     INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
INSERT INTO new_notification_channels (id, project_id, name, kind, target, secret,
    disabled_reason, disabled_at, created_at, updated_at)
SELECT id, project_id, name, kind, target, secret, disabled_reason, disabled_at, created_at,
    updated_at
FROM notification_channels;
DROP TABLE notification_channels;
ALTER TABLE new_notification_channels RENAME TO notification_channels;
CREATE INDEX notification_channels_by_project ON notification_channels(project_id, id);

CREATE TABLE new_event_categories (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id           INTEGER NOT NULL REFERENCES projects(id),
    name                 TEXT    NOT NULL,
    pattern              TEXT    NOT NULL,
    emoji                TEXT    NOT NULL,
    colour               INTEGER NOT NULL,
    channel_id           INTEGER NOT NULL REFERENCES notification_channels(id),
    title_template       TEXT,
    description_template TEXT,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
INSERT INTO new_event_categories (id, project_id, name, pattern, emoji, colour, channel_id,
    title_template, description_template, created_at, updated_at)
SELECT id, project_id, name, pattern, emoji, colour, channel_id, title_template,
    description_template, created_at, updated_at
FROM event_categories;
DROP TABLE event_categories;
ALTER TABLE new_event_categories RENAME TO event_categories;
CREATE INDEX event_categories_by_project ON event_categories(project_id, id);

-- A delivery's id is also its webhook-id (`msg_<id>`), which receivers deduplicate on.
CREATE TABLE new_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL,
    channel_id      INTEGER NOT NULL,
    source_key      TEXT    NOT NULL,
    content         TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    UNIQUE (channel_id, source_key)
);
INSERT INTO new_deliveries (id, project_id, channel_id, source_key, content, status, attempts,
    next_attempt_at, lease_owner, lease_until, last_error, created_at, delivered_at)
SELECT id, project_id, channel_id, source_key, content, status, attempts, next_attempt_at,
    lease_owner, lease_until, last_error, created_at, delivered_at
FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE new_deliveries RENAME TO deliveries;
CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at);
CREATE INDEX deliveries_by_project ON deliveries(project_id, id);

CREATE TABLE new_alert_rules (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id       INTEGER NOT NULL REFERENCES projects(id),
    definition       TEXT    NOT NULL,
    enabled          INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    state            TEXT    NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'pending', 'firing')),
    version          INTEGER NOT NULL DEFAULT 0,
    pending_since    INTEGER,
    firing_since     INTEGER,
    last_notified_at INTEGER,
    resolved_at      INTEGER,
    alert_id         INTEGER,
    last_bucket      INTEGER,
    last_outcome     TEXT,
    lease_until      INTEGER,
    lease_owner      TEXT
);
INSERT INTO new_alert_rules (id, project_id, definition, enabled, created_at, updated_at, state,
    version, pending_since, firing_since, last_notified_at, resolved_at, alert_id, last_bucket,
    last_outcome, lease_until, lease_owner)
SELECT id, project_id, definition, enabled, created_at, updated_at, state, version,
    pending_since, firing_since, last_notified_at, resolved_at, alert_id, last_bucket,
    last_outcome, lease_until, lease_owner
FROM alert_rules;
DROP TABLE alert_rules;
ALTER TABLE new_alert_rules RENAME TO alert_rules;
CREATE INDEX alert_rules_by_project ON alert_rules(project_id, id);

CREATE TABLE new_alert_history (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id   INTEGER NOT NULL REFERENCES projects(id),
    rule_id      INTEGER NOT NULL,
    rule_name    TEXT    NOT NULL,
    reason       TEXT    NOT NULL CHECK (reason IN ('threshold', 'anomaly', 'no_data')),
    bucket_start INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    resolved_at  INTEGER,
    value        REAL,
    expected     REAL,
    explanation  TEXT    NOT NULL
);
INSERT INTO new_alert_history (id, project_id, rule_id, rule_name, reason, bucket_start,
    started_at, resolved_at, value, expected, explanation)
SELECT id, project_id, rule_id, rule_name, reason, bucket_start, started_at, resolved_at, value,
    expected, explanation
FROM alert_history;
DROP TABLE alert_history;
ALTER TABLE new_alert_history RENAME TO alert_history;
CREATE INDEX alert_history_by_project ON alert_history(project_id, id);

-- Each sequence starts above every id still named anywhere (MAX ignores NULLs).
DELETE FROM sqlite_sequence WHERE name IN ('projects', 'api_keys', 'users',
    'notification_channels', 'event_categories', 'deliveries', 'alert_rules', 'alert_history');
INSERT INTO sqlite_sequence (name, seq)
SELECT 'projects', COALESCE(MAX(m), 0) FROM (
    SELECT MAX(id) AS m FROM projects
    UNION ALL SELECT MAX(project_id) FROM api_keys
    UNION ALL SELECT MAX(project_id) FROM events
    UNION ALL SELECT MAX(project_id) FROM project_usage
    UNION ALL SELECT MAX(project_id) FROM usage_monthly
    UNION ALL SELECT MAX(project_id) FROM memberships
    UNION ALL SELECT MAX(project_id) FROM audit_log
    UNION ALL SELECT MAX(project_id) FROM notification_channels
    UNION ALL SELECT MAX(project_id) FROM event_categories
    UNION ALL SELECT MAX(project_id) FROM deliveries
    UNION ALL SELECT MAX(project_id) FROM alert_rules
    UNION ALL SELECT MAX(project_id) FROM alert_history
    UNION ALL SELECT MAX(project_id) FROM alert_events);
INSERT INTO sqlite_sequence (name, seq)
SELECT 'api_keys', COALESCE(MAX(id), 0) FROM api_keys;
INSERT INTO sqlite_sequence (name, seq)
SELECT 'users', COALESCE(MAX(m), 0) FROM (
    SELECT MAX(id) AS m FROM users
    UNION ALL SELECT MAX(user_id) FROM memberships
    UNION ALL SELECT MAX(user_id) FROM sessions
    UNION ALL SELECT MAX(user_id) FROM audit_log);
INSERT INTO sqlite_sequence (name, seq)
SELECT 'notification_channels', COALESCE(MAX(m), 0) FROM (
    SELECT MAX(id) AS m FROM notification_channels
    UNION ALL SELECT MAX(channel_id) FROM event_categories
    UNION ALL SELECT MAX(channel_id) FROM deliveries
    UNION ALL SELECT MAX(CAST(j.value AS INTEGER)) FROM alert_rules r,
        json_each(CASE WHEN json_valid(r.definition) THEN r.definition ELSE '{}' END,
                  '$.channel_ids') j
    UNION ALL SELECT MAX(CAST(j.value AS INTEGER)) FROM alert_events a,
        json_each(CASE WHEN json_valid(a.channel_ids) THEN a.channel_ids ELSE '[]' END) j);
-- Outbox keys name their category: 'event:<category id>:<messageId>'.
INSERT INTO sqlite_sequence (name, seq)
SELECT 'event_categories', COALESCE(MAX(m), 0) FROM (
    SELECT MAX(id) AS m FROM event_categories
    UNION ALL SELECT MAX(CAST(substr(source_key, 7, instr(substr(source_key, 7), ':') - 1)
                             AS INTEGER))
        FROM deliveries WHERE source_key LIKE 'event:%');
INSERT INTO sqlite_sequence (name, seq)
SELECT 'deliveries', COALESCE(MAX(m), 0) FROM (
    SELECT MAX(id) AS m FROM deliveries
    UNION ALL SELECT MAX(delivery_id) FROM delivery_attempts);
INSERT INTO sqlite_sequence (name, seq)
SELECT 'alert_rules', COALESCE(MAX(m), 0) FROM (
    SELECT MAX(id) AS m FROM alert_rules
    UNION ALL SELECT MAX(rule_id) FROM alert_history
    UNION ALL SELECT MAX(rule_id) FROM alert_events);
INSERT INTO sqlite_sequence (name, seq)
SELECT 'alert_history', COALESCE(MAX(m), 0) FROM (
    SELECT MAX(id) AS m FROM alert_history
    UNION ALL SELECT MAX(alert_id) FROM alert_rules);

-- Deliveries still waiting for a channel that is gone, or that is not their project's, end
-- here: from now on deleting a channel ends them (collector/src/store/delivery.rs).
UPDATE deliveries SET status = 'dead', last_error = 'the channel was deleted',
    lease_owner = NULL, lease_until = NULL
WHERE status IN ('pending', 'failed')
  AND NOT EXISTS (SELECT 1 FROM notification_channels c
                  WHERE c.id = deliveries.channel_id AND c.project_id = deliveries.project_id);

COMMIT;
PRAGMA foreign_keys = ON;
