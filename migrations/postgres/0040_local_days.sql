-- The active-user rollups are keyed by the calendar date in the project's time zone from now
-- on (see migrations/sqlite/0040_local_days.sql); -1 asks the rebuild (store::local_days) to
-- re-key the days of a project in another time zone than UTC from its stored events.
ALTER TABLE projects ADD COLUMN days_rebuild_next BIGINT;
ALTER TABLE projects ADD COLUMN days_rebuild_end BIGINT;

UPDATE projects SET days_rebuild_next = -1 WHERE timezone <> 'UTC';
