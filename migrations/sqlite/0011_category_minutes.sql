-- The per-category flood cap (README "Alerting: categories, channels and delivery"): how many
-- events each category matched per minute of receipt, how many of them became their own
-- message (at most PULSELINE_CATEGORY_MAX_PER_MINUTE), and whether the one "and N more"
-- message for the rest is in the outbox. Counted inside the ingest commit, so every replica
-- sharing the database counts against the same row.
CREATE TABLE category_minutes (
    category_id BIGINT NOT NULL,
    minute      BIGINT NOT NULL,  -- unix ms of the minute's start
    project_id  BIGINT NOT NULL,
    channel_id  BIGINT NOT NULL,
    matched     BIGINT NOT NULL,
    sent        BIGINT NOT NULL,
    summarized  BIGINT NOT NULL DEFAULT 0,  -- 1 once the summary is in the outbox
    PRIMARY KEY (category_id, minute)
);
CREATE INDEX category_minutes_by_minute ON category_minutes(minute);
