-- Which pages each visit viewed, and how often (docs/dashboard-web.md, "Filtered views"). A
-- page filter finds the visits that viewed its page through (project, path, start), one range
-- of this index, instead of each of the page's page views and the visit holding it (by
-- visitor and time); the page breakdown of a filtered view sums its visits' rows here instead
-- of reading their page views. The fold writes a visit's rows with the visit; they go with it.
CREATE TABLE web_visit_pages (
    visit_id    INTEGER NOT NULL,
    path        TEXT    NOT NULL,
    project_id  INTEGER NOT NULL,
    start_ts    INTEGER NOT NULL,  -- the visit's
    pageviews   INTEGER NOT NULL,  -- the visit's page views of this path
    PRIMARY KEY (visit_id, path)
) WITHOUT ROWID;
CREATE INDEX web_visit_pages_by_path ON web_visit_pages(project_id, path, start_ts);

-- Every way a visit goes (the fold recounting it, retention) takes its rows too.
CREATE TRIGGER web_visit_pages_gone AFTER DELETE ON web_visits
BEGIN
    DELETE FROM web_visit_pages WHERE visit_id = OLD.id;
END;

-- The visits already stored, from their page views: each visit's through the index by
-- visitor (without statistics SQLite chose the path index by project alone, reading every
-- page view of the project for each visit).
INSERT INTO web_visit_pages (visit_id, path, project_id, start_ts, pageviews)
SELECT v.id, p.path, v.project_id, v.start_ts, COUNT(*)
FROM web_visits v CROSS JOIN web_pageviews p INDEXED BY web_pageviews_by_visitor
  ON p.project_id = v.project_id AND p.visitor = v.visitor
 AND p.ts >= v.start_ts AND p.ts <= v.end_ts
GROUP BY v.id, p.path;
