//! Anomaly detection on a bucketed series, online: each bucket is judged only against the
//! buckets before it, the way the rule evaluator sees a series as time passes.
//!
//! The baseline is robust (median and MAD, so one past spike does not blind it) and seasonal:
//! when the series has enough history, the same bucket one season ago (and two, three…) is
//! the reference, so Monday 09:00 is compared with earlier Mondays 09:00, not with Sunday
//! night. The NAB benchmark (`collector/benches/nab.rs`) runs this same function.

use serde::{Deserialize, Serialize};

/// Which way a move must go to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
    Both,
}

/// How a rule wants its series judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub direction: Direction,
    /// Robust z-score (deviation / scaled MAD) beyond which a bucket is anomalous.
    /// 3.0 is the usual default; lower is more sensitive.
    pub sensitivity: f64,
    /// Buckets whose baseline and value are both below this are never anomalous
    /// (quiet series swing wildly in relative terms).
    pub min_volume: f64,
    /// Seasonal periods in buckets, shortest first (hourly buckets: `[24, 168]` for daily and
    /// weekly). Empty: no seasonality, the recent buckets are the baseline.
    pub seasons: Vec<usize>,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            direction: Direction::Both,
            sensitivity: 3.0,
            min_volume: 0.0,
            seasons: Vec::new(),
        }
    }
}

/// What the detector concluded about one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assessment {
    /// The baseline: what the bucket was expected to be.
    pub expected: f64,
    /// The band outside which a value counts as anomalous (given `direction`).
    pub lower: f64,
    pub upper: f64,
    /// Signed robust z-score of the value against the baseline.
    pub score: f64,
    pub anomalous: bool,
}

/// Buckets of recent history the baseline needs before it judges anything.
pub const MIN_HISTORY: usize = 8;
/// Recent buckets used when no season applies.
const RECENT_WINDOW: usize = 48;
/// Seasonal references used per season (the same bucket 1..=N seasons ago).
const SEASONS_BACK: usize = 4;
/// MAD of a normal distribution is 0.6745 σ.
const MAD_TO_SIGMA: f64 = 1.4826;

/// The buckets of `history` (oldest first, one per bucket, ending right before `current`)
/// that the baseline for `current` is drawn from.
fn reference<'a>(history: &'a [f64], params: &Params, scratch: &'a mut Vec<f64>) -> &'a [f64] {
    for &season in &params.seasons {
        if season == 0 {
            continue;
        }
        scratch.clear();
        // `current` sits at index history.len(); k seasons ago is history.len() - k*season.
        for k in 1..=SEASONS_BACK {
            if let Some(i) = history.len().checked_sub(k * season) {
                scratch.push(history[i]);
            }
        }
        if scratch.len() >= 2 {
            return scratch;
        }
    }
    let from = history.len().saturating_sub(RECENT_WINDOW);
    &history[from..]
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Judges `current` against `history`. `None` while there is too little history to judge.
pub fn assess(history: &[f64], current: f64, params: &Params) -> Option<Assessment> {
    if history.len() < MIN_HISTORY {
        return None;
    }
    let mut scratch = Vec::new();
    let mut values = reference(history, params, &mut scratch).to_vec();
    let expected = median(&mut values);
    let mut deviations: Vec<f64> = values.iter().map(|v| (v - expected).abs()).collect();
    // A flat baseline has MAD 0; fall back to a fraction of its level (or 1) so the band is
    // never zero-width and a single unit of noise is not infinitely surprising.
    let spread = (median(&mut deviations) * MAD_TO_SIGMA)
        .max(expected.abs() * 0.05)
        .max(1e-9);
    let spread = if spread <= 1e-9 { 1.0 } else { spread };
    let score = (current - expected) / spread;
    let width = params.sensitivity * spread;
    let (lower, upper) = (expected - width, expected + width);
    let out = match params.direction {
        Direction::Up => current > upper,
        Direction::Down => current < lower,
        Direction::Both => current > upper || current < lower,
    };
    let quiet = expected.abs() < params.min_volume && current.abs() < params.min_volume;
    Some(Assessment {
        expected,
        lower,
        upper,
        score,
        anomalous: out && !quiet,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_little_history_is_not_judged() {
        assert_eq!(
            assess(&[1.0; MIN_HISTORY - 1], 100.0, &Params::default()),
            None
        );
    }

    #[test]
    fn a_spike_and_a_drop_are_anomalous_noise_is_not() {
        let history: Vec<f64> = (0..48).map(|i| 100.0 + f64::from(i % 5)).collect();
        let p = Params::default();
        assert!(!assess(&history, 103.0, &p).unwrap().anomalous);
        assert!(assess(&history, 180.0, &p).unwrap().anomalous);
        assert!(assess(&history, 20.0, &p).unwrap().anomalous);
    }

    #[test]
    fn direction_limits_what_counts() {
        let history = vec![100.0; 48];
        let up = Params {
            direction: Direction::Up,
            ..Params::default()
        };
        assert!(!assess(&history, 10.0, &up).unwrap().anomalous);
        assert!(assess(&history, 200.0, &up).unwrap().anomalous);
    }

    #[test]
    fn seasonality_compares_with_the_same_bucket_of_earlier_seasons() {
        // Busy at bucket 0 of every 24, quiet otherwise: a busy bucket 0 is expected.
        let history: Vec<f64> = (0..24 * 7)
            .map(|i| if i % 24 == 0 { 500.0 } else { 10.0 })
            .collect();
        let seasonal = Params {
            seasons: vec![24],
            ..Params::default()
        };
        let a = assess(&history, 500.0, &seasonal).unwrap();
        assert!(!a.anomalous, "{a:?}");
        assert!(assess(&history, 5_000.0, &seasonal).unwrap().anomalous);
        // Without seasonality the same bucket looks like a spike.
        assert!(
            assess(&history, 500.0, &Params::default())
                .unwrap()
                .anomalous
        );
    }

    #[test]
    fn quiet_series_below_min_volume_never_fire() {
        let history = vec![1.0; 48];
        let p = Params {
            min_volume: 10.0,
            ..Params::default()
        };
        assert!(!assess(&history, 6.0, &p).unwrap().anomalous);
    }
}
