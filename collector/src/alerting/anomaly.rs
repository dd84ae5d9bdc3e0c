//! Anomaly detection on a bucketed series, online: each bucket is judged only against the
//! buckets before it, the way the rule evaluator sees a series as time passes.
//!
//! How a bucket is judged (everything is recomputed from `history`, so the detector keeps no
//! state and two collectors judging the same stored series agree):
//!
//! 1. **Baseline.** Candidates are the recent level (median of the last [`LEVEL_BUCKETS`]) and,
//!    for every season in [`Params::seasons`] with enough history, the median of the same
//!    bucket 1..=4 seasons ago (Monday 09:00 against earlier Mondays 09:00). Each candidate
//!    is replayed over the last [`RECENT_BUCKETS`] buckets, and the one whose mean absolute
//!    miss is smallest becomes `expected`. A series without a daily rhythm keeps the recent
//!    level; a series with one gets the seasonal baseline, so its daily peak is not a spike.
//! 2. **Yardstick.** The deviations of that baseline over the last [`RECENT_BUCKETS`] buckets
//!    give the yardstick: the largest of them (and never less than a robust spread of them,
//!    nor 1% of the level). A bucket is anomalous when it misses `expected` by more than
//!    `sensitivity` yardsticks, i.e. when it is further off than anything seen recently.
//!    This calibrates every series by its own history (a bursty series has a wide band, a
//!    steady one a narrow band) and stops repeated alerts just after an incident: the
//!    incident itself widens the band for the next [`RECENT_BUCKETS`] buckets.
//!
//! Anomaly rules breach on contextOSE's score ([`crate::alerting::anomaly_cad::OnlineCad`],
//! judged in `rules/detector.rs`); this baseline gives them the expected value and band people
//! read, and the direction of a move. `cargo bench --bench nab -- --detector assess` scores it
//! on NAB (docs/alerting-quality.md).

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
    /// How far outside the recent range a bucket must be, in yardsticks (the largest miss of
    /// the baseline over the last [`RECENT_BUCKETS`] buckets). 1.0 means "as far off as the
    /// worst recent bucket"; the default is [`DEFAULT_SENSITIVITY`]. Lower is more sensitive.
    pub sensitivity: f64,
    /// Buckets whose baseline and value are both below this are never anomalous
    /// (quiet series swing wildly in relative terms).
    pub min_volume: f64,
    /// Seasonal periods in buckets, shortest first (hourly buckets: `[24, 168]` for daily and
    /// weekly; see [`seasons_for_bucket`]). Empty: no seasonality, the recent level is the
    /// baseline.
    pub seasons: Vec<usize>,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            direction: Direction::Both,
            sensitivity: DEFAULT_SENSITIVITY,
            min_volume: 0.0,
            seasons: Vec::new(),
        }
    }
}

impl Params {
    /// Buckets of history (ending right before the bucket judged) that [`assess`] uses; older
    /// buckets are ignored, so the rule evaluator needs to load no more than this.
    pub fn history_len(&self) -> usize {
        let longest = self.seasons.iter().copied().max().unwrap_or(0);
        longest * SEASONS_BACK + RECENT_BUCKETS + LEVEL_BUCKETS
    }
}

/// What the detector concluded about one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assessment {
    /// The baseline: what the bucket was expected to be.
    pub expected: f64,
    /// The band outside which a value counts as anomalous (given `direction`):
    /// `expected ± sensitivity × yardstick`.
    pub lower: f64,
    pub upper: f64,
    /// Signed deviation from `expected` in yardsticks; `|score| > sensitivity` is outside the
    /// band.
    pub score: f64,
    pub anomalous: bool,
}

/// Buckets of recent history the baseline needs before it judges anything.
pub const MIN_HISTORY: usize = 8;
/// Recent buckets over which baselines are compared and the yardstick is measured.
pub const RECENT_BUCKETS: usize = 500;
/// Buckets in the median that gives the recent level.
pub const LEVEL_BUCKETS: usize = 12;
/// The default [`Params::sensitivity`]: the median of the thresholds that the NAB bench's
/// cross-validation (`-- --cv`) picks, each optimised without the category it is scored on
/// (standard profile), mapped back through [`sensitivity_for_unit`].
pub const DEFAULT_SENSITIVITY: f64 = 1.21;
/// Seasonal references per season (the same bucket 1..=N seasons ago).
const SEASONS_BACK: usize = 4;
/// A season is a candidate once this many of its references exist for every recent bucket.
const MIN_SEASONS_BACK: usize = 2;
/// MAD of a normal distribution is 0.6745 σ.
const MAD_TO_SIGMA: f64 = 1.4826;
/// The yardstick is never below this fraction of the level (a flat series is not infinitely
/// surprised by one unit of change).
const LEVEL_FLOOR: f64 = 0.01;

/// Seasons (daily, weekly) in buckets of `bucket_secs` seconds, as the product derives them
/// from a rule's bucket size: 3600 s → `[24, 168]`, 300 s → `[288, 2016]`. A season shorter
/// than two buckets is left out.
pub fn seasons_for_bucket(bucket_secs: u64) -> Vec<usize> {
    const DAY: f64 = 86_400.0;
    if bucket_secs == 0 {
        return Vec::new();
    }
    [DAY, 7.0 * DAY]
        .into_iter()
        .map(|period| (period / bucket_secs as f64).round() as usize)
        .filter(|&buckets| buckets >= 2)
        .collect()
}

/// Maps a score onto [0, 1), strictly increasing in `|score|`: the form NAB's scorer takes.
/// `unit_score(s) >= t` exactly when `|s| >= t / (1 - t)`.
pub fn unit_score(score: f64) -> f64 {
    let s = score.abs();
    s / (s + 1.0)
}

/// The sensitivity that a [`unit_score`] threshold corresponds to.
pub fn sensitivity_for_unit(threshold: f64) -> f64 {
    threshold / (1.0 - threshold)
}

fn median_of_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn median(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n <= SEASONS_BACK {
        // The seasonal references: an insertion sort beats selection at this size.
        for i in 1..n {
            let mut j = i;
            while j > 0 && values[j - 1].total_cmp(&values[j]).is_gt() {
                values.swap(j - 1, j);
                j -= 1;
            }
        }
        return median_of_sorted(values);
    }
    let (below, mid, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    let mid = *mid;
    if n % 2 == 1 {
        mid
    } else {
        // The lower middle is the largest of the lower half.
        let lower = below.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lower + mid) / 2.0
    }
}

/// The baseline a bucket is compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Baseline {
    /// Median of the last [`LEVEL_BUCKETS`] buckets.
    Recent,
    /// Median of the same bucket 1..=[`SEASONS_BACK`] seasons of this many buckets ago.
    Seasonal(usize),
}

/// Baseline predictions for buckets `from..=x.len()` of `x` (the last one is the bucket after
/// `x`, the one being judged).
fn predictions(x: &[f64], from: usize, baseline: Baseline) -> Vec<f64> {
    let to = x.len();
    let mut out = Vec::with_capacity(to + 1 - from);
    match baseline {
        Baseline::Recent => {
            // A sliding sorted window: one insert and one removal per bucket.
            let mut window = x[from.saturating_sub(LEVEL_BUCKETS)..from].to_vec();
            window.sort_by(f64::total_cmp);
            for j in from..=to {
                out.push(median_of_sorted(&window));
                if j == to {
                    break;
                }
                let at = window.partition_point(|v| v.total_cmp(&x[j]).is_lt());
                window.insert(at, x[j]);
                if j >= LEVEL_BUCKETS {
                    let old = x[j - LEVEL_BUCKETS];
                    let at = window.partition_point(|v| v.total_cmp(&old).is_lt());
                    window.remove(at);
                }
            }
        }
        Baseline::Seasonal(season) => {
            let mut refs = [0.0; SEASONS_BACK];
            for j in from..=to {
                let mut n = 0;
                for back in 1..=SEASONS_BACK {
                    if let Some(i) = j.checked_sub(back * season) {
                        refs[n] = x[i];
                        n += 1;
                    }
                }
                out.push(median(&mut refs[..n]));
            }
        }
    }
    out
}

/// Judges `current` against `history`. `None` while there is too little history to judge.
pub fn assess(history: &[f64], current: f64, params: &Params) -> Option<Assessment> {
    if history.len() < MIN_HISTORY {
        return None;
    }
    let history = &history[history.len().saturating_sub(params.history_len())..];
    let n = history.len();
    // A season competes once MIN_SEASONS_BACK of it lie before the compared buckets, and at
    // least MIN_HISTORY buckets are left to compare; then every candidate is compared over
    // the same buckets (the last RECENT_BUCKETS, or fewer while the history is short).
    let seasons: Vec<usize> = params
        .seasons
        .iter()
        .copied()
        .filter(|&s| s >= 2 && n >= MIN_SEASONS_BACK * s + MIN_HISTORY)
        .collect();
    let from = seasons
        .iter()
        .map(|&s| MIN_SEASONS_BACK * s)
        .fold(n.saturating_sub(RECENT_BUCKETS).max(2), usize::max);
    let candidates =
        std::iter::once(Baseline::Recent).chain(seasons.iter().map(|&s| Baseline::Seasonal(s)));
    // The candidate with the smallest mean absolute miss over the recent buckets wins; the
    // recent level wins ties.
    let mut best: Option<(f64, Vec<f64>)> = None;
    for baseline in candidates {
        let predicted = predictions(history, from, baseline);
        let miss = history[from..]
            .iter()
            .zip(&predicted)
            .map(|(x, p)| (x - p).abs())
            .sum::<f64>()
            / (n - from) as f64;
        if best.as_ref().is_none_or(|(m, _)| miss < *m) {
            best = Some((miss, predicted));
        }
    }
    let (_, predicted) = best?;
    let expected = predicted[n - from];
    let mut misses: Vec<f64> = history[from..]
        .iter()
        .zip(&predicted)
        .map(|(x, p)| (x - p).abs())
        .collect();
    let largest = misses.iter().copied().fold(0.0, f64::max);
    let spread = median(&mut misses) * MAD_TO_SIGMA;
    let yardstick = largest.max(spread).max(expected.abs() * LEVEL_FLOOR);
    let yardstick = if yardstick > 1e-9 { yardstick } else { 1.0 };
    let score = (current - expected) / yardstick;
    let width = params.sensitivity * yardstick;
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
        let history: Vec<f64> = (0..24 * 30)
            .map(|i| if i % 24 == 0 { 500.0 } else { 10.0 })
            .collect();
        let seasonal = Params {
            seasons: vec![24],
            ..Params::default()
        };
        let a = assess(&history, 500.0, &seasonal).unwrap();
        assert!(!a.anomalous, "{a:?}");
        assert_eq!(a.expected, 500.0);
        assert!(assess(&history, 5_000.0, &seasonal).unwrap().anomalous);
        // The same series at the next bucket (a quiet one) expects quiet, so a busy value there
        // is anomalous.
        let mut next = history.clone();
        next.push(500.0);
        let a = assess(&next, 500.0, &seasonal).unwrap();
        assert_eq!(a.expected, 10.0);
        assert!(a.anomalous, "{a:?}");
        // Without seasonality the baseline is the quiet level, and only the width of the band
        // (the recurring peaks) keeps the peak from firing.
        assert_eq!(
            assess(&history, 500.0, &Params::default())
                .unwrap()
                .expected,
            10.0
        );
    }

    #[test]
    fn seasonality_applies_after_a_few_seasons_of_history() {
        // Three days and ten hours of hourly buckets with a midday peak (10:00–16:00): the
        // fourth day's peak is expected.
        let day = |h: usize| {
            if (10..16).contains(&(h % 24)) {
                40.0
            } else {
                5.0
            }
        };
        let history: Vec<f64> = (0..72 + 10).map(day).collect();
        let seasonal = Params {
            seasons: vec![24],
            ..Params::default()
        };
        let peak = assess(&history, 40.0, &seasonal).unwrap();
        assert_eq!(peak.expected, 40.0, "{peak:?}");
        assert!(!peak.anomalous, "{peak:?}");
        let drop = assess(&history, 18.0, &seasonal).unwrap();
        assert!(drop.anomalous, "{drop:?}");
    }

    #[test]
    fn a_series_without_a_rhythm_keeps_the_recent_level_even_with_seasons() {
        // A slow ramp: yesterday's value is far off, the last hour is not.
        let history: Vec<f64> = (0..800).map(|i| f64::from(i) + f64::from(i % 3)).collect();
        let seasonal = Params {
            seasons: vec![24],
            ..Params::default()
        };
        let a = assess(&history, 801.0, &seasonal).unwrap();
        assert!((a.expected - 794.0).abs() < 5.0, "{a:?}");
        assert!(!a.anomalous, "{a:?}");
    }

    #[test]
    fn pseudo_random_noise_rarely_fires() {
        // Deterministic noise (an LCG) around 1000: judged bucket by bucket, as the evaluator does.
        let mut state: u64 = 42;
        let series: Vec<f64> = (0..3000)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                1000.0 + f64::from((state >> 33) as u32 % 200) - 100.0
            })
            .collect();
        let p = Params::default();
        let fired = (600..series.len())
            .filter(|&i| assess(&series[..i], series[i], &p).unwrap().anomalous)
            .count();
        assert!(fired <= 3, "{fired} of 2400 noise buckets fired");
        // A real outlier in the same noise does fire.
        assert!(assess(&series, 1600.0, &p).unwrap().anomalous);
    }

    #[test]
    fn an_incident_does_not_fire_again_and_again() {
        let mut history: Vec<f64> = (0..600).map(|i| 100.0 + f64::from(i % 5)).collect();
        let p = Params::default();
        assert!(assess(&history, 300.0, &p).unwrap().anomalous);
        history.push(300.0);
        history.extend((0..5).map(|i| 100.0 + f64::from(i % 5)));
        // A repeat of the same size soon after is within the band the incident widened…
        assert!(!assess(&history, 290.0, &p).unwrap().anomalous);
        // …but a much larger one still fires.
        assert!(assess(&history, 600.0, &p).unwrap().anomalous);
        // Once the incident is RECENT_BUCKETS old, the band is narrow again.
        history.extend((0..RECENT_BUCKETS).map(|i| 100.0 + (i % 5) as f64));
        assert!(assess(&history, 290.0, &p).unwrap().anomalous);
    }

    #[test]
    fn a_level_shift_is_news_once_then_the_new_normal() {
        let mut history: Vec<f64> = (0..600).map(|i| 100.0 + f64::from(i % 5)).collect();
        let p = Params::default();
        assert!(assess(&history, 200.0, &p).unwrap().anomalous);
        history.extend((0..48).map(|i| 200.0 + f64::from(i % 5)));
        let a = assess(&history, 202.0, &p).unwrap();
        assert!((a.expected - 202.0).abs() < 3.0, "{a:?}");
        assert!(!a.anomalous, "{a:?}");
    }

    #[test]
    fn only_history_len_buckets_are_used() {
        let p = Params {
            seasons: vec![24, 168],
            ..Params::default()
        };
        let long: Vec<f64> = (0..3000)
            .map(|i| f64::from(i % 24) * 10.0 + f64::from(i % 7))
            .collect();
        let trimmed = &long[long.len() - p.history_len()..];
        assert_eq!(assess(&long, 95.0, &p), assess(trimmed, 95.0, &p));
        assert_eq!(p.history_len(), 168 * 4 + RECENT_BUCKETS + LEVEL_BUCKETS);
    }

    #[test]
    fn seasons_come_from_the_bucket_size() {
        assert_eq!(seasons_for_bucket(3600), vec![24, 168]);
        assert_eq!(seasons_for_bucket(300), vec![288, 2016]);
        assert_eq!(seasons_for_bucket(86_400), vec![7]);
        assert_eq!(seasons_for_bucket(0), Vec::<usize>::new());
    }

    #[test]
    fn the_unit_score_is_monotone_and_maps_back_to_a_sensitivity() {
        let scores: [f64; 7] = [0.0, 0.5, -1.0, 1.21, 3.0, -10.0, 1e6];
        for pair in scores.windows(2) {
            let (a, b) = (pair[0].abs(), pair[1].abs());
            assert_eq!(a < b, unit_score(a) < unit_score(b));
        }
        for s in [0.5, DEFAULT_SENSITIVITY, 3.0] {
            assert!((sensitivity_for_unit(unit_score(s)) - s).abs() < 1e-9);
        }
        assert!(unit_score(1e300) <= 1.0);
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
