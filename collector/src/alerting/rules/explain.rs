//! Why a rule fired, in words, without an external model: the bucket's value against what was
//! expected, and which property values moved most between the baseline buckets and the firing
//! bucket ("the drop is concentrated in country=DE: −90% vs baseline").

use std::collections::{BTreeMap, BTreeSet};

use chrono::DateTime;
use serde_json::Value;

use super::spec::{Aggregate, RuleSpec};
use crate::domain::percentile::percentile;
use crate::store::{Store, StoreError};

/// Events read per bucket to explain a firing (a sample beyond it).
pub const MAX_EXPLAIN_EVENTS_PER_BUCKET: i64 = 20_000;
/// Baseline buckets when the rule has no seasonality: the ones right before.
pub const RECENT_BASELINE_BUCKETS: i64 = 8;
/// A property with more distinct values than this is not a breakdown (ids, URLs with ids…).
pub const MAX_DIMENSION_VALUES: usize = 20;
/// Movers named in a notification.
pub const MAX_MOVERS: usize = 3;
/// Context fields broken down besides the top-level properties.
const CONTEXT_FIELDS: [&str; 6] = [
    "locale",
    "page.path",
    "os.name",
    "device.type",
    "browser.name",
    "app.version",
];

/// One property value whose share of the series moved.
#[derive(Debug, Clone, PartialEq)]
pub struct Mover {
    /// `country`, or `context.os.name`.
    pub key: String,
    pub value: String,
    /// Its aggregate per baseline bucket (mean) and in the firing bucket.
    pub baseline: f64,
    pub current: f64,
}

impl Mover {
    /// `country=DE: −90% vs baseline (20 → 2)`.
    pub fn describe(&self) -> String {
        let change = if self.baseline.abs() > f64::EPSILON {
            percent((self.current - self.baseline) / self.baseline.abs())
        } else {
            "new".to_owned()
        };
        format!(
            "{}={}: {change} vs baseline ({} → {})",
            self.key,
            self.value,
            number(self.baseline),
            number(self.current)
        )
    }
}

/// `−85%`, `+120%` (a real minus sign, as people write it).
pub fn percent(ratio: f64) -> String {
    let p = (ratio * 100.0).round();
    if p < 0.0 {
        format!("\u{2212}{}%", -p)
    } else {
        format!("+{p}%")
    }
}

/// A value as people read it: `40`, `12.35`.
pub fn number(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// `2026-11-20 14:00 UTC`.
pub fn when(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// The buckets the firing bucket is compared with: the same bucket in earlier seasons for a
/// seasonal anomaly rule, else the buckets right before.
pub fn baseline_buckets(spec: &RuleSpec, bucket: i64) -> Vec<i64> {
    let w = spec.series.bucket.millis();
    let season = spec
        .anomaly_params()
        .and_then(|p| p.seasons.first().copied())
        .and_then(|s| i64::try_from(s).ok())
        .filter(|s| *s > 1);
    match season {
        Some(s) => (1..=4).map(|k| bucket - k * s * w).collect(),
        None => (1..=RECENT_BASELINE_BUCKETS)
            .map(|k| bucket - k * w)
            .collect(),
    }
}

/// The property values that moved most, in the direction of the series' move.
pub async fn movers(
    store: &Store,
    project_id: i64,
    spec: &RuleSpec,
    bucket: i64,
) -> Result<Vec<Mover>, StoreError> {
    let w = spec.series.bucket.millis();
    let baseline = baseline_buckets(spec, bucket);
    let current = samples(store, project_id, spec, bucket, w).await?;
    let mut earlier = Vec::with_capacity(baseline.len());
    for b in &baseline {
        let s = samples(store, project_id, spec, *b, w).await?;
        // An empty baseline bucket is most often before the data began; it says nothing
        // about how the values were split.
        if !s.is_empty() {
            earlier.push(s);
        }
    }
    Ok(rank(spec, &current, &earlier))
}

/// One event reduced to what the breakdown needs: its value and its dimension values.
#[derive(Debug)]
struct Sample {
    value: f64,
    dims: Vec<(String, String)>,
}

async fn samples(
    store: &Store,
    project_id: i64,
    spec: &RuleSpec,
    start: i64,
    width: i64,
) -> Result<Vec<Sample>, StoreError> {
    let rows = store
        .rule_events(
            project_id,
            &spec.series,
            start,
            start + width,
            MAX_EXPLAIN_EVENTS_PER_BUCKET,
        )
        .await?;
    let prop = spec.series.value_property();
    Ok(rows
        .iter()
        .filter_map(|(_, body)| {
            let msg: Value = serde_json::from_str(body).ok()?;
            let props = msg.get("properties");
            let value = match prop {
                None => 1.0,
                Some(p) => props?.get(p)?.as_f64()?,
            };
            let mut dims = Vec::new();
            if let Some(Value::Object(map)) = props {
                for (k, v) in map {
                    if Some(k.as_str()) == prop || spec.series.filters.contains_key(k) {
                        continue;
                    }
                    if let Value::String(s) = v {
                        dims.push((k.clone(), s.clone()));
                    }
                }
            }
            for field in CONTEXT_FIELDS {
                let pointer = format!("/context/{}", field.replace('.', "/"));
                if let Some(Value::String(s)) = msg.pointer(&pointer) {
                    dims.push((format!("context.{field}"), s.clone()));
                }
            }
            Some(Sample { value, dims })
        })
        .collect())
}

/// The aggregate of `values` as the rule computes it per bucket (`None` when undefined).
fn aggregate(agg: Aggregate, values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return agg.is_additive().then_some(0.0);
    }
    #[allow(clippy::cast_precision_loss)]
    let n = values.len() as f64;
    Some(match agg {
        Aggregate::Count => n,
        Aggregate::Sum => values.iter().sum(),
        Aggregate::Avg => values.iter().sum::<f64>() / n,
        Aggregate::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
        Aggregate::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Aggregate::P75 => percentile(values, 0.75).unwrap_or(f64::NAN),
    })
}

fn rank(spec: &RuleSpec, current: &[Sample], earlier: &[Vec<Sample>]) -> Vec<Mover> {
    let agg = spec.series.aggregate;
    // Distinct values per key, across all buckets read.
    let mut seen: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in current.iter().chain(earlier.iter().flatten()) {
        for (k, v) in &s.dims {
            seen.entry(k).or_default().insert(v);
        }
    }
    let total = |samples: &[Sample]| {
        let mut v: Vec<f64> = samples.iter().map(|s| s.value).collect();
        aggregate(agg, &mut v)
    };
    let now_total = total(current).unwrap_or(0.0);
    let before: Vec<f64> = earlier.iter().filter_map(|b| total(b)).collect();
    #[allow(clippy::cast_precision_loss)]
    let before_total = before.iter().sum::<f64>() / (before.len().max(1) as f64);
    let direction = (now_total - before_total).signum();

    let slice = |samples: &[Sample], key: &str, value: &str| {
        let mut v: Vec<f64> = samples
            .iter()
            .filter(|s| s.dims.iter().any(|(k, x)| k == key && x == value))
            .map(|s| s.value)
            .collect();
        aggregate(agg, &mut v)
    };
    let mut movers: Vec<(f64, Mover)> = Vec::new();
    for (key, values) in &seen {
        if values.len() > MAX_DIMENSION_VALUES {
            continue;
        }
        for value in values {
            let Some(cur) = slice(current, key, value) else {
                continue;
            };
            let base: Vec<f64> = earlier
                .iter()
                .filter_map(|b| slice(b, key, value))
                .collect();
            if base.is_empty() {
                continue;
            }
            #[allow(clippy::cast_precision_loss)]
            let base = base.iter().sum::<f64>() / base.len() as f64;
            let delta = cur - base;
            if delta.signum() != direction || delta == 0.0 {
                continue;
            }
            let relative = if base.abs() > f64::EPSILON {
                (delta / base.abs()).abs()
            } else {
                f64::INFINITY
            };
            if relative < 0.1 {
                continue;
            }
            // Additive series: what moved the total most. Others: what changed most.
            let score = if agg.is_additive() {
                delta.abs()
            } else {
                relative
            };
            movers.push((
                score,
                Mover {
                    key: (*key).to_owned(),
                    value: (*value).to_owned(),
                    baseline: base,
                    current: cur,
                },
            ));
        }
    }
    movers.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.key.cmp(&b.1.key)));
    movers.into_iter().take(MAX_MOVERS).map(|m| m.1).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_changes_read_naturally() {
        assert_eq!(percent(-0.853), "\u{2212}85%");
        assert_eq!(percent(1.2), "+120%");
        assert_eq!(number(40.0), "40");
        assert_eq!(number(12.345), "12.35");
        assert_eq!(number(12.5), "12.5");
    }
}
