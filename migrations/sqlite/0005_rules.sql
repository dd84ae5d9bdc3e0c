-- Alert rules and their evaluation state. `definition` is the validated rule as JSON (see
-- collector/src/alerting/rules/spec.rs); the state columns change only by compare-and-set on
-- `version`, in the same transaction that appends the alert_events row, so a transition
-- happens once however many evaluators race for it.
CREATE TABLE alert_rules (
    id               INTEGER PRIMARY KEY,
    project_id       INTEGER NOT NULL REFERENCES projects(id),
    definition       TEXT    NOT NULL,
    enabled          INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,  -- unix milliseconds
    updated_at       INTEGER NOT NULL,
    state            TEXT    NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'pending', 'firing')),
    version          INTEGER NOT NULL DEFAULT 0,
    pending_since    INTEGER,
    firing_since     INTEGER,
    last_notified_at INTEGER,
    resolved_at      INTEGER,
    alert_id         INTEGER,  -- the open alert_history row while firing
    last_bucket      INTEGER,  -- start of the last closed bucket evaluated
    last_outcome     TEXT,     -- that bucket's outcome (JSON), so it is computed once
    lease_until      INTEGER,  -- an evaluator is working on the rule until then
    lease_owner      TEXT
);
CREATE INDEX alert_rules_by_project ON alert_rules(project_id, id);

-- One row per time a rule fired: opened when it fires, closed when it resolves.
CREATE TABLE alert_history (
    id           INTEGER PRIMARY KEY,
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
CREATE INDEX alert_history_by_project ON alert_history(project_id, id);

-- Rule series read one event name over a time range.
CREATE INDEX events_by_name_time ON events(project_id, event, timestamp);
