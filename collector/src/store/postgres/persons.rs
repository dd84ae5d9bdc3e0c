//! PostgreSQL's half of one person's data (`store::persons`): ids are passed as one array.

use sqlx::{AssertSqlSafe, Row};

use super::PostgresStore;
use crate::domain::ProjectId;
use crate::store::analytics::is_bot;
use crate::store::persons::{
    DECREMENT_DAY, DROP_EMPTY_DAY, PersonDeletion, Removed, decrement_rollups, per_day, removed,
};
use crate::store::props::{decrement_props, deletion_counts, tracked_on};
use crate::store::{Backend, RETENTION_CHUNK, StoreError, StoredEvent};

impl PostgresStore {
    pub(in crate::store) async fn ids_linked_to(
        &self,
        project: ProjectId,
        ids: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT user_id, anonymous_id,
                    CASE WHEN type = 'alias' THEN body::jsonb ->> 'previousId' END AS previous_id
             FROM events
             WHERE project_id = $1
               AND (user_id = ANY($2) OR anonymous_id = ANY($2)
                    OR (type = 'alias' AND (body::jsonb ->> 'previousId') = ANY($2)))",
        )
        .bind(project)
        .bind(ids)
        .fetch_all(self.read_pool())
        .await?;
        Ok(rows
            .iter()
            .flat_map(|r| {
                [
                    r.get("user_id"),
                    r.get("anonymous_id"),
                    r.get("previous_id"),
                ]
            })
            .collect())
    }

    pub(in crate::store) async fn person_events_page(
        &self,
        project: ProjectId,
        ids: &[String],
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM events
             WHERE project_id = $1 AND seq > $2 AND (user_id = ANY($3) OR anonymous_id = ANY($3))
             ORDER BY seq LIMIT $4",
        )
        .bind(project)
        .bind(after_seq)
        .bind(ids)
        .bind(limit)
        .fetch_all(self.read_pool())
        .await?;
        Ok(rows.iter().map(crate::store::stored_event).collect())
    }

    /// Deletes [`RETENTION_CHUNK`] events at a time, one transaction each (PostgreSQL's
    /// writers do not wait for one another, but a long transaction would hold the rollup rows
    /// it touched); the chunk that comes back short also removes the active-user rows.
    pub(in crate::store) async fn delete_person(
        &self,
        project: ProjectId,
        ids: &[String],
    ) -> Result<PersonDeletion, StoreError> {
        let mut report = PersonDeletion::default();
        loop {
            let mut tx = self.write_pool().begin().await?;
            // The Web fold's lock first: whether a page view is still queued (below) must not
            // change under this chunk. A fold chunk that has claimed it but not committed would
            // still show it queued, then count it in the page pairs, and the removal would
            // leave it there (found by the fold's randomized test with folds running beside it).
            sqlx::query(crate::store::web::WEB_FOLD_LOCK)
                .execute(&mut *tx)
                .await?;
            // Locks the backfill cursors until this chunk commits: a backfill chunk neither
            // adds events deleted here nor moves past them meanwhile.
            let keys = tracked_on!(tx, project, "FOR SHARE");
            let seqs: Vec<i64> = sqlx::query_scalar(
                "SELECT seq FROM events
                 WHERE project_id = $1 AND (user_id = ANY($2) OR anonymous_id = ANY($2))
                 LIMIT $3",
            )
            .bind(project)
            .bind(ids)
            .bind(RETENTION_CHUNK)
            .fetch_all(&mut *tx)
            .await?;
            // The person's page views leave their visits: queued for the fold, in this
            // transaction, with what the fold needs once the rows are gone (3: still queued
            // themselves, so never counted in the page pairs; migration 0049).
            sqlx::query(
                "INSERT INTO web_visit_pending (project_id, seq, visitor, ts, path, removed)
                 SELECT project_id, seq, visitor, ts, path,
                        CASE WHEN EXISTS (SELECT 1 FROM web_visit_pending q
                             WHERE q.project_id = web_pageviews.project_id
                               AND q.seq = web_pageviews.seq AND q.removed = 0)
                        THEN 3 ELSE 1 END
                 FROM web_pageviews
                 WHERE seq = ANY($1) ORDER BY seq",
            )
            .bind(&seqs)
            .execute(&mut *tx)
            .await?;
            let rows = sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM events WHERE project_id = $1 AND seq = ANY($2)
                 RETURNING seq, type, event, timestamp, message_id, {} AS bot, {} AS body",
                is_bot(Backend::Postgres),
                if keys.is_empty() {
                    "CAST(NULL AS TEXT)"
                } else {
                    "body"
                }
            )))
            .bind(project)
            .bind(&seqs)
            .fetch_all(&mut *tx)
            .await?;
            let rows: Vec<Removed> = rows.iter().map(removed).collect();
            let last = (rows.len() as i64) < RETENTION_CHUNK;
            if !rows.is_empty() {
                report.events += rows.len() as u64;
                let messages: Vec<&str> = rows.iter().map(|r| r.message_id.as_str()).collect();
                sqlx::query("DELETE FROM event_ids WHERE project_id = $1 AND message_id = ANY($2)")
                    .bind(project)
                    .bind(&messages)
                    .execute(&mut *tx)
                    .await?;
                decrement_rollups!(&mut *tx, project, &rows, report);
                decrement_props!(tx, &deletion_counts(project, &rows, &keys));
                const OF_MESSAGES: &str = "SELECT id FROM deliveries
                     WHERE project_id = $1 AND source_key LIKE 'event:%'
                       AND substr(source_key, 7 + strpos(substr(source_key, 7), ':')) = ANY($2)";
                sqlx::query(AssertSqlSafe(format!(
                    "DELETE FROM delivery_attempts WHERE delivery_id IN ({OF_MESSAGES})"
                )))
                .bind(project)
                .bind(&messages)
                .execute(&mut *tx)
                .await?;
                report.deliveries += sqlx::query(AssertSqlSafe(format!(
                    "DELETE FROM deliveries WHERE id IN ({OF_MESSAGES})"
                )))
                .bind(project)
                .bind(&messages)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            if last {
                let days: Vec<i64> = sqlx::query_scalar(
                    "DELETE FROM active_users_daily WHERE project_id = $1 AND user_key = ANY($2)
                     RETURNING day",
                )
                .bind(project)
                .bind(ids)
                .fetch_all(&mut *tx)
                .await?;
                report.active_user_days = days.len() as u64;
                for (day, n) in per_day(&days) {
                    sqlx::query(DECREMENT_DAY)
                        .bind(n)
                        .bind(project)
                        .bind(day)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(DROP_EMPTY_DAY)
                        .bind(project)
                        .bind(day)
                        .execute(&mut *tx)
                        .await?;
                }
                // The person's per-user rollups go whole; the names are this code's own.
                // Bots' twins (migration 0052) too.
                let mut removed = [0u64; 4];
                for (table, removed) in [
                    "users_last_seen",
                    "user_event_days",
                    "user_event_days_bots",
                    "active_bots_daily",
                ]
                .into_iter()
                .zip(&mut removed)
                {
                    *removed = sqlx::query(AssertSqlSafe(format!(
                        "DELETE FROM {table} WHERE project_id = $1 AND user_key = ANY($2)"
                    )))
                    .bind(project)
                    .bind(ids)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                let [last_seen, event_days, bot_event_days, bot_days] = removed;
                report.users_last_seen = last_seen;
                report.user_event_days = event_days + bot_event_days;
                report.active_user_days += bot_days;
                report.sessions = super::sessions::delete_person(&mut tx, project, ids).await?;
                tx.commit().await?;
                return Ok(report);
            }
            tx.commit().await?;
        }
    }
}
