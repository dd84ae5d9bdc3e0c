//! One fold transaction: a chunk of queued page views into the visits and their rollups, in a
//! few statements per chunk (each reading or writing hundreds of visitors) rather than a few
//! per visitor.

use std::collections::BTreeMap;

use sqlx::FromRow;

use super::days::Zones;
use super::plan::{Plan, apply_plan, tuples};
use super::sketch::Visitors;
use super::{PageView, Pending, Rebuilding, StoredVisit, VISIT_COLUMNS, Visit, cut};
use crate::store::web::VISIT_GAP_MS;
use crate::store::{Backend, Store, StoreError};

/// Visitor windows per read statement (five parameters each).
const WINDOWS_PER_STATEMENT: usize = 500;
/// Visits per `INSERT` (sixteen parameters each) or `DELETE` statement.
const VISITS_PER_STATEMENT: usize = 500;

/// The page views of one visitor in a chunk that lie close together (no two consecutive ones
/// more than two gaps apart), and the stored visits within a gap of them: what the fold
/// recomputes. Splitting a visitor's page views this way keeps the read near them, however
/// long the visitor's history.
#[derive(Debug)]
struct Window {
    project: i64,
    visitor: String,
    first: i64,
    last: i64,
    old: Vec<StoredVisit>,
}

impl Window {
    /// The span whose page views make up the window's visits again.
    fn span(&self) -> (i64, i64) {
        let from = self
            .old
            .iter()
            .map(|v| v.start_ts)
            .fold(self.first, i64::min);
        let to = self.old.iter().map(|v| v.end_ts).fold(self.last, i64::max);
        (from, to)
    }

    fn shares_a_visit_with(&self, other: &Window) -> bool {
        self.old
            .iter()
            .any(|a| other.old.iter().any(|b| a.id == b.id))
    }
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
    #[sqlx(flatten)]
    view: PageView,
}

/// Windows of the chunk's page views, in (project, visitor, time) order.
fn windows(pending: &[Pending]) -> Vec<Window> {
    let mut times: BTreeMap<(i64, &str), Vec<i64>> = BTreeMap::new();
    for p in pending {
        times
            .entry((p.project_id, p.visitor.as_str()))
            .or_default()
            .push(p.ts);
    }
    let mut out: Vec<Window> = Vec::new();
    for ((project, visitor), mut ts) in times {
        ts.sort_unstable();
        let mut start = 0;
        for i in 0..ts.len() {
            let ends = ts.get(i + 1).is_none_or(|n| n - ts[i] > 2 * VISIT_GAP_MS);
            if ends {
                out.push(Window {
                    project,
                    visitor: visitor.to_owned(),
                    first: ts[start],
                    last: ts[i],
                    old: Vec::new(),
                });
                start = i + 1;
            }
        }
    }
    out
}

/// Windows of one visitor that read the same stored visit (a long visit reaching across the
/// gap between them) become one, so each stored visit is recomputed once.
fn merge_sharing(windows: Vec<Window>) -> Vec<Window> {
    let mut out: Vec<Window> = Vec::with_capacity(windows.len());
    for w in windows {
        if let Some(prev) = out.last_mut()
            && prev.project == w.project
            && prev.visitor == w.visitor
            && prev.shares_a_visit_with(&w)
        {
            prev.first = prev.first.min(w.first);
            prev.last = prev.last.max(w.last);
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

/// `WITH t(i, p, v, lo, hi) AS (VALUES …)`: one row per window, `(index, project, visitor,
/// from, to)`.
fn window_table(n: usize) -> String {
    format!(
        "WITH t(i, p, v, lo, hi) AS (VALUES {})",
        tuples(n, &["BIGINT", "BIGINT", "TEXT", "BIGINT", "BIGINT"], 5)
    )
}

impl Store {
    /// Folds up to `size` queued page views in one transaction; returns how many.
    pub(super) async fn fold_chunk(&self, size: i64) -> Result<u64, StoreError> {
        with_db!(self, write_pool, |pool, backend| {
            let mut tx = pool.begin().await?;
            if backend == Backend::Postgres {
                // Replicas fold one at a time: two folding one visitor would each see the
                // other's visits half-written.
                sqlx::query("SELECT pg_advisory_xact_lock(7021)")
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
            let hasher = Visitors::hasher();
            let mut plan = Plan::default();
            for p in &pending {
                // A rebuild counts the folded page views it reaches: those it passed while
                // they were queued are the fold's to count, the others its own.
                let counted = rebuilding
                    .get(&p.project_id)
                    .is_none_or(|(_, seq_cursor)| p.seq <= *seq_cursor);
                if counted {
                    let tz = zones.of(p.project_id);
                    let visitor = Visitors::hash_of(&hasher, &p.visitor);
                    plan.page_view(&tz, p.project_id, visitor, p.ts, &p.path, p.removed != 0);
                }
            }

            // The visits within the gap of each window: those starting in it, and the one
            // before it if it reaches in.
            let mut windows = windows(&pending);
            for offset in (0..windows.len()).step_by(WINDOWS_PER_STATEMENT) {
                let group = &windows[offset..windows.len().min(offset + WINDOWS_PER_STATEMENT)];
                let mut q = sqlx::query_as::<_, WindowVisit>(sqlx::AssertSqlSafe(format!(
                    "{} SELECT t.i, id, {VISIT_COLUMNS} FROM t JOIN web_visits w
                         ON w.project_id = t.p AND w.visitor = t.v
                        AND w.start_ts >= t.lo AND w.start_ts <= t.hi
                     UNION ALL
                     SELECT t.i, id, {VISIT_COLUMNS} FROM t JOIN web_visits w ON w.id = (
                         SELECT x.id FROM web_visits x
                         WHERE x.project_id = t.p AND x.visitor = t.v AND x.start_ts < t.lo
                         ORDER BY x.start_ts DESC LIMIT 1)
                     WHERE w.end_ts >= t.lo",
                    window_table(group.len())
                )));
                for (i, w) in group.iter().enumerate() {
                    q = q
                        .bind((offset + i) as i64)
                        .bind(w.project)
                        .bind(w.visitor.as_str())
                        .bind(w.first - VISIT_GAP_MS)
                        .bind(w.last + VISIT_GAP_MS);
                }
                let rows = q.fetch_all(&mut *tx).await?;
                for row in rows {
                    windows[row.i as usize].old.push(row.visit);
                }
            }
            let windows = merge_sharing(windows);

            // Every page view of each window's span, the new ones and those of its visits.
            let mut views: Vec<Vec<(i64, PageView)>> = windows.iter().map(|_| Vec::new()).collect();
            for (n, group) in windows.chunks(WINDOWS_PER_STATEMENT).enumerate() {
                let offset = n * WINDOWS_PER_STATEMENT;
                let mut q = sqlx::query_as::<_, WindowView>(sqlx::AssertSqlSafe(format!(
                    "{} SELECT t.i, pv.seq, pv.ts, pv.path, pv.referrer, pv.source, pv.utm_source,
                               pv.utm_medium, pv.utm_campaign, pv.country, pv.browser, pv.os,
                               pv.device
                     FROM t JOIN web_pageviews pv
                       ON pv.project_id = t.p AND pv.visitor = t.v
                      AND pv.ts >= t.lo AND pv.ts <= t.hi",
                    window_table(group.len())
                )));
                for (i, w) in group.iter().enumerate() {
                    let (from, to) = w.span();
                    q = q
                        .bind((offset + i) as i64)
                        .bind(w.project)
                        .bind(w.visitor.as_str())
                        .bind(from)
                        .bind(to);
                }
                for row in q.fetch_all(&mut *tx).await? {
                    views[row.i as usize].push((row.seq, row.view));
                }
            }

            let mut gone_ids: Vec<i64> = Vec::new();
            let mut added: Vec<(i64, &str, Visit)> = Vec::new();
            for (w, mut pvs) in windows.iter().zip(views) {
                pvs.sort_unstable_by_key(|(seq, v)| (v.ts, *seq));
                let pvs: Vec<PageView> = pvs.into_iter().map(|(_, v)| v).collect();
                let tz = zones.of(w.project);
                let visit_cursor = rebuilding.get(&w.project).map(|r| r.0);
                let visitor = Visitors::hash_of(&hasher, &w.visitor);
                let mut new = cut(&pvs);
                // Visits that did not change stay as they are.
                for old in &w.old {
                    let v = Visit::from_stored(old);
                    match new.iter().position(|n| *n == v) {
                        Some(i) => {
                            new.swap_remove(i);
                        }
                        None => {
                            gone_ids.push(old.id);
                            if visit_cursor.is_none_or(|c| old.id <= c) {
                                plan.visit(&tz, w.project, visitor, &v, -1);
                            }
                        }
                    }
                }
                for v in new {
                    // A new visit's id is past any rebuild's cursor: the rebuild counts it.
                    if visit_cursor.is_none() {
                        plan.visit(&tz, w.project, visitor, &v, 1);
                    }
                    added.push((w.project, w.visitor.as_str(), v));
                }
            }
            for group in gone_ids.chunks(VISITS_PER_STATEMENT) {
                let list: Vec<String> = (1..=group.len()).map(|i| format!("${i}")).collect();
                let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM web_visits WHERE id IN ({})",
                    list.join(", ")
                )));
                for id in group {
                    q = q.bind(*id);
                }
                q.execute(&mut *tx).await?;
            }
            for group in added.chunks(VISITS_PER_STATEMENT) {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO web_visits (project_id, visitor, {VISIT_COLUMNS}) VALUES {}",
                    tuples(group.len(), &[], 16)
                )));
                for (project, visitor, v) in group {
                    q = q
                        .bind(*project)
                        .bind(*visitor)
                        .bind(v.start_ts)
                        .bind(v.end_ts)
                        .bind(v.pageviews);
                    for value in &v.values {
                        q = q.bind(value.as_str());
                    }
                }
                q.execute(&mut *tx).await?;
            }
            apply_plan!(tx, plan);
            tx.commit().await?;
            Ok(pending.len() as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(visitor: &str, ts: i64) -> Pending {
        Pending {
            project_id: 1,
            seq: ts,
            visitor: visitor.to_owned(),
            ts,
            path: "/".to_owned(),
            removed: 0,
        }
    }

    #[test]
    fn a_visitors_page_views_far_apart_are_read_as_separate_windows() {
        let gap = VISIT_GAP_MS;
        let chunk = [
            pending("a", 10 * gap),
            pending("b", 0),
            pending("a", 0),
            pending("a", 2 * gap),
            pending("a", 4 * gap + 1),
        ];
        let w = windows(&chunk);
        let spans: Vec<(&str, i64, i64)> = w
            .iter()
            .map(|w| (w.visitor.as_str(), w.first, w.last))
            .collect();
        assert_eq!(
            spans,
            [
                ("a", 0, 2 * gap),
                ("a", 4 * gap + 1, 4 * gap + 1),
                ("a", 10 * gap, 10 * gap),
                ("b", 0, 0)
            ]
        );
    }
}
