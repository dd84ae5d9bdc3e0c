//! The fold's batched statements: a chunk's keys travel as ONE JSON text parameter, unpacked
//! by `json_each` (SQLite) or `jsonb_array_elements` (PostgreSQL), so a statement's cost does
//! not grow with a parameter count (sqlx looks each `$n` up by name on SQLite). On SQLite the
//! JSON rows stay the outer loop (`CROSS JOIN`): one index seek per key.

use crate::store::Backend;

/// `web_daily` rows of the JSON array `$1` of `[project, dim, day, value]` keys, with
/// whether each has pair rows (`paired`, migration 0056).
pub(crate) fn day_rows(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "SELECT w.project_id, w.dim, w.day, w.value, w.visits, w.pageviews, w.bounces,
                    w.duration_ms, w.visitors, w.paired
             FROM json_each($1) AS k CROSS JOIN web_daily AS w
             WHERE w.project_id = json_extract(k.value, '$[0]')
               AND w.dim = json_extract(k.value, '$[1]')
               AND w.day = json_extract(k.value, '$[2]')
               AND w.value = json_extract(k.value, '$[3]')"
        }
        Backend::Postgres => {
            "SELECT w.project_id, w.dim, w.day, w.value, w.visits, w.pageviews, w.bounces,
                    w.duration_ms, w.visitors, CAST(w.paired AS BIGINT) AS paired
             FROM jsonb_array_elements($1::text::jsonb) AS k(v)
             JOIN web_daily AS w
               ON w.project_id = (k.v ->> 0)::bigint AND w.dim = k.v ->> 1
              AND w.day = (k.v ->> 2)::bigint AND w.value = k.v ->> 3"
        }
    }
}

/// The visits of the `web_daily` rows of the JSON array `$1` of `[project, dim, day, value]`
/// keys: how many entries an index range of a value's day holds, without the sketches.
pub(crate) fn day_visits(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "SELECT w.project_id, w.dim, w.day, w.value, w.visits
             FROM json_each($1) AS k CROSS JOIN web_daily AS w
             WHERE w.project_id = json_extract(k.value, '$[0]')
               AND w.dim = json_extract(k.value, '$[1]')
               AND w.day = json_extract(k.value, '$[2]')
               AND w.value = json_extract(k.value, '$[3]')"
        }
        Backend::Postgres => {
            "SELECT w.project_id, w.dim, w.day, w.value, w.visits
             FROM jsonb_array_elements($1::text::jsonb) AS k(v)
             JOIN web_daily AS w
               ON w.project_id = (k.v ->> 0)::bigint AND w.dim = k.v ->> 1
              AND w.day = (k.v ->> 2)::bigint AND w.value = k.v ->> 3"
        }
    }
}

/// The `ON CONFLICT` clause of the fold's pair row upsert: sums move by the row's deltas and
/// the sketch gets the new row's triples (its bytes after the tag) appended, unread
/// (sketch.rs; a stored sketch of either form stays valid). SQLite's `||` makes text of two
/// blobs, byte for byte; the cast keeps the column a blob.
pub(crate) fn pair_upsert(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            " ON CONFLICT (project_id, fdim, fvalue, dim, day, value) DO UPDATE SET
                 visits = web_daily_pairs.visits + excluded.visits,
                 pageviews = web_daily_pairs.pageviews + excluded.pageviews,
                 bounces = web_daily_pairs.bounces + excluded.bounces,
                 duration_ms = web_daily_pairs.duration_ms + excluded.duration_ms,
                 visitors = CASE
                     WHEN length(excluded.visitors) <= 1 THEN web_daily_pairs.visitors
                     WHEN length(web_daily_pairs.visitors) = 0 THEN excluded.visitors
                     ELSE CAST(web_daily_pairs.visitors || substr(excluded.visitors, 2) AS BLOB)
                 END"
        }
        Backend::Postgres => {
            " ON CONFLICT (project_id, fdim, fvalue, dim, day, value) DO UPDATE SET
                 visits = web_daily_pairs.visits + excluded.visits,
                 pageviews = web_daily_pairs.pageviews + excluded.pageviews,
                 bounces = web_daily_pairs.bounces + excluded.bounces,
                 duration_ms = web_daily_pairs.duration_ms + excluded.duration_ms,
                 visitors = CASE
                     WHEN length(excluded.visitors) <= 1 THEN web_daily_pairs.visitors
                     WHEN length(web_daily_pairs.visitors) = 0 THEN excluded.visitors
                     ELSE web_daily_pairs.visitors || substring(excluded.visitors from 2)
                 END"
        }
    }
}

/// Deletes the pair rows of the JSON array `$1` of `[project, fdim, fvalue, dim, day, value]`
/// keys that hold no visit and no page view any more.
pub(crate) fn delete_empty_pairs(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "DELETE FROM web_daily_pairs
             WHERE (project_id, fdim, fvalue, dim, day, value) IN (
                 SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),
                        json_extract(value, '$[2]'), json_extract(value, '$[3]'),
                        json_extract(value, '$[4]'), json_extract(value, '$[5]')
                 FROM json_each($1))
               AND visits <= 0 AND pageviews <= 0"
        }
        Backend::Postgres => {
            "DELETE FROM web_daily_pairs
             WHERE (project_id, fdim, fvalue, dim, day, value) IN (
                 SELECT (k ->> 0)::bigint, k ->> 1, k ->> 2, k ->> 3, (k ->> 4)::bigint, k ->> 5
                 FROM jsonb_array_elements($1::text::jsonb) AS k)
               AND visits <= 0 AND pageviews <= 0"
        }
    }
}

/// The pair rows whose sketch grew past `COMPACT_ABOVE` bytes, through the partial index of
/// migration 0053 (its condition, word for word, so the planners use it).
pub(crate) const LONG_PAIR_SKETCHES: &str =
    "SELECT project_id, fdim, fvalue, dim, day, value, visitors FROM web_daily_pairs
     WHERE length(visitors) > 8194";

/// `web_hourly` rows of the JSON array `$1` of `[project, hour]` keys.
pub(crate) fn hour_rows(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "SELECT w.project_id, w.hour, w.pageviews, w.visitors
             FROM json_each($1) AS k CROSS JOIN web_hourly AS w
             WHERE w.project_id = json_extract(k.value, '$[0]')
               AND w.hour = json_extract(k.value, '$[1]')"
        }
        Backend::Postgres => {
            "SELECT w.project_id, w.hour, w.pageviews, w.visitors
             FROM jsonb_array_elements($1::text::jsonb) AS k(v)
             JOIN web_hourly AS w
               ON w.project_id = (k.v ->> 0)::bigint AND w.hour = (k.v ->> 1)::bigint"
        }
    }
}

/// The windows of the JSON array `$1` of `[i, project, visitor, lo, hi]` as a table
/// `t(i, p, v, lo, hi)`, for the two reads below.
fn windows(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "(SELECT json_extract(value, '$[0]') AS i, json_extract(value, '$[1]') AS p,
                     json_extract(value, '$[2]') AS v, json_extract(value, '$[3]') AS lo,
                     json_extract(value, '$[4]') AS hi
              FROM json_each($1))"
        }
        Backend::Postgres => {
            "(SELECT (e ->> 0)::bigint AS i, (e ->> 1)::bigint AS p, e ->> 2 AS v,
                     (e ->> 3)::bigint AS lo, (e ->> 4)::bigint AS hi
              FROM jsonb_array_elements($1::text::jsonb) AS e)"
        }
    }
}

fn join(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "CROSS JOIN",
        Backend::Postgres => "JOIN",
    }
}

/// Per window `i`, the stored visits that can change with page views in `[lo + gap,
/// hi - gap]`: those starting in `[lo, hi]`, and the one before that reaches `lo`.
pub(crate) fn window_visits(backend: Backend, columns: &str) -> String {
    let (t, join) = (windows(backend), join(backend));
    format!(
        "SELECT t.i, w.id, {columns} FROM {t} AS t {join} web_visits AS w
         ON w.project_id = t.p AND w.visitor = t.v AND w.start_ts >= t.lo AND w.start_ts <= t.hi
         UNION ALL
         SELECT t.i, w.id, {columns} FROM {t} AS t {join} web_visits AS w
         ON w.id = (SELECT x.id FROM web_visits AS x
                    WHERE x.project_id = t.p AND x.visitor = t.v AND x.start_ts < t.lo
                    ORDER BY x.start_ts DESC LIMIT 1)
         WHERE w.end_ts >= t.lo",
        columns = columns
            .split(", ")
            .map(|c| format!("w.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Per window `i`, the visitor's page views in `[lo, hi]`, and whether each is still queued
/// past the chunk (the page pairs count only folded page views).
pub(crate) fn window_page_views(backend: Backend) -> String {
    let (t, join) = (windows(backend), join(backend));
    format!(
        "SELECT t.i, pv.seq, pv.ts, pv.path, pv.referrer, pv.source, pv.utm_source,
                pv.utm_medium, pv.utm_campaign, pv.country, pv.browser, pv.os, pv.device,
                CAST(CASE WHEN EXISTS (SELECT 1 FROM web_visit_pending q
                     WHERE q.project_id = pv.project_id AND q.seq = pv.seq AND q.removed = 0)
                     THEN 1 ELSE 0 END AS BIGINT) AS queued
         FROM {t} AS t {join} web_pageviews AS pv
         ON pv.project_id = t.p AND pv.visitor = t.v AND pv.ts >= t.lo AND pv.ts <= t.hi"
    )
}

/// Per key `i` of `$1` (as the windows'), the paths of its visitor's page views in `[lo, hi]`
/// that the page pairs count: folded ones (not queued past the chunk) and those whose
/// removal is queued but not yet taken out of them (`removed = 1`).
pub(crate) fn counted_paths(backend: Backend) -> String {
    let (t, join) = (windows(backend), join(backend));
    format!(
        "SELECT t.i, pv.path FROM {t} AS t {join} web_pageviews AS pv
           ON pv.project_id = t.p AND pv.visitor = t.v AND pv.ts >= t.lo AND pv.ts <= t.hi
         WHERE NOT EXISTS (SELECT 1 FROM web_visit_pending q
             WHERE q.project_id = pv.project_id AND q.seq = pv.seq AND q.removed = 0)
         UNION ALL
         SELECT t.i, q.path FROM {t} AS t {join} web_visit_pending AS q
           ON q.project_id = t.p AND q.visitor = t.v AND q.ts >= t.lo AND q.ts <= t.hi
          AND q.removed = 1"
    )
}

/// Per window `i`, the removals of its visitor's page views in `[lo, hi]` still queued past
/// the chunk and still counted in the page pairs (`removed = 1`, the partial index of
/// migration 0049).
pub(crate) fn window_removals(backend: Backend) -> String {
    let (t, join) = (windows(backend), join(backend));
    format!(
        "SELECT t.i, q.id, q.ts, q.path FROM {t} AS t {join} web_visit_pending AS q
         ON q.project_id = t.p AND q.visitor = t.v AND q.ts >= t.lo AND q.ts <= t.hi
            AND q.removed = 1"
    )
}

/// Marks the queued removals whose ids are the JSON array `$1` as taken out of the page pairs.
pub(crate) fn mark_removals(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "UPDATE web_visit_pending SET removed = 2
             WHERE id IN (SELECT value FROM json_each($1))"
        }
        Backend::Postgres => {
            "UPDATE web_visit_pending SET removed = 2 WHERE id IN (
                 SELECT e::bigint FROM jsonb_array_elements_text($1::text::jsonb) AS e)"
        }
    }
}

/// Deletes the visits whose ids are the JSON array `$1`.
pub(crate) fn delete_visits(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "DELETE FROM web_visits WHERE id IN (SELECT value FROM json_each($1))",
        Backend::Postgres => {
            "DELETE FROM web_visits WHERE id IN (
                 SELECT e::bigint FROM jsonb_array_elements_text($1::text::jsonb) AS e)"
        }
    }
}

/// Moves the end of the visits of the JSON array `$1` of `[id, end_ts, pageviews,
/// exit_page]`: a visit that only grew at its end keeps its row (and its index entries but
/// the exit page's).
pub(crate) fn extend_visits(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "UPDATE web_visits SET end_ts = u.end_ts, pageviews = u.pageviews,
                                   exit_page = u.exit_page
             FROM (SELECT json_extract(value, '$[0]') AS id,
                          json_extract(value, '$[1]') AS end_ts,
                          json_extract(value, '$[2]') AS pageviews,
                          json_extract(value, '$[3]') AS exit_page
                   FROM json_each($1)) AS u
             WHERE web_visits.id = u.id"
        }
        Backend::Postgres => {
            "UPDATE web_visits AS w SET end_ts = u.end_ts, pageviews = u.pageviews,
                                        exit_page = u.exit_page
             FROM (SELECT (e ->> 0)::bigint AS id, (e ->> 1)::bigint AS end_ts,
                          (e ->> 2)::bigint AS pageviews, e ->> 3 AS exit_page
                   FROM jsonb_array_elements($1::text::jsonb) AS e) AS u
             WHERE w.id = u.id"
        }
    }
}

/// Adds the JSON array `$1` of `[project, visitor, visit start, path, page views]` to
/// `web_visit_pages` (migration 0057), each visit found by its visitor and start (a visitor's
/// visits never overlap): a new visit's pages, or an extended one's new page views.
pub(crate) fn add_visit_pages(backend: Backend) -> &'static str {
    match backend {
        // `WHERE true`: an upsert's SELECT needs one to parse (SQLite's docs, "UPSERT").
        Backend::Sqlite => {
            "INSERT INTO web_visit_pages (visit_id, path, project_id, start_ts, pageviews)
             SELECT w.id, j.path, w.project_id, w.start_ts, j.n
             FROM (SELECT json_extract(value, '$[0]') AS p, json_extract(value, '$[1]') AS v,
                          json_extract(value, '$[2]') AS s, json_extract(value, '$[3]') AS path,
                          json_extract(value, '$[4]') AS n
                   FROM json_each($1)) AS j
             CROSS JOIN web_visits AS w
               ON w.project_id = j.p AND w.visitor = j.v AND w.start_ts = j.s
             WHERE true
             ON CONFLICT (visit_id, path) DO UPDATE SET
                 pageviews = web_visit_pages.pageviews + excluded.pageviews"
        }
        Backend::Postgres => {
            "INSERT INTO web_visit_pages (visit_id, path, project_id, start_ts, pageviews)
             SELECT w.id, j.path, w.project_id, w.start_ts, j.n
             FROM (SELECT (e ->> 0)::bigint AS p, e ->> 1 AS v, (e ->> 2)::bigint AS s,
                          e ->> 3 AS path, (e ->> 4)::bigint AS n
                   FROM jsonb_array_elements($1::text::jsonb) AS e) AS j
             JOIN web_visits AS w
               ON w.project_id = j.p AND w.visitor = j.v AND w.start_ts = j.s
             ON CONFLICT (visit_id, path) DO UPDATE SET
                 pageviews = web_visit_pages.pageviews + excluded.pageviews"
        }
    }
}

/// What a `web_daily` row counts toward its pair threshold and the unpaired days' budget: a
/// page's row its page views (which bound the visits that viewed it), a visit value's its
/// visits.
pub(crate) const DAY_ROW_COUNT: &str = "CASE WHEN dim = 'page' THEN pageviews ELSE visits END";

/// The visits (ids) of project `$1` that viewed page `$2` and started in `[$3, $4)`, through
/// `web_visit_pages`' index by path: what a page filter selects.
pub(crate) const VISITS_OF_PAGE: &str = "SELECT visit_id FROM web_visit_pages
     WHERE project_id = $1 AND path = $2 AND start_ts >= $3 AND start_ts < $4";

/// Deletes the pair rows of filter `$2` = `$3` on day `$4` of project `$1`: one key range per
/// breakdown (a page filter's totals row `''` included), not every day of the value.
pub(crate) fn delete_day_pairs() -> String {
    let dims: Vec<String> = std::iter::once("")
        .chain(super::VISIT_DIMENSIONS.iter().map(|d| d.key()))
        .chain(std::iter::once(crate::store::web::Dimension::Page.key()))
        .map(|d| format!("'{d}'"))
        .collect();
    format!(
        "DELETE FROM web_daily_pairs
         WHERE project_id = $1 AND fdim = $2 AND fvalue = $3 AND day = $4
           AND dim IN ({})",
        dims.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::visits::sketch::COMPACT_ABOVE;

    #[test]
    fn the_long_sketch_read_matches_the_partial_index_and_the_bound() {
        let condition = format!("WHERE length(visitors) > {COMPACT_ABOVE}");
        assert!(LONG_PAIR_SKETCHES.contains(&condition));
        for migration in [
            include_str!("../../../../migrations/sqlite/0053_web_pairs_more_filters.sql"),
            include_str!("../../../../migrations/postgres/0053_web_pairs_more_filters.sql"),
        ] {
            assert!(migration.contains(&condition), "{migration}");
        }
    }
}
