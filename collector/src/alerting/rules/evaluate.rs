//! The evaluation pass: every enabled rule, its latest closed bucket, one state step, and the
//! alert_events row that step is worth — stored together, once, however many replicas run.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::detector::{self, Track};
use super::explain::{self, Mover, number, when};
use super::history::{Budget, Histories};
use super::spec::{Condition, NoData, RuleSpec};
use super::state::{Action, Reason, RuleState, Timing, Verdict, step};
use crate::alerting::anomaly;
use crate::clock::Clock;
use crate::store::{NewAlert, NewAlertEvent, RuleRecord, Store, StoreError, Transition};

/// A bucket is evaluated this long after it ends, so events batched by SDKs (flushed every
/// few seconds) are in it.
pub const CLOSE_GRACE_MS: i64 = 15_000;
/// How long an evaluator holds a rule it claimed (a crashed evaluator's rules are free again
/// after this).
pub const LEASE_MS: i64 = 60_000;
/// Rules claimed per pass.
pub const MAX_RULES_PER_PASS: i64 = 1_000;
/// How long a pass spends backfilling the history of new or changed rules, after every other
/// rule is judged; what is left continues in the next pass.
pub const BACKFILL_BUDGET_MS: u64 = 10_000;
/// A pass starts this long after a minute bucket closes (plus [`CLOSE_GRACE_MS`]), so
/// buckets are judged promptly whatever the interval.
const CLOSE_MARGIN_MS: i64 = 100;

/// Colours of the alert_events rows (0xRRGGBB).
pub const COLOUR_FIRING: i64 = 0x00E7_4C3C;
pub const COLOUR_REPEAT: i64 = 0x00E6_7E22;
pub const COLOUR_RESOLVED: i64 = 0x002E_CC71;
pub const COLOUR_NO_DATA: i64 = 0x0095_A5A6;

/// The start of the latest bucket that has closed (and settled) at `now`.
pub fn latest_closed_bucket(now_ms: i64, width_ms: i64) -> i64 {
    (now_ms - CLOSE_GRACE_MS).div_euclid(width_ms) * width_ms - width_ms
}

/// What one bucket came to, kept with the rule so it is computed once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub value: Option<f64>,
    /// Anomaly rules: the baseline and its band.
    pub expected: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub breach: bool,
}

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    pub rules_evaluated: usize,
    /// alert_events rows appended.
    pub notifications: usize,
    /// Transitions another evaluator stored first.
    pub lost_races: usize,
    /// Rules not judged yet because their history is still being backfilled.
    pub backfilling: usize,
}

/// An evaluator: its lease owner name and the rule histories it keeps between passes.
#[derive(Debug)]
pub struct Evaluator {
    owner: String,
    histories: Histories,
}

impl Evaluator {
    /// `owner` must be unique per process.
    pub fn new(owner: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            histories: Histories::default(),
        }
    }

    /// One pass at `now`: first every rule whose history is in place (one read of the
    /// buckets closed since the last pass each), then backfills for at most
    /// [`BACKFILL_BUDGET_MS`].
    pub async fn pass(
        &mut self,
        store: &Store,
        now: DateTime<Utc>,
    ) -> Result<PassReport, StoreError> {
        let now_ms = now.timestamp_millis();
        let rules = store
            .claim_rules(now_ms, now_ms + LEASE_MS, &self.owner, MAX_RULES_PER_PASS)
            .await?;
        let mut report = PassReport::default();
        let all: Vec<&RuleRecord> = rules.iter().collect();
        let deferred = self
            .round(store, all, now_ms, Budget::steady(), &mut report)
            .await;
        let until = Instant::now() + Duration::from_millis(BACKFILL_BUDGET_MS);
        let unfinished = self
            .round(store, deferred, now_ms, Budget::until(until), &mut report)
            .await;
        for rule in unfinished {
            report.count(rule, Ok(Stored::Backfilling));
        }
        self.histories
            .retain(&rules.iter().map(|r| r.id).collect::<HashSet<_>>());
        if !rules.is_empty() {
            store.release_rules(&self.owner).await?;
        }
        metrics::counter!("pulseline_rule_notifications_total")
            .increment(report.notifications as u64);
        Ok(report)
    }

    /// Prepares `rules` (their histories within `budget`), stores the values computed in one
    /// transaction, then judges them; returns the rules whose history is still incomplete.
    async fn round<'r>(
        &mut self,
        store: &Store,
        rules: Vec<&'r RuleRecord>,
        now: i64,
        budget: Budget,
        report: &mut PassReport,
    ) -> Vec<&'r RuleRecord> {
        let mut ready = Vec::new();
        let mut deferred = Vec::new();
        for rule in rules {
            match prepare(store, &mut self.histories, rule, now, budget).await {
                Ok(Prepared::Skip) => report.count(rule, Ok(Stored::Nothing)),
                Ok(Prepared::Backfilling) => deferred.push(rule),
                Ok(Prepared::Ready(r)) => ready.push(r),
                Err(e) => report.count(rule, Err(e)),
            }
        }
        if let Err(e) = self.histories.flush(store).await {
            tracing::warn!(error = %e, rules = ready.len(), "storing bucket values failed; those rules are evaluated next pass");
            report.rules_evaluated += ready.len();
            return deferred;
        }
        let mut saves = Vec::new();
        for r in ready {
            let rule = r.rule;
            let stored = judge_and_store(store, &self.histories, r, now, &mut saves).await;
            report.count(rule, stored);
        }
        if let Err(e) = store.save_rule_outcomes(&saves).await {
            tracing::warn!(error = %e, "saving bucket outcomes failed; they are judged again next pass");
        }
        deferred
    }
}

impl PassReport {
    fn count(&mut self, rule: &RuleRecord, stored: Result<Stored, StoreError>) {
        match stored {
            Ok(Stored::Nothing) => {}
            Ok(Stored::Notified) => self.notifications += 1,
            Ok(Stored::LostRace) => self.lost_races += 1,
            Ok(Stored::Backfilling) => self.backfilling += 1,
            Err(e) => {
                tracing::warn!(rule_id = rule.id, error = %e, "rule evaluation failed; retried next pass")
            }
        }
        self.rules_evaluated += 1;
    }
}

/// One pass at `now` by evaluator `owner` (unique per process), with no history in memory:
/// every rule's history is read from its stored buckets.
pub async fn run_once(
    store: &Store,
    now: DateTime<Utc>,
    owner: &str,
) -> Result<PassReport, StoreError> {
    Evaluator::new(owner).pass(store, now).await
}

/// Runs a pass every `interval`, and right after each minute bucket closes (plus the grace),
/// until aborted. A failing pass is logged and retried. `wake` tells delivery that a pass
/// appended notifications, so they leave at once.
pub fn spawn(
    store: Store,
    clock: Arc<dyn Clock>,
    interval: Duration,
    wake: Option<Arc<tokio::sync::Notify>>,
) -> tokio::task::JoinHandle<()> {
    let mut evaluator = Evaluator::new(format!("evaluator-{}", uuid::Uuid::now_v7()));
    let interval = interval.max(Duration::from_secs(1));
    tokio::spawn(async move {
        loop {
            match evaluator.pass(&store, clock.now()).await {
                Ok(report) if report.notifications > 0 => {
                    if let Some(wake) = &wake {
                        wake.notify_one();
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "rule evaluation pass failed; retrying at the next interval")
                }
            }
            tokio::time::sleep(until_next_pass(clock.now().timestamp_millis(), interval)).await;
        }
    })
}

/// The wait until the next pass: `interval`, or less if a minute bucket closes (and settles)
/// sooner.
fn until_next_pass(now_ms: i64, interval: Duration) -> Duration {
    let minute = crate::domain::rule::Bucket::Minute.millis();
    let settled = now_ms - CLOSE_GRACE_MS;
    let next = (settled.div_euclid(minute) + 1) * minute + CLOSE_GRACE_MS + CLOSE_MARGIN_MS;
    let wait = Duration::from_millis(u64::try_from(next - now_ms).unwrap_or(0));
    wait.min(interval)
}

enum Stored {
    Nothing,
    Notified,
    LostRace,
    /// The rule's history is not complete yet; judged in a later round or pass.
    Backfilling,
}

/// A rule whose history is in place, to judge once the pass's new values are stored.
struct Ready<'r> {
    rule: &'r RuleRecord,
    spec: RuleSpec,
    bucket: i64,
    from: i64,
    /// The bucket's outcome, when an earlier pass judged it already.
    cached: Option<Outcome>,
}

enum Prepared<'r> {
    Skip,
    Backfilling,
    Ready(Box<Ready<'r>>),
}

async fn prepare<'r>(
    store: &Store,
    histories: &mut Histories,
    rule: &'r RuleRecord,
    now: i64,
    budget: Budget,
) -> Result<Prepared<'r>, StoreError> {
    let spec: RuleSpec = match serde_json::from_str(&rule.definition) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(rule_id = rule.id, error = %e, "stored rule does not parse; skipped");
            return Ok(Prepared::Skip);
        }
    };
    let width = spec.series.bucket.millis();
    let bucket = latest_closed_bucket(now, width);
    let from = bucket - history_len(&spec) * width;
    let cached = (rule.state.last_bucket == Some(bucket))
        .then(|| {
            rule.state
                .last_outcome
                .as_deref()
                .and_then(|o| serde_json::from_str::<Outcome>(o).ok())
        })
        .flatten();
    if cached.is_none()
        && !histories
            .load(store, rule, &spec.series, from, bucket, budget)
            .await?
    {
        return Ok(Prepared::Backfilling);
    }
    Ok(Prepared::Ready(Box::new(Ready {
        rule,
        spec,
        bucket,
        from,
        cached,
    })))
}

async fn judge_and_store(
    store: &Store,
    histories: &Histories,
    ready: Box<Ready<'_>>,
    now: i64,
    saves: &mut Vec<(i64, i64, i64, String)>,
) -> Result<Stored, StoreError> {
    let Ready {
        rule,
        spec,
        bucket,
        from,
        cached,
    } = *ready;
    let fresh = cached.is_none();
    let outcome = match cached {
        Some(o) => o,
        None => match histories.points(rule.id, &spec.series, from, bucket) {
            Some(points) => outcome(rule.id, &spec, &points, from, bucket),
            // Its values could not be stored (the rule was deleted meanwhile).
            None => return Ok(Stored::Nothing),
        },
    };
    let outcome_json = serde_json::to_string(&outcome).unwrap_or_default();
    let verdict = match (outcome.value, spec.no_data) {
        (None, NoData::Alert) => Verdict::Breach(Reason::NoData),
        (None, _) => Verdict::Hold,
        (Some(_), _) if outcome.breach => Verdict::Breach(match spec.condition {
            Condition::Threshold { .. } => Reason::Threshold,
            Condition::Anomaly { .. } => Reason::Anomaly,
        }),
        (Some(_), _) => Verdict::Clear,
    };
    let timing = Timing {
        for_ms: secs_ms(spec.for_secs),
        cooldown_ms: secs_ms(spec.cooldown_secs),
        repeat_ms: secs_ms(spec.repeat_secs),
    };
    let (mut next, action) = step(&rule.state, verdict, now, timing);
    next.last_bucket = Some(bucket);
    next.last_outcome = Some(outcome_json.clone());
    let unchanged = RuleState {
        last_bucket: rule.state.last_bucket,
        last_outcome: rule.state.last_outcome.clone(),
        ..next.clone()
    } == rule.state;
    if unchanged && action == Action::None {
        if fresh {
            saves.push((rule.id, rule.state.version, bucket, outcome_json));
        }
        return Ok(Stored::Nothing);
    }
    let mut transition = Transition {
        rule_id: rule.id,
        project_id: rule.project_id,
        expected_version: rule.state.version,
        next,
        now,
        open_alert: None,
        close_alert: None,
        notification: None,
    };
    match action {
        Action::None => {}
        Action::Fire(reason) => {
            let movers = if reason == Reason::NoData {
                Vec::new()
            } else {
                explain::movers(store, rule.project_id, &spec, bucket).await?
            };
            let explanation = explanation(&spec, bucket, &outcome, reason, &movers);
            transition.open_alert = Some(NewAlert {
                rule_name: spec.name.clone(),
                reason: reason.as_str(),
                bucket_start: bucket,
                value: outcome.value,
                expected: expected(&spec, &outcome),
                explanation: explanation.clone(),
            });
            transition.notification = Some(firing_row(
                &spec,
                bucket,
                &outcome,
                reason,
                &explanation,
                &movers,
            ));
        }
        Action::Repeat => {
            transition.notification = Some(repeat_row(
                &spec,
                bucket,
                &outcome,
                rule.state.last_notified_at,
                now,
            ));
        }
        Action::Resolve => {
            transition.close_alert = rule.state.alert_id;
            transition.next.alert_id = None;
            transition.notification = Some(resolved_row(
                &spec,
                bucket,
                &outcome,
                rule.state.firing_since,
                now,
            ));
        }
    }
    let notifies = transition.notification.is_some();
    Ok(match store.apply_rule_transition(&transition).await? {
        true if notifies => Stored::Notified,
        true => Stored::Nothing,
        false => Stored::LostRace,
    })
}

fn secs_ms(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX / 1000) * 1000
}

/// Buckets of history before the judged one.
fn history_len(spec: &RuleSpec) -> i64 {
    i64::try_from(spec.history_buckets()).unwrap_or(0)
}

/// The series' value in `bucket`, judged by the rule's condition (anomaly rules with the
/// rule's detector kept in this process, see [`detector`]); `points` holds the series from
/// `from` to `bucket` (absent: no matching events).
pub fn outcome(
    rule_id: i64,
    spec: &RuleSpec,
    points: &BTreeMap<i64, f64>,
    from: i64,
    bucket: i64,
) -> Outcome {
    let value = match (points.get(&bucket), spec.no_data) {
        (Some(v), _) => Some(*v),
        (None, NoData::Zero) => Some(0.0),
        (None, _) => None,
    };
    let Some(value) = value else {
        return Outcome::default();
    };
    let mut track = detector::take(rule_id, spec);
    let judged = judge(spec, points, from, bucket, value, &mut track);
    detector::put(rule_id, spec, track);
    judged
}

/// Judges `value` (the bucket at `bucket`) against the condition, with `points` the series
/// from `from` on and `track` the rule's anomaly detector (continued, or rebuilt from the
/// history when it is missing or out of step).
pub fn judge(
    spec: &RuleSpec,
    points: &BTreeMap<i64, f64>,
    from: i64,
    bucket: i64,
    value: f64,
    track: &mut Option<Track>,
) -> Outcome {
    let width = spec.series.bucket.millis();
    match (&spec.condition, spec.anomaly_params()) {
        (Condition::Threshold { op, value: limit }, _) => Outcome {
            value: Some(value),
            breach: op.holds(value, *limit),
            ..Outcome::default()
        },
        (Condition::Anomaly { .. }, Some(params)) => {
            let history = history_values(spec, points, from, bucket, width);
            let window = spec.history_buckets();
            let score = detector::score(track, window, width, bucket, &history, value);
            // The seasonal baseline: the direction of the move and the band people read.
            let baseline = anomaly::assess(&history, value, &params);
            Outcome {
                value: Some(value),
                expected: baseline.map(|a| a.expected),
                lower: baseline.map(|a| a.lower),
                upper: baseline.map(|a| a.upper),
                breach: detector::breaches(&params, score, baseline.as_ref(), value),
            }
        }
        (Condition::Anomaly { .. }, None) => Outcome::default(),
    }
}

/// One value per bucket in `[from, bucket)`. Empty buckets are 0 for count and sum; other
/// aggregates carry the last known value forward (leading empty buckets are left out).
fn history_values(
    spec: &RuleSpec,
    points: &BTreeMap<i64, f64>,
    from: i64,
    bucket: i64,
    width: i64,
) -> Vec<f64> {
    let additive = spec.series.aggregate.is_additive();
    let mut out = Vec::new();
    let mut last: Option<f64> = None;
    let mut b = from;
    while b < bucket {
        match points.get(&b) {
            Some(v) => {
                last = Some(*v);
                out.push(*v);
            }
            None if additive => out.push(0.0),
            None => {
                if let Some(v) = last {
                    out.push(v);
                }
            }
        }
        b += width;
    }
    out
}

fn expected(spec: &RuleSpec, o: &Outcome) -> Option<f64> {
    match spec.condition {
        Condition::Threshold { value, .. } => Some(value),
        Condition::Anomaly { .. } => o.expected,
    }
}

/// The sentence a person reads: what was seen, what was expected, and what moved.
fn explanation(
    spec: &RuleSpec,
    bucket: i64,
    o: &Outcome,
    reason: Reason,
    movers: &[Mover],
) -> String {
    let series = spec.series.describe();
    let at = format!("the {} from {}", spec.series.bucket.as_str(), when(bucket));
    if reason == Reason::NoData {
        return format!("No data for {series} in {at}.");
    }
    let value = number(o.value.unwrap_or(0.0));
    let mut s = match (&spec.condition, o.expected) {
        (Condition::Threshold { op, value: limit }, _) => format!(
            "{series} was {value} in {at}: the rule fires when it is {} {}.",
            op.as_str(),
            number(*limit)
        ),
        (Condition::Anomaly { .. }, Some(exp)) => format!(
            "{series} was {value} in {at}; expected about {} (normal range {}–{}).",
            number(exp),
            number(o.lower.unwrap_or(exp)),
            number(o.upper.unwrap_or(exp))
        ),
        (Condition::Anomaly { .. }, None) => format!("{series} was {value} in {at}."),
    };
    if let Some(top) = movers.first() {
        let moved = if top.current < top.baseline {
            "drop"
        } else {
            "rise"
        };
        s.push_str(&format!(
            " The {moved} is concentrated in {}",
            top.describe()
        ));
        if movers.len() > 1 {
            let rest: Vec<String> = movers[1..].iter().map(Mover::describe).collect();
            s.push_str(&format!("; also {}", rest.join("; ")));
        }
        s.push('.');
    }
    s
}

fn field(name: &str, value: String, inline: bool) -> serde_json::Value {
    json!({"name": name, "value": value, "inline": inline})
}

fn render(
    spec: &RuleSpec,
    kind: &'static str,
    title: String,
    description: String,
    colour: i64,
    fields: Vec<serde_json::Value>,
) -> NewAlertEvent {
    NewAlertEvent {
        kind,
        channel_ids: serde_json::to_string(&spec.channel_ids).unwrap_or_else(|_| "[]".into()),
        title,
        description,
        colour,
        fields: serde_json::Value::Array(fields).to_string(),
        url: None,
    }
}

fn firing_row(
    spec: &RuleSpec,
    bucket: i64,
    o: &Outcome,
    reason: Reason,
    explanation: &str,
    movers: &[Mover],
) -> NewAlertEvent {
    if reason == Reason::NoData {
        return render(
            spec,
            "no_data",
            format!("No data: {}", spec.name),
            explanation.to_owned(),
            COLOUR_NO_DATA,
            vec![
                field("Series", spec.series.describe(), false),
                field("Bucket", when(bucket), true),
            ],
        );
    }
    let mut fields = vec![
        field("Value", number(o.value.unwrap_or(0.0)), true),
        field(
            "Expected",
            match (&spec.condition, o.expected) {
                (Condition::Threshold { op, value }, _) => {
                    format!("not {} {}", op.as_str(), number(*value))
                }
                (_, Some(e)) => format!(
                    "{} ({}–{})",
                    number(e),
                    number(o.lower.unwrap_or(e)),
                    number(o.upper.unwrap_or(e))
                ),
                _ => "—".into(),
            },
            true,
        ),
        field("Bucket", when(bucket), true),
    ];
    if !movers.is_empty() {
        let lines: Vec<String> = movers.iter().map(Mover::describe).collect();
        fields.push(field("Top movers", lines.join("\n"), false));
    }
    render(
        spec,
        "firing",
        format!("Firing: {}", spec.name),
        explanation.to_owned(),
        COLOUR_FIRING,
        fields,
    )
}

fn repeat_row(
    spec: &RuleSpec,
    bucket: i64,
    o: &Outcome,
    since: Option<i64>,
    now: i64,
) -> NewAlertEvent {
    let value = o.value.map_or_else(|| "no data".to_owned(), number);
    render(
        spec,
        "repeat",
        format!("Still firing: {}", spec.name),
        format!(
            "{} is {value} in the {} from {}; still firing{}.",
            spec.series.describe(),
            spec.series.bucket.as_str(),
            when(bucket),
            since
                .map(|s| format!(" (last notified {})", when(s)))
                .unwrap_or_default()
        ),
        COLOUR_REPEAT,
        vec![
            field("Value", value, true),
            field("Bucket", when(bucket), true),
            field("At", when(now), true),
        ],
    )
}

fn resolved_row(
    spec: &RuleSpec,
    bucket: i64,
    o: &Outcome,
    since: Option<i64>,
    now: i64,
) -> NewAlertEvent {
    let value = o.value.map_or_else(|| "no data".to_owned(), number);
    let firing_for = since
        .map(|s| format!(" after firing for {} min", (now - s) / 60_000))
        .unwrap_or_default();
    render(
        spec,
        "resolved",
        format!("Resolved: {}", spec.name),
        format!(
            "{} is back to {value} in the {} from {}{firing_for}.",
            spec.series.describe(),
            spec.series.bucket.as_str(),
            when(bucket)
        ),
        COLOUR_RESOLVED,
        vec![
            field("Value", value, true),
            field("Bucket", when(bucket), true),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_pass_starts_as_the_next_minute_settles() {
        let interval = Duration::from_secs(30);
        // Seconds after a minute boundary (2025-12-05 10:00:00 UTC).
        let at = |s: i64| 1_764_928_800_000 + s * 1000;
        let margin = CLOSE_MARGIN_MS as u64;
        // At 10:00:05 the 09:59 minute settles at 10:00:15.
        assert_eq!(
            until_next_pass(at(5), interval),
            Duration::from_millis(10_000 + margin)
        );
        // At 10:00:20 the next one settles at 10:01:15: the interval comes first.
        assert_eq!(until_next_pass(at(20), interval), interval);
        assert_eq!(
            until_next_pass(at(50), interval),
            Duration::from_millis(25_000 + margin)
        );
        // The pass then judges the minute that just closed.
        let next = at(50) + 25_000 + CLOSE_MARGIN_MS;
        assert_eq!(latest_closed_bucket(next, 60_000), at(0));
        assert_eq!(latest_closed_bucket(next - 200, 60_000), at(-60));
    }
}
