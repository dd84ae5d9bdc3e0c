-- The weekly digest (docs/digest.md): who gets it, where it goes, and which weeks are done.
-- A digest_weeks row is written once per project and week, in the same transaction as the
-- e-mails and the channel delivery it causes: its primary key is what makes the digest go out
-- once across replicas and restarts.

-- Members who turned the digest on for themselves, per project.
CREATE TABLE digest_subscriptions (
    project_id BIGINT NOT NULL REFERENCES projects(id),
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, user_id)
);

-- The one Discord/Slack channel of the project that also gets the digest, if any.
CREATE TABLE digest_channels (
    project_id BIGINT PRIMARY KEY REFERENCES projects(id),
    channel_id BIGINT NOT NULL
);

-- One row per project and reported week (week_start: Monday 00:00 in the project's time zone,
-- unix ms). content is the digest as JSON; NULL when nobody was to receive it.
CREATE TABLE digest_weeks (
    project_id BIGINT NOT NULL REFERENCES projects(id),
    week_start BIGINT NOT NULL,
    content    TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, week_start)
);

-- The digest e-mail of one member for one week: an outbox with leases, like deliveries.
CREATE TABLE digest_emails (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id      BIGINT NOT NULL,
    week_start      BIGINT NOT NULL,
    user_id         BIGINT NOT NULL,
    email           TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'failed', 'sent', 'dead')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    sent_at         BIGINT,
    UNIQUE (project_id, week_start, user_id)
);
CREATE INDEX digest_emails_due ON digest_emails(status, next_attempt_at);
