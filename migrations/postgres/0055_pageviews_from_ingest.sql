-- The Web page's page-view rows (0026) are written by the ingest statement itself
-- (collector/src/store/postgres/ingest.rs), not by a statement-level trigger on `events`: the
-- trigger's transition table copied every inserted events row, page view or not, to read back
-- the few page views (docs/postgres.md, "What an event costs"). Not additive: every replica
-- must run a release with this migration, or the old ones store page views without their row.
DROP TRIGGER web_pageviews_add ON events;
DROP FUNCTION web_pageviews_add();

-- What the ingest statement hands over for one stored page view with a visitor.
CREATE TYPE web_pageview_source AS (
    seq        BIGINT,
    project_id BIGINT,
    ts         BIGINT,
    visitor    TEXT,
    body       TEXT
);

-- The same derivation and the same fallback as the trigger had: a message PostgreSQL's JSON
-- cannot read must not fail the ingest commit, so then each row is tried on its own and the
-- unreadable ones are left out of the Web page.
CREATE FUNCTION web_pageviews_add(pages web_pageview_source[]) RETURNS VOID
LANGUAGE plpgsql AS $$
DECLARE
    r web_pageview_source;
BEGIN
    BEGIN
        INSERT INTO web_pageviews
        SELECT p.seq, p.project_id, p.ts, p.visitor, f.*
        FROM UNNEST(pages) p CROSS JOIN LATERAL web_pageview_fields(p.body) f
        ON CONFLICT DO NOTHING;
    EXCEPTION WHEN OTHERS THEN
        FOREACH r IN ARRAY pages LOOP
            BEGIN
                INSERT INTO web_pageviews
                SELECT r.seq, r.project_id, r.ts, r.visitor, f.*
                FROM web_pageview_fields(r.body) f
                ON CONFLICT DO NOTHING;
            EXCEPTION WHEN OTHERS THEN
                NULL;
            END;
        END LOOP;
    END;
END $$;

-- The same derivation as 0026, with the message parsed once: inlined, 0026's body repeated
-- `body::jsonb` in every expression that read `b` or `c` (about thirty parses of the message per
-- page view). OFFSET 0 keeps each level a subquery evaluated once per row.
CREATE OR REPLACE FUNCTION web_pageview_fields(body TEXT)
RETURNS TABLE (path TEXT, referrer TEXT, source TEXT, medium TEXT, utm_source TEXT,
               utm_medium TEXT, utm_campaign TEXT, country TEXT, browser TEXT, os TEXT, device TEXT)
LANGUAGE sql IMMUTABLE AS $$
    SELECT left(COALESCE(c #>> '{page,path}', b #>> '{properties,path}', '/'), 300),
           CASE WHEN ref_host IS DISTINCT FROM url_host THEN left(ref_host, 300) END,
           left(c #>> '{source,name}', 300), left(c #>> '{source,medium}', 300),
           left(c #>> '{campaign,source}', 300), left(c #>> '{campaign,medium}', 300),
           left(c #>> '{campaign,name}', 300), left(c #>> '{location,country}', 300),
           left(c #>> '{browser,name}', 300), left(c #>> '{os,name}', 300),
           left(c #>> '{device,type}', 300)
    FROM (SELECT b, c, web_host(ref) AS ref_host, web_host(url) AS url_host
          FROM (SELECT b,
                       CASE WHEN jsonb_typeof(b -> 'context') = 'object' THEN b -> 'context' END AS c,
                       COALESCE(b #>> '{context,page,referrer}', b #>> '{properties,referrer}') AS ref,
                       COALESCE(b #>> '{context,page,url}', b #>> '{properties,url}') AS url
                FROM (SELECT body::jsonb AS b OFFSET 0) j
                WHERE COALESCE(b #>> '{context,bot}', '') <> 'true'
                OFFSET 0) x
          OFFSET 0) h
$$;
