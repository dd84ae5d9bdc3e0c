//! A view without filters, from `web_hourly` (migration 0034): sums of the hours in range and
//! unions of their visitor sketches. The cost is the rows of the range (hours × values), not
//! its page views.

use std::collections::HashMap;

use super::{BreakdownRow, Dimension, WebQuery, WebReport, WebTotals};
use crate::store::visits::sketch::Visitors;
use crate::store::{Store, StoreError};

/// The bucket of `[start, end)` spans (sorted, adjacent) that holds `at`.
fn bucket_of(buckets: &[(i64, i64)], at: i64) -> Option<usize> {
    let i = buckets
        .partition_point(|(start, _)| *start <= at)
        .checked_sub(1)?;
    (at < buckets[i].1).then_some(i)
}

impl Store {
    pub(super) async fn web_report_from_rollups(
        &self,
        q: &WebQuery<'_>,
    ) -> Result<WebReport, StoreError> {
        let hours: Vec<(i64, i64, i64, i64, i64, Vec<u8>)> = with_db!(self, read_pool, |pool| {
            sqlx::query_as(
                "SELECT hour, visits, pageviews, bounces, duration_ms, visitors FROM web_hourly
                 WHERE project_id = $1 AND dim = '' AND hour >= $2 AND hour < $3",
            )
            .bind(q.project)
            .bind(q.from)
            .bind(q.to)
            .fetch_all(pool)
            .await?
        });
        let mut totals = WebTotals::default();
        let mut everyone = Visitors::default();
        let mut per_bucket = vec![Visitors::default(); q.buckets.len()];
        for (hour, visits, pageviews, bounces, duration_ms, sketch) in &hours {
            totals.visits += visits;
            totals.pageviews += pageviews;
            totals.bounces += bounces;
            totals.duration_ms += duration_ms;
            everyone.merge_bytes(sketch);
            if let Some(i) = bucket_of(q.buckets, *hour) {
                per_bucket[i].merge_bytes(sketch);
            }
        }
        // Each visitor viewed a page: the estimate never says more than the page views.
        totals.visitors = everyone.count().min(totals.pageviews);
        let mut report = WebReport {
            totals,
            series: per_bucket.iter().map(Visitors::count).collect(),
            breakdowns: Vec::new(),
        };
        let Some(limit) = q.breakdown_rows else {
            return Ok(report);
        };
        let limit = usize::try_from(limit).unwrap_or(0);
        for dim in Dimension::ALL {
            let rows: Vec<(String, i64, i64, Vec<u8>)> = with_db!(self, read_pool, |pool| {
                sqlx::query_as(
                    "SELECT value, visits, pageviews, visitors FROM web_hourly
                     WHERE project_id = $1 AND dim = $2 AND hour >= $3 AND hour < $4",
                )
                .bind(q.project)
                .bind(dim.key())
                .bind(q.from)
                .bind(q.to)
                .fetch_all(pool)
                .await?
            });
            report.breakdowns.push((dim, top_rows(dim, &rows, limit)));
        }
        Ok(report)
    }
}

/// The `limit` values with the most visitors. A value's visitors never exceed its count (page
/// views, or visits), so values are taken by count and sketches merged only until no value
/// left could still make the list.
fn top_rows(
    dim: Dimension,
    rows: &[(String, i64, i64, Vec<u8>)],
    limit: usize,
) -> Vec<BreakdownRow> {
    let mut by_value: HashMap<&str, (i64, Vec<&[u8]>)> = HashMap::new();
    for (value, visits, pageviews, sketch) in rows {
        let e = by_value.entry(value.as_str()).or_default();
        e.0 += if dim == Dimension::Page {
            *pageviews
        } else {
            *visits
        };
        e.1.push(sketch);
    }
    let mut candidates: Vec<(&str, i64, Vec<&[u8]>)> = by_value
        .into_iter()
        .filter(|(_, (count, _))| *count > 0)
        .map(|(value, (count, sketches))| (value, count, sketches))
        .collect();
    candidates.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let mut top: Vec<BreakdownRow> = Vec::new();
    for (value, count, sketches) in candidates {
        if top.len() >= limit && top.last().is_some_and(|r| r.visitors > count) {
            break;
        }
        let mut visitors = Visitors::default();
        for s in sketches {
            visitors.merge_bytes(s);
        }
        top.push(BreakdownRow {
            value: value.to_owned(),
            visitors: visitors.count().min(count),
            count,
        });
        super::sort_rows(&mut top);
        top.truncate(limit);
    }
    top
}
