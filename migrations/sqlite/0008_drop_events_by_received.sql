-- Every index on events is paid on every ingested event (about a microsecond each on the
-- reference machine, examples/loadgen/RESULTS.md). This one served only retention and the
-- live tail, which now find the first event received after a time by a binary search over
-- seq (`FIRST_SEQ_RECEIVED_SINCE` in collector/src/store/sqlite.rs): events are stored in
-- the order they arrive, up to the moments a request waits for its commit.
DROP INDEX events_by_received;
