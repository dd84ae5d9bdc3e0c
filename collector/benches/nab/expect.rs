//! What a user should expect from an anomaly rule with the default settings, measured on
//! synthetic hourly series: false alarms per week on a healthy series, and how long a level
//! shift takes to fire. No NAB data is needed.
//!
//! A series is an hourly event count: a daily rhythm (quiet at night, busy in the afternoon),
//! quieter weekends, and Poisson noise, which is what counting independent events gives.
//! Every bucket is judged the way the rule evaluator judges it at the default sensitivity: one
//! [`OnlineCad`] per rule, never restarted, with the window the product keeps
//! ([`Params::history_len`]), its score combined with the seasonal baseline's
//! ([`ensemble_score`]), firing when the score reaches [`DEFAULT_THRESHOLD`] (direction
//! `both`). `--detector cad` judges with contextOSE alone and `ensemble-both` lets the
//! baseline count on both sides; `--threshold T` judges at another threshold.

use pulseline_collector::alerting::anomaly::{Params, assess, seasons_for_bucket, unit_score};
use pulseline_collector::alerting::anomaly_cad::{DEFAULT_THRESHOLD, OnlineCad, ensemble_score};

use crate::Detector;

/// One rule judging an hourly series bucket by bucket.
struct Rule {
    cad: OnlineCad,
    history: Vec<f64>,
    params: Params,
    detector: Detector,
    threshold: f64,
}

impl Rule {
    fn new(history: &[f64], detector: Detector, threshold: f64) -> Self {
        let params = hourly_params();
        let warm = params.history_len();
        Self {
            cad: OnlineCad::from_history(history, warm),
            history: history.to_vec(),
            params,
            detector,
            threshold,
        }
    }

    /// Whether the next hour, `value`, fires.
    fn fires(&mut self, value: f64) -> bool {
        let cad = self.cad.score(value);
        let from = self.history.len().saturating_sub(self.params.history_len());
        let raw = || assess(&self.history[from..], value, &self.params).map(|a| a.score);
        let score = match self.detector {
            Detector::Cad => cad,
            Detector::EnsembleBoth => raw().map_or(cad, |s| cad.max(unit_score(s))),
            _ => ensemble_score(cad, raw()),
        };
        self.history.push(value);
        score >= self.threshold
    }
}

/// splitmix64: a fixed, dependency-free stream so every run measures the same series.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// A Poisson count: exact (Knuth) for small means, the normal approximation above.
    fn poisson(&mut self, mean: f64) -> f64 {
        if mean > 50.0 {
            return (mean + mean.sqrt() * self.normal()).round().max(0.0);
        }
        let limit = (-mean).exp();
        let (mut k, mut p) = (0.0, 1.0);
        loop {
            p *= self.unit();
            if p <= limit {
                return k;
            }
            k += 1.0;
        }
    }
}

/// Expected events in hour `h` (hour 0 is a Monday, midnight) for a series peaking at `peak`.
fn rhythm(h: usize, peak: f64) -> f64 {
    let hour = (h % 24) as f64;
    // Lowest at 04:00, highest at 16:00.
    let daily = 0.2 + 0.8 * (0.5 - 0.5 * ((hour - 4.0) / 24.0 * std::f64::consts::TAU).cos());
    let weekend = if (h / 24) % 7 >= 5 { 0.6 } else { 1.0 };
    peak * daily * weekend
}

fn series(rng: &mut Rng, len: usize, peak: f64) -> Vec<f64> {
    (0..len).map(|h| rng.poisson(rhythm(h, peak))).collect()
}

fn hourly_params() -> Params {
    Params {
        seasons: seasons_for_bucket(3600),
        ..Params::default()
    }
}

const WEEK: usize = 168;
/// Peak hourly counts of the series measured: a small, a medium and a busy product.
const PEAKS: [f64; 3] = [20.0, 200.0, 2000.0];

/// False alarms per week: healthy series judged hour by hour for `weeks` weeks each.
fn false_alarms(
    seeds: u64,
    weeks: usize,
    detector: Detector,
    threshold: f64,
) -> Vec<(f64, f64, usize)> {
    let p = hourly_params();
    let warm = p.history_len();
    PEAKS
        .iter()
        .map(|&peak| {
            let mut fired = 0;
            for seed in 0..seeds {
                let mut rng = Rng(seed ^ peak.to_bits());
                let x = series(&mut rng, warm + weeks * WEEK, peak);
                let mut rule = Rule::new(&x[..warm], detector, threshold);
                fired += x[warm..].iter().filter(|&&v| rule.fires(v)).count();
            }
            let judged_weeks = seeds as usize * weeks;
            (peak, fired as f64 / judged_weeks as f64, judged_weeks)
        })
        .collect()
}

/// Hours from a level shift (every later bucket × `factor`) to the first alert; `None` if it
/// has not fired within a week.
fn time_to_detect(
    rng: &mut Rng,
    peak: f64,
    factor: f64,
    detector: Detector,
    threshold: f64,
) -> Option<usize> {
    let p = hourly_params();
    let warm = p.history_len();
    // The shift starts at a random hour of the week, so every time of day is covered.
    let start = warm + (rng.next_u64() % WEEK as u64) as usize;
    let x = series(rng, start, peak);
    let mut rule = Rule::new(&x[x.len() - warm..], detector, threshold);
    (start..start + WEEK)
        .position(|h| rule.fires(rng.poisson(rhythm(h, peak) * factor)))
        .map(|at| at + 1)
}

/// The measurements as a report.
pub(crate) fn report(detector: Detector, threshold: Option<f64>) -> String {
    let threshold = threshold.unwrap_or(DEFAULT_THRESHOLD);
    let mut s = format!(
        "false alarms per week on a healthy hourly series ({detector:?}, threshold {threshold})\n"
    );
    for (peak, per_week, weeks) in false_alarms(8, 26, detector, threshold) {
        s += &format!(
            "  peak {peak:>6} events/hour: {per_week:.2} per week ({weeks} weeks judged)\n"
        );
    }
    s += "hours from a level shift to the first alert (median, 90th percentile, missed within a week)\n";
    let trials = 40;
    for &peak in &PEAKS {
        for factor in [0.0_f64, 0.5, 0.7, 1.3, 1.5, 2.0] {
            let mut rng = Rng(peak.to_bits() ^ factor.to_bits());
            let mut hours: Vec<usize> = Vec::new();
            let mut missed = 0;
            for _ in 0..trials {
                match time_to_detect(&mut rng, peak, factor, detector, threshold) {
                    Some(h) => hours.push(h),
                    None => missed += 1,
                }
            }
            hours.sort_unstable();
            let at = |q: f64| {
                // Missed trials count as "more than a week", so they sort last.
                let i = ((trials as f64 * q).ceil() as usize).clamp(1, trials) - 1;
                hours.get(i).map_or("> 168".to_owned(), |h| h.to_string())
            };
            s += &format!(
                "  peak {peak:>6}, level × {factor:<3}: median {:>5} h, p90 {:>5} h, missed {missed}/{trials}\n",
                at(0.5),
                at(0.9)
            );
        }
    }
    s
}
