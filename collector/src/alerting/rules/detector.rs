//! How an anomaly rule judges a bucket: contextOSE ([`OnlineCad`]) and the seasonal baseline
//! ([`crate::alerting::anomaly::assess`]) score the bucket, the larger score counts
//! ([`ensemble_score`]: contextOSE finds broken sequences, the baseline drops and outages at
//! hours that are busy every day), and the rule breaches when it reaches the threshold its
//! sensitivity maps to, in the rule's direction (decided against that baseline).
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
use crate::alerting::anomaly_cad::{OnlineCad, ensemble_score, threshold_for};

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

/// Whether a bucket that contextOSE scored `cad` breaches the rule: its ensemble score (with
/// the baseline's) reaches the threshold of the rule's sensitivity, the value moved in the
/// rule's direction from the baseline, and it is not a quiet bucket (baseline and value below
/// `min_volume`).
pub fn breaches(params: &Params, cad: f64, baseline: Option<&Assessment>, value: f64) -> bool {
    let score = ensemble_score(cad, baseline.map(|a| a.score));
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

    /// Buckets of `values` from `warm` on that breach a `both` rule at the default sensitivity
    /// with `seasons`, judged as the evaluator judges them.
    fn breaching(values: &[f64], warm: usize, seasons: Vec<usize>) -> Vec<usize> {
        let params = Params {
            seasons,
            ..Params::default()
        };
        let window = params.history_len();
        let mut track = None;
        (warm..values.len())
            .filter(|&i| {
                let history = &values[i.saturating_sub(window)..i];
                let cad = score(&mut track, window, 1, i as i64, history, values[i]);
                let baseline = crate::alerting::anomaly::assess(history, values[i], &params);
                breaches(&params, cad, baseline.as_ref(), values[i])
            })
            .collect()
    }

    /// An hourly count with a daily rhythm from `floor` to `floor + peak` and Poisson-like
    /// noise (a fixed pseudo-random stream).
    fn noisy(n: usize, peak: f64, floor: f64, seed: u64) -> Vec<f64> {
        let mut state = seed;
        let mut unit = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|i| {
                let day = 0.5 - 0.5 * ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).cos();
                let mean = floor + peak * day;
                let z = (unit() + unit() + unit() + unit() - 2.0) * 1.7;
                (mean + mean.sqrt() * z).round().max(0.0)
            })
            .collect()
    }

    #[test]
    fn an_outage_on_a_busy_seasonal_series_fires() {
        // Between 10 and 410 an hour; the count drops to zero at noon of the fourth day.
        let mut values = noisy(96, 400.0, 10.0, 2);
        let outage = 72 + 12;
        let mut cad = OnlineCad::from_history(&values[..outage], 1_000);
        values[outage..].fill(0.0);
        // contextOSE alone finds nothing unusual: zero is a level the nights are close to.
        assert!(cad.score(0.0) < threshold_for(Params::default().sensitivity));
        let fired = breaching(&values, 72, vec![24]);
        assert_eq!(fired.first(), Some(&outage), "fired at {fired:?}");
    }

    #[test]
    fn steady_noise_does_not_breach() {
        // A smooth daily rhythm with a little noise: neither detector fires on it.
        let values: Vec<f64> = (0..1_600)
            .map(|i| {
                let day = 0.5 - 0.5 * ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).cos();
                let noise = ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as f64;
                400.0 + 1_600.0 * day + noise
            })
            .collect();
        assert_eq!(
            breaching(&values, 1_200, vec![24, 168]),
            Vec::<usize>::new()
        );
        let noisy = noisy(1_600, 1_600.0, 400.0, 7);
        assert_eq!(breaching(&noisy, 1_200, vec![24, 168]), Vec::<usize>::new());
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
