-- Inbound webhooks: services (Stripe, GitHub, a generic Standard Webhooks sender) that post to
-- /v1/inbound/{token} and whose deliveries become the project's events. See
-- docs/inbound-webhooks.md. The signing secret is kept as given: verifying an HMAC needs it.
CREATE TABLE inbound_sources (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  BIGINT  NOT NULL REFERENCES projects(id),
    kind        TEXT    NOT NULL CHECK (kind IN ('stripe', 'github', 'generic')),
    name        TEXT    NOT NULL,
    token       TEXT    NOT NULL UNIQUE,  -- the unguessable part of the receiving URL
    secret      TEXT    NOT NULL,
    event_path  TEXT,                     -- generic: JSON path of the event name
    user_path   TEXT,                     -- generic: JSON path of the user id (optional)
    created_at  BIGINT  NOT NULL
);
CREATE INDEX inbound_sources_by_project ON inbound_sources(project_id, id);
