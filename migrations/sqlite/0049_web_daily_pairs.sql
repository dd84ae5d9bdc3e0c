-- One-chip filtered views of the Web page (docs/dashboard-web.md, "Filtered views"): per day of
-- the project's time zone, for each value of a bounded filter dimension (`fdim`: source,
-- country, device), the visits that started in the day with that
-- value broken down by every other breakdown (`dim`, `value`: visits, their page views, bounces,
-- duration and a visitor sketch), and for dim 'page' the page views of those visits per path
-- (and who made them). Kept by the fold with `web_daily`, and read instead of the visits.
-- A table of its own rather than two more key columns on `web_daily`: every reader of the day
-- rows (unfiltered views, the driver's counts, the scan limit) would otherwise need them.
CREATE TABLE web_daily_pairs (
    project_id  INTEGER NOT NULL,
    fdim        TEXT    NOT NULL,
    fvalue      TEXT    NOT NULL,
    dim         TEXT    NOT NULL,
    day         INTEGER NOT NULL,
    value       TEXT    NOT NULL,
    visits      INTEGER NOT NULL DEFAULT 0,
    pageviews   INTEGER NOT NULL DEFAULT 0,
    bounces     INTEGER NOT NULL DEFAULT 0,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    visitors    BLOB    NOT NULL,
    PRIMARY KEY (project_id, fdim, fvalue, dim, day, value)
) WITHOUT ROWID;

-- Pair rows whose sketch may still hold a visitor who left them, as `web_daily_dirty`.
CREATE TABLE web_pairs_dirty (
    project_id  INTEGER NOT NULL,
    day         INTEGER NOT NULL,
    fdim        TEXT    NOT NULL,
    fvalue      TEXT    NOT NULL,
    dim         TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    PRIMARY KEY (project_id, day, fdim, fvalue, dim, value)
) WITHOUT ROWID;

-- A person's page view queued as removed (`web_visit_pending.removed`) is 1 when the page
-- pairs count it, 3 when it was still queued itself (never counted there), 2 once a fold took
-- it out of the pairs early (it recounted the visit holding it before the removal's turn).
-- Those a fold takes out early are found by visitor and time.
CREATE INDEX web_visit_pending_removed ON web_visit_pending(project_id, visitor, ts)
    WHERE removed = 1;

-- Projects with visits get their rollups rebuilt once, as after a time zone change, so the
-- pair rows cover their past too (the page reads visits until it is done).
DELETE FROM web_daily WHERE project_id IN (SELECT DISTINCT project_id FROM web_visits);
DELETE FROM web_hourly WHERE project_id IN (SELECT DISTINCT project_id FROM web_visits);
DELETE FROM web_daily_dirty WHERE project_id IN (SELECT DISTINCT project_id FROM web_visits);
DELETE FROM web_rebuild WHERE project_id IN (SELECT DISTINCT project_id FROM web_visits);
INSERT INTO web_rebuild (project_id) SELECT DISTINCT project_id FROM web_visits;
