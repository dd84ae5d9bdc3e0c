-- A project's own limit on how long raw events are kept, below its plan's retention
-- (docs/privacy.md, "Retention"); NULL keeps them as long as the plan does. Rollups follow
-- the plan's retention either way.
ALTER TABLE projects ADD COLUMN raw_retention_days INTEGER;
