-- Each rule's series, one row per closed bucket, computed once (docs/alerting.md, "How a rule
-- is evaluated"). `series_hash` identifies the series definition the value was computed for:
-- a rule whose series changes reads none of the old rows, and the evaluator drops them.
-- `value` NULL: the bucket was computed and had no matching events (or no numeric value).
-- Rows are never updated: the first evaluator to store a bucket wins (ON CONFLICT DO NOTHING).
CREATE TABLE rule_buckets (
    rule_id      INTEGER NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    series_hash  INTEGER NOT NULL,
    bucket_start INTEGER NOT NULL,  -- unix milliseconds
    value        REAL,
    PRIMARY KEY (rule_id, series_hash, bucket_start)
) WITHOUT ROWID;
