-- A page filter's one-chip view from pair rows (docs/dashboard-web.md, "Page filters"): for a
-- page on a day it had at least `PULSELINE_WEB_PAIR_HEAVY_VISITS` (100) page views, the visits
-- that started in the day and viewed it, in `web_daily_pairs` with fdim 'page': their totals
-- (dim ''), their values of every visit dimension, and the page views of every page they
-- viewed. Filled from the visits once the day is over and dropped whenever the fold changes
-- that day's visits (then filled again); `web_daily.paired` marks the page's day row.
--
-- The past: every page day row already at the default threshold is queued for its fill.
INSERT INTO web_pairs_fill (project_id, dim, day, value)
SELECT project_id, dim, day, value FROM web_daily
WHERE dim = 'page' AND pageviews >= 100
ON CONFLICT DO NOTHING;
