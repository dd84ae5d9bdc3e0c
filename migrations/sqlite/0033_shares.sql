-- Shared, read-only dashboard pages (docs/sharing.md): one page of one project behind an
-- unguessable link. Only the link's SHA-256 is stored, like secret keys; an optional password
-- is an argon2 hash like the accounts'. Unlocks are what a correct password grants a browser.
CREATE TABLE shares (
    id            INTEGER PRIMARY KEY,
    project_id    INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    page          TEXT    NOT NULL CHECK (page IN ('overview', 'vitals', 'web')),
    token_hash    BLOB    NOT NULL UNIQUE,
    prefix        TEXT    NOT NULL,             -- the link's first characters, to recognise it
    password_hash TEXT,                         -- argon2id; NULL: no password
    origins       TEXT    NOT NULL DEFAULT '',  -- origins allowed to embed it, space-separated
    created_by    INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX shares_by_project ON shares(project_id, id);

CREATE TABLE share_unlocks (
    token_hash  BLOB    PRIMARY KEY,
    share_id    INTEGER NOT NULL REFERENCES shares(id) ON DELETE CASCADE,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX share_unlocks_by_share ON share_unlocks(share_id, expires_at);
