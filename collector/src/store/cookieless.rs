//! The daily salts of cookieless visitor ids (`crate::cookieless`): one row per UTC day, created
//! by the first replica that needs it and deleted once its day is over.

use chrono::NaiveDate;

use super::{Store, StoreError};
use crate::cookieless::SALT_BYTES;

const CREATE: &str =
    "INSERT INTO cookieless_salts (day, salt) VALUES ($1, $2) ON CONFLICT (day) DO NOTHING";
const READ: &str = "SELECT salt FROM cookieless_salts WHERE day = $1";
const DELETE_BEFORE: &str = "DELETE FROM cookieless_salts WHERE day < $1";

/// Days as `YYYY-MM-DD`: text sorts in day order on both backends.
fn day_key(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

impl Store {
    /// The salt of `day`: the stored one, or `candidate` once stored. Salts of earlier days
    /// are deleted first, so at most one day's salt exists once a new day has begun.
    pub async fn daily_salt(
        &self,
        day: NaiveDate,
        candidate: [u8; SALT_BYTES],
    ) -> Result<[u8; SALT_BYTES], StoreError> {
        self.delete_salts_before(day).await?;
        let key = day_key(day);
        let stored: Vec<u8> = with_db!(self, write_pool, |pool| {
            sqlx::query(CREATE)
                .bind(&key)
                .bind(&candidate[..])
                .execute(pool)
                .await?;
            sqlx::query_scalar(READ).bind(&key).fetch_one(pool).await?
        });
        // The column only ever holds SALT_BYTES-long values; anything else is treated as absent.
        Ok(stored.try_into().unwrap_or(candidate))
    }

    /// Deletes the salts of the days before `day`: run at ingest when a day's first salt is
    /// needed, and by every maintenance pass for days without cookieless traffic.
    pub async fn delete_salts_before(&self, day: NaiveDate) -> Result<u64, StoreError> {
        let key = day_key(day);
        Ok(with_db!(self, write_pool, |pool| {
            sqlx::query(DELETE_BEFORE)
                .bind(&key)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}
