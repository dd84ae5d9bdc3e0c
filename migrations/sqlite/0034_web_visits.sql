-- The Web page's visits kept at ingest (docs/dashboard-web.md, "Cost and limits"): one row per
-- visit, and per-hour rollups the page reads instead of page views.

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

-- Per UTC hour: dim '' holds the hour's page views and the visitors who viewed a page in it
-- (sketch), plus the visits that started in it (visits, bounces, duration); dim 'page' the
-- page views and visitors per path; every other dimension the visits that started in the hour
-- per value (their page views, bounces, duration and visitors). `visitors` is a HyperLogLog
-- sketch (collector/src/store/visits/sketch.rs).
CREATE TABLE web_hourly (
    project_id  INTEGER NOT NULL,
    hour        INTEGER NOT NULL,
    dim         TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    visits      INTEGER NOT NULL DEFAULT 0,
    pageviews   INTEGER NOT NULL DEFAULT 0,
    bounces     INTEGER NOT NULL DEFAULT 0,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    visitors    BLOB    NOT NULL,
    PRIMARY KEY (project_id, dim, hour, value)
) WITHOUT ROWID;

-- Page views stored (or, with removed = 1, deleted with a person) and not yet folded into
-- the visits and rollups above. The collector folds them right after each commit and before
-- every read of the page, in one transaction per chunk.
CREATE TABLE web_visit_pending (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    visitor    TEXT    NOT NULL,
    ts         INTEGER NOT NULL,
    path       TEXT    NOT NULL,
    removed    INTEGER NOT NULL DEFAULT 0
);

CREATE TRIGGER web_visit_pending_add AFTER INSERT ON web_pageviews
BEGIN
    INSERT INTO web_visit_pending (project_id, visitor, ts, path)
    VALUES (NEW.project_id, NEW.visitor, NEW.ts, NEW.path);
END;

-- Page views stored before this migration are folded in by the first pass.
INSERT INTO web_visit_pending (project_id, visitor, ts, path)
SELECT project_id, visitor, ts, path FROM web_pageviews ORDER BY seq;
