//! What a rule says: which series, which condition, and how its alerts behave in time.
//! `RuleSpec::parse` validates an API body; once a `RuleSpec` exists it is valid, and it is
//! stored as JSON exactly as serialised here.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::alerting::anomaly::{self, Direction};
pub use crate::domain::rule::{Aggregate, Bucket, Series, plain};

/// Longest `for`, cooldown or repeat interval: 30 days.
pub const MAX_DURATION_SECS: u64 = 30 * 86_400;
/// Most property filters on one rule.
pub const MAX_FILTERS: usize = 10;
/// Most channels one rule notifies.
pub const MAX_CHANNELS: usize = 20;
/// Most buckets of history an anomaly rule reads (minute buckets with daily seasonality:
/// 4 days = 5,760; hourly with weekly: 4 weeks = 672).
pub const MAX_HISTORY_BUCKETS: usize = 6_300;
/// Longest rule name and property name.
const MAX_NAME_CHARS: usize = 200;
const MAX_PROPERTY_CHARS: usize = 100;
/// Longest filter value.
const MAX_VALUE_CHARS: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Op {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
}

impl Op {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Gt => value > threshold,
            Self::Ge => value >= threshold,
            Self::Lt => value < threshold,
            Self::Le => value <= threshold,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
        }
    }
}

/// Which earlier buckets the anomaly baseline compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Seasonality {
    /// The recent buckets.
    None,
    /// The same time of day on earlier days.
    Daily,
    /// The same time of week on earlier weeks.
    Weekly,
    /// Daily and weekly where the bucket allows (hour: both; minute: daily; day: weekly).
    Auto,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// Fires while the bucket's value compares true with `value` ("> 50 signups per hour").
    Threshold { op: Op, value: f64 },
    /// Fires while the bucket's anomaly score (the larger of contextOSE's and the seasonal
    /// baseline's; docs/alerting-quality.md) reaches the sensitivity's threshold, in
    /// `direction` from the seasonal baseline.
    Anomaly {
        #[serde(default = "default_direction")]
        direction: Direction,
        /// How unusual a bucket must be to fire: the score threshold is proportional to it
        /// (`anomaly_cad::threshold_for`); default 1.21 (the NAB cross-validated threshold),
        /// lower fires more, above about 1.6 nothing fires.
        #[serde(default = "default_sensitivity")]
        sensitivity: f64,
        /// Buckets whose baseline and value are both below this never fire; default 0.
        #[serde(default)]
        min_volume: f64,
        #[serde(default = "default_seasonality")]
        seasonality: Seasonality,
    },
}

fn default_direction() -> Direction {
    Direction::Both
}

fn default_sensitivity() -> f64 {
    anomaly::DEFAULT_SENSITIVITY
}

fn default_seasonality() -> Seasonality {
    Seasonality::Auto
}

/// What a bucket with no matching events means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoData {
    /// The value is 0 (right for counts: no signups is a number).
    Zero,
    /// Change nothing: the rule stays as it was until data comes back.
    Keep,
    /// Fire a `no_data` alert; it resolves when data comes back within the condition.
    Alert,
}

/// A rule as the API takes it and the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub series: Series,
    pub condition: Condition,
    /// Seconds the condition must hold before the rule fires (pending meanwhile); default 0.
    #[serde(default)]
    pub for_secs: u64,
    /// Seconds after a resolve during which the rule does not fire again; default 0.
    #[serde(default)]
    pub cooldown_secs: u64,
    /// While firing, a `repeat` notification every this many seconds; 0 (default): never.
    #[serde(default)]
    pub repeat_secs: u64,
    /// Default `zero`.
    #[serde(default = "default_no_data")]
    pub no_data: NoData,
    /// Channels notified (delivery's channel ids).
    #[serde(default)]
    pub channel_ids: Vec<i64>,
}

fn yes() -> bool {
    true
}

fn default_no_data() -> NoData {
    NoData::Zero
}

impl RuleSpec {
    /// Validates a rule, saying what to fix.
    pub fn parse(json: serde_json::Value) -> Result<Self, String> {
        let spec: Self = serde_json::from_value(json).map_err(|e| format!("invalid rule: {e}"))?;
        spec.validate()?;
        Ok(spec)
    }

    fn validate(&self) -> Result<(), String> {
        // PostgreSQL text and jsonb cannot hold NUL; no name or value needs a control character.
        let strings: Vec<&str> = [self.name.as_str(), self.series.event.as_str()]
            .into_iter()
            .chain(self.series.property.as_deref())
            .chain(self.series.filters.keys().map(String::as_str))
            .chain(
                self.series
                    .filters
                    .values()
                    .filter_map(serde_json::Value::as_str),
            )
            .collect();
        if let Some(bad) = strings.iter().find(|s| s.chars().any(char::is_control)) {
            return Err(format!(
                "{bad:?} contains a control character; names and filter values must be plain text"
            ));
        }
        if let Some(long) = strings.iter().find(|s| s.chars().count() > MAX_VALUE_CHARS) {
            return Err(format!(
                "a name or filter value is {} characters; at most {MAX_VALUE_CHARS}",
                long.chars().count()
            ));
        }
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(format!(
                "name must be 1 to {MAX_NAME_CHARS} characters, e.g. \"Signups per hour\""
            ));
        }
        if self.series.event.trim().is_empty() || self.series.event.chars().count() > 200 {
            return Err(
                "series.event must name a track event (1 to 200 characters), e.g. \"signup\""
                    .into(),
            );
        }
        match (self.series.aggregate, &self.series.property) {
            (Aggregate::Count, Some(_)) => {
                return Err(
                    "series.property applies to sum/avg/min/max/p75; remove it for \
                            count (count counts events)"
                        .into(),
                );
            }
            (_, Some(p)) => property_name("series.property", p)?,
            _ => {}
        }
        if self.series.filters.len() > MAX_FILTERS {
            return Err(format!(
                "series.filters has {} entries; at most {MAX_FILTERS}",
                self.series.filters.len()
            ));
        }
        for (k, v) in &self.series.filters {
            property_name("series.filters key", k)?;
            if !(v.is_string() || v.is_number() || v.is_boolean()) {
                return Err(format!(
                    "series.filters.{k} must be a string, number or boolean (equality on \
                     properties.{k}), got {v}"
                ));
            }
        }
        for (what, secs) in [
            ("for_secs", self.for_secs),
            ("cooldown_secs", self.cooldown_secs),
            ("repeat_secs", self.repeat_secs),
        ] {
            if secs > MAX_DURATION_SECS {
                return Err(format!(
                    "{what} is {secs}; at most {MAX_DURATION_SECS} (30 days)"
                ));
            }
        }
        if self.channel_ids.len() > MAX_CHANNELS || self.channel_ids.iter().any(|c| *c <= 0) {
            return Err(format!(
                "channel_ids must be at most {MAX_CHANNELS} positive channel ids"
            ));
        }
        match &self.condition {
            Condition::Threshold { value, .. } if !value.is_finite() => {
                return Err("condition.value must be a finite number".into());
            }
            Condition::Anomaly {
                sensitivity,
                min_volume,
                seasonality,
                ..
            } => {
                if !(sensitivity.is_finite() && *sensitivity > 0.0 && *sensitivity <= 100.0) {
                    return Err(format!(
                        "condition.sensitivity must be above 0 and at most 100 (default 1.21, \
                         tuned on NAB; lower fires more), got {sensitivity}"
                    ));
                }
                if !(min_volume.is_finite() && *min_volume >= 0.0) {
                    return Err("condition.min_volume must be a number ≥ 0".into());
                }
                let seasons = seasons(*seasonality, self.series.bucket)?;
                if history_buckets(&seasons) > MAX_HISTORY_BUCKETS {
                    return Err(format!(
                        "{seasonality:?} seasonality on {} buckets needs more than \
                         {MAX_HISTORY_BUCKETS} buckets of history: use a wider bucket",
                        self.series.bucket.as_str()
                    ));
                }
            }
            Condition::Threshold { .. } => {}
        }
        Ok(())
    }

    /// The detector's parameters, for anomaly rules.
    // The detector may grow parameters; new ones take their defaults.
    #[allow(clippy::needless_update)]
    pub fn anomaly_params(&self) -> Option<anomaly::Params> {
        match &self.condition {
            Condition::Anomaly {
                direction,
                sensitivity,
                min_volume,
                seasonality,
            } => Some(
                // `..default()` on purpose: the detector may gain parameters.
                #[allow(clippy::needless_update)]
                anomaly::Params {
                    direction: *direction,
                    sensitivity: *sensitivity,
                    min_volume: *min_volume,
                    seasons: seasons(*seasonality, self.series.bucket).unwrap_or_default(),
                    ..anomaly::Params::default()
                },
            ),
            Condition::Threshold { .. } => None,
        }
    }

    /// Buckets before the evaluated one that the condition reads.
    pub fn history_buckets(&self) -> usize {
        self.anomaly_params()
            .map_or(0, |p| history_buckets(&p.seasons))
    }
}

/// Seasonal periods in buckets, shortest first.
pub fn seasons(seasonality: Seasonality, bucket: Bucket) -> Result<Vec<usize>, String> {
    const DAY: i64 = 86_400_000;
    let per = |span: i64| usize::try_from(span / bucket.millis()).unwrap_or(0);
    Ok(match (seasonality, bucket) {
        (Seasonality::None, _) => Vec::new(),
        (Seasonality::Daily, Bucket::Day) => {
            return Err(
                "daily seasonality needs minute or hour buckets (a day bucket has no time \
                 of day); use weekly or none"
                    .into(),
            );
        }
        (Seasonality::Daily, _) => vec![per(DAY)],
        (Seasonality::Weekly, _) => vec![per(7 * DAY)],
        (Seasonality::Auto, Bucket::Minute) => vec![per(DAY)],
        (Seasonality::Auto, Bucket::Hour) => vec![per(DAY), per(7 * DAY)],
        (Seasonality::Auto, Bucket::Day) => vec![per(7 * DAY)],
    })
}

/// What the detector reads for these seasons (its recent window plus 4 seasons back).
fn history_buckets(seasons: &[usize]) -> usize {
    let params = anomaly::Params {
        seasons: seasons.to_vec(),
        ..anomaly::Params::default()
    };
    params.history_len()
}

fn property_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_PROPERTY_CHARS
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '$' | ' '));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} '{name}' must be a top-level property name of letters, digits, '_', '-', \
             '$' or spaces (at most {MAX_PROPERTY_CHARS} characters)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_fill_in_and_errors_say_what_to_fix() {
        let spec = RuleSpec::parse(json!({
            "name": "Signups", "series": {"event": "signup"},
            "condition": {"type": "threshold", "op": ">", "value": 50}
        }))
        .unwrap();
        assert_eq!(spec.series.bucket, Bucket::Hour);
        assert_eq!(spec.no_data, NoData::Zero);
        let err = RuleSpec::parse(json!({
            "name": "x", "series": {"event": "signup", "bucket": "day"},
            "condition": {"type": "anomaly", "seasonality": "daily"}
        }))
        .unwrap_err();
        assert!(
            err.contains("daily seasonality needs minute or hour"),
            "{err}"
        );
        let err = RuleSpec::parse(json!({
            "name": "x", "series": {"event": "signup", "bucket": "minute"},
            "condition": {"type": "anomaly", "seasonality": "weekly"}
        }))
        .unwrap_err();
        assert!(err.contains("use a wider bucket"), "{err}");
        let err = RuleSpec::parse(json!({
            "name": "x", "series": {"event": "sign\u{0}up"},
            "condition": {"type": "threshold", "op": ">", "value": 1}
        }))
        .unwrap_err();
        assert!(err.contains("control character"), "{err}");
    }
}
