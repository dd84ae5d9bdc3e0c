-- The day rows' counts without their visitor sketches (docs/dashboard-web.md, "Cost and
-- limits"). A breakdown ranks its values by summing a range of days of one dimension, and the
-- view's row budget counts the range's rows: an index-only scan of this index reads the
-- numbers, not the rows with their sketches. The sketches are read for the candidates alone.
CREATE INDEX web_daily_counts ON web_daily (project_id, dim, day, value) INCLUDE (visits, pageviews);
