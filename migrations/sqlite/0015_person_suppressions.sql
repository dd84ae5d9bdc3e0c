-- Persons whose new events are dropped at ingest after their data was deleted ("delete and
-- suppress", README "Deleting and exporting a person's data"). `person_id` is matched against
-- a message's userId and anonymousId. The id itself must be kept: it is what ingest compares.
CREATE TABLE person_suppressions (
    project_id INTEGER NOT NULL REFERENCES projects(id),
    person_id  TEXT    NOT NULL,
    created_at INTEGER NOT NULL,  -- unix milliseconds
    PRIMARY KEY (project_id, person_id)
) WITHOUT ROWID;
