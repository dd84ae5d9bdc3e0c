//! Storage of alert rules, their state, their history and the alert_events hand-off; the
//! series queries rules evaluate are in `series`, each rule's stored bucket values in `buckets`. One SQL text serves both backends; JSON is
//! read with `json_extract` on SQLite and `body::jsonb` on PostgreSQL.

mod buckets;

pub use buckets::RuleBuckets;
mod series;

use sqlx::{AssertSqlSafe, Row};

use super::{Backend, Bind, Store, StoreError};
use crate::domain::ProjectId;
use crate::domain::rule::{Phase, RuleState};

/// A stored rule with its evaluation state.
#[derive(Debug, Clone)]
pub struct RuleRecord {
    pub id: i64,
    pub project_id: ProjectId,
    /// The validated `RuleSpec` as JSON.
    pub definition: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub state: RuleState,
}

/// One alert_events row, rendered (see migrations/*/0003_alert_events.sql).
#[derive(Debug, Clone)]
pub struct NewAlertEvent {
    pub kind: &'static str,
    pub channel_ids: String,
    pub title: String,
    pub description: String,
    pub colour: i64,
    pub fields: String,
    pub url: Option<String>,
}

/// A new alert history row, opened when a rule fires.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub rule_name: String,
    pub reason: &'static str,
    pub bucket_start: i64,
    pub value: Option<f64>,
    pub expected: Option<f64>,
    pub explanation: String,
}

/// A state change, stored at once with what it tells, if `expected_version` still holds.
#[derive(Debug, Clone)]
pub struct Transition {
    pub rule_id: i64,
    pub project_id: ProjectId,
    pub expected_version: i64,
    pub next: RuleState,
    pub now: i64,
    pub open_alert: Option<NewAlert>,
    /// Resolves the rule's open alert history row.
    pub close_alert: Option<i64>,
    pub notification: Option<NewAlertEvent>,
}

/// An alert history row, as the API lists it.
#[derive(Debug, Clone)]
pub struct AlertRecord {
    pub id: i64,
    pub rule_id: i64,
    pub rule_name: String,
    pub reason: String,
    pub bucket_start: i64,
    pub started_at: i64,
    pub resolved_at: Option<i64>,
    pub value: Option<f64>,
    pub expected: Option<f64>,
    pub explanation: String,
}

/// SQL and its parameters, with `$n` placeholders.
#[derive(Debug, Default)]
struct Sql {
    text: String,
    binds: Vec<Bind>,
}

impl Sql {
    fn param(&mut self, b: Bind) -> String {
        self.binds.push(b);
        format!("${}", self.binds.len())
    }
}

const RULE_COLUMNS: &str = "id, project_id, definition, created_at, updated_at, state, version, \
    pending_since, firing_since, last_notified_at, resolved_at, alert_id, last_bucket, last_outcome";

const ALERT_COLUMNS: &str = "id, rule_id, rule_name, reason, bucket_start, started_at, \
    resolved_at, value, expected, explanation";

fn rule_from_row<R: Row>(r: &R) -> RuleRecord
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    RuleRecord {
        id: r.get("id"),
        project_id: r.get("project_id"),
        definition: r.get("definition"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
        state: RuleState {
            phase: Phase::parse(&r.get::<String, _>("state")),
            version: r.get("version"),
            pending_since: r.get("pending_since"),
            firing_since: r.get("firing_since"),
            last_notified_at: r.get("last_notified_at"),
            resolved_at: r.get("resolved_at"),
            alert_id: r.get("alert_id"),
            last_bucket: r.get("last_bucket"),
            last_outcome: r.get("last_outcome"),
        },
    }
}

fn alert_from_row<R: Row>(r: &R) -> AlertRecord
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<f64>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    AlertRecord {
        id: r.get("id"),
        rule_id: r.get("rule_id"),
        rule_name: r.get("rule_name"),
        reason: r.get("reason"),
        bucket_start: r.get("bucket_start"),
        started_at: r.get("started_at"),
        resolved_at: r.get("resolved_at"),
        value: r.get("value"),
        expected: r.get("expected"),
        explanation: r.get("explanation"),
    }
}

impl Store {
    pub async fn create_rule(
        &self,
        project_id: ProjectId,
        definition: &str,
        enabled: bool,
        now: i64,
    ) -> Result<RuleRecord, StoreError> {
        let text = format!(
            "INSERT INTO alert_rules (project_id, definition, enabled, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4) RETURNING {RULE_COLUMNS}"
        );
        with_db!(self, write_pool, |pool| {
            let row = sqlx::query(AssertSqlSafe(text.clone()))
                .bind(project_id)
                .bind(definition)
                .bind(enabled)
                .bind(now)
                .fetch_one(pool)
                .await?;
            Ok(rule_from_row(&row))
        })
    }

    pub async fn get_rule(
        &self,
        project_id: ProjectId,
        rule_id: i64,
    ) -> Result<Option<RuleRecord>, StoreError> {
        let text =
            format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE project_id = $1 AND id = $2");
        with_db!(self, read_pool, |pool| {
            let row = sqlx::query(AssertSqlSafe(text.clone()))
                .bind(project_id)
                .bind(rule_id)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|r| rule_from_row(&r)))
        })
    }

    pub async fn list_rules(&self, project_id: ProjectId) -> Result<Vec<RuleRecord>, StoreError> {
        let text =
            format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE project_id = $1 ORDER BY id");
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(AssertSqlSafe(text.clone()))
                .bind(project_id)
                .fetch_all(pool)
                .await?;
            Ok(rows.iter().map(rule_from_row).collect())
        })
    }

    /// Replaces a rule's definition. Its state is kept (a firing rule resolves through the
    /// new condition) but the cached bucket outcome is dropped, so the next pass recomputes.
    pub async fn update_rule(
        &self,
        project_id: ProjectId,
        rule_id: i64,
        definition: &str,
        enabled: bool,
        now: i64,
    ) -> Result<Option<RuleRecord>, StoreError> {
        let text = format!(
            "UPDATE alert_rules SET definition = $1, enabled = $2, updated_at = $3,
                 last_bucket = NULL, last_outcome = NULL, version = version + 1
             WHERE project_id = $4 AND id = $5 RETURNING {RULE_COLUMNS}"
        );
        with_db!(self, write_pool, |pool| {
            let row = sqlx::query(AssertSqlSafe(text.clone()))
                .bind(definition)
                .bind(enabled)
                .bind(now)
                .bind(project_id)
                .bind(rule_id)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|r| rule_from_row(&r)))
        })
    }

    /// `false` if there is no such rule in the project. Its alert history stays; an alert
    /// still open is closed at `now` (nothing will resolve it any more).
    pub async fn delete_rule(
        &self,
        project_id: ProjectId,
        rule_id: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let text = "DELETE FROM alert_rules WHERE project_id = $1 AND id = $2";
        let close = "UPDATE alert_history SET resolved_at = $1
                     WHERE project_id = $2 AND rule_id = $3 AND resolved_at IS NULL";
        with_db!(self, write_pool, |pool| {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(text)
                .bind(project_id)
                .bind(rule_id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query(close)
                .bind(now)
                .bind(project_id)
                .bind(rule_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Leases up to `limit` enabled rules that no other evaluator holds, until `lease_until`.
    /// PostgreSQL: `FOR UPDATE SKIP LOCKED`, so replicas claiming at once split the rules.
    pub async fn claim_rules(
        &self,
        now: i64,
        lease_until: i64,
        owner: &str,
        limit: i64,
    ) -> Result<Vec<RuleRecord>, StoreError> {
        with_db!(self, write_pool, |pool, backend| {
            let lock = backend.skip_locked();
            let text = format!(
                "UPDATE alert_rules SET lease_until = $1, lease_owner = $2
                 WHERE id IN (SELECT id FROM alert_rules
                              WHERE enabled AND (lease_until IS NULL OR lease_until <= $3)
                              ORDER BY id LIMIT $4 {lock})
                 RETURNING {RULE_COLUMNS}"
            );
            let rows = sqlx::query(AssertSqlSafe(text.clone()))
                .bind(lease_until)
                .bind(owner)
                .bind(now)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            let mut rules: Vec<RuleRecord> = rows.iter().map(rule_from_row).collect();
            rules.sort_by_key(|r| r.id);
            Ok(rules)
        })
    }

    /// Releases every rule `owner` holds, in one statement (one commit for the whole pass:
    /// SQLite's single writer is shared with ingest).
    pub async fn release_rules(&self, owner: &str) -> Result<(), StoreError> {
        let text = "UPDATE alert_rules SET lease_until = NULL, lease_owner = NULL
                    WHERE lease_owner = $1";
        with_db!(self, write_pool, |pool| {
            sqlx::query(text).bind(owner).execute(pool).await?;
            Ok(())
        })
    }

    /// Remembers each rule's bucket outcome (rule id, version, bucket, outcome JSON) so it is
    /// computed once; in one transaction for the pass; a rule that changed meanwhile is left.
    pub async fn save_rule_outcomes(
        &self,
        outcomes: &[(i64, i64, i64, String)],
    ) -> Result<(), StoreError> {
        let text = "UPDATE alert_rules SET last_bucket = $1, last_outcome = $2
                    WHERE id = $3 AND version = $4";
        if outcomes.is_empty() {
            return Ok(());
        }
        with_db!(self, write_pool, |pool| {
            let mut tx = pool.begin().await?;
            for (rule_id, version, bucket, outcome) in outcomes {
                sqlx::query(text)
                    .bind(*bucket)
                    .bind(outcome.as_str())
                    .bind(*rule_id)
                    .bind(*version)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Stores a transition and its notification in one transaction, if the rule is still at
    /// `expected_version`. `false`: another evaluator got there first; nothing was written.
    pub async fn apply_rule_transition(&self, t: &Transition) -> Result<bool, StoreError> {
        let update = "UPDATE alert_rules SET state = $1, version = version + 1,
                 pending_since = $2, last_notified_at = $3, resolved_at = $4, alert_id = $5,
                 last_bucket = $6, last_outcome = $7, firing_since = $10
             WHERE id = $8 AND version = $9";
        let open = "INSERT INTO alert_history (project_id, rule_id, rule_name, reason,
                 bucket_start, started_at, value, expected, explanation)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";
        let close = "UPDATE alert_history SET resolved_at = $1 WHERE id = $2";
        let set_alert = "UPDATE alert_rules SET alert_id = $1 WHERE id = $2";
        with_db!(self, write_pool, |pool, backend| {
            let pg = backend == Backend::Postgres;
            let json = if pg { "CAST($4 AS JSONB)" } else { "$4" };
            let fields = if pg { "CAST($8 AS JSONB)" } else { "$8" };
            let notify = format!(
                "INSERT INTO alert_events (project_id, rule_id, kind, channel_ids, title,
                     description, colour, fields, url, created_at)
                 VALUES ($1, $2, $3, {json}, $5, $6, $7, {fields}, $9, $10)"
            );
            let mut tx = pool.begin().await?;
            let n = &t.next;
            let done = sqlx::query(update)
                .bind(n.phase.as_str())
                .bind(n.pending_since)
                .bind(n.last_notified_at)
                .bind(n.resolved_at)
                .bind(n.alert_id)
                .bind(n.last_bucket)
                .bind(n.last_outcome.as_deref())
                .bind(t.rule_id)
                .bind(t.expected_version)
                .bind(n.firing_since)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            if let Some(a) = &t.open_alert {
                let id: i64 = sqlx::query(open)
                    .bind(t.project_id)
                    .bind(t.rule_id)
                    .bind(&a.rule_name)
                    .bind(a.reason)
                    .bind(a.bucket_start)
                    .bind(t.now)
                    .bind(a.value)
                    .bind(a.expected)
                    .bind(&a.explanation)
                    .fetch_one(&mut *tx)
                    .await?
                    .get(0);
                sqlx::query(set_alert)
                    .bind(id)
                    .bind(t.rule_id)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(id) = t.close_alert {
                sqlx::query(close)
                    .bind(t.now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(e) = &t.notification {
                sqlx::query(AssertSqlSafe(notify.clone()))
                    .bind(t.project_id)
                    .bind(t.rule_id)
                    .bind(e.kind)
                    .bind(&e.channel_ids)
                    .bind(&e.title)
                    .bind(&e.description)
                    .bind(e.colour)
                    .bind(&e.fields)
                    .bind(e.url.as_deref())
                    .bind(t.now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Alert history, newest first; `before` is the id cursor.
    pub async fn list_alerts(
        &self,
        project_id: ProjectId,
        rule_id: Option<i64>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let text = format!(
            "SELECT {ALERT_COLUMNS} FROM alert_history
             WHERE project_id = $1 AND ($2 IS NULL OR rule_id = $2) AND ($3 IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4"
        );
        with_db!(self, read_pool, |pool, backend| {
            let text = if backend == Backend::Postgres {
                text.replace("$2 IS NULL", "$2::BIGINT IS NULL")
                    .replace("$3 IS NULL", "$3::BIGINT IS NULL")
            } else {
                text.clone()
            };
            let rows = sqlx::query(AssertSqlSafe(text.clone()))
                .bind(project_id)
                .bind(rule_id)
                .bind(before)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            Ok(rows.iter().map(alert_from_row).collect())
        })
    }
}
