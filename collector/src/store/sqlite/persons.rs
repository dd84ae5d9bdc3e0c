//! SQLite's half of one person's data (`store::persons`): ids are passed as one JSON array
//! that `json_each` reads, and the deliveries of removed events go with them.

use sqlx::{AssertSqlSafe, Row};

use super::SqliteStore;
use crate::domain::ProjectId;
use crate::store::Who;
use crate::store::analytics::is_bot;
use crate::store::persons::{
    DECREMENT_DAY, DROP_EMPTY_DAY, PersonDeletion, Removed, decrement_rollups, json_ids, per_day,
    removed,
};
use crate::store::props::{decrement_props, deletion_counts, tracked_on};
use crate::store::sessions::{sessions_table, subtract_hourly};
use crate::store::{Backend, RETENTION_CHUNK, StoreError, StoredEvent};

impl SqliteStore {
    pub(in crate::store) async fn ids_linked_to(
        &self,
        project: ProjectId,
        ids: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT user_id, anonymous_id,
                    CASE WHEN type = 'alias'
                         THEN CAST(json_extract(body, '$.previousId') AS TEXT) END AS previous_id
             FROM events
             WHERE project_id = ?1
               AND (user_id IN (SELECT value FROM json_each(?2))
                    OR anonymous_id IN (SELECT value FROM json_each(?2))
                    OR (type = 'alias' AND CAST(json_extract(body, '$.previousId') AS TEXT)
                        IN (SELECT value FROM json_each(?2))))",
        )
        .bind(project)
        .bind(json_ids(ids))
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
             WHERE project_id = ?1 AND seq > ?2
               AND (user_id IN (SELECT value FROM json_each(?3))
                    OR anonymous_id IN (SELECT value FROM json_each(?3)))
             ORDER BY seq LIMIT ?4",
        )
        .bind(project)
        .bind(after_seq)
        .bind(json_ids(ids))
        .bind(limit)
        .fetch_all(self.read_pool())
        .await?;
        Ok(rows.iter().map(crate::store::stored_event).collect())
    }

    /// Walks the project's events in ranges of [`RETENTION_CHUNK`] seqs, one short transaction
    /// on the writer each (ingest's turn comes between them). The last range reaches past the
    /// newest event and, in the same transaction, removes the person's active-user rows, so no
    /// event of theirs committed in between can be left without its rollup or the reverse.
    pub(in crate::store) async fn delete_person(
        &self,
        project: ProjectId,
        ids: &[String],
    ) -> Result<PersonDeletion, StoreError> {
        let ids = json_ids(ids);
        let mut report = PersonDeletion::default();
        let first: Option<i64> =
            sqlx::query_scalar("SELECT MIN(seq) FROM events WHERE project_id = ?")
                .bind(project)
                .fetch_one(self.read_pool())
                .await?;
        let mut lo = first.unwrap_or(0);
        loop {
            let mut tx = self.write_pool().begin().await?;
            let keys = tracked_on!(tx, project, "");
            let newest: i64 =
                sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events WHERE project_id = ?")
                    .bind(project)
                    .fetch_one(&mut *tx)
                    .await?;
            let last = lo.saturating_add(RETENTION_CHUNK) > newest;
            let hi = if last { i64::MAX } else { lo + RETENTION_CHUNK };
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
                 WHERE seq IN (SELECT seq FROM events
                     WHERE project_id = ?1 AND seq >= ?2 AND seq < ?3 AND type = 'page'
                       AND (user_id IN (SELECT value FROM json_each(?4))
                            OR anonymous_id IN (SELECT value FROM json_each(?4))))",
            )
            .bind(project)
            .bind(lo)
            .bind(hi)
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
            let rows = sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM events
                 WHERE project_id = ?1 AND seq >= ?2 AND seq < ?3
                   AND (user_id IN (SELECT value FROM json_each(?4))
                        OR anonymous_id IN (SELECT value FROM json_each(?4)))
                 RETURNING seq, type, event, timestamp, message_id, {} AS bot, {} AS body",
                is_bot(Backend::Sqlite),
                if keys.is_empty() {
                    "CAST(NULL AS TEXT)"
                } else {
                    "body"
                }
            )))
            .bind(project)
            .bind(lo)
            .bind(hi)
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?;
            let rows: Vec<Removed> = rows.iter().map(removed).collect();
            if !rows.is_empty() {
                report.events += rows.len() as u64;
                decrement_rollups!(&mut *tx, project, &rows, report);
                decrement_props!(tx, &deletion_counts(project, &rows, &keys));
                let messages = json_ids(
                    &rows
                        .iter()
                        .map(|r| r.message_id.clone())
                        .collect::<Vec<_>>(),
                );
                report.deliveries += delete_sqlite_deliveries(&mut tx, project, &messages).await?;
            }
            if last {
                let days: Vec<i64> = sqlx::query_scalar(
                    "DELETE FROM active_users_daily
                     WHERE project_id = ?1 AND user_key IN (SELECT value FROM json_each(?2))
                     RETURNING day",
                )
                .bind(project)
                .bind(&ids)
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
                // Their sessions' share of the hourly sums (people's and bots'), before the
                // sessions go.
                for who in Who::BOTH {
                    sqlx::query(AssertSqlSafe(subtract_hourly(
                        who,
                        &format!(
                            "FROM {} WHERE project_id = $1
                               AND user_key IN (SELECT value FROM json_each($2))",
                            sessions_table(who)
                        ),
                    )))
                    .bind(project)
                    .bind(&ids)
                    .execute(&mut *tx)
                    .await?;
                }
                // The person's per-user rollups go whole, bots' twins (migration 0052) too;
                // the names are this code's own.
                let mut removed = [0u64; 6];
                for (table, removed) in [
                    "users_last_seen",
                    "user_event_days",
                    "user_sessions",
                    "user_event_days_bots",
                    "user_sessions_bots",
                    "active_bots_daily",
                ]
                .into_iter()
                .zip(&mut removed)
                {
                    *removed = sqlx::query(AssertSqlSafe(format!(
                        "DELETE FROM {table}
                         WHERE project_id = ?1 AND user_key IN (SELECT value FROM json_each(?2))"
                    )))
                    .bind(project)
                    .bind(&ids)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                let [
                    last_seen,
                    event_days,
                    sessions,
                    bot_event_days,
                    bot_sessions,
                    bot_days,
                ] = removed;
                report.users_last_seen = last_seen;
                report.user_event_days = event_days + bot_event_days;
                report.sessions = sessions + bot_sessions;
                report.active_user_days += bot_days;
                // The ingest thread remembers which (day, user) rows exist; these no longer do,
                // and the person's next event must add theirs again. Ingest cannot commit
                // before this transaction ends: it waits for the writer we hold.
                self.forget_active_users();
                tx.commit().await?;
                return Ok(report);
            }
            tx.commit().await?;
            lo = hi;
        }
    }
}

/// Event notifications of the removed events (`event:<category id>:<messageId>`, see
/// `alerting::categories`) and their attempts; the deliveries removed.
async fn delete_sqlite_deliveries(
    tx: &mut sqlx::SqliteConnection,
    project: ProjectId,
    messages: &str,
) -> Result<u64, StoreError> {
    const OF_MESSAGES: &str = "SELECT id FROM deliveries
         WHERE project_id = ?1 AND source_key LIKE 'event:%'
           AND substr(source_key, 7 + instr(substr(source_key, 7), ':'))
               IN (SELECT value FROM json_each(?2))";
    sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM delivery_attempts WHERE delivery_id IN ({OF_MESSAGES})"
    )))
    .bind(project)
    .bind(messages)
    .execute(&mut *tx)
    .await?;
    Ok(sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM deliveries WHERE id IN ({OF_MESSAGES})"
    )))
    .bind(project)
    .bind(messages)
    .execute(&mut *tx)
    .await?
    .rows_affected())
}
