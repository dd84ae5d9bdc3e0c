//! One fold transaction: a chunk of queued page views into the visits and their rollups in a
//! fixed number of statements, whatever the chunk's size (each reads or writes every visitor
//! of the chunk at once), instead of a few per visitor.

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx_macros::FromRow;

use super::days::Zones;
use super::plan::{Plan, apply_plan, same_pairs};
use super::{PageView, Pending, Rebuilding, StoredVisit, VISIT_COLUMNS, Visit, cut, sql};
use crate::store::web::VISIT_GAP_MS;
use crate::store::{Backend, Store, StoreError};

/// Visits inserted per statement (sixteen `?` parameters each on SQLite).
const VISITS_PER_STATEMENT: usize = 500;

/// A visitor's page views in a chunk that lie close together (no two consecutive ones more
/// than two gaps apart), and the stored visits within a gap of them: what one recount covers.
/// Splitting a visitor's page views this way keeps the reads near them, however long the
/// visitor's history.
#[derive(Debug)]
struct Window {
    project: i64,
    visitor: String,
    first: i64,
    last: i64,
    /// A person's page view was taken out here: the visits are always recounted.
    removed: bool,
    old: Vec<StoredVisit>,
}

impl Window {
    /// In order: every new page view comes after the end of every stored visit in reach, so
    /// the last of those visits can only grow at its end (an append, no recount).
    fn appends(&self) -> bool {
        !self.removed && self.old.iter().all(|v| v.end_ts < self.first)
    }

    /// The page views the window's visits are made of again: from its first new page view
    /// for an append (the visit before it is kept as stored), else over its stored visits too.
    fn span(&self) -> (i64, i64) {
        if self.appends() {
            return (self.first, self.last);
        }
        let from = self
            .old
            .iter()
            .map(|v| v.start_ts)
            .fold(self.first, i64::min);
        let to = self.old.iter().map(|v| v.end_ts).fold(self.last, i64::max);
        (from, to)
    }
}

/// Windows of the chunk's page views, in (project, visitor, time) order.
fn windows(pending: &[Pending]) -> Vec<Window> {
    let mut times: BTreeMap<(i64, &str), Vec<(i64, bool)>> = BTreeMap::new();
    for p in pending {
        times
            .entry((p.project_id, p.visitor.as_str()))
            .or_default()
            .push((p.ts, p.removed != 0));
    }
    let mut out: Vec<Window> = Vec::new();
    for ((project, visitor), mut ts) in times {
        ts.sort_unstable();
        let mut start = 0;
        for i in 0..ts.len() {
            if ts
                .get(i + 1)
                .is_none_or(|n| n.0 - ts[i].0 > 2 * VISIT_GAP_MS)
            {
                out.push(Window {
                    project,
                    visitor: visitor.to_owned(),
                    first: ts[start].0,
                    last: ts[i].0,
                    removed: ts[start..=i].iter().any(|t| t.1),
                    old: Vec::new(),
                });
                start = i + 1;
            }
        }
    }
    out
}

/// Windows of one visitor that read the same stored visit (a long visit reaching across the
/// gap between them) become one, so each stored visit is recounted once. Windows are in time
/// order, and a visit two windows share covers every window between them, so neighbours
/// suffice.
fn merge_sharing(windows: Vec<Window>) -> Vec<Window> {
    let mut out: Vec<Window> = Vec::with_capacity(windows.len());
    for w in windows {
        if let Some(prev) = out.last_mut()
            && prev.project == w.project
            && prev.visitor == w.visitor
            && prev.old.iter().any(|a| w.old.iter().any(|b| a.id == b.id))
        {
            prev.first = prev.first.min(w.first);
            prev.last = prev.last.max(w.last);
            prev.removed |= w.removed;
            for v in w.old {
                if !prev.old.iter().any(|o| o.id == v.id) {
                    prev.old.push(v);
                }
            }
            continue;
        }
        out.push(w);
    }
    out
}

#[derive(Debug, FromRow)]
struct WindowVisit {
    i: i64,
    #[sqlx(flatten)]
    visit: StoredVisit,
}

#[derive(Debug, FromRow)]
struct WindowView {
    i: i64,
    seq: i64,
    /// Still queued past this chunk: not counted in the page pairs yet.
    queued: i64,
    #[sqlx(flatten)]
    view: PageView,
}

/// What the chunk does to the visits table.
#[derive(Debug, Default)]
struct Changes<'a> {
    gone: Vec<i64>,
    /// (id, end, page views, exit page) of visits that only grew at their end.
    extended: Vec<(i64, i64, i64, String)>,
    added: Vec<(i64, &'a str, Visit)>,
    /// (project, visitor, visit start, path, page views) added to `web_visit_pages`: the
    /// pages of the added visits, and the new page views of the extended ones.
    pages: Vec<(i64, &'a str, i64, String, i64)>,
}

/// Each cut visit's page views per path (`cuts` from [`cut`] of `pvs`, both in time order).
fn cut_pages(pvs: &[PageView], cuts: &[Visit]) -> Vec<BTreeMap<String, i64>> {
    let mut out: Vec<BTreeMap<String, i64>> = cuts.iter().map(|_| BTreeMap::new()).collect();
    let mut i = 0;
    for pv in pvs {
        while cuts.get(i).is_some_and(|c| c.end_ts < pv.ts) {
            i += 1;
        }
        if let Some(pages) = out.get_mut(i) {
            *pages.entry(pv.path.clone()).or_default() += 1;
        }
    }
    out
}

impl Store {
    /// Folds up to `size` queued page views in one transaction; returns how many.
    pub(super) async fn fold_chunk(&self, size: i64) -> Result<u64, StoreError> {
        with_db!(self, write_pool, |pool, backend| {
            let mut tx = pool.begin().await?;
            if backend == Backend::Postgres {
                // Replicas fold one at a time: two folding one visitor would each see the
                // other's visits half-written.
                sqlx::query(crate::store::web::WEB_FOLD_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            // A write first: SQLite takes the write lock before this transaction reads.
            let pending: Vec<Pending> = sqlx::query_as(
                "DELETE FROM web_visit_pending WHERE id IN (
                     SELECT id FROM web_visit_pending ORDER BY id LIMIT $1)
                 RETURNING id, project_id, seq, visitor, ts, path, removed",
            )
            .bind(size)
            .fetch_all(&mut *tx)
            .await?;
            if pending.is_empty() {
                tx.commit().await?;
                return Ok(0);
            }
            let mut projects: Vec<i64> = pending.iter().map(|p| p.project_id).collect();
            projects.sort_unstable();
            projects.dedup();
            let zones: Vec<(i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(Zones::sql(projects.iter().copied())))
                    .fetch_all(&mut *tx)
                    .await?;
            let zones = Zones::new(zones);
            let rebuilding: Rebuilding = sqlx::query_as::<_, (i64, i64, i64)>(
                "SELECT project_id, visit_cursor, seq_cursor FROM web_rebuild",
            )
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(p, v, s)| (p, (v, s)))
            .collect();
            let mut plan = Plan::default();
            for p in &pending {
                // A rebuild counts the folded page views it reaches: those it passed while
                // they were queued are the fold's to count, the others its own.
                let counted = rebuilding
                    .get(&p.project_id)
                    .is_none_or(|(_, seq_cursor)| p.seq <= *seq_cursor);
                if counted {
                    let tz = zones.of(p.project_id);
                    plan.page_view(&tz, p.project_id, &p.visitor, p.ts, &p.path, p.removed != 0);
                }
            }

            // Every window's stored visits in reach, in one statement.
            let mut windows = windows(&pending);
            let keys: Vec<(usize, i64, &str, i64, i64)> = windows
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let (lo, hi) = (w.first - VISIT_GAP_MS, w.last + VISIT_GAP_MS);
                    (i, w.project, w.visitor.as_str(), lo, hi)
                })
                .collect();
            let rows: Vec<WindowVisit> = sqlx::query_as(sqlx::AssertSqlSafe(sql::window_visits(
                backend,
                VISIT_COLUMNS,
            )))
            .bind(serde_json::to_string(&keys).expect("windows serialize"))
            .fetch_all(&mut *tx)
            .await?;
            for row in rows {
                windows[row.i as usize].old.push(row.visit);
            }
            let windows = merge_sharing(windows);

            // The page views each window's visits are made of, in one statement.
            let keys: Vec<(usize, i64, &str, i64, i64)> = windows
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let (from, to) = w.span();
                    (i, w.project, w.visitor.as_str(), from, to)
                })
                .collect();
            let mut views: Vec<Vec<(i64, bool, PageView)>> =
                windows.iter().map(|_| Vec::new()).collect();
            let rows: Vec<WindowView> =
                sqlx::query_as(sqlx::AssertSqlSafe(sql::window_page_views(backend)))
                    .bind(serde_json::to_string(&keys).expect("windows serialize"))
                    .fetch_all(&mut *tx)
                    .await?;
            for row in rows {
                views[row.i as usize].push((row.seq, row.queued != 0, row.view));
            }

            // The chunk's page views stored (not yet counted in the page pairs before it)
            // and removed (counted there, unless stored in this chunk too).
            let added: HashSet<(i64, i64)> = pending
                .iter()
                .filter(|p| p.removed == 0)
                .map(|p| (p.project_id, p.seq))
                .collect();
            let mut removed: HashMap<(i64, &str), Vec<&Pending>> = HashMap::new();
            for p in pending.iter().filter(|p| p.removed != 0) {
                removed
                    .entry((p.project_id, p.visitor.as_str()))
                    .or_default()
                    .push(p);
            }

            // Removals still queued of page views in the spans recounted: the visits they
            // were counted in change now, so they leave the page pairs now (see below).
            let keys: Vec<(usize, i64, &str, i64, i64)> = windows
                .iter()
                .enumerate()
                .filter(|(_, w)| !w.appends())
                .map(|(i, w)| {
                    let (from, to) = w.span();
                    (i, w.project, w.visitor.as_str(), from, to)
                })
                .collect();
            let mut later: Vec<Vec<(i64, String)>> = windows.iter().map(|_| Vec::new()).collect();
            if !keys.is_empty() {
                let rows: Vec<(i64, i64, i64, String)> =
                    sqlx::query_as(sqlx::AssertSqlSafe(sql::window_removals(backend)))
                        .bind(serde_json::to_string(&keys).expect("windows serialize"))
                        .fetch_all(&mut *tx)
                        .await?;
                let ids: Vec<i64> = rows.iter().map(|r| r.1).collect();
                for (i, _, ts, path) in rows {
                    later[i as usize].push((ts, path));
                }
                if !ids.is_empty() {
                    sqlx::query(sql::mark_removals(backend))
                        .bind(serde_json::to_string(&ids).expect("ids serialize"))
                        .execute(&mut *tx)
                        .await?;
                }
            }

            let mut changes = Changes::default();
            for ((w, mut pvs), later) in windows.iter().zip(views).zip(later) {
                pvs.sort_unstable_by_key(|(seq, _, v)| (v.ts, *seq));
                let folded: Vec<(i64, bool)> = pvs.iter().map(|(seq, q, _)| (*seq, *q)).collect();
                let pvs: Vec<PageView> = pvs.into_iter().map(|(_, _, v)| v).collect();
                let tz = zones.of(w.project);
                // A visit row at or before a rebuild's cursor is the fold's to count; the
                // rebuild counts the others (new rows are past its cursor) when it gets there.
                let visit_cursor = rebuilding.get(&w.project).map(|r| r.0);
                let ours = |id: i64| visit_cursor.is_none_or(|c| id <= c);
                let cuts = cut(&pvs);
                let mut new: Vec<(Visit, BTreeMap<String, i64>)> =
                    cuts.iter().cloned().zip(cut_pages(&pvs, &cuts)).collect();
                // Each cut visit as the pairs count it (an append's first one may be the stored
                // visit it grows), and whether this chunk counts it.
                let mut counted: Vec<(Visit, bool)> = cuts
                    .iter()
                    .map(|c| {
                        let stored = w.old.iter().find(|o| Visit::from_stored(o) == *c);
                        (
                            c.clone(),
                            stored.map_or(visit_cursor.is_none(), |o| ours(o.id)),
                        )
                    })
                    .collect();
                if w.appends() {
                    // The visit before the new page views grows if the first is within a gap
                    // of its end; the other stored visits stay as they are.
                    let last = w.old.iter().max_by_key(|v| v.end_ts);
                    if let (Some(last), Some((head, head_pages))) = (last, new.first_mut())
                        && head.start_ts - last.end_ts <= VISIT_GAP_MS
                    {
                        let before = Visit::from_stored(last);
                        let mut grown = before.clone();
                        grown.end_ts = head.end_ts;
                        grown.pageviews += head.pageviews;
                        grown.values[1] = head.values[1].clone();
                        if ours(last.id) {
                            plan.visit(&tz, w.project, &w.visitor, &before, -1);
                            plan.visit(&tz, w.project, &w.visitor, &grown, 1);
                            if before.values[1] != grown.values[1] {
                                plan.exit_moved(
                                    &tz,
                                    w.project,
                                    &w.visitor,
                                    &before,
                                    &grown.values[1],
                                );
                            }
                        }
                        // The new page views count in the grown visit's pairs (its exit page is
                        // theirs); the ones it had move there through `exit_moved`.
                        counted[0] = (grown.clone(), ours(last.id));
                        changes.extended.push((
                            last.id,
                            grown.end_ts,
                            grown.pageviews,
                            grown.values[1].clone(),
                        ));
                        for (path, n) in std::mem::take(head_pages) {
                            changes
                                .pages
                                .push((w.project, &w.visitor, last.start_ts, path, n));
                        }
                        new.remove(0);
                    }
                } else {
                    // Visits that did not change stay as they are.
                    for old in &w.old {
                        let v = Visit::from_stored(old);
                        match new.iter().position(|(n, _)| *n == v) {
                            Some(i) => {
                                new.swap_remove(i);
                            }
                            None => {
                                changes.gone.push(old.id);
                                if ours(old.id) {
                                    plan.visit(&tz, w.project, &w.visitor, &v, -1);
                                }
                            }
                        }
                    }
                }
                // The page pairs move by the page views whose visit (as counted) changed.
                // Only folded page views count there: in the old visits those stored before
                // this chunk, in the new ones all but those still queued past it.
                let appends = w.appends();
                let old_of = |ts: i64| {
                    w.old
                        .iter()
                        .find(|o| !appends && o.start_ts <= ts && ts <= o.end_ts)
                        .filter(|o| ours(o.id))
                        .map(Visit::from_stored)
                };
                for (pv, (seq, queued)) in pvs.iter().zip(&folded) {
                    let before =
                        old_of(pv.ts).filter(|_| !*queued && !added.contains(&(w.project, *seq)));
                    let after = cuts
                        .iter()
                        .position(|c| c.start_ts <= pv.ts && pv.ts <= c.end_ts)
                        .and_then(|i| counted[i].1.then(|| &counted[i].0))
                        .filter(|_| !*queued);
                    if let (Some(a), Some(b)) = (&before, after)
                        && same_pairs(&tz, a, b)
                    {
                        continue;
                    }
                    if let Some(a) = &before {
                        plan.page_pair(&tz, w.project, &w.visitor, a, &pv.path, -1);
                    }
                    if let Some(b) = after {
                        plan.page_pair(&tz, w.project, &w.visitor, b, &pv.path, 1);
                    }
                }
                // A removed page view leaves the pairs of the visit it was counted in: when its
                // removal is folded, or earlier, when that visit is recounted first (a person's
                // removals can span chunks), which marks it done (2). One still queued itself
                // when removed (3) was never counted there.
                let gone = removed
                    .get(&(w.project, w.visitor.as_str()))
                    .into_iter()
                    .flatten()
                    .filter(|r| r.removed == 1 && w.first <= r.ts && r.ts <= w.last)
                    .map(|r| (r.ts, r.path.as_str()))
                    .chain(later.iter().map(|(ts, path)| (*ts, path.as_str())));
                for (ts, path) in gone {
                    if let Some(a) = old_of(ts) {
                        plan.page_pair(&tz, w.project, &w.visitor, &a, path, -1);
                    }
                }
                for (v, pages) in new {
                    if visit_cursor.is_none() {
                        plan.visit(&tz, w.project, &w.visitor, &v, 1);
                    }
                    for (path, n) in pages {
                        changes
                            .pages
                            .push((w.project, &w.visitor, v.start_ts, path, n));
                    }
                    changes.added.push((w.project, w.visitor.as_str(), v));
                }
            }

            if !changes.gone.is_empty() {
                sqlx::query(sql::delete_visits(backend))
                    .bind(serde_json::to_string(&changes.gone).expect("ids serialize"))
                    .execute(&mut *tx)
                    .await?;
            }
            if !changes.extended.is_empty() {
                sqlx::query(sql::extend_visits(backend))
                    .bind(serde_json::to_string(&changes.extended).expect("visits serialize"))
                    .execute(&mut *tx)
                    .await?;
            }
            for group in changes.added.chunks(VISITS_PER_STATEMENT) {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "INSERT INTO web_visits (project_id, visitor, {VISIT_COLUMNS}) "
                ));
                q.push_values(group, |mut b, (project, visitor, v)| {
                    b.push_bind(*project)
                        .push_bind(*visitor)
                        .push_bind(v.start_ts)
                        .push_bind(v.end_ts)
                        .push_bind(v.pageviews);
                    for value in &v.values {
                        b.push_bind(value.as_str());
                    }
                });
                q.build().persistent(false).execute(&mut *tx).await?;
            }
            if !changes.pages.is_empty() {
                sqlx::query(sql::add_visit_pages(backend))
                    .bind(serde_json::to_string(&changes.pages).expect("pages serialize"))
                    .execute(&mut *tx)
                    .await?;
            }
            apply_plan!(tx, plan, backend, self.pair_heavy_visits());
            tx.commit().await?;
            Ok(pending.len() as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(visitor: &str, ts: i64, removed: i64) -> Pending {
        Pending {
            project_id: 1,
            seq: ts,
            visitor: visitor.to_owned(),
            ts,
            path: "/".to_owned(),
            removed,
        }
    }

    #[test]
    fn a_visitors_page_views_far_apart_are_read_as_separate_windows() {
        let gap = VISIT_GAP_MS;
        let chunk = [
            pending("a", 10 * gap, 0),
            pending("b", 0, 0),
            pending("a", 0, 0),
            pending("a", 2 * gap, 1),
            pending("a", 4 * gap + 1, 0),
        ];
        let w = windows(&chunk);
        let spans: Vec<(&str, i64, i64, bool)> = w
            .iter()
            .map(|w| (w.visitor.as_str(), w.first, w.last, w.removed))
            .collect();
        assert_eq!(
            spans,
            [
                ("a", 0, 2 * gap, true),
                ("a", 4 * gap + 1, 4 * gap + 1, false),
                ("a", 10 * gap, 10 * gap, false),
                ("b", 0, 0, false)
            ]
        );
    }
}
