-- Dashboard accounts: users, server-side sessions, project membership with roles, the audit log,
-- and the rollups the dashboard reads instead of scanning events. Same model as SQLite's 0006.

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    email         TEXT   NOT NULL UNIQUE,
    password_hash TEXT   NOT NULL,
    is_admin      BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash  BYTEA  PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions(user_id);

CREATE TABLE memberships (
    project_id  BIGINT NOT NULL REFERENCES projects(id),
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT   NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships(user_id);

CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    project_id  BIGINT,
    user_id     BIGINT,
    actor       TEXT   NOT NULL,
    action      TEXT   NOT NULL,
    target      TEXT   NOT NULL,
    ip          TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX audit_log_by_project ON audit_log(project_id, id);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE active_users_daily (
    project_id BIGINT NOT NULL,
    day        BIGINT NOT NULL,
    user_key   TEXT   NOT NULL,
    PRIMARY KEY (project_id, day, user_key)
);

INSERT INTO active_users_daily (project_id, day, user_key)
SELECT DISTINCT project_id, timestamp - mod(timestamp, 86400000), COALESCE(user_id, anonymous_id)
FROM events WHERE COALESCE(user_id, anonymous_id) IS NOT NULL
ON CONFLICT DO NOTHING;

CREATE INDEX events_by_time ON events(project_id, timestamp);
