-- Tracked properties (docs/architecture/analytics-at-scale.md, "Tracked properties"): the
-- property keys a project rolls up by value, so that Explore answers a filter and a group-by on
-- them from rollups instead of raw events.

-- One row per tracked key. Ingest counts the events stored after `end_seq` (the project's
-- newest seq when tracking started); maintenance adds those up to it from the stored events,
-- `next_seq` being the first not yet read. The key's rollup is complete once next_seq > end_seq.
-- `generation` orders the keys by when they were tracked (greater: later), also among keys
-- tracked with the same end_seq: a pair's rows before both keys' end_seq are the later one's.
CREATE TABLE tracked_properties (
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    key        TEXT    NOT NULL,
    next_seq   BIGINT NOT NULL,
    end_seq    BIGINT NOT NULL,
    generation BIGINT NOT NULL,
    PRIMARY KEY (project_id, key)
);

-- Non-bot events per (project, rollup name, UTC hour) by the value of one tracked key
-- (key_b = '', value_b = ''), by a pair of values of two tracked keys (key_a < key_b), or without
-- a value for key_a (key_b = '', value_a = '', value_b = '(none)').
CREATE TABLE rollups_props_hourly (
    project_id BIGINT NOT NULL,
    key_a      TEXT    NOT NULL,
    key_b      TEXT    NOT NULL,
    event      TEXT    NOT NULL,
    hour       BIGINT NOT NULL,  -- unix milliseconds at the start of the hour
    value_a    TEXT    NOT NULL,
    value_b    TEXT    NOT NULL,
    events     BIGINT NOT NULL,
    PRIMARY KEY (project_id, key_a, key_b, event, hour, value_a, value_b)
);

-- The values each (project, key, rollup name, UTC day) holds, at most MAX_TRACKED_VALUES; past
-- it (or for a value longer than MAX_TRACKED_VALUE_BYTES) the day is capped: Explore reads raw
-- events for ranges that touch it.
CREATE TABLE tracked_property_values (
    project_id BIGINT NOT NULL,
    key        TEXT    NOT NULL,
    event      TEXT    NOT NULL,
    day        BIGINT NOT NULL,  -- unix milliseconds at the start of the UTC day
    value      TEXT    NOT NULL,
    PRIMARY KEY (project_id, key, event, day, value)
);

CREATE TABLE tracked_property_days (
    project_id BIGINT NOT NULL,
    key        TEXT    NOT NULL,
    event      TEXT    NOT NULL,
    day        BIGINT NOT NULL,
    values_seen BIGINT NOT NULL,
    capped     BOOLEAN NOT NULL,  -- true: the rollup cannot answer this key on this day
    PRIMARY KEY (project_id, key, day, event)
);
