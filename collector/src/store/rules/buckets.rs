//! Each rule's stored bucket values (`rule_buckets`): computed once from raw events or rollups,
//! then read back as the rule's history. Rows are never updated, so every evaluator that reads
//! a bucket sees the value the first one stored.

use sqlx::{AssertSqlSafe, Row};

use crate::store::{Store, StoreError};

impl Store {
    /// The stored buckets (start, value; `None`: nothing matched) of `rule_id`'s series `series_hash` in `[from, to)`, ascending.
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

    /// Stores `values` for the rule unless a row for the bucket exists already (another
    /// evaluator's value stands), and drops the rule's rows of other series and before
    /// `keep_from`. `true` if every value was stored as given; `false` means some bucket was
    /// already there (or the rule is gone): read the values back.
    pub async fn store_rule_buckets(
        &self,
        rule_id: i64,
        series_hash: i64,
        values: &[(i64, Option<f64>)],
        keep_from: i64,
    ) -> Result<bool, StoreError> {
        // A rule deleted meanwhile gets no rows (on PostgreSQL the foreign key would refuse).
        let prune = "DELETE FROM rule_buckets
                     WHERE rule_id = $1 AND (series_hash <> $2 OR bucket_start < $3)";
        with_db!(self, write_pool, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(prune)
                .bind(rule_id)
                .bind(series_hash)
                .bind(keep_from)
                .execute(&mut *tx)
                .await?;
            let mut stored = 0u64;
            // Multi-row inserts, well under either backend's bind limit.
            for chunk in values.chunks(500) {
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
                    .bind(rule_id)
                    .bind(series_hash);
                for (b, v) in chunk {
                    q = q.bind(*b).bind(*v);
                }
                stored += q.execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
            Ok(stored == values.len() as u64)
        })
    }
}
