-- The dashboard's Web page (docs/dashboard-web.md). Each project's time zone decides what
-- "today" is there: an IANA name, checked by the collector before it is stored.
ALTER TABLE projects ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';

-- One narrow row per page view of a person (bots left out, `context.bot = true`), with the
-- context fields the page breaks down by, so its queries read an index on (project, time)
-- instead of parsing every stored message. Kept in step with `events` by the triggers below:
-- ingest, person deletion and retention need not know about it.
CREATE TABLE web_pageviews (
    seq          INTEGER PRIMARY KEY,  -- events.seq
    project_id   INTEGER NOT NULL,
    ts           INTEGER NOT NULL,     -- the event's timestamp, unix milliseconds
    visitor      TEXT    NOT NULL,     -- anonymous id, else user id
    path         TEXT    NOT NULL,
    referrer     TEXT,                 -- the referring host, without "www."; NULL for none/self
    source       TEXT,
    medium       TEXT,
    utm_source   TEXT,
    utm_medium   TEXT,
    utm_campaign TEXT,
    country      TEXT,
    browser      TEXT,
    os           TEXT,
    device       TEXT
);
CREATE INDEX web_pageviews_by_time ON web_pageviews(project_id, ts);

-- The derivation, once: page messages of people as web_pageviews rows. Text is cut to 300
-- characters so that one row stays small whatever a sender puts in its context.
CREATE VIEW web_pageview_rows AS
SELECT seq, project_id, ts, visitor,
       substr(COALESCE(path, '/'), 1, 300) AS path,
       CASE WHEN ref_host <> '' AND ref_host IS NOT COALESCE(page_host, '') THEN substr(ref_host, 1, 300) END AS referrer,
       substr(source, 1, 300) AS source, substr(medium, 1, 300) AS medium,
       substr(utm_source, 1, 300) AS utm_source, substr(utm_medium, 1, 300) AS utm_medium,
       substr(utm_campaign, 1, 300) AS utm_campaign, substr(country, 1, 300) AS country,
       substr(browser, 1, 300) AS browser, substr(os, 1, 300) AS os, substr(device, 1, 300) AS device
FROM (
    SELECT seq, project_id, ts, visitor, path, source, medium, utm_source, utm_medium, utm_campaign,
           country, browser, os, device,
           lower(CASE WHEN substr(ref_rest, 1, 4) = 'www.' THEN substr(ref_rest, 5) ELSE ref_rest END) AS ref_host,
           lower(CASE WHEN substr(url_rest, 1, 4) = 'www.' THEN substr(url_rest, 5) ELSE url_rest END) AS page_host
    FROM (
        SELECT *,
               CASE WHEN instr(ref_tail, '/') > 0 THEN substr(ref_tail, 1, instr(ref_tail, '/') - 1) ELSE ref_tail END AS ref_rest,
               CASE WHEN instr(url_tail, '/') > 0 THEN substr(url_tail, 1, instr(url_tail, '/') - 1) ELSE url_tail END AS url_rest
        FROM (
            SELECT seq, project_id, timestamp AS ts, COALESCE(anonymous_id, user_id) AS visitor,
                   COALESCE(json_extract(body, '$.context.page.path'), json_extract(body, '$.properties.path')) AS path,
                   CASE WHEN instr(r, '://') > 0 THEN substr(r, instr(r, '://') + 3) END AS ref_tail,
                   CASE WHEN instr(u, '://') > 0 THEN substr(u, instr(u, '://') + 3) END AS url_tail,
                   json_extract(body, '$.context.source.name') AS source,
                   json_extract(body, '$.context.source.medium') AS medium,
                   json_extract(body, '$.context.campaign.source') AS utm_source,
                   json_extract(body, '$.context.campaign.medium') AS utm_medium,
                   json_extract(body, '$.context.campaign.name') AS utm_campaign,
                   json_extract(body, '$.context.location.country') AS country,
                   json_extract(body, '$.context.browser.name') AS browser,
                   json_extract(body, '$.context.os.name') AS os,
                   json_extract(body, '$.context.device.type') AS device
            FROM (
                SELECT *, CAST(COALESCE(json_extract(body, '$.context.page.referrer'), json_extract(body, '$.properties.referrer'), '') AS TEXT) AS r,
                          CAST(COALESCE(json_extract(body, '$.context.page.url'), json_extract(body, '$.properties.url'), '') AS TEXT) AS u
                FROM events
                WHERE type = 'page' AND json_valid(body) AND json_extract(body, '$.context.bot') IS NOT 1
                  AND COALESCE(anonymous_id, user_id) IS NOT NULL
            )
        )
    )
);

INSERT INTO web_pageviews SELECT * FROM web_pageview_rows;

-- The view's filter on `seq` reaches the events table's primary key: one row per insert.
CREATE TRIGGER web_pageviews_add AFTER INSERT ON events WHEN NEW.type = 'page'
BEGIN
    INSERT OR IGNORE INTO web_pageviews SELECT * FROM web_pageview_rows WHERE seq = NEW.seq;
END;

CREATE TRIGGER web_pageviews_forget AFTER DELETE ON events WHEN OLD.type = 'page'
BEGIN
    DELETE FROM web_pageviews WHERE seq = OLD.seq;
END;
