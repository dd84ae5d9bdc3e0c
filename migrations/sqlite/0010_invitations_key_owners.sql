-- Members join by invitation: an admin invites an e-mail address with a role, and the person
-- with that address accepts or declines in the dashboard. The address need not have an account
-- yet (the inviter is never told), so invitations are keyed by address, not by user.
CREATE TABLE invitations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    email       TEXT    NOT NULL,   -- lower-case, as users.email
    role        TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
    invited_by  INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at  INTEGER NOT NULL,   -- unix milliseconds; expiry counts from here
    UNIQUE (project_id, email)
);
CREATE INDEX invitations_by_email ON invitations(email);

-- Who issued a key from the dashboard (NULL: the CLI or the first start), so that removing a
-- member can name the secret keys they still know.
ALTER TABLE api_keys ADD COLUMN created_by INTEGER REFERENCES users(id) ON DELETE SET NULL;
