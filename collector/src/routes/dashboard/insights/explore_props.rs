//! Explore's counts with a filter and/or a group-by on tracked properties, from
//! `rollups_props_hourly` (`crate::store::props`): the whole hours of the range are sums of
//! rollup rows, its part-hours at either end are read from the events (at most two hours).
//! The answer is the scan's, group for group: the same values, `(none)` for events without
//! one, the same top-N and "(other)".

use std::collections::HashMap;
use std::ops::ControlFlow;

use super::Range;
use crate::analytics::{self, Agg, NamedSeries, OTHER, Series, SeriesSpec};
use crate::domain::ProjectId;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::bounded_scan::Order;
use crate::store::props::MISSING;
use crate::store::{DAY_MS, HOUR_MS};

/// Counts per group and bucket, as the scan's builder keeps them for a count.
struct Groups {
    first: i64,
    bucket: i64,
    len: usize,
    cells: HashMap<String, (i64, Vec<i64>)>,
}

impl Groups {
    fn add(&mut self, group: &str, t: i64, n: i64) {
        let Ok(i) = usize::try_from((t - self.first) / self.bucket) else {
            return;
        };
        if i >= self.len || n == 0 {
            return;
        }
        let len = self.len;
        let (total, cells) = self
            .cells
            .entry(group.to_owned())
            .or_insert_with(|| (0, vec![0; len]));
        *total += n;
        cells[i] += n;
    }
}

/// The answer from the rollups, or `None` when they cannot give it exactly (not a count, a
/// bucket under an hour, bots asked for, a key not tracked or still backfilling, a capped day
/// in the range): then the caller scans.
pub(super) async fn series(
    state: &AppState,
    project: ProjectId,
    r: &Range,
    event: Option<&str>,
    spec: &SeriesSpec,
    include_bots: bool,
) -> Result<Option<(Series, i64)>, ApiError> {
    if spec.agg != Agg::Count
        || r.bucket % HOUR_MS != 0
        || include_bots
        || (spec.filter.is_none() && spec.group_by.is_none())
    {
        return Ok(None);
    }
    let tracked = state.store.tracked_properties(project).await?;
    let ready = |k: &str| tracked.iter().any(|t| t.key == k && t.ready());
    let filter = spec.filter.as_ref();
    let group = spec.group_by.as_deref();
    if filter.is_some_and(|(k, _)| !ready(k)) || group.is_some_and(|k| !ready(k)) {
        return Ok(None);
    }
    // Whole hours from the rollup; the part-hours at the ends from the events.
    let hf = r.from + (HOUR_MS - r.from.rem_euclid(HOUR_MS)) % HOUR_MS;
    let ht = r.to - r.to.rem_euclid(HOUR_MS);
    let keys: Vec<&str> = filter
        .map(|(k, _)| k.as_str())
        .into_iter()
        .chain(group)
        .collect();
    if hf < ht {
        let (d0, d1) = (
            hf - hf.rem_euclid(DAY_MS),
            ht - 1 - (ht - 1).rem_euclid(DAY_MS),
        );
        if state
            .store
            .props_capped(project, &keys, event, d0, d1)
            .await?
        {
            return Ok(None);
        }
    }
    let buckets = analytics::bucket_starts(r.from, r.to, r.bucket);
    let mut groups = Groups {
        first: buckets.first().copied().unwrap_or(r.from),
        bucket: r.bucket,
        len: buckets.len(),
        cells: HashMap::new(),
    };
    let mut bot_events = 0;
    let edges = if hf < ht {
        vec![(r.from, hf), (ht, r.to)]
    } else {
        vec![(r.from, r.to)]
    };
    for (from, to) in edges.into_iter().filter(|(f, t)| f < t) {
        state
            .store
            .stream_events(project, from, to, event, Order::OldestFirst, |e, bot| {
                if bot {
                    bot_events += 1;
                } else if analytics::passes(&e.body, filter) {
                    let name = match group {
                        Some(g) => analytics::property_text(&e.body, g)
                            .unwrap_or_else(|| MISSING.to_owned()),
                        None => "all".to_owned(),
                    };
                    groups.add(&name, e.ts, 1);
                }
                ControlFlow::Continue(())
            })
            .await?;
    }
    if hf < ht {
        let names: Vec<String> = match event {
            Some(e) => vec![e.to_owned()],
            None => {
                let mut names: Vec<String> = state
                    .store
                    .rollup_counts(project, hf, ht)
                    .await?
                    .into_iter()
                    .map(|(_, n, _)| n)
                    .collect();
                names.sort_unstable();
                names.dedup();
                names
            }
        };
        bot_events += state
            .store
            .bot_rollup_counts(project, hf, ht)
            .await?
            .iter()
            .filter(|(_, n, _)| event.is_none_or(|e| e == n))
            .map(|(_, _, n)| n)
            .sum::<i64>();
        let store = &state.store;
        match (filter, group) {
            (Some((k, v)), None) => {
                for (h, _, _, n) in store
                    .props_rows(project, k, "", &names, hf, ht, Some(v), Some(""))
                    .await?
                {
                    groups.add("all", h, n);
                }
            }
            (None, Some(g)) => {
                for (h, va, vb, n) in store
                    .props_rows(project, g, "", &names, hf, ht, None, None)
                    .await?
                {
                    groups.add(if vb.is_empty() { &va } else { MISSING }, h, n);
                }
            }
            (Some((k, v)), Some(g)) if k == g => {
                for (h, _, _, n) in store
                    .props_rows(project, k, "", &names, hf, ht, Some(v), Some(""))
                    .await?
                {
                    groups.add(v, h, n);
                }
            }
            (Some((k, v)), Some(g)) => {
                // Events with the filter's value, less those with a value of the group's key:
                // the rest have none.
                for (h, _, _, n) in store
                    .props_rows(project, k, "", &names, hf, ht, Some(v), Some(""))
                    .await?
                {
                    groups.add(MISSING, h, n);
                }
                let pairs = if k.as_str() < g {
                    store
                        .props_rows(project, k, g, &names, hf, ht, Some(v), None)
                        .await?
                        .into_iter()
                        .map(|(h, _, vb, n)| (h, vb, n))
                        .collect::<Vec<_>>()
                } else {
                    store
                        .props_rows(project, g, k, &names, hf, ht, None, Some(v))
                        .await?
                        .into_iter()
                        .map(|(h, va, _, n)| (h, va, n))
                        .collect()
                };
                for (h, value, n) in pairs {
                    groups.add(&value, h, n);
                    groups.add(MISSING, h, -n);
                }
            }
            (None, None) => return Ok(None),
        }
    }
    Ok(Some((finish(groups, buckets, spec), bot_events)))
}

/// The scan builder's ranking for a count (`analytics::SeriesBuilder::finish`): the `top`
/// groups by events (ties by name), the rest under "(other)". All values are ranked: the rollup
/// holds them all, where the scan keeps the first `MAX_GROUPS` it meets.
fn finish(groups: Groups, buckets: Vec<i64>, spec: &SeriesSpec) -> Series {
    let mut ranked: Vec<(String, (i64, Vec<i64>))> = groups
        .cells
        .into_iter()
        .filter(|(_, (total, _))| *total > 0)
        .collect();
    ranked.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
    if spec.group_by.is_some() && ranked.len() > spec.top {
        let mut other = vec![0; buckets.len()];
        for (_, (_, cells)) in ranked.split_off(spec.top) {
            for (o, c) in other.iter_mut().zip(cells) {
                *o += c;
            }
        }
        ranked.push((OTHER.to_owned(), (0, other)));
    }
    #[allow(clippy::cast_precision_loss)]
    let series = ranked
        .into_iter()
        .map(|(name, (_, cells))| NamedSeries {
            name,
            values: cells.into_iter().map(|c| Some(c as f64)).collect(),
        })
        .collect();
    Series { buckets, series }
}
