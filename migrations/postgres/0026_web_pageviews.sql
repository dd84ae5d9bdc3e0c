-- The dashboard's Web page (see migrations/sqlite/0026 and docs/dashboard-web.md): each
-- project's time zone, and one narrow row per page view of a person, kept in step with
-- `events` by statement-level triggers (transition tables: one statement per ingest commit).
ALTER TABLE projects ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';

CREATE TABLE web_pageviews (
    seq          BIGINT PRIMARY KEY,  -- events.seq
    project_id   BIGINT NOT NULL,
    ts           BIGINT NOT NULL,     -- the event's timestamp, unix milliseconds
    visitor      TEXT   NOT NULL,     -- anonymous id, else user id
    path         TEXT   NOT NULL,
    referrer     TEXT,                -- the referring host, without "www."; NULL for none/self
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

-- A host from a URL, lower-case, without "www."; NULL when it is not an absolute URL.
CREATE FUNCTION web_host(url TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
    SELECT regexp_replace(lower(substring(url from '^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]+)')), '^www\.', '')
$$;

-- The derivation, once: the columns of one page message (text cut to 300 characters, so one
-- row stays small whatever a sender puts in its context). No row for bots.
CREATE FUNCTION web_pageview_fields(body TEXT)
RETURNS TABLE (path TEXT, referrer TEXT, source TEXT, medium TEXT, utm_source TEXT,
               utm_medium TEXT, utm_campaign TEXT, country TEXT, browser TEXT, os TEXT, device TEXT)
LANGUAGE sql IMMUTABLE AS $$
    SELECT left(COALESCE(c #>> '{page,path}', b #>> '{properties,path}', '/'), 300),
           CASE WHEN web_host(ref) IS DISTINCT FROM web_host(url) THEN left(web_host(ref), 300) END,
           left(c #>> '{source,name}', 300), left(c #>> '{source,medium}', 300),
           left(c #>> '{campaign,source}', 300), left(c #>> '{campaign,medium}', 300),
           left(c #>> '{campaign,name}', 300), left(c #>> '{location,country}', 300),
           left(c #>> '{browser,name}', 300), left(c #>> '{os,name}', 300),
           left(c #>> '{device,type}', 300)
    FROM (SELECT b, CASE WHEN jsonb_typeof(b -> 'context') = 'object' THEN b -> 'context' END AS c,
                 COALESCE(b #>> '{context,page,referrer}', b #>> '{properties,referrer}') AS ref,
                 COALESCE(b #>> '{context,page,url}', b #>> '{properties,url}') AS url
          FROM (SELECT body::jsonb AS b) j) x
    WHERE COALESCE(b #>> '{context,bot}', '') <> 'true'
$$;

INSERT INTO web_pageviews
SELECT e.seq, e.project_id, e.timestamp, COALESCE(e.anonymous_id, e.user_id), f.*
FROM events e CROSS JOIN LATERAL web_pageview_fields(e.body) f
WHERE e.type = 'page' AND COALESCE(e.anonymous_id, e.user_id) IS NOT NULL
  AND strpos(e.body, '\u0000') = 0
ON CONFLICT DO NOTHING;

-- One set-based insert per ingest statement. A message PostgreSQL's JSON cannot read (a
-- \u0000 escape, which jsonb refuses) must not fail the ingest commit: then each row is tried
-- on its own and the unreadable ones are left out of the Web page.
CREATE FUNCTION web_pageviews_add() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r RECORD;
BEGIN
    BEGIN
        INSERT INTO web_pageviews
        SELECT n.seq, n.project_id, n.timestamp, COALESCE(n.anonymous_id, n.user_id), f.*
        FROM new_rows n CROSS JOIN LATERAL web_pageview_fields(n.body) f
        WHERE n.type = 'page' AND COALESCE(n.anonymous_id, n.user_id) IS NOT NULL
        ON CONFLICT DO NOTHING;
    EXCEPTION WHEN OTHERS THEN
        FOR r IN SELECT * FROM new_rows WHERE type = 'page'
                 AND COALESCE(anonymous_id, user_id) IS NOT NULL LOOP
            BEGIN
                INSERT INTO web_pageviews
                SELECT r.seq, r.project_id, r.timestamp, COALESCE(r.anonymous_id, r.user_id), f.*
                FROM web_pageview_fields(r.body) f
                ON CONFLICT DO NOTHING;
            EXCEPTION WHEN OTHERS THEN
                NULL;
            END;
        END LOOP;
    END;
    RETURN NULL;
END $$;

CREATE TRIGGER web_pageviews_add AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION web_pageviews_add();

-- Person deletion and retention's row deletes; retention's dropped partitions are followed by
-- a delete by time (collector/src/store/postgres.rs, apply_retention).
CREATE FUNCTION web_pageviews_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM web_pageviews w USING old_rows o WHERE w.seq = o.seq AND o.type = 'page';
    RETURN NULL;
END $$;

CREATE TRIGGER web_pageviews_forget AFTER DELETE ON events
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION web_pageviews_forget();
