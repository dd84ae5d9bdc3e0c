//! The Numenta Anomaly Benchmark (NAB) over the anomaly detector, exactly as the product runs it.
//!
//! `cargo bench -p pulseline-collector --bench nab [-- --cv | --expect] [--nab-dir DIR]
//! [--detector product|cad|ensemble-both|assess|cad-reference|ensemble-reference]
//! [--threshold T]`
//!
//! - no mode: score the whole NAB directory, threshold optimised over it (three profiles);
//! - `--detector`: what scores the rows (the product's detector by default; see [`Detector`]);
//! - `--cv`: leave-one-category-out cross-validation (see `nab/cv.rs`);
//! - `--expect`: false alarms per week and time to detect a level shift on synthetic hourly
//!   series (see `nab/expect.rs`; needs no NAB data), at the default threshold or
//!   `--threshold T`.
//!
//! The NAB kit is not in the repository: `--nab-dir DIR` or env `PULSELINE_NAB_DIR` names the
//! directory holding `data/`, `combined_windows.json` and `nab_score.py`
//! (docs/alerting-quality.md). Every data file is a series of buckets. Its seasons come from
//! the spacing of its timestamps the way a rule's come from its bucket size, and its window
//! (what a rule stores and a rebuild replays) is [`Params::history_len`] buckets. In the default
//! `product` mode every file is one rule that is never restarted: an [`OnlineCad`] fed each row
//! once, from the first, the object and range rule the rule evaluator runs. No per-file
//! settings, no labels, no look-ahead. The score written for a row is the rule's score
//! ([`ensemble_score`] of the detector's and the seasonal baseline's), so NAB's threshold is
//! the rule's threshold ([`threshold_for`] maps a sensitivity to it). The scores go to
//! `target/nab-scores/<detector>`, and NAB's own scorer (`nab_score.py`, next to the data)
//! prints the standard, low-FP and low-FN scores.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use chrono::NaiveDateTime;

#[path = "nab/cv.rs"]
mod cv;
#[path = "nab/expect.rs"]
mod expect;

use pulseline_collector::alerting::anomaly::{
    DEFAULT_SENSITIVITY, Params, assess, seasons_for_bucket, sensitivity_for_unit, unit_score,
};
use pulseline_collector::alerting::anomaly_cad::{
    ContextOse, DEFAULT_THRESHOLD, OnlineCad, ensemble_score,
};

struct Series {
    /// Path under `data/`, e.g. `realTraffic/speed_6005.csv`.
    relative: PathBuf,
    timestamps: Vec<String>,
    values: Vec<f64>,
    bucket_secs: u64,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the collector crate sits in the workspace")
        .to_path_buf()
}

fn read_series(data: &Path, relative: PathBuf) -> Result<Series, String> {
    let path = data.join(&relative);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut timestamps = Vec::new();
    let mut values = Vec::new();
    let mut seconds = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let bad = || format!("{}:{}: expected `timestamp,value`", path.display(), n + 1);
        let (ts, value) = line.split_once(',').ok_or_else(bad)?;
        let at = NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S").map_err(|_| bad())?;
        seconds.push(at.and_utc().timestamp());
        timestamps.push(ts.to_owned());
        values.push(value.trim().parse::<f64>().map_err(|_| bad())?);
    }
    // The bucket size is the usual spacing (a few NAB files have gaps).
    let mut gaps: Vec<i64> = seconds.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_unstable();
    let bucket_secs = gaps.get(gaps.len() / 2).copied().unwrap_or(1).max(1);
    Ok(Series {
        relative,
        timestamps,
        values,
        bucket_secs: u64::try_from(bucket_secs).unwrap_or(1),
    })
}

fn data_files(data: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    let categories =
        std::fs::read_dir(data).map_err(|e| format!("cannot list {}: {e}", data.display()))?;
    for category in categories {
        let category = category.map_err(|e| e.to_string())?.path();
        if !category.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(category).map_err(|e| e.to_string())? {
            let file = file.map_err(|e| e.to_string())?.path();
            if file.extension().is_some_and(|e| e == "csv") {
                let relative = file.strip_prefix(data).map_err(|e| e.to_string())?;
                files.push(relative.to_path_buf());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Which detector scores the rows.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Detector {
    /// What anomaly rules run: [`OnlineCad`] with the range seen so far, each bucket below the
    /// seasonal baseline scored with the larger of its score and the baseline's unit score
    /// ([`ensemble_score`]).
    Product,
    /// [`OnlineCad`] alone, what rules ran before the ensemble.
    Cad,
    /// Like `Product`, but the seasonal baseline counts on both sides (tried, not adopted).
    EnsembleBoth,
    /// The seasonal `assess` that rules ran before contextOSE (it still draws their band).
    Assess,
    /// CAD OSE exactly as NAB runs it: the whole file in one pass, with the file's minimum and
    /// maximum (look-ahead, so never a product candidate) and NAB's rest period. It checks the
    /// port against contextOSE's published scores.
    CadReference,
    /// Whichever of the product's detector and the CAD reference is more surprised (each row's
    /// score is the larger of the two), as NAB would score an ensemble of them.
    EnsembleReference,
}

fn detector(args: &[String]) -> Result<Detector, String> {
    match args
        .iter()
        .position(|a| a == "--detector")
        .map(|at| args.get(at + 1))
    {
        None => Ok(Detector::Product),
        Some(Some(name)) if name == "product" => Ok(Detector::Product),
        Some(Some(name)) if name == "assess" => Ok(Detector::Assess),
        Some(Some(name)) if name == "cad" => Ok(Detector::Cad),
        Some(Some(name)) if name == "ensemble-both" => Ok(Detector::EnsembleBoth),
        Some(Some(name)) if name == "ensemble-reference" => Ok(Detector::EnsembleReference),
        Some(Some(name)) if name == "cad-reference" => Ok(Detector::CadReference),
        _ => Err(
            "--detector takes `product`, `cad`, `ensemble-both`, `assess`, `cad-reference` or \
             `ensemble-reference`"
                .to_owned(),
        ),
    }
}

/// contextOSE's score for every row, as NAB runs it (see [`Detector::CadReference`]).
fn cad_reference(series: &Series) -> Vec<f64> {
    let (min, max) = series
        .values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    // NAB's probationary period is 15% of the file, at most 750 rows; CAD rests a fifth of it.
    let n = series.values.len() as f64;
    let probation = (0.15 * n).floor().min(0.15 * 5000.0);
    let mut cad = ContextOse::new(min, max, (probation / 5.0) as usize);
    series.values.iter().map(|&v| cad.score(v)).collect()
}

/// Judges every row of `series` the way the rule evaluator judges buckets; returns the scores
/// CSV.
fn score_series(series: &Series, detector: Detector) -> String {
    let params = Params {
        seasons: seasons_for_bucket(series.bucket_secs),
        ..Params::default()
    };
    let keep = params.history_len();
    let cad = match detector {
        Detector::Assess => None,
        Detector::Product | Detector::Cad | Detector::EnsembleBoth => {
            // One rule, never restarted: created with the series and fed every bucket once.
            let mut online = OnlineCad::new(keep);
            Some(series.values.iter().map(|&v| online.score(v)).collect())
        }
        Detector::CadReference | Detector::EnsembleReference => Some(cad_reference(series)),
    };
    let mut csv = String::from("timestamp,value,anomaly_score\n");
    for (i, (ts, &value)) in series.timestamps.iter().zip(&series.values).enumerate() {
        let history = &series.values[i.saturating_sub(keep)..i];
        let raw = || assess(history, value, &params).map(|a| a.score);
        let seasonal = || raw().map_or(0.0, unit_score);
        let score = match (detector, &cad) {
            (Detector::CadReference | Detector::Cad, Some(cad)) => cad[i],
            (Detector::Product, Some(cad)) => ensemble_score(cad[i], raw()),
            (Detector::EnsembleBoth, Some(cad)) => seasonal().max(cad[i]),
            (Detector::EnsembleReference, Some(cad)) => seasonal().max(cad[i]),
            _ => seasonal(),
        };
        writeln!(csv, "{ts},{value},{score}").expect("writing to a String");
    }
    csv
}

/// Mean time of one `assess` call at the history the product loads for an hourly rule with
/// daily and weekly seasons.
fn micros_per_call() -> (usize, f64) {
    let params = Params {
        seasons: seasons_for_bucket(3600),
        ..Params::default()
    };
    let len = params.history_len();
    let series: Vec<f64> = (0..len + 200)
        .map(|i| {
            let hour = (i % 24) as f64;
            100.0 + 40.0 * (hour / 24.0 * std::f64::consts::TAU).sin() + (i * 7919 % 13) as f64
        })
        .collect();
    let start = Instant::now();
    let mut fired = 0;
    for i in len..series.len() {
        let a = assess(&series[i - len..i], series[i], &params);
        fired += usize::from(a.is_some_and(|a| a.anomalous));
    }
    let micros = start.elapsed().as_secs_f64() * 1e6 / 200.0;
    std::hint::black_box(fired);
    (len, micros)
}

/// The NAB kit's directory: `--nab-dir DIR` or `PULSELINE_NAB_DIR`.
fn nab_dir(args: &[String]) -> Result<PathBuf, String> {
    if let Some(at) = args.iter().position(|a| a == "--nab-dir") {
        return args
            .get(at + 1)
            .map(PathBuf::from)
            .ok_or_else(|| "--nab-dir needs a directory".to_owned());
    }
    std::env::var_os("PULSELINE_NAB_DIR")
        .map(PathBuf::from)
        .ok_or_else(|| {
            "the NAB kit is not part of the repository: set PULSELINE_NAB_DIR (or pass \
             --nab-dir DIR) to the directory holding data/, combined_windows.json and \
             nab_score.py (see docs/alerting-quality.md)"
                .to_owned()
        })
}

fn run(args: &[String]) -> Result<(), String> {
    let detector = detector(args)?;
    if args.iter().any(|a| a == "--expect") {
        let threshold = match args.iter().position(|a| a == "--threshold") {
            None => None,
            Some(at) => Some(
                args.get(at + 1)
                    .and_then(|t| t.parse::<f64>().ok())
                    .ok_or("--threshold takes a number, e.g. --threshold 0.75")?,
            ),
        };
        print!("{}", expect::report(detector, threshold));
        return Ok(());
    }
    let nab = nab_dir(args)?;
    let data = nab.join("data");
    let labels = nab.join("combined_windows.json");
    let scorer = nab.join("nab_score.py");
    if !data.is_dir() || !labels.is_file() || !scorer.is_file() {
        return Err(format!(
            "no NAB data at {}: expected data/, combined_windows.json and nab_score.py there. \
             Set PULSELINE_NAB_DIR to the directory that holds them.",
            nab.display()
        ));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    // One directory per detector, so that runs of different detectors can overlap.
    let out = target.join("nab-scores").join(format!("{detector:?}"));
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    }

    let started = Instant::now();
    let mut calls = 0;
    let files = data_files(&data)?;
    for relative in files.clone() {
        let series = read_series(&data, relative)?;
        let csv = score_series(&series, detector);
        calls += series.values.len();
        let dst = out.join(&series.relative);
        if let Some(dir) = dst.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(&dst, csv).map_err(|e| format!("{}: {e}", dst.display()))?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "scored {calls} buckets in {elapsed:.1} s ({:.1} µs per bucket, NAB history lengths); scores in {}",
        elapsed * 1e6 / calls.max(1) as f64,
        out.display()
    );
    let (len, micros) = micros_per_call();
    println!(
        "assess (the band rules draw): {micros:.1} µs per call at {len} buckets of history (hourly rule, seasons 24 and 168)"
    );
    let to_setting = |t: f64| match detector {
        Detector::Assess => sensitivity_for_unit(t),
        _ => t * DEFAULT_SENSITIVITY / DEFAULT_THRESHOLD,
    };

    if args.iter().any(|a| a == "--cv") {
        let kit = cv::Kit {
            scorer: &scorer,
            data: &data,
            labels: &labels,
            scores: &out,
        };
        let folds = cv::folds(&kit, &files)?;
        println!("leave-one-category-out cross-validation (standard profile)");
        print!("{}", cv::report(&folds, to_setting));
        return Ok(());
    }

    let scored = Command::new("python3")
        .arg(&scorer)
        .arg("--data")
        .arg(data)
        .arg("--labels")
        .arg(labels)
        .arg("--scores")
        .arg(out)
        .args(["--profile", "all"])
        .output()
        .map_err(|e| format!("cannot run python3 {}: {e}", scorer.display()))?;
    print!("{}", String::from_utf8_lossy(&scored.stdout));
    if !scored.status.success() {
        return Err(format!(
            "nab_score.py failed: {}",
            String::from_utf8_lossy(&scored.stderr)
        ));
    }
    // The standard profile's optimised threshold, as a sensitivity.
    let table = String::from_utf8_lossy(&scored.stdout);
    if let Some(threshold) = table
        .lines()
        .find(|l| l.starts_with("standard"))
        .and_then(|l| l.split_whitespace().nth(5))
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|t| *t < 1.0)
    {
        println!(
            "standard threshold {threshold} = sensitivity {:.4} (product default {DEFAULT_SENSITIVITY})",
            to_setting(threshold)
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("nab: {message}");
            ExitCode::FAILURE
        }
    }
}
