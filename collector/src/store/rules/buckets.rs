//! Each rule's stored bucket values (`rule_buckets`): computed once from raw events or rollups,
//! then read back as the rule's history. Rows are never updated, so every evaluator that reads
//! a bucket sees the value the first one stored.

use sqlx::{AssertSqlSafe, Row};

use crate::store::{Store, StoreError};

/// New values of one rule's series, and where its history window now starts.
#[derive(Debug, Clone)]
pub struct RuleBuckets {
    pub rule_id: i64,
    pub series_hash: i64,
    /// (bucket start, value); `None`: computed, nothing matched.
    pub values: Vec<(i64, Option<f64>)>,
    /// The rule's rows before this, or of another series, are dropped.
    pub keep_from: i64,
}

impl Store {
    /// The stored buckets (start, value; `None`: nothing matched) of `rule_id`'s series
    /// `series_hash` in `[from, to)`, ascending.
    pub async fn rule_bucket_values(
        &self,
        rule_id: i64,
        series_hash: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, Option<f64>)>, StoreError> {
        let text = "SELECT bucket_start, value FROM rule_buckets
                    WHERE rule_id = $1 AND series_hash = $2 AND bucket_start >= $3
                      AND bucket_start < $4
                    ORDER BY bucket_start";
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(text)
                .bind(rule_id)
                .bind(series_hash)
                .bind(from)
                .bind(to)
                .fetch_all(pool)
                .await?;
            Ok(rows
                .iter()
                .map(|r| (r.get::<i64, _>(0), r.get::<Option<f64>, _>(1)))
                .collect())
        })
    }

    /// Stores every rule's new values in one transaction (one commit per pass: SQLite's single
    /// writer is shared), skipping buckets already stored (another evaluator's value stands),
    /// and prunes each rule's old rows. Per rule, in order: `true` if every value was stored as
    /// given; `false` means some bucket was already there (or the rule is gone): read back.
    pub async fn store_rule_buckets(&self, rules: &[RuleBuckets]) -> Result<Vec<bool>, StoreError> {
        let prune = "DELETE FROM rule_buckets
                     WHERE rule_id = $1 AND (series_hash <> $2 OR bucket_start < $3)";
        if rules.is_empty() {
            return Ok(Vec::new());
        }
        with_db!(self, write_pool, |pool| {
            let mut tx = pool.begin().await?;
            let mut out = Vec::with_capacity(rules.len());
            for r in rules {
                sqlx::query(prune)
                    .bind(r.rule_id)
                    .bind(r.series_hash)
                    .bind(r.keep_from)
                    .execute(&mut *tx)
                    .await?;
                let mut stored = 0u64;
                // Multi-row inserts, well under either backend's bind limit. A rule deleted
                // meanwhile gets no rows (on PostgreSQL the foreign key would refuse).
                for chunk in r.values.chunks(500) {
                    let rows: Vec<String> = (0..chunk.len())
                        .map(|i| format!("(${}, ${})", 3 + 2 * i, 4 + 2 * i))
                        .collect();
                    let text = format!(
                        "INSERT INTO rule_buckets (rule_id, series_hash, bucket_start, value)
                         SELECT $1, $2, column1, column2 FROM (VALUES {}) AS n
                         WHERE EXISTS (SELECT 1 FROM alert_rules WHERE id = $1)
                         ON CONFLICT (rule_id, series_hash, bucket_start) DO NOTHING",
                        rows.join(", ")
                    );
                    let mut q = sqlx::query(AssertSqlSafe(text))
                        .bind(r.rule_id)
                        .bind(r.series_hash);
                    for (b, v) in chunk {
                        q = q.bind(*b).bind(*v);
                    }
                    stored += q.execute(&mut *tx).await?.rows_affected();
                }
                out.push(stored == r.values.len() as u64);
            }
            tx.commit().await?;
            Ok(out)
        })
    }
}
