//! The dashboard's calculations over scanned events: time series with aggregates, filters and
//! groups; funnels; retention; sessions; Web Vitals. Pure functions, the same on both backends.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::domain::percentile::percentile;
use crate::store::analytics::ScannedEvent;

mod series;
pub use series::{Built, MAX_GROUPS, OTHER, SeriesBuilder};

/// Gap of inactivity that ends a session (the usual web-analytics convention).
pub const SESSION_GAP_MS: i64 = 30 * 60 * 1000;
/// The event name the browser SDK gives Web Vitals samples.
pub const WEB_VITAL_EVENT: &str = "Web Vital";

/// A property of an event's stored JSON: `properties.<name>` (dots reach into objects), else
/// `context.<name>`, else `traits.<name>`. Found by walking the text, never parsed into
/// values, so a number keeps the digits it was sent with (a group named `1.10` stays `1.10`).
pub fn property<'a>(body: &'a str, name: &str) -> Option<&'a RawValue> {
    let body: &RawValue = serde_json::from_str(body).ok()?;
    property_in(&PROPERTY_ROOTS.map(|root| field(body, root)), name)
}

/// Where [`property`] looks, in order.
const PROPERTY_ROOTS: [&str; 3] = ["properties", "context", "traits"];

/// [`property`] in a body whose [`PROPERTY_ROOTS`] were already found.
fn property_in<'a>(roots: &[Option<&'a RawValue>; 3], name: &str) -> Option<&'a RawValue> {
    roots.iter().find_map(|root| {
        let mut v = *root;
        for part in name.split('.') {
            v = v.and_then(|v| field(v, part));
        }
        v.filter(|v| v.get() != "null")
    })
}

/// A property as text, for filters and groups: a string's value, else its JSON as sent.
pub fn property_text(body: &str, name: &str) -> Option<String> {
    text_of(property(body, name)?)
}

fn text_of(v: &RawValue) -> Option<String> {
    let v = v.get();
    if v.starts_with('"') {
        serde_json::from_str(v).ok()
    } else {
        Some(v.to_owned())
    }
}

/// [`property_text`] of each of `names`, reading the body once and copying only strings with
/// escapes (ingest computes the tracked-property rollups from every stored event with it).
pub fn property_texts<'b>(body: &'b str, names: &[&str]) -> Vec<Option<Cow<'b, str>>> {
    let Some(roots) = property_roots(body) else {
        return vec![None; names.len()];
    };
    names
        .iter()
        .map(|name| property_in(&roots, name).and_then(text_of_borrowed))
        .collect()
}

/// [`text_of`] without a copy unless the string has escapes.
fn text_of_borrowed(v: &RawValue) -> Option<Cow<'_, str>> {
    let v = v.get();
    match v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => Some(Cow::Borrowed(inner)),
        Some(_) => serde_json::from_str::<String>(v).ok().map(Cow::Owned),
        None => Some(Cow::Borrowed(v)),
    }
}

/// The [`PROPERTY_ROOTS`] of a stored body in one pass over it (each the last of its name, as
/// [`field`] finds it); `None` when the body is not a JSON object.
fn property_roots(body: &str) -> Option<[Option<&RawValue>; 3]> {
    let mut de = serde_json::Deserializer::from_str(body);
    let roots = serde::Deserializer::deserialize_map(&mut de, RootsLookup).ok()?;
    de.end().ok()?;
    Some(roots)
}

struct RootsLookup;

impl<'de> Visitor<'de> for RootsLookup {
    type Value = [Option<&'de RawValue>; 3];

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = [None; 3];
        while let Some(hit) = map.next_key_seed(KeyAmong(&PROPERTY_ROOTS))? {
            match hit {
                Some(i) => found[i] = Some(map.next_value::<&'de RawValue>()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
}

/// Which of the wanted keys a key is, without copying it (unless it has escapes).
struct KeyAmong<'k>(&'k [&'k str]);

impl<'de> DeserializeSeed<'de> for KeyAmong<'_> {
    type Value = Option<usize>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyAmong<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|k| *k == key))
    }
}

/// A property as a finite float, for aggregates: a number, or a string holding one.
pub(crate) fn property_number(body: &str, name: &str) -> Option<f64> {
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

/// The series of events already in memory (see [`SeriesBuilder`] for a stream of them).
pub fn series(events: &[ScannedEvent], spec: &SeriesSpec) -> Series {
    let mut b = SeriesBuilder::new(spec);
    for e in events {
        b.add(e.ts, e.user_key.as_deref(), &e.body);
    }
    b.finish(None).series
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
    funnel_steps(steps, &reached)
}

/// The funnel's answer from how many users reached each step.
pub fn funnel_steps(steps: &[String], reached: &[u64]) -> Vec<FunnelStep> {
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
/// Periods are `periods` spans of `period_ms` of day keys from the key `first`; `day_of` gives
/// an event's day key (the project's local day, `store::local_days`). Cohort starts are keys.
pub fn retention(
    events: &[ScannedEvent],
    from: i64,
    to: i64,
    day_of: impl Fn(i64) -> i64,
    first: i64,
    period_ms: i64,
    periods: usize,
) -> Vec<Cohort> {
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    let mut active: HashSet<(&str, usize)> = HashSet::new();
    for e in events {
        let Some(u) = e.user_key.as_deref() else {
            continue;
        };
        if e.ts < from || e.ts >= to {
            continue;
        }
        let Ok(p) = usize::try_from((day_of(e.ts) - first).div_euclid(period_ms)) else {
            continue;
        };
        if p >= periods {
            continue;
        }
        // The earliest period, whatever order the events come in.
        first_seen
            .entry(u)
            .and_modify(|q| *q = (*q).min(p))
            .or_insert(p);
        active.insert((u, p));
    }
    let mut cohorts: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for (u, p) in &first_seen {
        cohorts.entry(*p).or_default().push(u);
    }
    cohorts
        .into_iter()
        .map(|(p, users)| {
            let returning: Vec<u64> = (p..periods)
                .map(|q| users.iter().filter(|u| active.contains(&(**u, q))).count() as u64)
                .collect();
            let n = users.len() as u64;
            Cohort {
                start: first + p as i64 * period_ms,
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
    SessionStats::from_totals(sessions as i64, total_len, bounces as i64)
}

impl SessionStats {
    /// The stats of `sessions` sessions lasting `total_ms` in all, `bounces` of one event.
    pub fn from_totals(sessions: i64, total_ms: i64, bounces: i64) -> Self {
        let n = sessions.max(0);
        Self {
            sessions: n as u64,
            avg_length_secs: if n == 0 {
                0.0
            } else {
                total_ms as f64 / n as f64 / 1000.0
            },
            bounce_rate: if n == 0 {
                0.0
            } else {
                bounces as f64 / n as f64
            },
        }
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

fn summary_of(acc: &crate::store::vitals::VitalAcc) -> VitalSummary {
    #[allow(clippy::cast_precision_loss)] // sample counts are far below 2^52
    let share = |n: i64| {
        if acc.samples == 0 {
            0.0
        } else {
            n as f64 / acc.samples as f64
        }
    };
    let (good, poor) = (share(acc.good), share(acc.poor));
    VitalSummary {
        samples: u64::try_from(acc.samples).unwrap_or_default(),
        p75: acc.sketch.quantile(0.75),
        good,
        poor,
        needs_improvement: if acc.samples == 0 {
            0.0
        } else {
            1.0 - good - poor
        },
    }
}

/// The Web Vitals report from the rollups (`store::vitals`): `by_bucket` merged per metric
/// and bucket start (aligned with `buckets`), `by_page` per metric and path. The p75s are
/// within `domain::sketch::RELATIVE_ACCURACY` of [`web_vitals`]'s over the same samples.
pub fn web_vitals_from_rollups(
    buckets: Vec<i64>,
    by_bucket: &crate::store::vitals::Merged<i64>,
    by_page: &crate::store::vitals::Merged<String>,
) -> VitalsReport {
    use crate::store::vitals::VitalAcc;
    let metrics = VITALS
        .iter()
        .map(|v| {
            let mut overall = VitalAcc::default();
            let trend = buckets
                .iter()
                .map(|b| {
                    let acc = by_bucket.get(&(v.metric.to_owned(), *b))?;
                    overall.merge(acc);
                    acc.sketch.quantile(0.75)
                })
                .collect();
            let mut pages: Vec<(String, VitalSummary)> = by_page
                .iter()
                .filter(|((m, _), _)| m == v.metric)
                .map(|((_, path), acc)| (path.clone(), summary_of(acc)))
                .collect();
            pages.sort_by(|a, b| b.1.samples.cmp(&a.1.samples).then_with(|| a.0.cmp(&b.0)));
            VitalReport {
                vital: *v,
                overall: summary_of(&overall),
                pages,
                trend,
            }
        })
        .collect();
    VitalsReport { buckets, metrics }
}

/// p75 and rating shares of each Web Vital, overall, per page and per bucket, computed exactly
/// from events in memory: the reference the rollups are tested against.
pub fn web_vitals(events: &[ScannedEvent], from: i64, to: i64, bucket_ms: i64) -> VitalsReport {
    let buckets = bucket_starts(from, to, bucket_ms);
    let first = buckets.first().copied().unwrap_or(from);
    let mut samples: HashMap<&str, Vec<(i64, String, f64)>> = HashMap::new();
    for e in events.iter().filter(|e| e.name == WEB_VITAL_EVENT) {
        let Some((v, value, path)) = crate::store::vitals::vital_of_body(&e.body) else {
            continue;
        };
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

    /// The one-pass reader ingest uses gives what the scan's `property_text` gives, key for
    /// key: strings with and without escapes, numbers as sent, nested keys, null, repeated
    /// roots and keys (the last wins), values found under context or traits.
    #[test]
    fn property_texts_read_what_property_text_reads() {
        let bodies = [
            r#"{"properties":{"plan":"pro","n":1.10,"b":true,"o":{"x":"y"},"z":null},"context":{"plan":"ctx","os":"ios"}}"#,
            r#"{"properties":{"plan":"a\"b\u00e9","plan":"last"},"properties":{"n":-3e2}}"#,
            r#"{"traits":{"plan":"t"},"properties":{"plan":null},"context":{"n":[1, 2]}}"#,
            r#"{"properties":"not an object","context":{"plan":"c"}}"#,
            r#"[1, 2]"#,
            r#"{"properties":{"plan":"pro"}} trailing"#,
        ];
        let names = ["plan", "n", "b", "o", "o.x", "z", "os", "missing"];
        for body in bodies {
            let texts = property_texts(body, &names);
            for (name, text) in names.iter().zip(texts) {
                assert_eq!(
                    text.as_deref(),
                    property_text(body, name).as_deref(),
                    "{name} in {body}"
                );
            }
        }
    }

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
    fn retention_cohorts_do_not_depend_on_event_order() {
        let day = 86_400_000;
        // u1 is active on days 0 and 1, but its day-1 event comes first.
        let e = [
            ev(day, "a", "u1", Value::Null),
            ev(0, "a", "u1", Value::Null),
            ev(day, "a", "u2", Value::Null),
        ];
        let cohorts = retention(&e, 0, 2 * day, |ts| ts.div_euclid(day), 0, 1, 2);
        let summary: Vec<_> = cohorts
            .iter()
            .map(|c| (c.start, c.users, c.returning.clone()))
            .collect();
        assert_eq!(summary, [(0, 1, vec![1, 1]), (1, 1, vec![1])]);
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
