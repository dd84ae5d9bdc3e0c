-- Which pages each visit viewed, and how often: see migrations/sqlite/0057_web_visit_pages.sql
-- and docs/dashboard-web.md, "Filtered views". The fold writes a visit's rows with the visit;
-- the foreign key takes them with it (the fold recounting it, retention).
CREATE TABLE web_visit_pages (
    visit_id    BIGINT NOT NULL REFERENCES web_visits (id) ON DELETE CASCADE,
    path        TEXT   NOT NULL,
    project_id  BIGINT NOT NULL,
    start_ts    BIGINT NOT NULL,
    pageviews   BIGINT NOT NULL,
    PRIMARY KEY (visit_id, path)
);
CREATE INDEX web_visit_pages_by_path ON web_visit_pages(project_id, path, start_ts);

-- Each visit's page views through the index by visitor: a hash join on the visitor matches
-- every visit of a visitor with every page view of theirs, which grows with the square of a
-- visitor's visits (docs/dashboard-web.md, "Upgrading to 0057").
SET LOCAL enable_hashjoin = off;
SET LOCAL enable_mergejoin = off;
INSERT INTO web_visit_pages (visit_id, path, project_id, start_ts, pageviews)
SELECT v.id, p.path, v.project_id, v.start_ts, COUNT(*)
FROM web_visits v JOIN web_pageviews p
  ON p.project_id = v.project_id AND p.visitor = v.visitor
 AND p.ts >= v.start_ts AND p.ts <= v.end_ts
GROUP BY v.id, p.path;
