-- Funnels read user_event_days by its key and want each row's first and last time
-- (store/funnels): with them in the key's index, step 1's grouped read and each next step's
-- seeks are index-only scans instead of one heap fetch per row (docs/benchmarks.md, "Funnels
-- from the per-user-event-day rollup"). The same index, not a second one: an update of those
-- columns (one per user, event and day at ingest) then writes one index entry, not two.
-- SQLite's table is WITHOUT ROWID: its key already holds every column.
ALTER TABLE user_event_days
    DROP CONSTRAINT user_event_days_pkey,
    ADD CONSTRAINT user_event_days_pkey PRIMARY KEY (project_id, name, user_key, day)
        INCLUDE (first_ts, last_ts);
