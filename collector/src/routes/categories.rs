//! Event categories: which events become notifications. Secret key, or a dashboard session
//! (viewers read; developers and above change): see [`super::extract::Caller`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::channels::check_name;
use super::extract::{ApiJson, Caller, PathId};
use crate::alerting::categories::EventPattern;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::store::delivery::{CategoryInput, CategoryRecord};

/// Longest emoji (a few code points: flags and skin tones take several).
pub const MAX_EMOJI_CHARS: usize = 16;
/// Longest title or description template.
pub const MAX_TEMPLATE_CHARS: usize = 4_096;
/// Colour of a category created without one (Discord's blurple).
pub const DEFAULT_COLOUR: &str = "#5865F2";

fn default_colour() -> Value {
    Value::String(DEFAULT_COLOUR.to_owned())
}

/// Most categories of one project: every ingested event is matched against them all.
pub const MAX_CATEGORIES_PER_PROJECT: usize = 100;

#[derive(Debug, Deserialize, ToSchema)]
pub struct CategoryBody {
    /// 1 to 100 characters.
    pub name: String,
    /// An event name (`payment.succeeded`) or a glob (`payment.*`).
    pub pattern: String,
    /// Shown before the event name in the title, e.g. 💰.
    #[serde(default)]
    pub emoji: String,
    /// `"#RRGGBB"` or an integer 0xRRGGBB; default `#5865F2`.
    #[serde(default = "default_colour")]
    #[schema(value_type = String, example = "#2ECC71", required = false)]
    pub colour: Value,
    /// The channel notifications go to.
    pub channel_id: i64,
    /// Title with `{property}` placeholders (also `{event}`, `{user}`); default "emoji event".
    pub title_template: Option<String>,
    /// Description with `{property}` placeholders.
    pub description_template: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Category {
    pub id: i64,
    pub name: String,
    pub pattern: String,
    pub emoji: String,
    /// `#RRGGBB`.
    pub colour: String,
    pub channel_id: i64,
    pub title_template: Option<String>,
    pub description_template: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<CategoryRecord> for Category {
    fn from(c: CategoryRecord) -> Self {
        Self {
            id: c.id,
            name: c.name,
            pattern: c.pattern,
            emoji: c.emoji,
            colour: format!("#{:06X}", c.colour),
            channel_id: c.channel_id,
            title_template: c.title_template,
            description_template: c.description_template,
            created_at: c.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryList {
    pub categories: Vec<Category>,
}

fn parse_colour(v: &Value) -> Result<u32, ApiError> {
    let bad = || {
        ApiError::BadRequest(format!(
            "colour {v} is not a colour: give \"#RRGGBB\" (e.g. \"#2ECC71\") or an integer up to 16777215"
        ))
    };
    match v {
        Value::Number(n) => n
            .as_u64()
            .filter(|c| *c <= 0xFF_FFFF)
            .map(|c| c as u32)
            .ok_or_else(bad),
        Value::String(s) => {
            let hex = s.trim().trim_start_matches('#');
            if hex.len() != 6 {
                return Err(bad());
            }
            u32::from_str_radix(hex, 16).map_err(|_| bad())
        }
        _ => Err(bad()),
    }
}

async fn validate(
    state: &AppState,
    project: i64,
    b: CategoryBody,
) -> Result<CategoryInput, ApiError> {
    let name = check_name(&b.name)?;
    EventPattern::parse(&b.pattern).map_err(ApiError::BadRequest)?;
    if b.emoji.chars().count() > MAX_EMOJI_CHARS {
        return Err(ApiError::BadRequest(format!(
            "emoji is longer than {MAX_EMOJI_CHARS} characters: give one emoji"
        )));
    }
    for (what, t) in [
        ("title_template", &b.title_template),
        ("description_template", &b.description_template),
    ] {
        if t.as_ref()
            .is_some_and(|t| t.chars().count() > MAX_TEMPLATE_CHARS)
        {
            return Err(ApiError::BadRequest(format!(
                "{what} is longer than {MAX_TEMPLATE_CHARS} characters"
            )));
        }
    }
    let colour = parse_colour(&b.colour)?;
    match state.store.channel(project, b.channel_id).await? {
        Some(_) => {}
        None => {
            return Err(ApiError::BadRequest(format!(
                "channel_id {} is not a channel of this project: create one with POST /api/v1/channels",
                b.channel_id
            )));
        }
    }
    Ok(CategoryInput {
        name,
        pattern: b.pattern.trim().to_owned(),
        emoji: b.emoji.trim().to_owned(),
        colour,
        channel_id: b.channel_id,
        title_template: b.title_template.filter(|t| !t.is_empty()),
        description_template: b.description_template.filter(|t| !t.is_empty()),
    })
}

async fn refresh(state: &AppState) {
    if let Err(e) = state
        .delivery
        .notifications
        .categories
        .reload(&state.store)
        .await
    {
        tracing::warn!(error = %e, "reloading categories failed; the periodic refresh retries");
    }
}

/// Create a category: matching events become notifications on its channel.
#[utoipa::path(
    post, path = "/api/v1/categories", tag = "alerting",
    operation_id = "categories_create",
    request_body = CategoryBody,
    responses((status = 201, body = Category), (status = 400, description = "Invalid category (says what to fix), or the project has MAX_CATEGORIES_PER_PROJECT (100) already", body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CategoryBody>,
) -> Result<(StatusCode, Json<Category>), ApiError> {
    let project = caller.project_to_change("creating a category")?;
    if state.store.list_categories(project).await?.len() >= MAX_CATEGORIES_PER_PROJECT {
        return Err(ApiError::BadRequest(format!(
            "this project has {MAX_CATEGORIES_PER_PROJECT} categories, the most it may \
             (MAX_CATEGORIES_PER_PROJECT): delete one, or widen a pattern to cover several"
        )));
    }
    let input = validate(&state, project, body).await?;
    let record = state
        .store
        .create_category(project, &input, state.clock.now())
        .await?;
    refresh(&state).await;
    caller
        .audit(&state, "category.created", describe(&record))
        .await?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// List the project's categories.
#[utoipa::path(
    get, path = "/api/v1/categories", tag = "alerting",
    operation_id = "categories_list",
    responses((status = 200, body = CategoryList), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<CategoryList>, ApiError> {
    let project = caller.project();
    let categories = state.store.list_categories(project).await?;
    Ok(Json(CategoryList {
        categories: categories.into_iter().map(Category::from).collect(),
    }))
}

/// One category.
#[utoipa::path(
    get, path = "/api/v1/categories/{id}", tag = "alerting",
    operation_id = "categories_get_one",
    params(("id" = i64, Path)),
    responses((status = 200, body = Category), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    id: PathId,
) -> Result<Json<Category>, ApiError> {
    let project = caller.project();
    let id = id.parse("category")?;
    let c = state
        .store
        .category(project, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(Json(c.into()))
}

/// Replace a category.
#[utoipa::path(
    put, path = "/api/v1/categories/{id}", tag = "alerting",
    operation_id = "categories_update",
    params(("id" = i64, Path)), request_body = CategoryBody,
    responses((status = 200, body = Category), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    id: PathId,
    ApiJson(body): ApiJson<CategoryBody>,
) -> Result<Json<Category>, ApiError> {
    let project = caller.project_to_change("changing a category")?;
    let id = id.parse("category")?;
    let input = validate(&state, project, body).await?;
    let c = state
        .store
        .update_category(project, id, &input, state.clock.now())
        .await?
        .ok_or_else(|| not_found(id))?;
    refresh(&state).await;
    caller
        .audit(&state, "category.updated", describe(&c))
        .await?;
    Ok(Json(c.into()))
}

/// Delete a category (notifications already queued are still delivered).
#[utoipa::path(
    delete, path = "/api/v1/categories/{id}", tag = "alerting",
    operation_id = "categories_delete",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    id: PathId,
) -> Result<StatusCode, ApiError> {
    let project = caller.project_to_change("deleting a category")?;
    let id = id.parse("category")?;
    let current = state
        .store
        .category(project, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if !state.store.delete_category(project, id).await? {
        return Err(not_found(id));
    }
    refresh(&state).await;
    caller
        .audit(&state, "category.deleted", describe(&current))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How the audit log names a category: `#2 "Payments" (payment.* → channel 1)`.
fn describe(c: &CategoryRecord) -> String {
    format!(
        "#{} \"{}\" ({} → channel {})",
        c.id, c.name, c.pattern, c.channel_id
    )
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!(
        "no category {id} in this project; see GET /api/v1/categories"
    ))
}
