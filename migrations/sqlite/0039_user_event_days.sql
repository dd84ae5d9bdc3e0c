-- Funnels without scanning events (docs/architecture/analytics-at-scale.md, "Funnels"): per
-- (project, event name, user, UTC day) how many events and the first and last timestamps.
-- Ingest upserts it for the rows it stores (bots left out, as in every analytics rollup);
-- deleting a person removes their rows; raw-event retention keeps them (rollups follow the
-- plan). Keyed by name then user so that one step's rows come in user order from the key.
CREATE TABLE user_event_days (
    project_id INTEGER NOT NULL,
    name       TEXT    NOT NULL,  -- the rollup name: the track event, else '$' || type
    user_key   TEXT    NOT NULL,  -- userId, else anonymousId
    day        INTEGER NOT NULL,  -- unix milliseconds at 00:00 UTC
    events     INTEGER NOT NULL,
    first_ts   INTEGER NOT NULL,  -- unix milliseconds
    last_ts    INTEGER NOT NULL,
    PRIMARY KEY (project_id, name, user_key, day)
) WITHOUT ROWID;

-- The events already stored: one pass over the table, grouped (a sort of every event).
INSERT INTO user_event_days (project_id, name, user_key, day, events, first_ts, last_ts)
SELECT project_id,
       CASE WHEN type = 'track' THEN event ELSE '$' || type END,
       COALESCE(user_id, anonymous_id),
       timestamp - ((timestamp % 86400000) + 86400000) % 86400000,
       COUNT(*), MIN(timestamp), MAX(timestamp)
FROM events
WHERE COALESCE(user_id, anonymous_id) IS NOT NULL
  AND (type <> 'track' OR event IS NOT NULL)
  AND NOT COALESCE(instr(body, '"bot"') > 0 AND json_type(body, '$.context.bot') = 'true', 0)
GROUP BY 1, 2, 3, 4;
