//! Explore's series, aggregated as the events stream in: memory is bounded by the groups kept
//! ([`MAX_GROUPS`]) and the events read, never by the range.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{
    Agg, NamedSeries, Series, SeriesSpec, bucket_starts, passes, property_number, property_text,
};
use crate::domain::percentile::percentile;

/// Most distinct group-by values one answer keeps apart; values met after it count under
/// [`OTHER`], and the answer says the groups were capped.
pub const MAX_GROUPS: usize = 1_000;
/// The group of the values past the `top` largest (and past [`MAX_GROUPS`]).
pub const OTHER: &str = "(other)";

/// One bucket of one group.
#[derive(Debug, Default)]
struct Cell {
    values: Vec<f64>,
    users: HashSet<String>,
    count: u64,
}

impl Cell {
    fn absorb(&mut self, other: Cell) {
        self.values.extend(other.values);
        self.users.extend(other.users);
        self.count += other.count;
    }
}

/// One group's events: how many, and its non-empty buckets (a sparse map, so that a thousand
/// groups over thousands of buckets cost what the events cost).
#[derive(Debug, Default)]
struct Group {
    total: u64,
    cells: BTreeMap<usize, Cell>,
}

impl Group {
    fn absorb(&mut self, other: Group) {
        self.total += other.total;
        for (i, cell) in other.cells {
            self.cells.entry(i).or_default().absorb(cell);
        }
    }
}

/// Builds a [`Series`] from events handed over one at a time, in any order.
#[derive(Debug)]
pub struct SeriesBuilder<'s> {
    spec: &'s SeriesSpec,
    buckets: Vec<i64>,
    first: i64,
    groups: HashMap<String, Group>,
    /// Events of values met once [`MAX_GROUPS`] were kept.
    overflow: Option<Group>,
}

/// A finished series and what the reader should know about it.
#[derive(Debug)]
pub struct Built {
    pub series: Series,
    /// More than [`MAX_GROUPS`] distinct values: the later ones count under [`OTHER`].
    pub groups_capped: bool,
}

impl<'s> SeriesBuilder<'s> {
    pub fn new(spec: &'s SeriesSpec) -> Self {
        let buckets = bucket_starts(spec.from, spec.to, spec.bucket_ms);
        let first = buckets.first().copied().unwrap_or(spec.from);
        Self {
            spec,
            buckets,
            first,
            groups: HashMap::new(),
            overflow: None,
        }
    }

    /// Counts one event (its time, user key and stored JSON) if the spec wants it.
    pub fn add(&mut self, ts: i64, user_key: Option<&str>, body: &str) {
        let spec = self.spec;
        if ts < spec.from || ts >= spec.to || !passes(body, spec.filter.as_ref()) {
            return;
        }
        let name = match &spec.group_by {
            Some(g) => property_text(body, g).unwrap_or_else(|| "(none)".to_owned()),
            None => "all".to_owned(),
        };
        let group = if self.groups.contains_key(&name) || self.groups.len() < MAX_GROUPS {
            self.groups.entry(name).or_default()
        } else {
            self.overflow.get_or_insert_with(Group::default)
        };
        let Ok(idx) = usize::try_from((ts - self.first) / spec.bucket_ms) else {
            return;
        };
        if idx >= self.buckets.len() {
            return;
        }
        let value = if spec.agg.needs_property() {
            match spec
                .property
                .as_deref()
                .and_then(|p| property_number(body, p))
            {
                Some(v) => Some(v),
                None => return,
            }
        } else {
            None
        };
        let cell = group.cells.entry(idx).or_default();
        cell.values.extend(value);
        if let Some(u) = user_key
            && spec.agg == Agg::Unique
        {
            cell.users.insert(u.to_owned());
        }
        cell.count += 1;
        group.total += 1;
    }

    /// The series: the `top` groups by events (ties by name) and the rest under [`OTHER`].
    /// Buckets that start before `covered_from` are null: the reader did not read all of them.
    pub fn finish(self, covered_from: Option<i64>) -> Built {
        let spec = self.spec;
        let groups_capped = self.overflow.is_some();
        let mut ranked: Vec<(String, Group)> = self.groups.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total.cmp(&a.1.total).then_with(|| a.0.cmp(&b.0)));
        if spec.group_by.is_some() && (ranked.len() > spec.top || self.overflow.is_some()) {
            let mut other = self.overflow.unwrap_or_default();
            for (_, g) in ranked.split_off(spec.top.min(ranked.len())) {
                other.absorb(g);
            }
            ranked.push((OTHER.to_owned(), other));
        }
        let covered = |b: i64| covered_from.is_none_or(|c| b >= c);
        let series = ranked
            .into_iter()
            .map(|(name, mut group)| NamedSeries {
                name,
                values: self
                    .buckets
                    .iter()
                    .enumerate()
                    .map(|(i, b)| {
                        let mut c = group.cells.remove(&i).unwrap_or_default();
                        if covered(*b) {
                            aggregate(spec.agg, &mut c.values, c.users.len(), c.count)
                        } else {
                            None
                        }
                    })
                    .collect(),
            })
            .collect();
        Built {
            series: Series {
                buckets: self.buckets,
                series,
            },
            groups_capped,
        }
    }
}

fn aggregate(agg: Agg, values: &mut [f64], users: usize, count: u64) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    let n = values.len() as f64;
    match agg {
        #[allow(clippy::cast_precision_loss)]
        Agg::Count => Some(count as f64),
        #[allow(clippy::cast_precision_loss)]
        Agg::Unique => Some(users as f64),
        Agg::Sum => Some(values.iter().sum()),
        Agg::Avg => (!values.is_empty()).then(|| values.iter().sum::<f64>() / n),
        Agg::Min => values.iter().copied().reduce(f64::min),
        Agg::Max => values.iter().copied().reduce(f64::max),
        Agg::P50 => percentile(values, 0.5),
        Agg::P75 => percentile(values, 0.75),
        Agg::P95 => percentile(values, 0.95),
    }
}
