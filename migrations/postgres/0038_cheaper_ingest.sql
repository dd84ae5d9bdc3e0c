-- Cheaper ingest (docs/postgres.md, "What an event costs"). Every event adds a row to
-- `event_ids`; its B-tree on `received_at` served only retention, whose deletes walk the
-- oldest rows. Rows arrive in `received_at` order, so a BRIN index (a few pages for the whole
-- table, updated only when a block range's bounds move) finds them as well, and ingest no
-- longer pays a B-tree insert per event for it.
DROP INDEX event_ids_by_received;
CREATE INDEX event_ids_by_received ON event_ids USING brin (received_at);

-- A body too large to stay inline is compressed with lz4 rather than pglz (several times
-- faster at a similar ratio). New partitions inherit the parent's setting; existing ones are
-- set one by one. Servers built without lz4 keep pglz.
DO $$
DECLARE
    part REGCLASS;
BEGIN
    ALTER TABLE events ALTER COLUMN body SET COMPRESSION lz4;
    FOR part IN SELECT inhrelid::REGCLASS FROM pg_inherits WHERE inhparent = 'events'::REGCLASS
    LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN body SET COMPRESSION lz4', part);
    END LOOP;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 is not available on this server; event bodies keep pglz';
END $$;
