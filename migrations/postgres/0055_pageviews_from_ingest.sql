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
