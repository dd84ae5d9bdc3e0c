-- Daily salts of cookieless visitor ids (see migrations/sqlite/0020).
CREATE TABLE cookieless_salts (
    day  TEXT  NOT NULL PRIMARY KEY,
    salt BYTEA NOT NULL
);
