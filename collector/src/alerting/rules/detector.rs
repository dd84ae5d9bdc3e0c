//! How an anomaly rule judges a bucket: contextOSE ([`OnlineCad`]) scores the bucket, and the
//! rule breaches when the score reaches the threshold its sensitivity maps to, in the rule's
//! direction (decided against the seasonal baseline that the explanation shows).
//!
//! contextOSE learns as it goes, so each rule's detector is kept in the evaluator's memory
//! between buckets, keyed by the rule id and its series definition. It is continued only when
//! it was last fed the previous bucket and the values it was fed are the stored ones;
//! otherwise (a restart, another replica evaluated the rule, the rule changed, late events
//! changed a bucket) it is rebuilt by replaying the rule's stored history, at most
//! [`RuleSpec::history_buckets`] buckets.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{LazyLock, Mutex};

use super::spec::RuleSpec;
use crate::alerting::anomaly::{Assessment, Direction, Params};
use crate::alerting::anomaly_cad::{OnlineCad, threshold_for};

/// Most rules whose detector one evaluator process keeps (each holds at most
/// [`crate::alerting::anomaly_cad::MAX_CONTEXTS`] contexts and its history window); beyond it
/// the least recently judged rule's detector is dropped and rebuilt when next needed.
pub const MAX_RULE_DETECTORS: usize = 10_000;

/// One rule's detector and the bucket it was last fed.
#[derive(Debug, Clone)]
pub struct Track {
    bucket: i64,
    score: f64,
    cad: OnlineCad,
}

/// The detector's score for `value` (the bucket at `bucket`, `width` ms wide), with `history`
/// the stored values before it (oldest first) and `window` the most a rebuild replays.
/// Continues `track` when it was fed the previous bucket with the same values, and rebuilds
/// it from `history` otherwise.
pub fn score(
    track: &mut Option<Track>,
    window: usize,
    width: i64,
    bucket: i64,
    history: &[f64],
    value: f64,
) -> f64 {
    if let Some(t) = track.as_mut() {
        // The same bucket again (a retried pass): the score it got, if its inputs are unchanged.
        let fed_last: Vec<f64> = t.cad.recent().rev().take(1).copied().collect();
        if t.bucket == bucket && fed_last == [value] && ends_with(&t.cad, history, 1) {
            return t.score;
        }
        if t.bucket + width == bucket && ends_with(&t.cad, history, 0) {
            t.score = t.cad.score(value);
            t.bucket = bucket;
            return t.score;
        }
    }
    let mut cad = OnlineCad::from_history(history, window);
    let score = cad.score(value);
    *track = Some(Track { bucket, score, cad });
    score
}

/// True when the values `cad` was fed, minus its last `skip`, end with `history`'s (compared
/// over the shorter of the two).
fn ends_with(cad: &OnlineCad, history: &[f64], skip: usize) -> bool {
    let fed = cad.recent().rev().skip(skip);
    let n = fed.len().min(history.len());
    fed.take(n).eq(history.iter().rev().take(n))
}

/// Whether a bucket scored `score` breaches the rule: the score reaches the threshold of the
/// rule's sensitivity, the value moved in the rule's direction from the baseline, and it is
/// not a quiet bucket (baseline and value below `min_volume`).
pub fn breaches(params: &Params, score: f64, baseline: Option<&Assessment>, value: f64) -> bool {
    let expected = baseline.map(|a| a.expected);
    let direction = match (params.direction, expected) {
        (Direction::Both, _) => true,
        (Direction::Up, Some(e)) => value > e,
        (Direction::Down, Some(e)) => value < e,
        (_, None) => false,
    };
    let quiet =
        value.abs() < params.min_volume && expected.is_none_or(|e| e.abs() < params.min_volume);
    score >= threshold_for(params.sensitivity) && direction && !quiet
}

/// The evaluator's detectors, by rule id and series definition.
struct Tracks {
    map: HashMap<(i64, u64), (u64, Option<Track>)>,
    tick: u64,
}

static TRACKS: LazyLock<Mutex<Tracks>> = LazyLock::new(|| {
    Mutex::new(Tracks {
        map: HashMap::new(),
        tick: 0,
    })
});

/// What the detector's state depends on: the series and the history window.
fn key(rule_id: i64, spec: &RuleSpec) -> (i64, u64) {
    let mut h = DefaultHasher::new();
    serde_json::to_string(&spec.series)
        .unwrap_or_default()
        .hash(&mut h);
    spec.history_buckets().hash(&mut h);
    (rule_id, h.finish())
}

/// Takes rule `rule_id`'s detector out of the evaluator's memory (`None` if it has none).
pub fn take(rule_id: i64, spec: &RuleSpec) -> Option<Track> {
    let mut tracks = TRACKS.lock().unwrap_or_else(|e| e.into_inner());
    tracks.map.remove(&key(rule_id, spec)).and_then(|(_, t)| t)
}

/// Puts rule `rule_id`'s detector back after judging a bucket.
pub fn put(rule_id: i64, spec: &RuleSpec, track: Option<Track>) {
    let Some(track) = track else { return };
    let mut tracks = TRACKS.lock().unwrap_or_else(|e| e.into_inner());
    tracks.tick += 1;
    if tracks.map.len() >= MAX_RULE_DETECTORS {
        let oldest = tracks
            .map
            .iter()
            .min_by_key(|(_, (used, _))| *used)
            .map(|(k, _)| *k);
        if let Some(k) = oldest {
            tracks.map.remove(&k);
        }
    }
    let tick = tracks.tick;
    tracks.map.insert(key(rule_id, spec), (tick, Some(track)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daily(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| 100.0 + 40.0 * ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin())
            .collect()
    }

    #[test]
    fn a_track_continues_bucket_by_bucket_and_rebuilds_when_out_of_step() {
        let values = daily(300);
        let (width, window) = (10, 1_000);
        let mut track = None;
        let mut scores = Vec::new();
        for (i, &v) in values.iter().enumerate() {
            let bucket = i as i64 * width;
            scores.push(score(&mut track, window, width, bucket, &values[..i], v));
        }
        // The same as one detector fed every value.
        let mut cad = OnlineCad::new(window);
        let direct: Vec<f64> = values.iter().map(|&v| cad.score(v)).collect();
        assert_eq!(scores, direct);
        // A retried bucket gets the same score without feeding it twice.
        let last = 299 * width;
        let again = score(&mut track, window, width, last, &values[..299], values[299]);
        assert_eq!(again, scores[299]);
        // A changed history (late events) rebuilds it from the stored values.
        let mut changed = values.clone();
        changed[290] = 500.0;
        let rebuilt = score(&mut track, window, width, 300 * width, &changed, 120.0);
        let expected = OnlineCad::from_history(&changed, window).score(120.0);
        assert_eq!(rebuilt, expected);
    }

    #[test]
    fn direction_and_min_volume_limit_what_breaches() {
        let p = |direction| Params {
            direction,
            min_volume: 10.0,
            ..Params::default()
        };
        let baseline = Assessment {
            expected: 100.0,
            lower: 90.0,
            upper: 110.0,
            score: 0.0,
            anomalous: false,
        };
        assert!(breaches(&p(Direction::Up), 0.9, Some(&baseline), 150.0));
        assert!(!breaches(&p(Direction::Up), 0.9, Some(&baseline), 50.0));
        assert!(breaches(&p(Direction::Down), 0.9, Some(&baseline), 50.0));
        assert!(breaches(&p(Direction::Both), 0.9, Some(&baseline), 50.0));
        assert!(!breaches(&p(Direction::Both), 0.5, Some(&baseline), 50.0));
        let quiet = Assessment {
            expected: 5.0,
            ..baseline
        };
        assert!(!breaches(&p(Direction::Both), 0.9, Some(&quiet), 2.0));
    }
}
