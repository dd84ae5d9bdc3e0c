-- Members join by invitation; see SQLite's 0010 for the model.
CREATE TABLE invitations (
    id          BIGSERIAL PRIMARY KEY,
    project_id  BIGINT NOT NULL REFERENCES projects(id),
    email       TEXT   NOT NULL,
    role        TEXT   NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
    invited_by  BIGINT REFERENCES users(id) ON DELETE SET NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (project_id, email)
);
CREATE INDEX invitations_by_email ON invitations(email);

ALTER TABLE api_keys ADD COLUMN created_by BIGINT REFERENCES users(id) ON DELETE SET NULL;
