-- The active-user rollups (active_users_daily, active_users_days, users_last_seen) are keyed by
-- the calendar date in the project's time zone from now on: `day` is that date's 00:00 UTC in
-- unix milliseconds, so keys stay 86 400 000 apart across DST changes. UTC projects keep their
-- keys. A project in another time zone has its days re-keyed from the stored events by the
-- rebuild (store::local_days), day by day from `days_rebuild_next` to `days_rebuild_end`
-- (exclusive day keys; NULL when nothing is pending). -1 asks the rebuild to choose the days.
ALTER TABLE projects ADD COLUMN days_rebuild_next INTEGER;
ALTER TABLE projects ADD COLUMN days_rebuild_end INTEGER;

UPDATE projects SET days_rebuild_next = -1 WHERE timezone <> 'UTC';
