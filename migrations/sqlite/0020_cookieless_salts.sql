-- Daily salts of cookieless visitor ids (docs/privacy.md, "Cookieless mode"): one random salt
-- per UTC day (`YYYY-MM-DD`), deleted once the day is over so that visitor ids of different
-- days cannot be linked.
CREATE TABLE cookieless_salts (
    day  TEXT NOT NULL PRIMARY KEY,
    salt BLOB NOT NULL
) WITHOUT ROWID;
