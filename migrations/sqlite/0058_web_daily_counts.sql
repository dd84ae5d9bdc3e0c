-- The day rows' counts without their visitor sketches (docs/dashboard-web.md, "Cost and
-- limits"). A breakdown ranks its values by summing a range of days of one dimension, and the
-- view's row budget counts the range's rows: through the table they read every row's sketch
-- too (up to 4 KB each; 18,000 rows for a path dimension over 90 days of 200 paths), through
-- this index only the numbers. The sketches are read for the candidates alone.
CREATE INDEX web_daily_counts ON web_daily (project_id, dim, day, value, visits, pageviews);
