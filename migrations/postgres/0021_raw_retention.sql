-- A project's own limit on how long raw events are kept (see migrations/sqlite/0021).
ALTER TABLE projects ADD COLUMN raw_retention_days INTEGER;
