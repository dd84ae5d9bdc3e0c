-- Filtered views of the Web page (docs/dashboard-web.md, "Filtered views") read only the
-- visits that match one of their filters, through its index, instead of every visit of the
-- period. Dimensions whose every value holds a large share of visits (browser, OS, device) get
-- none: reading them by start time costs little more, and each index is written by the fold.
CREATE INDEX web_visits_by_source ON web_visits(project_id, source, start_ts);
CREATE INDEX web_visits_by_referrer ON web_visits(project_id, referrer, start_ts);
CREATE INDEX web_visits_by_utm_source ON web_visits(project_id, utm_source, start_ts);
CREATE INDEX web_visits_by_utm_medium ON web_visits(project_id, utm_medium, start_ts);
CREATE INDEX web_visits_by_utm_campaign ON web_visits(project_id, utm_campaign, start_ts);
CREATE INDEX web_visits_by_country ON web_visits(project_id, country, start_ts);
CREATE INDEX web_visits_by_entry_page ON web_visits(project_id, entry_page, start_ts);
CREATE INDEX web_visits_by_exit_page ON web_visits(project_id, exit_page, start_ts);

-- A page filter reads the page views of that page in the period.
CREATE INDEX web_pageviews_by_path ON web_pageviews(project_id, path, ts);
