-- Referrer, UTM source, UTM campaign, entry and exit page as pair filters, for their heavy
-- values only (docs/dashboard-web.md, "Heavy values"): their values have no bound, so a value
-- gets pair rows (`web_daily_pairs`) on a day once its visits of that day reach
-- `PULSELINE_WEB_PAIR_HEAVY_VISITS` (default 100). `paired` marks such a day row: its pair rows
-- are complete and the fold keeps them; a one-chip view reads the other days from visits.
ALTER TABLE web_daily ADD COLUMN paired SMALLINT NOT NULL DEFAULT 0;

-- Day rows that crossed the threshold and wait for their pair rows to be filled once from
-- their visits (the fold's pass after its chunks, a few per transaction).
CREATE TABLE web_pairs_fill (
    project_id  BIGINT  NOT NULL,
    dim         TEXT    NOT NULL,
    day         BIGINT  NOT NULL,
    value       TEXT    NOT NULL,
    PRIMARY KEY (project_id, dim, day, value)
);

-- The past: every day row of those dimensions already at the default threshold is queued, so
-- no rebuild is needed (the other rollups stay as they are); views read visits for a day
-- until its fill is done.
INSERT INTO web_pairs_fill (project_id, dim, day, value)
SELECT project_id, dim, day, value FROM web_daily
WHERE dim IN ('referrer', 'utm_source', 'utm_campaign', 'entry_page', 'exit_page')
  AND visits >= 100;
