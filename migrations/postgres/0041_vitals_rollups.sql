-- Web Vitals rolled up at ingest (docs/architecture/analytics-at-scale.md, "Percentiles"): per
-- project, metric (LCP, INP, CLS, FCP, TTFB), UTC hour and whether bots sent them, the samples,
-- how many rated good and poor, and a quantile sketch (collector/src/domain/sketch.rs) that
-- merges with other hours' into a range's p75 within 1%.
CREATE TABLE vitals_hourly (
    project_id BIGINT  NOT NULL,
    metric     TEXT COLLATE "C" NOT NULL,
    hour       BIGINT  NOT NULL,  -- unix milliseconds at the start of the hour
    bot        BIGINT  NOT NULL,  -- 1: from bots (context.bot = true)
    samples    BIGINT  NOT NULL,
    good       BIGINT  NOT NULL,
    poor       BIGINT  NOT NULL,
    sketch     BYTEA   NOT NULL,
    PRIMARY KEY (project_id, metric, hour, bot)
);

-- The same per page path and UTC day, at most MAX_VITAL_PAGES paths per (project, metric, day,
-- bot); later paths count under '(other)'.
CREATE TABLE vitals_pages_daily (
    project_id BIGINT  NOT NULL,
    metric     TEXT COLLATE "C" NOT NULL,
    day        BIGINT  NOT NULL,  -- unix milliseconds at the start of the UTC day
    bot        BIGINT  NOT NULL,
    path       TEXT COLLATE "C" NOT NULL,
    samples    BIGINT  NOT NULL,
    good       BIGINT  NOT NULL,
    poor       BIGINT  NOT NULL,
    sketch     BYTEA   NOT NULL,
    PRIMARY KEY (project_id, metric, day, bot, path)
);

-- Web Vitals stored before this migration, rolled up afterwards by maintenance
-- (store::vitals_backfill), per project: events from `next_seq` to `end_seq` not yet read.
CREATE TABLE vitals_backfill (
    project_id BIGINT  PRIMARY KEY,
    next_seq   BIGINT  NOT NULL,
    end_seq    BIGINT  NOT NULL
);
INSERT INTO vitals_backfill (project_id, next_seq, end_seq)
SELECT id, 0, (SELECT MAX(seq) FROM events WHERE project_id = projects.id) FROM projects
WHERE EXISTS (SELECT 1 FROM events WHERE project_id = projects.id);
