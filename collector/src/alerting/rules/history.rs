//! Where a rule's history comes from: its bucket values, each computed once from raw events
//! (or `rollups_hourly` for counts without filters) and stored in `rule_buckets`, then kept in
//! this evaluator's memory between passes. A pass computes only the buckets that closed since
//! the last one; a new rule, or one whose series changed, is backfilled in chunks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::domain::rule::Series;
use crate::store::{RuleBuckets, RuleRecord, Store, StoreError};

/// Most time one backfill query covers (at least [`BACKFILL_CHUNK_MIN_BUCKETS`] buckets), so
/// one rule's backfill is many short reads that a pass can stop between.
pub const BACKFILL_CHUNK_MS: i64 = 86_400_000;
/// Fewest buckets one backfill query covers (day buckets: a month per read).
pub const BACKFILL_CHUNK_MIN_BUCKETS: i64 = 32;

/// Identifies a series definition: stored values are only ever read for the definition they
/// were computed for. Stable across processes and versions (SHA-256 of the stored JSON form).
pub fn series_hash(series: &Series) -> i64 {
    let json = serde_json::to_vec(series).unwrap_or_default();
    let digest = Sha256::digest(&json);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// How many backfill queries one rule may run now.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// At most this many queries of raw events.
    pub chunks: usize,
    /// And none started after this instant.
    pub until: Option<Instant>,
}

impl Budget {
    /// The pass's first round: the buckets that closed since the last pass, if one read
    /// covers them (else the rule waits for the backfill round).
    pub fn steady() -> Self {
        Self {
            chunks: 1,
            until: None,
        }
    }

    /// Backfill until `until`.
    pub fn until(until: Instant) -> Self {
        Self {
            chunks: usize::MAX,
            until: Some(until),
        }
    }
}

/// What this evaluator knows of one rule's series.
#[derive(Debug, Default)]
struct Known {
    hash: i64,
    /// Every bucket stored for the rule that this process has seen, from the oldest one the
    /// history needs on (`None`: nothing matched).
    values: BTreeMap<i64, Option<f64>>,
}

/// Rule histories held in memory between passes: rules × their history length at most.
#[derive(Debug, Default)]
pub struct Histories {
    rules: HashMap<i64, Known>,
    /// Values computed and not stored yet (see [`Histories::flush`]).
    pending: Vec<RuleBuckets>,
}

impl Histories {
    /// Forgets rules this evaluator no longer evaluates (deleted, disabled, claimed elsewhere).
    pub fn retain(&mut self, rule_ids: &HashSet<i64>) {
        self.rules.retain(|id, _| rule_ids.contains(id));
    }

    /// Makes `rule`'s `series` known in every bucket of `[from, bucket]`: from memory, from
    /// the stored values, and by computing the missing ones (stored by the next
    /// [`Histories::flush`]). `false` while the backfill is unfinished and `budget` is spent.
    pub async fn load(
        &mut self,
        store: &Store,
        rule: &RuleRecord,
        series: &Series,
        from: i64,
        bucket: i64,
        budget: Budget,
    ) -> Result<bool, StoreError> {
        let width = series.bucket.millis();
        let hash = series_hash(series);
        let known = self.rules.entry(rule.id).or_default();
        if known.hash != hash {
            *known = Known {
                hash,
                values: BTreeMap::new(),
            };
        }
        known.values = known.values.split_off(&from);
        let mut missing = missing(&known.values, from, bucket, width);
        if let (Some(first), Some(last)) = (missing.first(), missing.last()) {
            // Another evaluator (or this one before a restart) may have stored them.
            let stored = store
                .rule_bucket_values(rule.id, hash, *first, *last + width)
                .await?;
            known.values.extend(stored);
            missing = missing_of(&known.values, &missing);
        }
        let chunk_ms = BACKFILL_CHUNK_MS.max(BACKFILL_CHUNK_MIN_BUCKETS * width);
        if let (Some(first), Some(last), None) = (missing.first(), missing.last(), budget.until)
            && last + width - first > chunk_ms
        {
            // A backfill: left to the pass's backfill round, after every other rule is judged.
            return Ok(false);
        }
        let mut computed = Vec::new();
        let mut chunks = 0;
        while let Some(&last) = missing.last() {
            let over = budget.until.is_some_and(|t| Instant::now() >= t);
            if chunks >= budget.chunks || over {
                break;
            }
            chunks += 1;
            // Newest first: the bucket just closed is in the first read.
            let end = last + width;
            let start = missing
                .iter()
                .copied()
                .find(|b| *b >= end - chunk_ms)
                .unwrap_or(last);
            let values: HashMap<i64, f64> = store
                .rule_series(rule.project_id, series, start, end)
                .await?
                .into_iter()
                .collect();
            let split = missing.partition_point(|b| *b < start);
            for b in missing.split_off(split) {
                let v = values.get(&b).copied();
                known.values.insert(b, v);
                computed.push((b, v));
            }
        }
        if !computed.is_empty() {
            self.pending.push(RuleBuckets {
                rule_id: rule.id,
                series_hash: hash,
                values: computed,
                keep_from: from,
            });
        }
        Ok(missing.is_empty())
    }

    /// Stores the values computed since the last flush, in one transaction. Where another
    /// evaluator stored a bucket first, its value replaces ours in memory.
    pub async fn flush(&mut self, store: &Store) -> Result<(), StoreError> {
        let pending = std::mem::take(&mut self.pending);
        let stored = match store.store_rule_buckets(&pending).await {
            Ok(stored) => stored,
            Err(e) => {
                // Nothing was stored: forget the values so the next pass computes them again.
                for p in &pending {
                    self.rules.remove(&p.rule_id);
                }
                return Err(e);
            }
        };
        for (p, all) in pending.iter().zip(stored) {
            if all {
                continue;
            }
            let (Some(first), Some(last)) = (p.values.first(), p.values.last()) else {
                continue;
            };
            let values = store
                .rule_bucket_values(p.rule_id, p.series_hash, first.0, last.0 + 1)
                .await?;
            if let Some(known) = self.rules.get_mut(&p.rule_id) {
                for (b, _) in &p.values {
                    known.values.remove(b);
                }
                known.values.extend(values);
            }
        }
        Ok(())
    }

    /// `series`'s values in `[from, bucket]` (absent: no matching events), or `None` if some
    /// bucket is not known (its values could not be stored: the rule was deleted meanwhile).
    pub fn points(
        &self,
        rule_id: i64,
        series: &Series,
        from: i64,
        bucket: i64,
    ) -> Option<BTreeMap<i64, f64>> {
        let known = self.rules.get(&rule_id)?;
        let width = series.bucket.millis();
        if known.hash != series_hash(series)
            || !missing(&known.values, from, bucket, width).is_empty()
        {
            return None;
        }
        Some(
            known
                .values
                .range(from..=bucket)
                .filter_map(|(b, v)| v.map(|v| (*b, v)))
                .collect(),
        )
    }
}

/// The buckets of `[from, bucket]` without a known value, ascending.
fn missing(values: &BTreeMap<i64, Option<f64>>, from: i64, bucket: i64, width: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut b = from;
    while b <= bucket {
        if !values.contains_key(&b) {
            out.push(b);
        }
        b += width;
    }
    out
}

fn missing_of(values: &BTreeMap<i64, Option<f64>>, buckets: &[i64]) -> Vec<i64> {
    buckets
        .iter()
        .copied()
        .filter(|b| !values.contains_key(b))
        .collect()
}
