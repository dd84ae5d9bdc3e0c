//! Event categories: which events notify which channel, and how they look.

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Row};

use crate::domain::ProjectId;
use crate::store::{Store, StoreError, from_millis, millis};

#[derive(Debug, Clone)]
pub struct CategoryRecord {
    pub id: i64,
    pub project_id: ProjectId,
    pub name: String,
    pub pattern: String,
    pub emoji: String,
    pub colour: u32,
    pub channel_id: i64,
    pub title_template: Option<String>,
    pub description_template: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct CategoryInput {
    pub name: String,
    pub pattern: String,
    pub emoji: String,
    pub colour: u32,
    pub channel_id: i64,
    pub title_template: Option<String>,
    pub description_template: Option<String>,
}

const CATEGORY_COLUMNS: &str = "id, project_id, name, pattern, emoji, colour, channel_id, \
     title_template, description_template, created_at";

macro_rules! category_from {
    ($r:expr) => {
        CategoryRecord {
            id: $r.try_get("id")?,
            project_id: $r.try_get("project_id")?,
            name: $r.try_get("name")?,
            pattern: $r.try_get("pattern")?,
            emoji: $r.try_get("emoji")?,
            colour: u32::try_from($r.try_get::<i64, _>("colour")?).unwrap_or(0),
            channel_id: $r.try_get("channel_id")?,
            title_template: $r.try_get("title_template")?,
            description_template: $r.try_get("description_template")?,
            created_at: from_millis($r.try_get("created_at")?),
        }
    };
}

impl Store {
    pub async fn all_categories(&self) -> Result<Vec<CategoryRecord>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT {CATEGORY_COLUMNS} FROM event_categories ORDER BY id"
            )))
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| Ok(category_from!(r))).collect()
        })
    }

    pub async fn list_categories(
        &self,
        project_id: ProjectId,
    ) -> Result<Vec<CategoryRecord>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT {CATEGORY_COLUMNS} FROM event_categories WHERE project_id = $1 ORDER BY id"
            )))
            .bind(project_id)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| Ok(category_from!(r))).collect()
        })
    }

    pub async fn category(
        &self,
        project_id: ProjectId,
        id: i64,
    ) -> Result<Option<CategoryRecord>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let row = sqlx::query(AssertSqlSafe(format!(
                "SELECT {CATEGORY_COLUMNS} FROM event_categories WHERE project_id = $1 AND id = $2"
            )))
            .bind(project_id)
            .bind(id)
            .fetch_optional(pool)
            .await?;
            row.map(|r| Ok(category_from!(r))).transpose()
        })
    }

    pub async fn create_category(
        &self,
        project_id: ProjectId,
        c: &CategoryInput,
        now: DateTime<Utc>,
    ) -> Result<CategoryRecord, StoreError> {
        with_db!(self, write_pool, |pool| {
            let row = sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO event_categories (project_id, name, pattern, emoji, colour, channel_id,
                     title_template, description_template, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING {CATEGORY_COLUMNS}"
            )))
            .bind(project_id)
            .bind(&c.name)
            .bind(&c.pattern)
            .bind(&c.emoji)
            .bind(i64::from(c.colour))
            .bind(c.channel_id)
            .bind(&c.title_template)
            .bind(&c.description_template)
            .bind(millis(now))
            .fetch_one(pool)
            .await?;
            Ok(category_from!(row))
        })
    }

    pub async fn update_category(
        &self,
        project_id: ProjectId,
        id: i64,
        c: &CategoryInput,
        now: DateTime<Utc>,
    ) -> Result<Option<CategoryRecord>, StoreError> {
        with_db!(self, write_pool, |pool| {
            let row = sqlx::query(AssertSqlSafe(format!(
                "UPDATE event_categories SET name = $3, pattern = $4, emoji = $5, colour = $6,
                     channel_id = $7, title_template = $8, description_template = $9,
                     updated_at = $10
                 WHERE project_id = $1 AND id = $2 RETURNING {CATEGORY_COLUMNS}"
            )))
            .bind(project_id)
            .bind(id)
            .bind(&c.name)
            .bind(&c.pattern)
            .bind(&c.emoji)
            .bind(i64::from(c.colour))
            .bind(c.channel_id)
            .bind(&c.title_template)
            .bind(&c.description_template)
            .bind(millis(now))
            .fetch_optional(pool)
            .await?;
            row.map(|r| Ok(category_from!(r))).transpose()
        })
    }

    pub async fn delete_category(
        &self,
        project_id: ProjectId,
        id: i64,
    ) -> Result<bool, StoreError> {
        with_db!(self, write_pool, |pool| {
            let done =
                sqlx::query("DELETE FROM event_categories WHERE project_id = $1 AND id = $2")
                    .bind(project_id)
                    .bind(id)
                    .execute(pool)
                    .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}
