-- Projects own keys and events. Ids are integers: compact in the events indexes.
CREATE TABLE projects (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL  -- unix milliseconds
);

-- Keys are stored as SHA-256 of the full key: they are 190-bit random tokens, so a fast hash
-- is the right tool (argon2 is for low-entropy passwords). `prefix` is what listings show.
CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    kind        TEXT    NOT NULL CHECK (kind IN ('write', 'secret')),
    key_hash    BLOB    NOT NULL UNIQUE,
    prefix      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX api_keys_by_project ON api_keys(project_id);

-- One row per stored message. `body` is the message exactly as received; the columns are
-- the validated, authoritative values (messageId and timestamp may have been assigned here).
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY,
    project_id   INTEGER NOT NULL,
    message_id   TEXT    NOT NULL,
    type         TEXT    NOT NULL,
    event        TEXT,
    user_id      TEXT,
    anonymous_id TEXT,
    timestamp    INTEGER NOT NULL,  -- unix milliseconds
    received_at  INTEGER NOT NULL,  -- unix milliseconds
    body         TEXT    NOT NULL
);
-- Exactly-once storage: SDKs resend a batch whose response was lost, with the same ids.
-- No index on user_id: ids arrive in random order, so it would cost a random page write per
-- event (twice the insert cost, measured); the read API filters users by scanning recent rows.
CREATE UNIQUE INDEX events_dedupe   ON events(project_id, message_id);
CREATE INDEX        events_recent   ON events(project_id, seq);
CREATE INDEX        events_by_name  ON events(project_id, event, seq);

-- Running totals maintained in the same transaction as the insert (no COUNT(*) scans).
CREATE TABLE project_usage (
    project_id   INTEGER PRIMARY KEY REFERENCES projects(id),
    events_total INTEGER NOT NULL DEFAULT 0
);
