-- Web Vitals rolled up at ingest (docs/architecture/analytics-at-scale.md, "Percentiles"): per
-- project, metric (LCP, INP, CLS, FCP, TTFB), UTC hour and whether bots sent them, the samples,
-- how many rated good and poor, and a quantile sketch (collector/src/domain/sketch.rs) that
-- merges with other hours' into a range's p75 within 1%.
CREATE TABLE vitals_hourly (
    project_id INTEGER NOT NULL,
    metric     TEXT    NOT NULL,
    hour       INTEGER NOT NULL,  -- unix milliseconds at the start of the hour
    bot        INTEGER NOT NULL,  -- 1: from bots (context.bot = true)
    samples    INTEGER NOT NULL,
    good       INTEGER NOT NULL,
    poor       INTEGER NOT NULL,
    sketch     BLOB    NOT NULL,
    PRIMARY KEY (project_id, metric, hour, bot)
) WITHOUT ROWID;

-- The same per page path and UTC day, at most MAX_VITAL_PAGES paths per (project, metric, day,
-- bot); later paths count under '(other)'.
CREATE TABLE vitals_pages_daily (
    project_id INTEGER NOT NULL,
    metric     TEXT    NOT NULL,
    day        INTEGER NOT NULL,  -- unix milliseconds at the start of the UTC day
    bot        INTEGER NOT NULL,
    path       TEXT    NOT NULL,
    samples    INTEGER NOT NULL,
    good       INTEGER NOT NULL,
    poor       INTEGER NOT NULL,
    sketch     BLOB    NOT NULL,
    PRIMARY KEY (project_id, metric, day, bot, path)
) WITHOUT ROWID;

-- Web Vitals stored before this migration, rolled up afterwards by maintenance
-- (store::vitals_backfill), per project: events from `next_seq` to `end_seq` not yet read.
CREATE TABLE vitals_backfill (
    project_id INTEGER PRIMARY KEY,
    next_seq   INTEGER NOT NULL,
    end_seq    INTEGER NOT NULL
);
INSERT INTO vitals_backfill (project_id, next_seq, end_seq)
SELECT id, 0, (SELECT MAX(seq) FROM events WHERE project_id = projects.id) FROM projects
WHERE EXISTS (SELECT 1 FROM events WHERE project_id = projects.id);
