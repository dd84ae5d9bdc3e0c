-- Persons whose new events are dropped at ingest after their data was deleted (see
-- migrations/sqlite/0015).
CREATE TABLE person_suppressions (
    project_id BIGINT NOT NULL REFERENCES projects(id),
    person_id  TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, person_id)
);
