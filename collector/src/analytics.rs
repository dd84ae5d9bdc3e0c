//! The dashboard's calculations over scanned events: time series with aggregates, filters and
//! groups; funnels; retention; sessions; Web Vitals. Pure functions, the same on both backends.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::domain::percentile::percentile;
use crate::store::analytics::ScannedEvent;

/// Gap of inactivity that ends a session (the usual web-analytics convention).
pub const SESSION_GAP_MS: i64 = 30 * 60 * 1000;
/// The event name the browser SDK gives Web Vitals samples.
pub const WEB_VITAL_EVENT: &str = "Web Vital";

/// A property of an event's stored JSON: `properties.<name>` (dots reach into objects), else
/// `context.<name>`, else `traits.<name>`. Found by walking the text, never parsed into
/// values, so a number keeps the digits it was sent with (a group named `1.10` stays `1.10`).
pub fn property<'a>(body: &'a str, name: &str) -> Option<&'a RawValue> {
    let body: &RawValue = serde_json::from_str(body).ok()?;
    ["properties", "context", "traits"]
        .into_iter()
        .find_map(|root| {
            let mut v = field(body, root);
            for part in name.split('.') {
                v = v.and_then(|v| field(v, part));
            }
            v.filter(|v| v.get() != "null")
        })
}

/// A property as text, for filters and groups: a string's value, else its JSON as sent.
pub fn property_text(body: &str, name: &str) -> Option<String> {
    let v = property(body, name)?.get();
    if v.starts_with('"') {
        serde_json::from_str(v).ok()
    } else {
        Some(v.to_owned())
    }
}

/// A property as a finite float, for aggregates: a number, or a string holding one.
fn property_number(body: &str, name: &str) -> Option<f64> {
    let v = property(body, name)?.get();
    let n: f64 = match v.as_bytes().first()? {
        b'"' => serde_json::from_str::<String>(v).ok()?.parse().ok()?,
        b'-' | b'0'..=b'9' => v.parse().ok()?,
        _ => return None,
    };
    n.is_finite().then_some(n)
}

/// The value of `key` in a JSON object's text (the last one, as JSON parsers keep); `None` for
/// anything that is not an object holding it.
pub(crate) fn field<'a>(object: &'a RawValue, key: &str) -> Option<&'a RawValue> {
    if !object.get().starts_with('{') {
        return None;
    }
    let mut de = serde_json::Deserializer::from_str(object.get());
    serde::Deserializer::deserialize_map(&mut de, FieldLookup(key))
        .ok()
        .flatten()
}

struct FieldLookup<'k>(&'k str);

impl<'de> Visitor<'de> for FieldLookup<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(hit) = map.next_key_seed(KeyIs(self.0))? {
            if hit {
                found = Some(map.next_value::<&'de RawValue>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Compares a key with the wanted one without copying it (unless it has escapes).
struct KeyIs<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Agg {
    Count,
    /// Distinct users (user id, else anonymous id).
    Unique,
    Sum,
    Avg,
    Min,
    Max,
    P50,
    P75,
    P95,
}

impl Agg {
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "count" => Self::Count,
            "unique" => Self::Unique,
            "sum" => Self::Sum,
            "avg" => Self::Avg,
            "min" => Self::Min,
            "max" => Self::Max,
            "p50" => Self::P50,
            "p75" => Self::P75,
            "p95" => Self::P95,
            other => {
                return Err(format!(
                    "unknown aggregate '{other}': use count, unique, sum, avg, min, max, p50, \
                     p75 or p95"
                ));
            }
        })
    }

    pub fn needs_property(self) -> bool {
        !matches!(self, Self::Count | Self::Unique)
    }
}

/// What a chart asks for.
#[derive(Debug, Clone)]
pub struct SeriesSpec {
    pub from: i64,
    pub to: i64,
    pub bucket_ms: i64,
    pub agg: Agg,
    pub property: Option<String>,
    /// Only events whose property equals this text.
    pub filter: Option<(String, String)>,
    /// One series per value of this property, the `top` largest by count; the rest is "other".
    pub group_by: Option<String>,
    pub top: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct NamedSeries {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// In `/openapi.json` as `ChartSeries` (the alerting rules have their own `Series`).
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[schema(as = ChartSeries)]
pub struct Series {
    /// Start of each bucket, unix milliseconds.
    pub buckets: Vec<i64>,
    pub series: Vec<NamedSeries>,
}

/// Bucket starts covering `[from, to)`, aligned to multiples of `bucket_ms` since the epoch.
pub fn bucket_starts(from: i64, to: i64, bucket_ms: i64) -> Vec<i64> {
    let mut t = from - from.rem_euclid(bucket_ms);
    let mut out = Vec::new();
    while t < to {
        out.push(t);
        t += bucket_ms;
    }
    out
}

/// Whether an event (its stored JSON) passes the spec's property filter.
pub fn passes(body: &str, filter: Option<&(String, String)>) -> bool {
    filter.is_none_or(|(name, want)| property_text(body, name).as_deref() == Some(want.as_str()))
}

pub fn series(events: &[ScannedEvent], spec: &SeriesSpec) -> Series {
    let buckets = bucket_starts(spec.from, spec.to, spec.bucket_ms);
    let first = buckets.first().copied().unwrap_or(spec.from);
    // group → bucket index → (values, users, count)
    #[derive(Default)]
    struct Cell {
        values: Vec<f64>,
        users: HashSet<String>,
        count: u64,
    }
    let mut groups: HashMap<String, (u64, Vec<Cell>)> = HashMap::new();
    for e in events {
        if e.ts < spec.from || e.ts >= spec.to {
            continue;
        }
        let body = e.body.as_str();
        if !passes(body, spec.filter.as_ref()) {
            continue;
        }
        let group = match &spec.group_by {
            Some(g) => property_text(body, g).unwrap_or_else(|| "(none)".to_owned()),
            None => "all".to_owned(),
        };
        let idx = ((e.ts - first) / spec.bucket_ms) as usize;
        let (total, cells) = groups
            .entry(group)
            .or_insert_with(|| (0, (0..buckets.len()).map(|_| Cell::default()).collect()));
        let Some(cell) = cells.get_mut(idx) else {
            continue;
        };
        if spec.agg.needs_property() {
            let Some(v) = spec
                .property
                .as_deref()
                .and_then(|p| property_number(body, p))
            else {
                continue;
            };
            cell.values.push(v);
        }
        if let Some(u) = &e.user_key {
            cell.users.insert(u.clone());
        }
        cell.count += 1;
        *total += 1;
    }
    let mut ranked: Vec<(String, u64, Vec<Cell>)> =
        groups.into_iter().map(|(g, (n, c))| (g, n, c)).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if spec.group_by.is_some() && ranked.len() > spec.top {
        let rest = ranked.split_off(spec.top);
        let mut other: Vec<Cell> = (0..buckets.len()).map(|_| Cell::default()).collect();
        let mut n = 0;
        for (_, c, cells) in rest {
            n += c;
            for (o, cell) in other.iter_mut().zip(cells) {
                o.values.extend(cell.values);
                o.users.extend(cell.users);
                o.count += cell.count;
            }
        }
        ranked.push(("(other)".to_owned(), n, other));
    }
    let series = ranked
        .into_iter()
        .map(|(name, _, cells)| NamedSeries {
            name,
            values: cells
                .into_iter()
                .map(|mut c| aggregate(spec.agg, &mut c.values, c.users.len(), c.count))
                .collect(),
        })
        .collect();
    Series { buckets, series }
}

fn aggregate(agg: Agg, values: &mut [f64], users: usize, count: u64) -> Option<f64> {
    let n = values.len() as f64;
    match agg {
        Agg::Count => Some(count as f64),
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

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct FunnelStep {
    pub event: String,
    /// Users who reached this step, in order, within the window of their first step.
    pub users: u64,
    /// Share of the first step's users.
    pub conversion: f64,
    /// Users who reached the previous step but not this one.
    pub drop_off: u64,
}

/// An ordered funnel: each user starts at their first occurrence of step 1 and must do every
/// following step, in order, within `window_ms` of that start. `events` are oldest first.
pub fn funnel(events: &[ScannedEvent], steps: &[String], window_ms: i64) -> Vec<FunnelStep> {
    let mut progress: HashMap<&str, (i64, usize)> = HashMap::new(); // user → (start, steps done)
    for e in events {
        let Some(user) = e.user_key.as_deref() else {
            continue;
        };
        match progress.get_mut(user) {
            None => {
                if steps.first().is_some_and(|s| *s == e.name) {
                    progress.insert(user, (e.ts, 1));
                }
            }
            Some((start, done)) => {
                if *done < steps.len() && e.ts - *start <= window_ms && steps[*done] == e.name {
                    *done += 1;
                }
            }
        }
    }
    let mut reached = vec![0u64; steps.len()];
    for (_, done) in progress.values() {
        for r in reached.iter_mut().take(*done) {
            *r += 1;
        }
    }
    let first = reached.first().copied().unwrap_or(0);
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| FunnelStep {
            event: s.clone(),
            users: reached[i],
            conversion: if first == 0 {
                0.0
            } else {
                reached[i] as f64 / first as f64
            },
            drop_off: if i == 0 {
                0
            } else {
                reached[i - 1] - reached[i]
            },
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct Cohort {
    /// Start of the period the cohort's users were first seen in (unix ms).
    pub start: i64,
    pub users: u64,
    /// Users of the cohort active in period 0, 1, 2…; index 0 is the cohort itself.
    pub returning: Vec<u64>,
    /// `returning[k] / users`.
    pub share: Vec<f64>,
}

/// Cohorts by first-seen period (within the scanned range) and their return per later period.
pub fn retention(events: &[ScannedEvent], from: i64, to: i64, period_ms: i64) -> Vec<Cohort> {
    let periods = bucket_starts(from, to, period_ms);
    let Some(&first) = periods.first() else {
        return Vec::new();
    };
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    let mut active: HashSet<(&str, usize)> = HashSet::new();
    for e in events {
        let Some(u) = e.user_key.as_deref() else {
            continue;
        };
        if e.ts < from || e.ts >= to {
            continue;
        }
        let p = ((e.ts - first) / period_ms) as usize;
        first_seen.entry(u).or_insert(p);
        active.insert((u, p));
    }
    let mut cohorts: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for (u, p) in &first_seen {
        cohorts.entry(*p).or_default().push(u);
    }
    cohorts
        .into_iter()
        .map(|(p, users)| {
            let returning: Vec<u64> = (p..periods.len())
                .map(|q| users.iter().filter(|u| active.contains(&(**u, q))).count() as u64)
                .collect();
            let n = users.len() as u64;
            Cohort {
                start: periods[p],
                users: n,
                share: returning.iter().map(|r| *r as f64 / n as f64).collect(),
                returning,
            }
        })
        .collect()
}

/// The same cohorts as [`retention`], from users counted per (cohort, period) by the store:
/// `periods` is how many periods the range holds, `first` the start of the first.
pub fn retention_from_counts(
    counts: &[crate::store::retention::CohortCount],
    first: i64,
    period_ms: i64,
    periods: usize,
) -> Vec<Cohort> {
    let mut cohorts: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for c in counts {
        let (Ok(cohort), Ok(period), Ok(users)) = (
            usize::try_from(c.cohort),
            usize::try_from(c.period),
            u64::try_from(c.users),
        ) else {
            continue;
        };
        if cohort > period || period >= periods {
            continue;
        }
        cohorts
            .entry(cohort)
            .or_insert_with(|| vec![0; periods - cohort])[period - cohort] = users;
    }
    cohorts
        .into_iter()
        .map(|(p, returning)| {
            let n = returning[0];
            Cohort {
                start: first + p as i64 * period_ms,
                users: n,
                share: returning.iter().map(|r| *r as f64 / n as f64).collect(),
                returning,
            }
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct SessionStats {
    pub sessions: u64,
    /// Mean of (last event − first event) per session, in seconds.
    pub avg_length_secs: f64,
    /// Share of sessions with a single event.
    pub bounce_rate: f64,
}

/// Sessions: a user's events separated by no more than `SESSION_GAP_MS`.
pub fn sessions(events: &[ScannedEvent]) -> SessionStats {
    let mut per_user: HashMap<&str, Vec<i64>> = HashMap::new();
    for e in events {
        if let Some(u) = e.user_key.as_deref() {
            per_user.entry(u).or_default().push(e.ts);
        }
    }
    let (mut sessions, mut bounces, mut total_len) = (0u64, 0u64, 0i64);
    for ts in per_user.values_mut() {
        ts.sort_unstable();
        let (mut start, mut last, mut n) = (ts[0], ts[0], 1);
        for &t in &ts[1..] {
            if t - last > SESSION_GAP_MS {
                sessions += 1;
                bounces += u64::from(n == 1);
                total_len += last - start;
                (start, n) = (t, 0);
            }
            last = t;
            n += 1;
        }
        sessions += 1;
        bounces += u64::from(n == 1);
        total_len += last - start;
    }
    SessionStats {
        sessions,
        avg_length_secs: if sessions == 0 {
            0.0
        } else {
            total_len as f64 / sessions as f64 / 1000.0
        },
        bounce_rate: if sessions == 0 {
            0.0
        } else {
            bounces as f64 / sessions as f64
        },
    }
}

/// A Core Web Vital and its thresholds (web.dev): good ≤ `good`, poor > `poor`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Vital {
    pub metric: &'static str,
    pub good: f64,
    pub poor: f64,
    pub unit: &'static str,
}

pub const VITALS: [Vital; 5] = [
    Vital {
        metric: "LCP",
        good: 2500.0,
        poor: 4000.0,
        unit: "ms",
    },
    Vital {
        metric: "INP",
        good: 200.0,
        poor: 500.0,
        unit: "ms",
    },
    Vital {
        metric: "CLS",
        good: 0.1,
        poor: 0.25,
        unit: "",
    },
    Vital {
        metric: "FCP",
        good: 1800.0,
        poor: 3000.0,
        unit: "ms",
    },
    Vital {
        metric: "TTFB",
        good: 800.0,
        poor: 1800.0,
        unit: "ms",
    },
];

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct VitalSummary {
    pub samples: u64,
    pub p75: Option<f64>,
    pub good: f64,
    pub needs_improvement: f64,
    pub poor: f64,
}

fn summarise(values: &mut [f64], v: &Vital) -> VitalSummary {
    let n = values.len() as f64;
    let share = |f: &dyn Fn(f64) -> bool| {
        if values.is_empty() {
            0.0
        } else {
            values.iter().filter(|x| f(**x)).count() as f64 / n
        }
    };
    let good = share(&|x| x <= v.good);
    let poor = share(&|x| x > v.poor);
    VitalSummary {
        samples: values.len() as u64,
        good,
        poor,
        needs_improvement: if values.is_empty() {
            0.0
        } else {
            1.0 - good - poor
        },
        p75: percentile(values, 0.75),
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VitalReport {
    pub vital: Vital,
    pub overall: VitalSummary,
    /// Per page path, busiest first.
    pub pages: Vec<(String, VitalSummary)>,
    /// p75 per bucket (aligned with `buckets`).
    pub trend: Vec<Option<f64>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VitalsReport {
    pub buckets: Vec<i64>,
    pub metrics: Vec<VitalReport>,
}

/// p75 and rating shares of each Web Vital, overall, per page and per bucket.
pub fn web_vitals(events: &[ScannedEvent], from: i64, to: i64, bucket_ms: i64) -> VitalsReport {
    let buckets = bucket_starts(from, to, bucket_ms);
    let first = buckets.first().copied().unwrap_or(from);
    let mut samples: HashMap<&str, Vec<(i64, String, f64)>> = HashMap::new();
    for e in events.iter().filter(|e| e.name == WEB_VITAL_EVENT) {
        let body = e.body.as_str();
        let (Some(metric), Some(value)) = (
            property_text(body, "metric"),
            property_number(body, "value"),
        ) else {
            continue;
        };
        let Some(v) = VITALS
            .iter()
            .find(|v| v.metric.eq_ignore_ascii_case(&metric))
        else {
            continue;
        };
        let path = property_text(body, "path")
            .or_else(|| property_text(body, "page.path"))
            .unwrap_or_else(|| "(unknown)".to_owned());
        samples
            .entry(v.metric)
            .or_default()
            .push((e.ts, path, value));
    }
    let metrics = VITALS
        .iter()
        .map(|v| {
            let rows = samples.remove(v.metric).unwrap_or_default();
            let mut all: Vec<f64> = rows.iter().map(|r| r.2).collect();
            let mut by_page: HashMap<&str, Vec<f64>> = HashMap::new();
            let mut by_bucket: Vec<Vec<f64>> = vec![Vec::new(); buckets.len()];
            for (ts, path, value) in &rows {
                by_page.entry(path).or_default().push(*value);
                if let Some(b) = by_bucket.get_mut(((ts - first) / bucket_ms) as usize) {
                    b.push(*value);
                }
            }
            let mut pages: Vec<(String, VitalSummary)> = by_page
                .into_iter()
                .map(|(p, mut vals)| (p.to_owned(), summarise(&mut vals, v)))
                .collect();
            pages.sort_by(|a, b| b.1.samples.cmp(&a.1.samples).then_with(|| a.0.cmp(&b.0)));
            VitalReport {
                vital: *v,
                overall: summarise(&mut all, v),
                pages,
                trend: by_bucket.iter_mut().map(|b| percentile(b, 0.75)).collect(),
            }
        })
        .collect();
    VitalsReport { buckets, metrics }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn properties_are_read_from_the_text_with_their_digits() {
        let body = r#"{"properties":{"price":1.10,"big":340282366920938463463374607431768211455,
            "n":{"plan":"pro"},"s":"12.5","inf":"1e999","none":null,"dup":1,"dup":2,"e\u0073c":"x"},
            "context":{"page":{"path":"/a"},"none":"ctx"}}"#;
        assert_eq!(property_text(body, "price").as_deref(), Some("1.10"));
        assert_eq!(
            property_text(body, "big").as_deref(),
            Some("340282366920938463463374607431768211455")
        );
        assert_eq!(property_text(body, "n.plan").as_deref(), Some("pro"));
        assert_eq!(property_text(body, "page.path").as_deref(), Some("/a"));
        assert_eq!(property_text(body, "none").as_deref(), Some("ctx"));
        assert_eq!(property_text(body, "dup").as_deref(), Some("2"));
        assert_eq!(property_text(body, "esc").as_deref(), Some("x"));
        assert_eq!(property_text(body, "missing"), None);
        assert_eq!(property_number(body, "price"), Some(1.1));
        assert_eq!(property_number(body, "s"), Some(12.5));
        assert_eq!(property_number(body, "inf"), None);
        assert_eq!(property_number(body, "n"), None);
        assert_eq!(property_text("not json", "price"), None);
    }

    fn ev(ts: i64, name: &str, user: &str, props: Value) -> ScannedEvent {
        ScannedEvent {
            seq: ts,
            ts,
            name: name.to_owned(),
            user_key: Some(user.to_owned()),
            message_id: format!("m-{ts}"),
            body: serde_json::json!({ "properties": props }).to_string(),
        }
    }

    #[test]
    fn sessions_split_on_thirty_minutes_of_silence() {
        let m = 60_000;
        let e = [
            ev(0, "a", "u1", Value::Null),
            ev(10 * m, "a", "u1", Value::Null),
            ev(41 * m, "a", "u1", Value::Null),
            ev(0, "a", "u2", Value::Null),
        ];
        let s = sessions(&e);
        assert_eq!(s.sessions, 3);
        assert!((s.bounce_rate - 2.0 / 3.0).abs() < 1e-9);
        assert!((s.avg_length_secs - 200.0).abs() < 1e-9);
    }

    #[test]
    fn grouped_series_keeps_top_n_and_folds_the_rest() {
        let e = [
            ev(0, "buy", "u1", serde_json::json!({"plan": "pro"})),
            ev(1, "buy", "u2", serde_json::json!({"plan": "pro"})),
            ev(2, "buy", "u3", serde_json::json!({"plan": "free"})),
            ev(3, "buy", "u4", serde_json::json!({"plan": "team"})),
        ];
        let s = series(
            &e,
            &SeriesSpec {
                from: 0,
                to: 10,
                bucket_ms: 10,
                agg: Agg::Count,
                property: None,
                filter: None,
                group_by: Some("plan".into()),
                top: 2,
            },
        );
        let names: Vec<_> = s.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["pro", "free", "(other)"]);
        assert_eq!(s.series[0].values, [Some(2.0)]);
    }
}
