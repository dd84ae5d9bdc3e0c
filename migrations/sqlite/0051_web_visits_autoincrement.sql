-- Visit ids that are never reused. web_visits.id was a plain rowid, which SQLite gives the
-- next insert as the largest id + 1: after the newest visit is deleted (the fold replaces a
-- visit it recomputes, a person delete removes one), its id comes back. A time zone rebuild
-- walks the visits in id order behind a cursor and leaves to itself the visits past it, so a
-- new visit given an id at or below the cursor was counted by neither the fold nor the
-- rebuild. AUTOINCREMENT never hands out an id twice; SQLite cannot add it to a table, so the
-- table is rebuilt (one copy of the visits, with its indexes). PostgreSQL's ids come from a
-- sequence and never repeat.
CREATE TABLE web_visits_new (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id   INTEGER NOT NULL,
    visitor      TEXT    NOT NULL,
    start_ts     INTEGER NOT NULL,
    end_ts       INTEGER NOT NULL,
    pageviews    INTEGER NOT NULL,
    entry_page   TEXT    NOT NULL,
    exit_page    TEXT    NOT NULL,
    referrer     TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    utm_source   TEXT    NOT NULL,
    utm_medium   TEXT    NOT NULL,
    utm_campaign TEXT    NOT NULL,
    country      TEXT    NOT NULL,
    browser      TEXT    NOT NULL,
    os           TEXT    NOT NULL,
    device       TEXT    NOT NULL
);
INSERT INTO web_visits_new (id, project_id, visitor, start_ts, end_ts, pageviews, entry_page,
                            exit_page, referrer, source, utm_source, utm_medium, utm_campaign,
                            country, browser, os, device)
SELECT id, project_id, visitor, start_ts, end_ts, pageviews, entry_page, exit_page, referrer,
       source, utm_source, utm_medium, utm_campaign, country, browser, os, device
FROM web_visits ORDER BY id;
DROP TABLE web_visits;
ALTER TABLE web_visits_new RENAME TO web_visits;

CREATE INDEX web_visits_by_visitor ON web_visits(project_id, visitor, start_ts);
CREATE INDEX web_visits_by_start ON web_visits(project_id, start_ts);
CREATE INDEX web_visits_by_source ON web_visits(project_id, source, start_ts);
CREATE INDEX web_visits_by_referrer ON web_visits(project_id, referrer, start_ts);
CREATE INDEX web_visits_by_utm_source ON web_visits(project_id, utm_source, start_ts);
CREATE INDEX web_visits_by_utm_medium ON web_visits(project_id, utm_medium, start_ts);
CREATE INDEX web_visits_by_utm_campaign ON web_visits(project_id, utm_campaign, start_ts);
CREATE INDEX web_visits_by_country ON web_visits(project_id, country, start_ts);
CREATE INDEX web_visits_by_entry_page ON web_visits(project_id, entry_page, start_ts);
CREATE INDEX web_visits_by_exit_page ON web_visits(project_id, exit_page, start_ts);
