-- Dashboard accounts: users, server-side sessions, project membership with roles, the audit log,
-- and the rollups the dashboard reads instead of scanning events.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,   -- stored lower-case
    password_hash TEXT    NOT NULL,          -- argon2id PHC string
    is_admin      INTEGER NOT NULL DEFAULT 0, -- instance admin: owns projects nobody owns
    created_at    INTEGER NOT NULL
);

-- Only SHA-256 of the session token is stored: a leaked table does not log anyone in.
CREATE TABLE sessions (
    token_hash  BLOB    PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions(user_id);

CREATE TABLE memberships (
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships(user_id);

-- Every administrative action. Append-only: the triggers refuse UPDATE and DELETE.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER,          -- NULL for instance-wide actions (logins)
    user_id     INTEGER,
    actor       TEXT    NOT NULL, -- the user's e-mail, or 'cli'
    action      TEXT    NOT NULL, -- e.g. key.created, member.role_changed, user.login
    target      TEXT    NOT NULL,
    ip          TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX audit_log_by_project ON audit_log(project_id, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- Who was active on which UTC day (user id, else anonymous id), maintained at ingest:
-- DAU/WAU/MAU count these rows instead of scanning events.
CREATE TABLE active_users_daily (
    project_id INTEGER NOT NULL,
    day        INTEGER NOT NULL,  -- unix milliseconds at 00:00 UTC
    user_key   TEXT    NOT NULL,
    PRIMARY KEY (project_id, day, user_key)
) WITHOUT ROWID;

INSERT OR IGNORE INTO active_users_daily (project_id, day, user_key)
SELECT project_id, timestamp - (timestamp % 86400000), COALESCE(user_id, anonymous_id)
FROM events WHERE COALESCE(user_id, anonymous_id) IS NOT NULL;

-- Explore, funnels, retention and Web Vitals read a project's events by time.
CREATE INDEX events_by_time ON events(project_id, timestamp);
