-- The Web page's visits kept at ingest: see migrations/sqlite/0034_web_visits.sql and
-- docs/dashboard-web.md.
CREATE TABLE web_visits (
    id           BIGSERIAL PRIMARY KEY,
    project_id   BIGINT NOT NULL,
    visitor      TEXT   NOT NULL,
    start_ts     BIGINT NOT NULL,
    end_ts       BIGINT NOT NULL,
    pageviews    BIGINT NOT NULL,
    entry_page   TEXT   NOT NULL,
    exit_page    TEXT   NOT NULL,
    referrer     TEXT   NOT NULL,
    source       TEXT   NOT NULL,
    utm_source   TEXT   NOT NULL,
    utm_medium   TEXT   NOT NULL,
    utm_campaign TEXT   NOT NULL,
    country      TEXT   NOT NULL,
    browser      TEXT   NOT NULL,
    os           TEXT   NOT NULL,
    device       TEXT   NOT NULL
);
CREATE INDEX web_visits_by_visitor ON web_visits(project_id, visitor, start_ts);
CREATE INDEX web_visits_by_start ON web_visits(project_id, start_ts);

CREATE INDEX web_pageviews_by_visitor ON web_pageviews(project_id, visitor, ts);

CREATE TABLE web_daily (
    project_id  BIGINT NOT NULL,
    day         BIGINT NOT NULL,
    dim         TEXT   NOT NULL,
    value       TEXT   NOT NULL,
    visits      BIGINT NOT NULL DEFAULT 0,
    pageviews   BIGINT NOT NULL DEFAULT 0,
    bounces     BIGINT NOT NULL DEFAULT 0,
    duration_ms BIGINT NOT NULL DEFAULT 0,
    visitors    BYTEA  NOT NULL,
    PRIMARY KEY (project_id, dim, day, value)
);

CREATE TABLE web_hourly (
    project_id  BIGINT NOT NULL,
    hour        BIGINT NOT NULL,
    pageviews   BIGINT NOT NULL DEFAULT 0,
    visitors    BYTEA  NOT NULL,
    PRIMARY KEY (project_id, hour)
);

CREATE TABLE web_daily_dirty (
    project_id  BIGINT NOT NULL,
    day         BIGINT NOT NULL,
    dim         TEXT   NOT NULL,
    value       TEXT   NOT NULL,
    PRIMARY KEY (project_id, day, dim, value)
);

CREATE TABLE web_rebuild (
    project_id   BIGINT PRIMARY KEY,
    visit_cursor BIGINT NOT NULL DEFAULT 0,
    seq_cursor   BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE web_visit_pending (
    id         BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    visitor    TEXT   NOT NULL,
    ts         BIGINT NOT NULL,
    path       TEXT   NOT NULL,
    removed    BIGINT NOT NULL DEFAULT 0,
    queued_at  BIGINT NOT NULL DEFAULT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT
);
CREATE INDEX web_visit_pending_by_project ON web_visit_pending(project_id, id);
CREATE INDEX web_visit_pending_by_seq ON web_visit_pending(project_id, seq);

CREATE FUNCTION web_visit_pending_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO web_visit_pending (project_id, seq, visitor, ts, path)
    SELECT project_id, seq, visitor, ts, path FROM new_rows ORDER BY seq;
    RETURN NULL;
END $$;

CREATE TRIGGER web_visit_pending_add AFTER INSERT ON web_pageviews
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION web_visit_pending_add();

INSERT INTO web_visit_pending (project_id, seq, visitor, ts, path)
SELECT project_id, seq, visitor, ts, path FROM web_pageviews ORDER BY seq;
