//! Leave-one-category-out cross-validation of the NAB score.
//!
//! For every NAB category, the standard profile's threshold is optimised on the files of the
//! other categories, and the left-out category is scored at that threshold. A category's
//! score therefore never comes from a threshold chosen on its own files, which is the position
//! a user's series are in. The pooled row adds the folds' raw scores up: it is the whole DEV
//! subset scored with thresholds none of its files helped choose.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// One profile's result from `nab_score.py --json`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scored {
    pub(crate) threshold: Option<f64>,
    pub(crate) raw: f64,
    pub(crate) null: f64,
    pub(crate) perfect: f64,
    pub(crate) window_tp: u64,
    pub(crate) window_fn: u64,
    pub(crate) row_fp: u64,
}

impl Scored {
    /// The normalised NAB score; `None` for files without windows (perfect = null).
    pub(crate) fn normalised(&self) -> Option<f64> {
        let span = self.perfect - self.null;
        (span > 0.0).then(|| 100.0 * (self.raw - self.null) / span)
    }
}

/// Where the NAB kit is and where the scores were written.
pub(crate) struct Kit<'a> {
    pub(crate) scorer: &'a Path,
    pub(crate) data: &'a Path,
    pub(crate) labels: &'a Path,
    pub(crate) scores: &'a Path,
}

impl Kit<'_> {
    /// Scores `files` under the standard profile, optimising the threshold unless one is given.
    pub(crate) fn score(
        &self,
        files: &[PathBuf],
        threshold: Option<f64>,
    ) -> Result<Scored, String> {
        let list: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        let mut cmd = Command::new("python3");
        cmd.arg(self.scorer)
            .arg("--data")
            .arg(self.data)
            .arg("--labels")
            .arg(self.labels)
            .arg("--scores")
            .arg(self.scores)
            .args(["--profile", "standard", "--json", "--files"])
            .arg(list.join(","));
        if let Some(t) = threshold {
            cmd.arg("--threshold").arg(t.to_string());
        }
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run python3 {}: {e}", self.scorer.display()))?;
        if !out.status.success() {
            return Err(format!(
                "nab_score.py failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let json: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("nab_score.py printed no JSON: {e}"))?;
        let p = &json["profiles"]["standard"];
        let num = |k: &str| p[k].as_f64().ok_or(format!("nab_score.py: no `{k}`"));
        let int = |k: &str| p[k].as_u64().ok_or(format!("nab_score.py: no `{k}`"));
        Ok(Scored {
            threshold: p["threshold"].as_f64(),
            raw: num("raw")?,
            null: num("null")?,
            perfect: num("perfect")?,
            window_tp: int("window_tp")?,
            window_fn: int("window_fn")?,
            row_fp: int("row_fp")?,
        })
    }
}

/// One fold: the category left out, the threshold the others chose and its score there.
pub(crate) struct Fold {
    pub(crate) category: String,
    pub(crate) threshold: f64,
    pub(crate) train: Scored,
    pub(crate) test: Scored,
}

/// Runs every fold over `files` (paths `category/file.csv`).
pub(crate) fn folds(kit: &Kit<'_>, files: &[PathBuf]) -> Result<Vec<Fold>, String> {
    let category = |f: &PathBuf| {
        f.components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut categories: Vec<String> = files.iter().map(category).collect();
    categories.dedup();
    let mut out = Vec::new();
    for left_out in categories {
        let (test, train): (Vec<PathBuf>, Vec<PathBuf>) =
            files.iter().cloned().partition(|f| category(f) == left_out);
        let trained = kit.score(&train, None)?;
        // "Never alert" (no finite threshold) is scored as a threshold above every score.
        let threshold = trained.threshold.unwrap_or(1.1);
        let tested = kit.score(&test, Some(threshold))?;
        out.push(Fold {
            category: left_out,
            threshold,
            train: trained,
            test: tested,
        });
    }
    Ok(out)
}

/// The folds as a table, with the pooled score last; `to_sensitivity` maps a threshold to the
/// rule setting it corresponds to.
pub(crate) fn report(folds: &[Fold], to_sensitivity: impl Fn(f64) -> f64) -> String {
    let mut s = format!(
        "{:<24}{:>10}{:>8}{:>10}{:>8}{:>7}{:>7}\n",
        "left out", "threshold", "train", "test", "raw", "winTP", "rowFP"
    );
    let show = |x: Option<f64>| x.map_or("—".to_owned(), |v| format!("{v:.2}"));
    let (mut raw, mut null, mut perfect) = (0.0, 0.0, 0.0);
    for f in folds {
        s += &format!(
            "{:<24}{:>10.4}{:>8}{:>10}{:>8.2}{:>4}/{:<2}{:>6}\n",
            f.category,
            f.threshold,
            show(f.train.normalised()),
            show(f.test.normalised()),
            f.test.raw,
            f.test.window_tp,
            f.test.window_tp + f.test.window_fn,
            f.test.row_fp
        );
        raw += f.test.raw;
        null += f.test.null;
        perfect += f.test.perfect;
    }
    let pooled = 100.0 * (raw - null) / (perfect - null);
    let mut thresholds: Vec<f64> = folds.iter().map(|f| f.threshold).collect();
    thresholds.sort_by(f64::total_cmp);
    let median = thresholds.get(thresholds.len() / 2).copied().unwrap_or(1.1);
    s += &format!("pooled cross-validated standard score {pooled:.2} (raw {raw:.2})\n");
    s += &format!(
        "median fold threshold {median:.4} = sensitivity {:.4} (the product default's source)\n",
        to_sensitivity(median)
    );
    s
}
