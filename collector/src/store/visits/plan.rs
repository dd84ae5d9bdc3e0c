//! What one fold chunk changes in the rollups (`web_daily`, `web_hourly`, migration 0034), and
//! the SQL that applies it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::tz::TimeZone;

use super::days::{day_of, hour_of};
use super::{HEAVY_PAIR_FILTERS, PAIR_FILTERS, VISIT_DIMENSIONS, Visit};
use crate::store::web::Dimension;

/// (project, day, dim, value): one `web_daily` row.
pub(crate) type DayKey = (i64, i64, &'static str, String);

/// (project, day, filter dim, filter value, dim, value): one `web_daily_pairs` row.
pub(crate) type PairKey = (i64, i64, &'static str, String, &'static str, String);

#[derive(Debug, Default)]
pub(crate) struct Delta {
    pub(crate) visits: i64,
    pub(crate) pageviews: i64,
    pub(crate) bounces: i64,
    pub(crate) duration_ms: i64,
    pub(crate) add: Vec<String>,
    /// Visitors whose visit left the row: the row's sketch is rebuilt unless they came back.
    pub(crate) left: BTreeSet<String>,
    /// A page view was taken out (a person deleted): the row's sketch is rebuilt, even when the
    /// chunk also added that visitor (maybe by the very page view taken out).
    pub(crate) forget: bool,
}

#[derive(Debug, Default)]
pub(crate) struct HourDelta {
    pub(crate) pageviews: i64,
    pub(crate) add: Vec<String>,
    /// A page view was removed: the hour's sketch is rebuilt from its page views.
    pub(crate) rebuild: bool,
}

/// A visit or page pair moved, kept for the pairs of the heavy filter dimensions: whether
/// its values have pair rows is known only once the day rows are read (`apply_plan`).
#[derive(Debug)]
pub(crate) enum HeavyMove {
    /// A visit (`sign` 1) added or taken back (-1), in its start's day.
    Visit {
        project: i64,
        day: i64,
        visitor: String,
        visit: Visit,
        sign: i64,
    },
    /// A page view on `path` of a visit with these heavy values (in the order of
    /// [`HEAVY_PAIR_FILTERS`]).
    Page {
        project: i64,
        day: i64,
        visitor: String,
        values: [String; 5],
        path: String,
        sign: i64,
    },
    /// A visit that grew at its end (an append) from exit page `old` to `new`: its page views
    /// in `[from, to]` (its span before) move between those exit pages' page pairs. Read
    /// only if either is paired (`apply_plan`).
    Exit {
        project: i64,
        day: i64,
        visitor: String,
        from: i64,
        to: i64,
        old: String,
        new: String,
    },
}

/// The changes of a chunk, in key order (so PostgreSQL writers lock rows in one order).
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub(crate) days: BTreeMap<DayKey, Delta>,
    pub(crate) hours: BTreeMap<(i64, i64), HourDelta>,
    /// Many more than the day rows, so hashed while a chunk is planned and sorted once when
    /// applied.
    pub(crate) pairs: HashMap<PairKey, Delta>,
    /// Moves of the heavy filters' pairs, turned into `pairs` for the values whose day row
    /// is paired.
    pub(crate) heavy: Vec<HeavyMove>,
}

/// Adds visit `v`'s move to the pair rows of `fdim` (its value at `f`) with every other visit
/// dimension.
#[allow(clippy::too_many_arguments)]
fn visit_pairs(
    pairs: &mut HashMap<PairKey, Delta>,
    project: i64,
    day: i64,
    (fdim, f): (Dimension, usize),
    visitor: &str,
    v: &Visit,
    sign: i64,
) {
    let bounce = i64::from(v.pageviews == 1);
    let duration = v.end_ts - v.start_ts;
    for (i, (dim, value)) in VISIT_DIMENSIONS.iter().zip(&v.values).enumerate() {
        if i == f {
            continue;
        }
        let d = pairs
            .entry((
                project,
                day,
                fdim.key(),
                v.values[f].clone(),
                dim.key(),
                value.clone(),
            ))
            .or_default();
        d.visits += sign;
        d.pageviews += sign * v.pageviews;
        d.bounces += sign * bounce;
        d.duration_ms += sign * duration;
        if sign > 0 {
            d.add.push(visitor.to_owned());
        } else {
            d.left.insert(visitor.to_owned());
        }
    }
}

/// Adds one page view's move to the page pair row of `fdim` = `fvalue`.
fn page_pairs(
    pairs: &mut HashMap<PairKey, Delta>,
    (project, day): (i64, i64),
    (fdim, fvalue): (Dimension, &str),
    visitor: &str,
    path: &str,
    sign: i64,
) {
    let d = pairs
        .entry((
            project,
            day,
            fdim.key(),
            fvalue.to_owned(),
            Dimension::Page.key(),
            path.to_owned(),
        ))
        .or_default();
    d.pageviews += sign;
    if sign > 0 {
        d.add.push(visitor.to_owned());
    } else {
        d.left.insert(visitor.to_owned());
    }
}

impl HeavyMove {
    /// The (project, heavy dim, day, value) day rows whose pairs this move touches.
    pub(crate) fn filter_rows(&self) -> Vec<(i64, &'static str, i64, &str)> {
        let (project, day, values): (i64, i64, [&str; 5]) = match self {
            HeavyMove::Visit {
                project,
                day,
                visit,
                ..
            } => (
                *project,
                *day,
                HEAVY_PAIR_FILTERS.map(|(_, f)| visit.values[f].as_str()),
            ),
            HeavyMove::Page {
                project,
                day,
                values,
                ..
            } => (*project, *day, values.each_ref().map(String::as_str)),
            HeavyMove::Exit {
                project,
                day,
                old,
                new,
                ..
            } => {
                let exit = Dimension::ExitPage.key();
                return vec![(*project, exit, *day, old), (*project, exit, *day, new)];
            }
        };
        HEAVY_PAIR_FILTERS
            .into_iter()
            .zip(values)
            .map(|((fdim, _), value)| (project, fdim.key(), day, value))
            .collect()
    }

    /// The exit page move of a grown visit, if either exit page is paired: its page views'
    /// span, and whether to take them from the old exit page's page pairs and add them to
    /// the new one's.
    pub(crate) fn exit_move(
        &self,
        paired: impl Fn(i64, &str, i64, &str) -> bool,
    ) -> Option<(i64, &str, i64, i64, bool, bool)> {
        let HeavyMove::Exit {
            project,
            day,
            visitor,
            from,
            to,
            old,
            new,
        } = self
        else {
            return None;
        };
        let exit = Dimension::ExitPage.key();
        let (out, into) = (
            paired(*project, exit, *day, old),
            paired(*project, exit, *day, new),
        );
        (out || into).then_some((*project, visitor.as_str(), *from, *to, out, into))
    }

    /// Moves one page view on `path` of an [`HeavyMove::Exit`] between its exit pages' page
    /// pairs (`out`: from the old one, `into`: to the new one).
    pub(crate) fn move_exit_page_view(
        &self,
        pairs: &mut HashMap<PairKey, Delta>,
        path: &str,
        (out, into): (bool, bool),
    ) {
        if let HeavyMove::Exit {
            project,
            day,
            visitor,
            old,
            new,
            ..
        } = self
        {
            let at = (*project, *day);
            if out {
                page_pairs(pairs, at, (Dimension::ExitPage, old), visitor, path, -1);
            }
            if into {
                page_pairs(pairs, at, (Dimension::ExitPage, new), visitor, path, 1);
            }
        }
    }

    /// Adds this move to `pairs` for the heavy filters `paired` says have pair rows.
    pub(crate) fn apply(
        &self,
        pairs: &mut HashMap<PairKey, Delta>,
        paired: impl Fn(i64, &str, i64, &str) -> bool,
    ) {
        match self {
            HeavyMove::Visit {
                project,
                day,
                visitor,
                visit,
                sign,
            } => {
                for (fdim, f) in HEAVY_PAIR_FILTERS {
                    if paired(*project, fdim.key(), *day, &visit.values[f]) {
                        visit_pairs(pairs, *project, *day, (fdim, f), visitor, visit, *sign);
                    }
                }
            }
            HeavyMove::Page {
                project,
                day,
                visitor,
                values,
                path,
                sign,
            } => {
                for ((fdim, _), value) in HEAVY_PAIR_FILTERS.iter().zip(values) {
                    if paired(*project, fdim.key(), *day, value) {
                        page_pairs(
                            pairs,
                            (*project, *day),
                            (*fdim, value),
                            visitor,
                            path,
                            *sign,
                        );
                    }
                }
            }
            // Its page views are read first (`apply_plan`, `move_exit_page_view`).
            HeavyMove::Exit { .. } => {}
        }
    }
}

impl Plan {
    fn row(&mut self, project: i64, day: i64, dim: &'static str, value: &str) -> &mut Delta {
        self.days
            .entry((project, day, dim, value.to_owned()))
            .or_default()
    }

    /// A page view stored (or removed): its day's and hour's page views and who viewed a page,
    /// overall and for its path.
    pub(crate) fn page_view(
        &mut self,
        tz: &TimeZone,
        project: i64,
        visitor: &str,
        ts: i64,
        path: &str,
        removed: bool,
    ) {
        let day = day_of(tz, ts);
        for (dim, value) in [("", ""), (Dimension::Page.key(), path)] {
            let d = self.row(project, day, dim, value);
            if removed {
                d.pageviews -= 1;
                d.forget = true;
            } else {
                d.pageviews += 1;
                d.add.push(visitor.to_owned());
            }
        }
        let h = self.hours.entry((project, hour_of(tz, ts))).or_default();
        if removed {
            h.pageviews -= 1;
            h.rebuild = true;
        } else {
            h.pageviews += 1;
            h.add.push(visitor.to_owned());
        }
    }

    /// A visit added (`sign` 1) or taken back (-1), in the day it starts.
    pub(crate) fn visit(
        &mut self,
        tz: &TimeZone,
        project: i64,
        visitor: &str,
        v: &Visit,
        sign: i64,
    ) {
        let day = day_of(tz, v.start_ts);
        let bounce = i64::from(v.pageviews == 1);
        let duration = v.end_ts - v.start_ts;
        let total = self.row(project, day, "", "");
        total.visits += sign;
        total.bounces += sign * bounce;
        total.duration_ms += sign * duration;
        for (dim, value) in VISIT_DIMENSIONS.iter().zip(&v.values) {
            let d = self.row(project, day, dim.key(), value);
            d.visits += sign;
            d.pageviews += sign * v.pageviews;
            d.bounces += sign * bounce;
            d.duration_ms += sign * duration;
            if sign > 0 {
                d.add.push(visitor.to_owned());
            } else {
                d.left.insert(visitor.to_owned());
            }
        }
        for filter in PAIR_FILTERS {
            visit_pairs(&mut self.pairs, project, day, filter, visitor, v, sign);
        }
        self.heavy.push(HeavyMove::Visit {
            project,
            day,
            visitor: visitor.to_owned(),
            visit: v.clone(),
            sign,
        });
    }

    /// Visit `before` (counted) grew at its end to exit page `new`: its page views counted so
    /// far move to the new exit page's page pairs, if either exit page is paired.
    pub(crate) fn exit_moved(
        &mut self,
        tz: &TimeZone,
        project: i64,
        visitor: &str,
        before: &Visit,
        new: &str,
    ) {
        self.heavy.push(HeavyMove::Exit {
            project,
            day: day_of(tz, before.start_ts),
            visitor: visitor.to_owned(),
            from: before.start_ts,
            to: before.end_ts,
            old: before.values[1].clone(),
            new: new.to_owned(),
        });
    }

    /// One page view on `path` of visit `v` counted (`sign` 1) or taken back (-1) in the page
    /// pairs of the visit's values: the page breakdown of a one-chip view counts the page
    /// views of the visits it selects, in the day each visit starts.
    pub(crate) fn page_pair(
        &mut self,
        tz: &TimeZone,
        project: i64,
        visitor: &str,
        v: &Visit,
        path: &str,
        sign: i64,
    ) {
        let day = day_of(tz, v.start_ts);
        for (fdim, f) in PAIR_FILTERS {
            page_pairs(
                &mut self.pairs,
                (project, day),
                (fdim, &v.values[f]),
                visitor,
                path,
                sign,
            );
        }
        self.heavy.push(HeavyMove::Page {
            project,
            day,
            visitor: visitor.to_owned(),
            values: HEAVY_PAIR_FILTERS.map(|(_, f)| v.values[f].clone()),
            path: path.to_owned(),
            sign,
        });
    }
}

/// Whether two visits count in the same pair rows (start day and filter values).
pub(crate) fn same_pairs(tz: &TimeZone, a: &Visit, b: &Visit) -> bool {
    PAIR_FILTERS
        .iter()
        .chain(&HEAVY_PAIR_FILTERS)
        .all(|(_, f)| a.values[*f] == b.values[*f])
        && (a.start_ts == b.start_ts || day_of(tz, a.start_ts) == day_of(tz, b.start_ts))
}

impl Delta {
    /// Whether a visitor left the row and did not come back in the same chunk: its sketch
    /// may count someone it no longer holds.
    pub(crate) fn lost_someone(&self) -> bool {
        self.forget || self.left.iter().any(|v| !self.add.contains(v))
    }

    /// A day row's sums and sketch after this delta, from its stored ones (`None`: not
    /// stored yet); `None` when the row has lost every visit and page view. A sketch that did
    /// not grow keeps its stored bytes.
    pub(crate) fn apply(
        &self,
        stored: Option<(i64, i64, i64, i64, Vec<u8>)>,
    ) -> Option<([i64; 4], Vec<u8>)> {
        let (visits, pageviews, bounces, duration, blob) =
            stored.unwrap_or((0, 0, 0, 0, Vec::new()));
        let (visits, pageviews) = (visits + self.visits, pageviews + self.pageviews);
        if visits <= 0 && pageviews <= 0 {
            return None;
        }
        let sketch =
            super::sketch::Visitors::add_to_bytes(&blob, self.add.iter().map(String::as_str))
                .unwrap_or(blob);
        Some((
            [
                visits,
                pageviews,
                bounces + self.bounces,
                duration + self.duration_ms,
            ],
            sketch,
        ))
    }
}

/// Rollup rows written per `INSERT` (nine parameters each; SQLite takes `?` placeholders,
/// bound by position, so a statement's cost grows with its rows, not their square).
pub(crate) const ROWS_PER_STATEMENT: usize = 500;

/// Applies a plan in the open transaction `$tx` on `$backend`: sums moved by the deltas,
/// sketches merged with the visitors added, rows left empty deleted, rows that lost a visitor
/// queued in `web_daily_dirty` (`web_pairs_dirty`) for the next recount of their sketch. The
/// day and hour rows a chunk touches are read in one statement (their keys as one JSON
/// parameter, a seek each); the pair rows are not read (below). All are written
/// [`ROWS_PER_STATEMENT`] at a time.
macro_rules! apply_plan {
    ($tx:expr, $plan:expr, $backend:expr, $heavy:expr) => {{
        use std::collections::{BTreeSet, HashMap, HashSet};
        use $crate::store::visits::plan::ROWS_PER_STATEMENT;
        use $crate::store::visits::sketch::Visitors;
        use $crate::store::visits::sql;
        type Current = (i64, String, i64, String, i64, i64, i64, i64, Vec<u8>, i64);
        let heavy_moves = std::mem::take(&mut $plan.heavy);
        // The heavy filter values of moved page pairs whose day row the chunk does not touch
        // (a visit's own values are all among the day rows): read for their `paired` only.
        let mut extra: BTreeSet<(i64, &'static str, i64, String)> = BTreeSet::new();
        for m in &heavy_moves {
            if !matches!(m, $crate::store::visits::plan::HeavyMove::Visit { .. }) {
                for (project, dim, day, value) in m.filter_rows() {
                    let key = (project, day, dim, value.to_owned());
                    if !$plan.days.contains_key(&key) {
                        extra.insert((project, dim, day, key.3));
                    }
                }
            }
        }
        let days: Vec<_> = $plan.days.into_iter().collect();
        let keys: Vec<(i64, &str, i64, &str)> = days
            .iter()
            .map(|((project, day, dim, value), _)| (*project, *dim, *day, value.as_str()))
            .chain(
                extra
                    .iter()
                    .map(|(p, dim, day, v)| (*p, *dim, *day, v.as_str())),
            )
            .collect();
        type Stored = ((i64, i64, i64, i64, Vec<u8>), bool);
        let current: HashMap<(i64, String, i64, String), Stored> = if keys.is_empty() {
            HashMap::new()
        } else {
            sqlx::query_as::<_, Current>(sql::day_rows($backend))
                .bind(serde_json::to_string(&keys).expect("keys serialize"))
                .fetch_all(&mut *$tx)
                .await?
                .into_iter()
                .map(|r| ((r.0, r.1, r.2, r.3), ((r.4, r.5, r.6, r.7, r.8), r.9 != 0)))
                .collect()
        };
        // The heavy values whose day rows have pair rows (before this chunk): their pairs
        // move with the chunk; the others' are filled from their visits once they cross.
        let paired: HashSet<(i64, &str, i64, &str)> = current
            .iter()
            .filter(|(_, (_, paired))| *paired)
            .map(|(k, _)| (k.0, k.1.as_str(), k.2, k.3.as_str()))
            .collect();
        if !paired.is_empty() {
            let is_paired =
                |p: i64, dim: &str, day: i64, value: &str| paired.contains(&(p, dim, day, value));
            for m in &heavy_moves {
                m.apply(&mut $plan.pairs, is_paired);
            }
            // Grown visits whose exit page is paired: the page views they had move.
            let exits: Vec<_> = heavy_moves
                .iter()
                .filter_map(|m| Some((m, m.exit_move(is_paired)?)))
                .collect();
            if !exits.is_empty() {
                let keys: Vec<(usize, i64, &str, i64, i64)> = exits
                    .iter()
                    .enumerate()
                    .map(|(i, (_, (p, visitor, from, to, _, _)))| (i, *p, *visitor, *from, *to))
                    .collect();
                let paths: Vec<(i64, String)> =
                    sqlx::query_as(sqlx::AssertSqlSafe(sql::counted_paths($backend)))
                        .bind(serde_json::to_string(&keys).expect("keys serialize"))
                        .fetch_all(&mut *$tx)
                        .await?;
                for (i, path) in paths {
                    let (m, (_, _, _, _, out, into)) = &exits[i as usize];
                    m.move_exit_page_view(&mut $plan.pairs, &path, (*out, *into));
                }
            }
        }
        // A page filter's pair rows are filled from a day's visits, not moved: every day whose
        // visits this chunk changes (each such change moves some row of the visit's start
        // day) loses them and queues their fill again (`fill_heavy_pairs`).
        let touched: BTreeSet<(i64, i64)> =
            days.iter().map(|((p, day, _, _), _)| (*p, *day)).collect();
        let mut fill = Vec::new();
        for (project, day) in touched {
            let pages: Vec<String> = sqlx::query_scalar(
                "UPDATE web_daily SET paired = 0
                 WHERE project_id = $1 AND dim = 'page' AND day = $2 AND paired = 1
                 RETURNING value",
            )
            .bind(project)
            .bind(day)
            .fetch_all(&mut *$tx)
            .await?;
            for page in pages {
                sqlx::query(sqlx::AssertSqlSafe(sql::delete_day_pairs()))
                    .bind(project)
                    .bind($crate::store::web::Dimension::Page.key())
                    .bind(page.as_str())
                    .bind(day)
                    .execute(&mut *$tx)
                    .await?;
                fill.push((
                    project,
                    $crate::store::web::Dimension::Page.key().to_owned(),
                    day,
                    page,
                ));
            }
        }
        let mut gone = Vec::new();
        let mut kept = Vec::new();
        let mut dirty = Vec::new();
        for ((project, day, dim, value), d) in days {
            let key = (project, dim.to_owned(), day, value);
            let stored = current.get(&key);
            let Some((sums, sketch)) = d.apply(stored.map(|s| s.0.clone())) else {
                gone.push(key);
                continue;
            };
            if d.lost_someone() {
                dirty.push(key.clone());
            }
            // A page's day row counts its page views, the others their visits.
            let page = dim == $crate::store::web::Dimension::Page.key();
            if !stored.is_some_and(|s| s.1)
                && sums[usize::from(page)] >= $heavy
                && (page
                    || $crate::store::visits::HEAVY_PAIR_FILTERS
                        .iter()
                        .any(|(f, _)| f.key() == dim))
            {
                fill.push(key.clone());
            }
            kept.push((key, sums, sketch));
        }
        // One statement per row: rare (rows that lost every visit and page view).
        for (project, dim, day, value) in &gone {
            sqlx::query(
                "DELETE FROM web_daily
                 WHERE project_id = $1 AND dim = $2 AND day = $3 AND value = $4",
            )
            .bind(*project)
            .bind(dim.as_str())
            .bind(*day)
            .bind(value.as_str())
            .execute(&mut *$tx)
            .await?;
        }
        for group in kept.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO web_daily (project_id, dim, day, value, visits, pageviews, bounces,
                                        duration_ms, visitors) ",
            );
            q.push_values(
                group,
                |mut b, ((project, dim, day, value), sums, sketch)| {
                    b.push_bind(*project)
                        .push_bind(dim.as_str())
                        .push_bind(*day)
                        .push_bind(value.as_str());
                    for n in sums {
                        b.push_bind(*n);
                    }
                    b.push_bind(sketch.as_slice());
                },
            );
            q.push(
                " ON CONFLICT (project_id, dim, day, value) DO UPDATE SET
                     visits = excluded.visits, pageviews = excluded.pageviews,
                     bounces = excluded.bounces, duration_ms = excluded.duration_ms,
                     visitors = excluded.visitors",
            );
            q.build().persistent(false).execute(&mut *$tx).await?;
        }
        // Day rows queued for their pair fill or their sketch's recount: the same key.
        for (table, keys) in [("web_pairs_fill", &fill), ("web_daily_dirty", &dirty)] {
            for group in keys.chunks(ROWS_PER_STATEMENT) {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "INSERT INTO {table} (project_id, dim, day, value) "
                ));
                q.push_values(group, |mut b, (project, dim, day, value)| {
                    b.push_bind(*project)
                        .push_bind(dim.as_str())
                        .push_bind(*day)
                        .push_bind(value.as_str());
                });
                q.push(" ON CONFLICT DO NOTHING");
                q.build().persistent(false).execute(&mut *$tx).await?;
            }
        }

        // The pair rows (`web_daily_pairs`): many more per chunk than the day rows, so written
        // without reading them. The sums move in SQL; a sketch gets the register values of
        // the chunk's visitors appended (`Visitors::tail`), which needs no stored registers;
        // rows whose page views did not grow may have lost their last visit and are deleted if
        // so; sketches that grew past `COMPACT_ABOVE` bytes are then rewritten short.
        let mut pairs: Vec<_> = $plan.pairs.into_iter().collect();
        pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut rows = Vec::with_capacity(pairs.len());
        let mut emptied: Vec<(i64, &str, &str, &str, i64, &str)> = Vec::new();
        let mut dirty = Vec::new();
        for ((project, day, fdim, fvalue, dim, value), d) in &pairs {
            // A visit or page view that moved out and back in (a recounted visit whose other
            // values changed): nothing to write.
            if d.visits == 0
                && d.pageviews == 0
                && d.bounces == 0
                && d.duration_ms == 0
                && !d.lost_someone()
                && d.add.iter().all(|a| d.left.contains(a))
            {
                continue;
            }
            let key = (*project, *fdim, fvalue.as_str(), *dim, *day, value.as_str());
            if d.lost_someone() {
                dirty.push(key);
            }
            // Stored page views are never negative: only a row whose page views did not grow
            // can end with none (and no visit).
            if d.pageviews <= 0 {
                emptied.push(key);
            }
            let tail = Visitors::tail(&Visitors::entries(d.add.iter().map(String::as_str)));
            rows.push((key, [d.visits, d.pageviews, d.bounces, d.duration_ms], tail));
        }
        for group in rows.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO web_daily_pairs (project_id, fdim, fvalue, dim, day, value, visits,
                                              pageviews, bounces, duration_ms, visitors) ",
            );
            q.push_values(
                group,
                |mut b, ((project, fdim, fvalue, dim, day, value), sums, tail)| {
                    b.push_bind(*project)
                        .push_bind(*fdim)
                        .push_bind(*fvalue)
                        .push_bind(*dim)
                        .push_bind(*day)
                        .push_bind(*value);
                    for n in sums {
                        b.push_bind(*n);
                    }
                    b.push_bind(tail.as_slice());
                },
            );
            q.push(sql::pair_upsert($backend));
            q.build().persistent(false).execute(&mut *$tx).await?;
        }
        if !emptied.is_empty() {
            sqlx::query(sql::delete_empty_pairs($backend))
                .bind(serde_json::to_string(&emptied).expect("keys serialize"))
                .execute(&mut *$tx)
                .await?;
        }
        let long: Vec<(i64, String, String, String, i64, String, Vec<u8>)> =
            sqlx::query_as(sql::LONG_PAIR_SKETCHES)
                .fetch_all(&mut *$tx)
                .await?;
        for (project, fdim, fvalue, dim, day, value, sketch) in long {
            sqlx::query(
                "UPDATE web_daily_pairs SET visitors = $1
                 WHERE project_id = $2 AND fdim = $3 AND fvalue = $4 AND dim = $5 AND day = $6
                   AND value = $7",
            )
            .bind(Visitors::compact(&sketch))
            .bind(project)
            .bind(fdim)
            .bind(fvalue)
            .bind(dim)
            .bind(day)
            .bind(value)
            .execute(&mut *$tx)
            .await?;
        }
        for group in dirty.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO web_pairs_dirty (project_id, fdim, fvalue, dim, day, value) ",
            );
            q.push_values(group, |mut b, (project, fdim, fvalue, dim, day, value)| {
                b.push_bind(*project)
                    .push_bind(*fdim)
                    .push_bind(*fvalue)
                    .push_bind(*dim)
                    .push_bind(*day)
                    .push_bind(*value);
            });
            q.push(" ON CONFLICT DO NOTHING");
            q.build().persistent(false).execute(&mut *$tx).await?;
        }
        let hours: Vec<_> = $plan.hours.into_iter().collect();
        let keys: Vec<(i64, i64)> = hours.iter().map(|(k, _)| *k).collect();
        let current: HashMap<(i64, i64), (i64, Vec<u8>)> = if keys.is_empty() {
            HashMap::new()
        } else {
            sqlx::query_as::<_, (i64, i64, i64, Vec<u8>)>(sql::hour_rows($backend))
                .bind(serde_json::to_string(&keys).expect("keys serialize"))
                .fetch_all(&mut *$tx)
                .await?
                .into_iter()
                .map(|r| ((r.0, r.1), (r.2, r.3)))
                .collect()
        };
        let mut gone = Vec::new();
        let mut kept = Vec::new();
        for ((project, hour), h) in hours {
            let (pageviews, blob) = current
                .get(&(project, hour))
                .cloned()
                .unwrap_or((0, Vec::new()));
            let pageviews = pageviews + h.pageviews;
            if pageviews <= 0 {
                gone.push((project, hour));
                continue;
            }
            let mut sketch = Visitors::default();
            if h.rebuild {
                // Rare (a person deleted), and an hour's page views are few.
                let who: Vec<String> = sqlx::query_scalar(
                    "SELECT visitor FROM web_pageviews
                     WHERE project_id = $1 AND ts >= $2 AND ts < $3",
                )
                .bind(project)
                .bind(hour)
                .bind(hour + $crate::store::HOUR_MS)
                .fetch_all(&mut *$tx)
                .await?;
                sketch.insert_all(who.iter().map(String::as_str));
            } else {
                sketch.merge_bytes(&blob);
                if !sketch.insert_all(h.add.iter().map(String::as_str)) && !blob.is_empty() {
                    kept.push((project, hour, pageviews, blob));
                    continue;
                }
            }
            kept.push((project, hour, pageviews, sketch.to_bytes()));
        }
        for (project, hour) in gone {
            sqlx::query("DELETE FROM web_hourly WHERE project_id = $1 AND hour = $2")
                .bind(project)
                .bind(hour)
                .execute(&mut *$tx)
                .await?;
        }
        for group in kept.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO web_hourly (project_id, hour, pageviews, visitors) ",
            );
            q.push_values(group, |mut b, (project, hour, pageviews, sketch)| {
                b.push_bind(*project)
                    .push_bind(*hour)
                    .push_bind(*pageviews)
                    .push_bind(sketch.as_slice());
            });
            q.push(
                " ON CONFLICT (project_id, hour) DO UPDATE SET
                     pageviews = excluded.pageviews, visitors = excluded.visitors",
            );
            q.build().persistent(false).execute(&mut *$tx).await?;
        }
    }};
}
pub(crate) use apply_plan;
