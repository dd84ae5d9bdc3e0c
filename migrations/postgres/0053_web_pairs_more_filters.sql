-- Browser, OS and UTM medium join source, country and device as pair filter dimensions
-- (`web_daily_pairs`, migration 0049; docs/dashboard-web.md, "Filtered views"): a single chip
-- on any of them reads its pair rows instead of visits.

-- The fold now appends to a pair row's visitor sketch without reading it; a sketch grown past
-- twice a dense one's bytes (`COMPACT_ABOVE`, 8,194) is rewritten short, found through this
-- index, which holds only those (the fold's query repeats its condition word for word).
CREATE INDEX web_daily_pairs_long ON web_daily_pairs (project_id) WHERE length(visitors) > 8194;

-- Projects with visits get their rollups rebuilt once, as after a time zone change (and as
-- migration 0049 did), so the new dimensions' pair rows cover their past too; the page reads
-- visits until it is done.
DELETE FROM web_daily WHERE project_id IN (SELECT DISTINCT project_id FROM web_visits);
DELETE FROM web_daily_pairs WHERE project_id IN (SELECT DISTINCT project_id FROM web_visits);
DELETE FROM web_pairs_dirty WHERE project_id IN (SELECT DISTINCT project_id FROM web_visits);
DELETE FROM web_hourly WHERE project_id IN (SELECT DISTINCT project_id FROM web_visits);
DELETE FROM web_daily_dirty WHERE project_id IN (SELECT DISTINCT project_id FROM web_visits);
DELETE FROM web_rebuild WHERE project_id IN (SELECT DISTINCT project_id FROM web_visits);
INSERT INTO web_rebuild (project_id) SELECT DISTINCT project_id FROM web_visits;
