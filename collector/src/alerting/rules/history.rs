//! Where a rule's history comes from: its bucket values, each computed once from raw events
//! (or `rollups_hourly` for counts without filters) and stored in `rule_buckets`, then kept in
//! this evaluator's memory between passes. A pass computes only the buckets that closed since
//! the last one; a new rule, or one whose series changed, is backfilled in chunks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::domain::rule::Series;
use crate::store::{RuleRecord, Store, StoreError};

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
    /// And none started after this instant (the first always may start).
    pub until: Option<Instant>,
}

impl Budget {
    /// The pass's first round: the buckets that closed since the last pass, one read.
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
}

impl Histories {
    /// Forgets rules this evaluator no longer evaluates (deleted, disabled, claimed elsewhere).
    pub fn retain(&mut self, rule_ids: &HashSet<i64>) {
        self.rules.retain(|id, _| rule_ids.contains(id));
    }

    /// `series` (the rule's) in every bucket of `[from, bucket]` (absent: no matching
    /// events), or `None` while the backfill is unfinished and `budget` is spent.
    pub async fn load(
        &mut self,
        store: &Store,
        rule: &RuleRecord,
        series: &Series,
        from: i64,
        bucket: i64,
        budget: Budget,
    ) -> Result<Option<BTreeMap<i64, f64>>, StoreError> {
        let (rule_id, project_id) = (rule.id, rule.project_id);
        let width = series.bucket.millis();
        let hash = series_hash(series);
        let known = self.rules.entry(rule_id).or_default();
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
                .rule_bucket_values(rule_id, hash, *first, *last + width)
                .await?;
            known.values.extend(stored);
            missing = missing_of(&known.values, &missing);
        }
        let chunk_ms = BACKFILL_CHUNK_MS.max(BACKFILL_CHUNK_MIN_BUCKETS * width);
        let mut chunks = 0;
        while let Some(&last) = missing.last() {
            let over = budget.until.is_some_and(|t| Instant::now() >= t);
            if chunks >= budget.chunks || (chunks > 0 && over) {
                return Ok(None);
            }
            chunks += 1;
            // Newest first: the bucket just closed is in the first read.
            let end = last + width;
            let start = missing
                .iter()
                .copied()
                .find(|b| *b >= end - chunk_ms)
                .unwrap_or(last);
            let computed: HashMap<i64, f64> = store
                .rule_series(project_id, series, start, end)
                .await?
                .into_iter()
                .collect();
            let new: Vec<(i64, Option<f64>)> = missing
                .iter()
                .filter(|b| **b >= start)
                .map(|b| (*b, computed.get(b).copied()))
                .collect();
            if store.store_rule_buckets(rule_id, hash, &new, from).await? {
                known.values.extend(new);
            } else {
                // Some bucket was stored by another evaluator first: its value stands.
                let stored = store.rule_bucket_values(rule_id, hash, start, end).await?;
                known.values.extend(stored);
            }
            let before = missing.len();
            missing = missing_of(&known.values, &missing);
            if missing.len() == before {
                // Nothing could be stored (the rule was deleted meanwhile).
                return Ok(None);
            }
        }
        Ok(Some(
            known
                .values
                .range(from..=bucket)
                .filter_map(|(b, v)| v.map(|v| (*b, v)))
                .collect(),
        ))
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
