-- The Web page's visits kept at ingest (docs/dashboard-web.md, "Cost and limits"): one row per
-- visit, and per-day rollups in the project's time zone that the page reads instead of page
-- views.

-- A visit: a visitor's page views with no gap over 30 minutes. Attributes are those of its
-- first page view; '' where it carries none (the value the page's "(none)" rows filter by).
CREATE TABLE web_visits (
    id           INTEGER PRIMARY KEY,
    project_id   INTEGER NOT NULL,
    visitor      TEXT    NOT NULL,
    start_ts     INTEGER NOT NULL,
    end_ts       INTEGER NOT NULL,
    pageviews    INTEGER NOT NULL,
    entry_page   TEXT    NOT NULL,
    exit_page    TEXT    NOT NULL,
    referrer     TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    utm_source   TEXT    NOT NULL,
    utm_medium   TEXT    NOT NULL,
    utm_campaign TEXT    NOT NULL,
    country      TEXT    NOT NULL,
    browser      TEXT    NOT NULL,
    os           TEXT    NOT NULL,
    device       TEXT    NOT NULL
);
CREATE INDEX web_visits_by_visitor ON web_visits(project_id, visitor, start_ts);
CREATE INDEX web_visits_by_start ON web_visits(project_id, start_ts);

-- A visitor's page views around a new one: what a visit is recomputed from.
CREATE INDEX web_pageviews_by_visitor ON web_pageviews(project_id, visitor, ts);

-- Per day of the project's time zone (`day`: its local midnight, unix ms): dim '' holds the
-- day's page views and the visitors who viewed a page in it (sketch), plus the visits that
-- started in it (visits, bounces, duration); dim 'page' the page views and visitors per path;
-- every other dimension the visits that started in the day per value (their page views,
-- bounces, duration and visitors). `visitors` is a HyperLogLog sketch
-- (collector/src/store/visits/sketch.rs).
CREATE TABLE web_daily (
    project_id  INTEGER NOT NULL,
    day         INTEGER NOT NULL,
    dim         TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    visits      INTEGER NOT NULL DEFAULT 0,
    pageviews   INTEGER NOT NULL DEFAULT 0,
    bounces     INTEGER NOT NULL DEFAULT 0,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    visitors    BLOB    NOT NULL,
    PRIMARY KEY (project_id, dim, day, value)
) WITHOUT ROWID;

-- Per hour of the project's time zone (`hour`: its local start, unix ms): the page views and
-- visitors the one-day charts show.
CREATE TABLE web_hourly (
    project_id  INTEGER NOT NULL,
    hour        INTEGER NOT NULL,
    pageviews   INTEGER NOT NULL DEFAULT 0,
    visitors    BLOB    NOT NULL,
    PRIMARY KEY (project_id, hour)
) WITHOUT ROWID;

-- Day rows whose sketch may still hold a visitor who left them (a visit that moved to another
-- value, a person deleted): rebuilt from the day's visits or page views by the next fold pass.
CREATE TABLE web_daily_dirty (
    project_id  INTEGER NOT NULL,
    day         INTEGER NOT NULL,
    dim         TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    PRIMARY KEY (project_id, day, dim, value)
) WITHOUT ROWID;

-- A project whose rollups are being rebuilt (its time zone changed): visits up to
-- `visit_cursor` (id) and page views up to `seq_cursor` are counted so far.
CREATE TABLE web_rebuild (
    project_id   INTEGER PRIMARY KEY,
    visit_cursor INTEGER NOT NULL DEFAULT 0,
    seq_cursor   INTEGER NOT NULL DEFAULT 0
);

-- Page views stored (or, with removed = 1, deleted with a person) and not yet folded into the
-- visits and rollups above. The collector folds them in the background, a chunk per
-- transaction; `queued_at` (unix ms) tells the page how far behind the fold is.
CREATE TABLE web_visit_pending (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    visitor    TEXT    NOT NULL,
    ts         INTEGER NOT NULL,
    path       TEXT    NOT NULL,
    removed    INTEGER NOT NULL DEFAULT 0,
    queued_at  INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
);
CREATE INDEX web_visit_pending_by_project ON web_visit_pending(project_id, id);
CREATE INDEX web_visit_pending_by_seq ON web_visit_pending(project_id, seq);

CREATE TRIGGER web_visit_pending_add AFTER INSERT ON web_pageviews
BEGIN
    INSERT INTO web_visit_pending (project_id, seq, visitor, ts, path)
    VALUES (NEW.project_id, NEW.seq, NEW.visitor, NEW.ts, NEW.path);
END;

-- Page views stored before this migration are folded in by the first passes.
INSERT INTO web_visit_pending (project_id, seq, visitor, ts, path)
SELECT project_id, seq, visitor, ts, path FROM web_pageviews ORDER BY seq;
