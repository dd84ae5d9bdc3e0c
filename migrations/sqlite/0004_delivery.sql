-- Delivery: where notifications go (channels), which events become notifications
-- (categories), and the outbox (deliveries + their attempts). See README "Alerting:
-- categories, channels and delivery".

CREATE TABLE notification_channels (
    id              INTEGER PRIMARY KEY,
    project_id      INTEGER NOT NULL REFERENCES projects(id),
    name            TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('discord', 'slack', 'webhook', 'email')),
    target          TEXT    NOT NULL,  -- webhook URL, or the email recipient
    secret          TEXT,              -- generic webhook: the whsec_ signing secret
    disabled_reason TEXT,              -- set when a 401/404 proves the target gone
    disabled_at     INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX notification_channels_by_project ON notification_channels(project_id, id);

CREATE TABLE event_categories (
    id                   INTEGER PRIMARY KEY,
    project_id           INTEGER NOT NULL REFERENCES projects(id),
    name                 TEXT    NOT NULL,
    pattern              TEXT    NOT NULL,  -- exact event name or a glob (payment.*)
    emoji                TEXT    NOT NULL,
    colour               INTEGER NOT NULL,  -- 0xRRGGBB
    channel_id           INTEGER NOT NULL REFERENCES notification_channels(id),
    title_template       TEXT,
    description_template TEXT,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE INDEX event_categories_by_project ON event_categories(project_id, id);

-- The outbox. `source_key` names what the notification is about ('event:<category>:<messageId>'
-- or 'alert:<alert_events.id>'): the unique key makes each one exactly once per channel.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    project_id      INTEGER NOT NULL,
    channel_id      INTEGER NOT NULL,
    source_key      TEXT    NOT NULL,
    content         TEXT    NOT NULL,  -- the rendered notification (JSON), channel-neutral
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
CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at);
CREATE INDEX deliveries_by_project ON deliveries(project_id, id);

CREATE TABLE delivery_attempts (
    id               INTEGER PRIMARY KEY,
    delivery_id      INTEGER NOT NULL REFERENCES deliveries(id),
    attempt          INTEGER NOT NULL,
    started_at       INTEGER NOT NULL,
    latency_ms       INTEGER NOT NULL,
    status_code      INTEGER,
    outcome          TEXT    NOT NULL,
    response_excerpt TEXT,
    error            TEXT
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts(delivery_id, attempt);

-- alert_events already turned into deliveries. Ids are not commit-ordered on PostgreSQL, so
-- a cursor could skip a late commit; a marker per row cannot.
CREATE TABLE alert_events_dispatched (
    alert_event_id INTEGER PRIMARY KEY,
    dispatched_at  INTEGER NOT NULL
);
