//! A filtered view's numbers counted in one pass over the selected visits (and their page
//! views), as the database streams them: every visitor and every value is interned to a small
//! integer once, so each exact distinct count is a set of integer pairs. Eleven `GROUP BY`s
//! with `COUNT(DISTINCT visitor)` in SQL sorted the same rows eleven times over.

use std::collections::{HashMap, HashSet};

use super::{BreakdownRow, Dimension, WebReport, WebTotals};
use crate::store::visits::VISIT_DIMENSIONS;

/// Strings to dense ids, in first-seen order.
#[derive(Debug, Default)]
struct Interner {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(id) = self.ids.get(s) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(s.into(), id);
        self.names.push(s.into());
        id
    }
}

/// One breakdown: per value, its count and its distinct visitors.
#[derive(Debug, Default)]
struct Breakdown {
    values: Interner,
    /// (count, visitors) per value id.
    rows: Vec<(i64, i64)>,
    /// (value id, visitor id) pairs seen.
    seen: HashSet<u64>,
}

impl Breakdown {
    fn add(&mut self, value: &str, visitor: u32, count: i64) {
        let id = self.values.id(value);
        if id as usize == self.rows.len() {
            self.rows.push((0, 0));
        }
        let row = &mut self.rows[id as usize];
        row.0 += count;
        if self.seen.insert(u64::from(id) << 32 | u64::from(visitor)) {
            row.1 += 1;
        }
    }

    fn top(self, limit: usize) -> Vec<BreakdownRow> {
        let mut list: Vec<BreakdownRow> = self
            .values
            .names
            .into_iter()
            .zip(self.rows)
            .map(|(value, (count, visitors))| BreakdownRow {
                value: value.into(),
                visitors,
                count,
            })
            .collect();
        super::sort_rows(&mut list);
        list.truncate(limit);
        list
    }
}

/// The running counts of one period's selected visits.
#[derive(Debug)]
pub(super) struct Tally<'a> {
    buckets: &'a [(i64, i64)],
    visitors: Interner,
    totals: WebTotals,
    /// (bucket, visitor id) pairs seen, and the distinct visitors per bucket.
    bucket_seen: HashSet<u64>,
    series: Vec<i64>,
    /// The visit dimensions, in [`VISIT_DIMENSIONS`] order, then pages; empty without
    /// breakdowns.
    breakdowns: Vec<Breakdown>,
}

impl<'a> Tally<'a> {
    pub(super) fn new(buckets: &'a [(i64, i64)], breakdowns: bool) -> Self {
        let n = if breakdowns {
            VISIT_DIMENSIONS.len() + 1
        } else {
            0
        };
        Self {
            buckets,
            visitors: Interner::default(),
            totals: WebTotals::default(),
            bucket_seen: HashSet::new(),
            series: vec![0; buckets.len()],
            breakdowns: (0..n).map(|_| Breakdown::default()).collect(),
        }
    }

    /// A selected visit: its visitor, span, page views and values in [`VISIT_DIMENSIONS`]
    /// order (ignored without breakdowns).
    pub(super) fn visit(
        &mut self,
        visitor: &str,
        start_ts: i64,
        end_ts: i64,
        pageviews: i64,
        values: [&str; 11],
    ) {
        let who = self.visitors.id(visitor);
        self.totals.visits += 1;
        self.totals.pageviews += pageviews;
        self.totals.bounces += i64::from(pageviews == 1);
        self.totals.duration_ms += end_ts - start_ts;
        // Buckets are sorted and adjacent: the last that starts at or before the visit.
        if let Some(i) = self
            .buckets
            .partition_point(|(s, _)| *s <= start_ts)
            .checked_sub(1)
            .filter(|i| start_ts < self.buckets[*i].1)
            && self.bucket_seen.insert((i as u64) << 32 | u64::from(who))
        {
            self.series[i] += 1;
        }
        for (b, value) in self.breakdowns.iter_mut().zip(values) {
            b.add(value, who, 1);
        }
    }

    /// A page view of a selected visit, for the page breakdown.
    pub(super) fn page_view(&mut self, visitor: &str, path: &str) {
        let who = self.visitors.id(visitor);
        if let Some(pages) = self.breakdowns.last_mut() {
            pages.add(path, who, 1);
        }
    }

    pub(super) fn finish(mut self, limit: Option<i64>) -> WebReport {
        // Every visitor interned came with a selected visit.
        self.totals.visitors = self.visitors.names.len() as i64;
        let limit = limit.map_or(0, |l| usize::try_from(l).unwrap_or(0));
        let mut breakdowns = Vec::new();
        if !self.breakdowns.is_empty() {
            let pages = self.breakdowns.pop().map(|b| b.top(limit));
            breakdowns.push((Dimension::Page, pages.unwrap_or_default()));
            for (dim, b) in VISIT_DIMENSIONS.iter().zip(self.breakdowns) {
                breakdowns.push((*dim, b.top(limit)));
            }
        }
        WebReport {
            totals: self.totals,
            series: self.series,
            breakdowns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_distinct_visitors_per_value_and_bucket() {
        let buckets = [(0, 10), (10, 20)];
        let mut t = Tally::new(&buckets, true);
        let v = |s| {
            [
                s, "/x", "Google", "", "", "", "", "DE", "Chrome", "Linux", "desktop",
            ]
        };
        t.visit("a", 1, 5, 2, v("/"));
        t.visit("a", 12, 12, 1, v("/"));
        t.visit("b", 15, 19, 3, v("/docs"));
        t.page_view("a", "/");
        t.page_view("a", "/");
        t.page_view("b", "/");
        let r = t.finish(Some(10));
        assert_eq!(
            r.totals,
            WebTotals {
                visitors: 2,
                pageviews: 6,
                visits: 3,
                bounces: 1,
                duration_ms: 8
            }
        );
        assert_eq!(r.series, vec![1, 2]);
        let entry = &r
            .breakdowns
            .iter()
            .find(|b| b.0 == Dimension::EntryPage)
            .unwrap()
            .1;
        assert_eq!(
            entry,
            &vec![
                BreakdownRow {
                    value: "/".into(),
                    visitors: 1,
                    count: 2
                },
                BreakdownRow {
                    value: "/docs".into(),
                    visitors: 1,
                    count: 1
                },
            ]
        );
        let pages = &r.breakdowns[0].1;
        assert_eq!(
            pages,
            &vec![BreakdownRow {
                value: "/".into(),
                visitors: 2,
                count: 3
            }]
        );
    }
}
