//! What an alert rule watches and where its evaluation stands: the parts of a rule that the
//! store reads and writes as well as the alerting code, so neither imports the other for them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The width of one bucket of a series (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Minute,
    Hour,
    Day,
}

impl Bucket {
    pub fn millis(self) -> i64 {
        match self {
            Self::Minute => 60_000,
            Self::Hour => 3_600_000,
            Self::Day => 86_400_000,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }
}

/// How the events of one bucket become one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// Events in the bucket.
    Count,
    Sum,
    Avg,
    Min,
    Max,
    /// 75th percentile, interpolated (PostgreSQL's `percentile_cont(0.75)`).
    P75,
}

impl Aggregate {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Sum => "sum",
            Self::Avg => "avg",
            Self::Min => "min",
            Self::Max => "max",
            Self::P75 => "p75",
        }
    }

    /// Count and sum of an empty bucket are 0; the others are undefined.
    pub fn is_additive(self) -> bool {
        matches!(self, Self::Count | Self::Sum)
    }
}

/// The series a rule watches: one `track` event, optionally filtered, aggregated per bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Series {
    /// The `track` event name, e.g. `signup`.
    pub event: String,
    /// Default `count`.
    #[serde(default = "default_aggregate")]
    pub aggregate: Aggregate,
    /// The numeric property aggregated (not for `count`); default `value`, where metric
    /// samples carry their number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// Only events whose `properties.<key>` equals the value (string, number or boolean).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub filters: BTreeMap<String, serde_json::Value>,
    /// Default `hour`.
    #[serde(default = "default_bucket")]
    pub bucket: Bucket,
}

fn default_aggregate() -> Aggregate {
    Aggregate::Count
}

fn default_bucket() -> Bucket {
    Bucket::Hour
}

impl Series {
    /// The property whose numbers are aggregated; `None` for count.
    pub fn value_property(&self) -> Option<&str> {
        match self.aggregate {
            Aggregate::Count => None,
            _ => Some(self.property.as_deref().unwrap_or("value")),
        }
    }

    /// "count of signup per hour", "p75 of checkout.value per minute (country=DE)".
    pub fn describe(&self) -> String {
        let what = match self.value_property() {
            None => format!("count of {}", self.event),
            Some(p) => format!("{} of {}.{p}", self.aggregate.as_str(), self.event),
        };
        let mut s = format!("{what} per {}", self.bucket.as_str());
        if !self.filters.is_empty() {
            let f: Vec<String> = self
                .filters
                .iter()
                .map(|(k, v)| format!("{k}={}", plain(v)))
                .collect();
            s.push_str(&format!(" ({})", f.join(", ")));
        }
        s
    }
}

/// A JSON scalar as a person writes it: `DE`, not `"DE"`.
pub fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Ok,
    /// The condition holds but not yet for the rule's `for` (or the cooldown is running).
    Pending,
    Firing,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Pending => "pending",
            Self::Firing => "firing",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "pending" => Self::Pending,
            "firing" => Self::Firing,
            _ => Self::Ok,
        }
    }
}

/// The evaluation state kept per rule (times in unix milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleState {
    pub phase: Phase,
    /// Bumped by every stored transition: the compare-and-set that makes each happen once.
    pub version: i64,
    pub pending_since: Option<i64>,
    /// When the rule last started firing (kept after it resolves, for the message).
    pub firing_since: Option<i64>,
    pub last_notified_at: Option<i64>,
    pub resolved_at: Option<i64>,
    /// The open alert history row while firing.
    pub alert_id: Option<i64>,
    pub last_bucket: Option<i64>,
    pub last_outcome: Option<String>,
}
