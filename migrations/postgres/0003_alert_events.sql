-- The hand-off between the rule evaluator and delivery. The evaluator appends one row per
-- state change worth telling someone about (a rule fired, resolved, or repeats while firing),
-- already rendered; delivery turns each row into one outbox notification per channel,
-- exactly once. Append-only: rows are never updated.
CREATE TABLE alert_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  BIGINT  NOT NULL REFERENCES projects(id),
    rule_id     BIGINT  NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('firing', 'resolved', 'repeat', 'no_data')),
    channel_ids JSONB   NOT NULL,  -- array of channel ids
    title       TEXT    NOT NULL,
    description TEXT    NOT NULL,
    colour      INTEGER NOT NULL,  -- 0xRRGGBB
    fields      JSONB   NOT NULL,  -- array of {"name","value","inline"}
    url         TEXT,
    created_at  BIGINT  NOT NULL   -- unix milliseconds
);
CREATE INDEX alert_events_by_project ON alert_events(project_id, id);
