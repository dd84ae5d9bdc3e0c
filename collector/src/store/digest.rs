//! The weekly digest's storage (migration 0032): members' opt-ins, the project's digest channel,
//! the once-per-week marker written with the e-mails and the channel delivery it causes, the
//! e-mail outbox with its leases, and the indexed reads the digest's numbers come from.

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Row};

use super::delivery::{NewDelivery, Outbox};
use super::{Store, StoreError, millis};
use crate::domain::ProjectId;

/// A project's digest settings as one member sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestSettings {
    pub subscribed: bool,
    pub channel_id: Option<i64>,
}

/// A project whose digest may be due: its time zone and the latest week already done.
#[derive(Debug, Clone)]
pub struct DigestProject {
    pub id: ProjectId,
    pub name: String,
    pub timezone: String,
    /// Unix ms.
    pub created_at: i64,
    pub last_week_start: Option<i64>,
}

/// One member's digest e-mail, leased for sending.
#[derive(Debug, Clone)]
pub struct DigestEmailRecord {
    pub id: i64,
    pub project_id: ProjectId,
    pub week_start: i64,
    pub email: String,
    pub attempts: i64,
    /// The digest as JSON (`digest_weeks.content`).
    pub content: String,
}

/// Where a digest e-mail goes after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestEmailNext {
    Sent,
    RetryAt(DateTime<Utc>, String),
    Dead(String),
}

/// Alerts that started and that resolved in a range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertCounts {
    pub fired: i64,
    pub resolved: i64,
}

impl Store {
    pub async fn digest_settings(
        &self,
        project_id: ProjectId,
        user_id: i64,
    ) -> Result<DigestSettings, StoreError> {
        with_db!(self, read_pool, |pool| {
            let subscribed: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM digest_subscriptions WHERE project_id = $1 AND user_id = $2",
            )
            .bind(project_id)
            .bind(user_id)
            .fetch_one(pool)
            .await?;
            let channel_id: Option<i64> =
                sqlx::query_scalar("SELECT channel_id FROM digest_channels WHERE project_id = $1")
                    .bind(project_id)
                    .fetch_optional(pool)
                    .await?;
            Ok(DigestSettings {
                subscribed: subscribed > 0,
                channel_id,
            })
        })
    }

    pub async fn set_digest_subscription(
        &self,
        project_id: ProjectId,
        user_id: i64,
        on: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_db!(self, write_pool, |pool| {
            if on {
                sqlx::query(
                    "INSERT INTO digest_subscriptions (project_id, user_id, created_at)
                     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(project_id)
                .bind(user_id)
                .bind(millis(now))
                .execute(pool)
                .await?;
            } else {
                sqlx::query(
                    "DELETE FROM digest_subscriptions WHERE project_id = $1 AND user_id = $2",
                )
                .bind(project_id)
                .bind(user_id)
                .execute(pool)
                .await?;
            }
            Ok(())
        })
    }

    /// Sets or clears the project's digest channel; the caller has checked the channel is the
    /// project's.
    pub async fn set_digest_channel(
        &self,
        project_id: ProjectId,
        channel_id: Option<i64>,
    ) -> Result<(), StoreError> {
        with_db!(self, write_pool, |pool| {
            match channel_id {
                Some(id) => sqlx::query(
                    "INSERT INTO digest_channels (project_id, channel_id) VALUES ($1, $2)
                     ON CONFLICT (project_id) DO UPDATE SET channel_id = excluded.channel_id",
                )
                .bind(project_id)
                .bind(id),
                None => sqlx::query("DELETE FROM digest_channels WHERE project_id = $1")
                    .bind(project_id),
            }
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The project's digest channel id, as set (the caller checks it is still a channel of
    /// the project).
    pub async fn digest_channel_id(
        &self,
        project_id: ProjectId,
    ) -> Result<Option<i64>, StoreError> {
        with_db!(self, read_pool, |pool| {
            Ok(
                sqlx::query_scalar("SELECT channel_id FROM digest_channels WHERE project_id = $1")
                    .bind(project_id)
                    .fetch_optional(pool)
                    .await?,
            )
        })
    }

    /// Every project with its time zone and the latest digest week recorded for it: one
    /// query per scheduler pass, however many projects.
    pub async fn digest_projects(&self) -> Result<Vec<DigestProject>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(
                "SELECT p.id, p.name, p.timezone, p.created_at, MAX(w.week_start) AS last_week
                 FROM projects p LEFT JOIN digest_weeks w ON w.project_id = p.id
                 GROUP BY p.id, p.name, p.timezone, p.created_at ORDER BY p.id",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(DigestProject {
                        id: r.try_get("id")?,
                        name: r.try_get("name")?,
                        timezone: r.try_get("timezone")?,
                        created_at: r.try_get("created_at")?,
                        last_week_start: r.try_get("last_week")?,
                    })
                })
                .collect()
        })
    }

    /// The project's name, time zone and plan quota (events per month; None: no limit).
    pub async fn digest_project(
        &self,
        project_id: ProjectId,
    ) -> Result<Option<(String, String, Option<i64>)>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let row = sqlx::query(
                "SELECT p.name, p.timezone, pl.events_per_month FROM projects p
                 LEFT JOIN plans pl ON pl.name = p.plan WHERE p.id = $1",
            )
            .bind(project_id)
            .fetch_optional(pool)
            .await?;
            row.map(|r| {
                Ok((
                    r.try_get("name")?,
                    r.try_get("timezone")?,
                    r.try_get("events_per_month")?,
                ))
            })
            .transpose()
        })
    }

    /// Members of the project who turned the digest on: (user id, e-mail). A member who left
    /// the project is not among them, whatever their old opt-in says.
    pub async fn digest_recipients(
        &self,
        project_id: ProjectId,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(
                "SELECT u.id, u.email FROM digest_subscriptions s
                 JOIN memberships m ON m.project_id = s.project_id AND m.user_id = s.user_id
                 JOIN users u ON u.id = s.user_id
                 WHERE s.project_id = $1 ORDER BY u.id",
            )
            .bind(project_id)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("id")?, r.try_get("email")?)))
                .collect()
        })
    }

    /// Records the project's digest of the week starting `week_start`, with its e-mails and its
    /// channel delivery, in one transaction. Returns `false` (and writes nothing) if the week
    /// was already recorded, by this replica or another.
    pub async fn record_digest_week(
        &self,
        project_id: ProjectId,
        week_start: i64,
        content: Option<&str>,
        recipients: &[(i64, String)],
        delivery: Option<&NewDelivery>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const MARK: &str = "INSERT INTO digest_weeks (project_id, week_start, content, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
        const EMAIL: &str = "INSERT INTO digest_emails (project_id, week_start, user_id, email,
                 status, attempts, next_attempt_at)
             VALUES ($1, $2, $3, $4, 'pending', 0, $5) ON CONFLICT DO NOTHING";
        with_db!(self, write_pool, |pool| {
            let mut tx = pool.begin().await?;
            let marked = sqlx::query(MARK)
                .bind(project_id)
                .bind(week_start)
                .bind(content)
                .bind(millis(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if marked == 0 {
                return Ok(false);
            }
            for (user_id, email) in recipients {
                sqlx::query(EMAIL)
                    .bind(project_id)
                    .bind(week_start)
                    .bind(user_id)
                    .bind(email)
                    .bind(millis(now))
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(d) = delivery {
                tx.insert_deliveries(std::slice::from_ref(d)).await?;
            }
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Whether any digest e-mail is due: a read, so an idle pass takes no write lock (SQLite
    /// has one writer, shared with ingest).
    pub async fn digest_emails_due(&self, now: DateTime<Utc>) -> Result<bool, StoreError> {
        with_db!(self, read_pool, |pool| {
            let due: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM digest_emails
                 WHERE status IN ('pending', 'failed') AND next_attempt_at <= $1
                   AND (lease_until IS NULL OR lease_until < $1)
                 LIMIT 1",
            )
            .bind(millis(now))
            .fetch_optional(pool)
            .await?;
            Ok(due.is_some())
        })
    }

    /// Drops the project's digest weeks and finished e-mails from before `before` (the
    /// scheduler keeps `DIGEST_KEEP_WEEKS`): the newest week always stays, it marks what is done.
    pub async fn forget_digest_weeks(
        &self,
        project_id: ProjectId,
        before: i64,
    ) -> Result<(), StoreError> {
        with_db!(self, write_pool, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "DELETE FROM digest_emails WHERE project_id = $1 AND week_start < $2
                   AND status IN ('sent', 'dead')",
            )
            .bind(project_id)
            .bind(before)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM digest_weeks WHERE project_id = $1 AND week_start < $2
                   AND week_start < (SELECT MAX(week_start) FROM digest_weeks WHERE project_id = $1)
                   AND NOT EXISTS (SELECT 1 FROM digest_emails e
                                   WHERE e.project_id = digest_weeks.project_id
                                     AND e.week_start = digest_weeks.week_start)",
            )
            .bind(project_id)
            .bind(before)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Leases up to `limit` due digest e-mails to `owner` until `lease_until`, with their
    /// week's content; an expired lease (its replica died) makes a row claimable again.
    pub async fn claim_digest_emails(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DigestEmailRecord>, StoreError> {
        with_db!(self, write_pool, |pool, backend| {
            let lock = backend.skip_locked();
            let ids: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
                "UPDATE digest_emails SET lease_owner = $1, lease_until = $3
                 WHERE id IN (
                     SELECT id FROM digest_emails
                     WHERE status IN ('pending', 'failed') AND next_attempt_at <= $2
                       AND (lease_until IS NULL OR lease_until < $2)
                     ORDER BY next_attempt_at, id LIMIT $4 {lock})
                 RETURNING id"
            )))
            .bind(owner)
            .bind(millis(now))
            .bind(millis(lease_until))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let r = sqlx::query(
                    "SELECT e.id, e.project_id, e.week_start, e.email, e.attempts,
                            COALESCE(w.content, '') AS content
                     FROM digest_emails e
                     JOIN digest_weeks w ON w.project_id = e.project_id
                                        AND w.week_start = e.week_start
                     WHERE e.id = $1",
                )
                .bind(id)
                .fetch_one(pool)
                .await?;
                out.push(DigestEmailRecord {
                    id: r.try_get("id")?,
                    project_id: r.try_get("project_id")?,
                    week_start: r.try_get("week_start")?,
                    email: r.try_get("email")?,
                    attempts: r.try_get("attempts")?,
                    content: r.try_get("content")?,
                });
            }
            Ok(out)
        })
    }

    /// Records an attempt's outcome if `owner` still holds the lease. Returns whether it did.
    pub async fn finish_digest_email(
        &self,
        id: i64,
        owner: &str,
        next: &DigestEmailNext,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (status, next_at, error, sent_at) = match next {
            DigestEmailNext::Sent => ("sent", now, None, Some(millis(now))),
            DigestEmailNext::RetryAt(at, e) => ("failed", *at, Some(e.as_str()), None),
            DigestEmailNext::Dead(e) => ("dead", now, Some(e.as_str()), None),
        };
        with_db!(self, write_pool, |pool| {
            let done = sqlx::query(
                "UPDATE digest_emails SET status = $3, attempts = attempts + 1,
                        next_attempt_at = $4, last_error = $5, sent_at = $6,
                        lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(id)
            .bind(owner)
            .bind(status)
            .bind(millis(next_at))
            .bind(error)
            .bind(sent_at)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(done == 1)
        })
    }

    /// Distinct active users (user id, else anonymous id) on the UTC days in
    /// `[from_day, to_day)`, from the `active_users_daily` rollup: one index range.
    pub async fn active_users_between(
        &self,
        project_id: ProjectId,
        from_day: i64,
        to_day: i64,
    ) -> Result<i64, StoreError> {
        with_db!(self, read_pool, |pool| {
            Ok(sqlx::query_scalar(
                "SELECT COUNT(DISTINCT user_key) FROM active_users_daily
                 WHERE project_id = $1 AND day >= $2 AND day < $3",
            )
            .bind(project_id)
            .bind(from_day)
            .bind(to_day)
            .fetch_one(pool)
            .await?)
        })
    }

    /// The most viewed page paths in `[from, to)` with their page views, from `web_pageviews`
    /// (people only, read through its (project, time) index).
    pub async fn top_pages(
        &self,
        project_id: ProjectId,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(
                "SELECT path, COUNT(*) AS views FROM web_pageviews
                 WHERE project_id = $1 AND ts >= $2 AND ts < $3
                 GROUP BY path ORDER BY views DESC, path LIMIT $4",
            )
            .bind(project_id)
            .bind(from)
            .bind(to)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("path")?, r.try_get("views")?)))
                .collect()
        })
    }

    /// Page views of one path in `[from, to)`, from `web_pageviews`.
    pub async fn page_views_of(
        &self,
        project_id: ProjectId,
        path: &str,
        from: i64,
        to: i64,
    ) -> Result<i64, StoreError> {
        with_db!(self, read_pool, |pool| {
            Ok(sqlx::query_scalar(
                "SELECT COUNT(*) FROM web_pageviews
                 WHERE project_id = $1 AND ts >= $2 AND ts < $3 AND path = $4",
            )
            .bind(project_id)
            .bind(from)
            .bind(to)
            .bind(path)
            .fetch_one(pool)
            .await?)
        })
    }

    /// Alerts of the project that started, and that resolved, in `[from, to)`.
    pub async fn alert_counts(
        &self,
        project_id: ProjectId,
        from: i64,
        to: i64,
    ) -> Result<AlertCounts, StoreError> {
        with_db!(self, read_pool, |pool| {
            let r = sqlx::query(
                "SELECT
                     CAST(COALESCE(SUM(CASE WHEN started_at >= $2 AND started_at < $3
                                            THEN 1 ELSE 0 END), 0) AS BIGINT) AS fired,
                     CAST(COALESCE(SUM(CASE WHEN resolved_at >= $2 AND resolved_at < $3
                                            THEN 1 ELSE 0 END), 0) AS BIGINT) AS resolved
                 FROM alert_history
                 WHERE project_id = $1
                   AND (started_at >= $2 OR resolved_at >= $2) AND started_at < $3",
            )
            .bind(project_id)
            .bind(from)
            .bind(to)
            .fetch_one(pool)
            .await?;
            Ok(AlertCounts {
                fired: r.try_get("fired")?,
                resolved: r.try_get("resolved")?,
            })
        })
    }
}
