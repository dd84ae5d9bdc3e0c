//! Alert rules over HTTP: CRUD, and a preview of the series with its threshold or anomaly band
//! per bucket (what the dashboard draws, for a saved rule or a draft); their history is in
//! [`super::alerts`]. Secret key, or a dashboard session (viewers read; developers and above
//! change): see [`super::extract::Caller`].

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiQuery, Caller, PathId};
use crate::alerting::rules::evaluate::{judge, latest_closed_bucket};
use crate::alerting::rules::spec::{Condition, NoData, RuleSpec};
use crate::alerting::rules::state::Phase;
use crate::domain::ProjectId;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::store::RuleRecord;

/// Most buckets one preview returns.
pub const MAX_PREVIEW_BUCKETS: u32 = 1_000;
const DEFAULT_PREVIEW_BUCKETS: u32 = 48;
/// Most rules one project may have.
pub const MAX_RULES_PER_PROJECT: usize = 500;

/// A stored rule: its definition, id and current state.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleView {
    pub id: i64,
    #[serde(flatten)]
    pub rule: RuleSpec,
    /// `ok`, `pending` or `firing`.
    pub state: Phase,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleList {
    pub rules: Vec<RuleView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewParams {
    /// Closed buckets up to now, 1 to 1000 (default 48).
    buckets: Option<u32>,
}

/// One bucket of a preview.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewPoint {
    /// Bucket start (RFC 3339).
    pub start: String,
    /// The series' value; null when the bucket has no data (and the rule does not count it 0).
    pub value: Option<f64>,
    /// Anomaly rules: the baseline and its band (null until there is enough history).
    pub expected: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    /// Threshold rules: the threshold.
    pub threshold: Option<f64>,
    /// The condition holds for this bucket.
    pub breach: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Preview {
    /// The saved rule previewed; null for a draft.
    pub rule_id: Option<i64>,
    /// The series, in words.
    pub series: String,
    pub points: Vec<PreviewPoint>,
}

/// A time in unix milliseconds as RFC 3339, as the rule and alert views show it.
pub(super) fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn view(r: RuleRecord) -> Result<RuleView, ApiError> {
    let rule: RuleSpec = serde_json::from_str(&r.definition)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored rule {} unreadable: {e}", r.id)))?;
    Ok(RuleView {
        id: r.id,
        rule,
        state: r.state.phase,
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
    })
}

/// A rule in the request body, parsed and checked by [`RuleSpec::parse`], whose messages say
/// which field is wrong better than serde's would.
#[derive(Debug)]
pub struct RuleBody(pub RuleSpec);

impl FromRequest<AppState> for RuleBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let Json(value) = Json::<serde_json::Value>::from_request(req, state)
            .await
            .map_err(|e| {
                ApiError::BadRequest(format!(
                    "the body must be a JSON rule (Content-Type: application/json): {e}"
                ))
            })?;
        RuleSpec::parse(value)
            .map(Self)
            .map_err(ApiError::BadRequest)
    }
}

/// Every channel a rule names must be one of the project's own: delivery would skip the others,
/// so the rule would silently notify nobody there. A 400 names the first id that is not.
async fn check_channels(
    state: &AppState,
    project_id: ProjectId,
    spec: &RuleSpec,
) -> Result<(), ApiError> {
    // At most `MAX_CHANNELS` ids (the spec's limit): one indexed lookup each.
    for &id in &spec.channel_ids {
        if state.store.channel(project_id, id).await?.is_none() {
            return Err(ApiError::BadRequest(format!(
                "channel_ids: {id} is not a channel of this project; GET /api/v1/channels lists \
                 them, POST /api/v1/channels creates one"
            )));
        }
    }
    Ok(())
}

fn rule_id(id: &PathId) -> Result<i64, ApiError> {
    id.parse("rule").map_err(|_| {
        ApiError::NotFound("rule ids are integers, as POST /api/v1/rules returned".into())
    })
}

/// How the audit log names a rule: `#4 "Signups" (count of signup per hour > 50)`.
fn describe(id: i64, spec: &RuleSpec) -> String {
    let condition = match &spec.condition {
        Condition::Threshold { op, value } => format!("{} {value}", op.as_str()),
        Condition::Anomaly { sensitivity, .. } => format!("anomaly, sensitivity {sensitivity}"),
    };
    format!(
        "#{id} \"{}\" ({} {condition}{})",
        spec.name,
        spec.series.describe(),
        if spec.enabled { "" } else { ", disabled" }
    )
}

fn no_rule(id: i64) -> ApiError {
    ApiError::NotFound(format!(
        "there is no rule {id} in this project; GET /api/v1/rules lists them"
    ))
}

/// Create a rule.
#[utoipa::path(
    post, path = "/api/v1/rules", tag = "alerting",
    operation_id = "rules_create",
    request_body = RuleSpec,
    responses(
        (status = 201, body = RuleView),
        (status = 400, description = "Invalid rule: the message says what to fix", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 403, description = "A write key was used", body = ErrorBody),
    ),
    security(("bearer" = []), ("basic" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    RuleBody(spec): RuleBody,
) -> Result<(StatusCode, Json<RuleView>), ApiError> {
    let project_id = caller.project_to_change("creating a rule")?;
    check_channels(&state, project_id, &spec).await?;
    if state.store.list_rules(project_id).await?.len() >= MAX_RULES_PER_PROJECT {
        return Err(ApiError::BadRequest(format!(
            "this project has {MAX_RULES_PER_PROJECT} rules, the most allowed; delete one first"
        )));
    }
    let definition = serde_json::to_string(&spec).map_err(|e| ApiError::Internal(e.into()))?;
    let now = state.clock.now().timestamp_millis();
    let record = state
        .store
        .create_rule(project_id, &definition, spec.enabled, now)
        .await?;
    caller
        .audit(&state, "rule.created", describe(record.id, &spec))
        .await?;
    Ok((StatusCode::CREATED, Json(view(record)?)))
}

/// List the project's rules.
#[utoipa::path(
    get, path = "/api/v1/rules", tag = "alerting",
    operation_id = "rules_list",
    responses(
        (status = 200, body = RuleList),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
    ),
    security(("bearer" = []), ("basic" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<RuleList>, ApiError> {
    let project_id = caller.project();
    let rules = state
        .store
        .list_rules(project_id)
        .await?
        .into_iter()
        .map(view)
        .collect::<Result<_, _>>()?;
    Ok(Json(RuleList { rules }))
}

/// One rule.
#[utoipa::path(
    get, path = "/api/v1/rules/{id}", tag = "alerting",
    operation_id = "rules_get",
    params(("id" = i64, Path, description = "Rule id")),
    responses(
        (status = 200, body = RuleView),
        (status = 404, description = "No such rule in this project", body = ErrorBody),
    ),
    security(("bearer" = []), ("basic" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    id: PathId,
) -> Result<Json<RuleView>, ApiError> {
    let project_id = caller.project();
    let id = rule_id(&id)?;
    let record = state
        .store
        .get_rule(project_id, id)
        .await?
        .ok_or_else(|| no_rule(id))?;
    Ok(Json(view(record)?))
}

/// Replace a rule's definition (its state is kept).
#[utoipa::path(
    put, path = "/api/v1/rules/{id}", tag = "alerting",
    operation_id = "rules_update",
    request_body = RuleSpec,
    params(("id" = i64, Path, description = "Rule id")),
    responses(
        (status = 200, body = RuleView),
        (status = 400, description = "Invalid rule: the message says what to fix", body = ErrorBody),
        (status = 404, description = "No such rule in this project", body = ErrorBody),
    ),
    security(("bearer" = []), ("basic" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    id: PathId,
    RuleBody(spec): RuleBody,
) -> Result<Json<RuleView>, ApiError> {
    let project_id = caller.project_to_change("changing a rule")?;
    let id = rule_id(&id)?;
    check_channels(&state, project_id, &spec).await?;
    let definition = serde_json::to_string(&spec).map_err(|e| ApiError::Internal(e.into()))?;
    let now = state.clock.now().timestamp_millis();
    let record = state
        .store
        .update_rule(project_id, id, &definition, spec.enabled, now)
        .await?
        .ok_or_else(|| no_rule(id))?;
    caller
        .audit(&state, "rule.updated", describe(id, &spec))
        .await?;
    Ok(Json(view(record)?))
}

/// Delete a rule (its alert history stays).
#[utoipa::path(
    delete, path = "/api/v1/rules/{id}", tag = "alerting",
    operation_id = "rules_delete",
    params(("id" = i64, Path, description = "Rule id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such rule in this project", body = ErrorBody),
    ),
    security(("bearer" = []), ("basic" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    id: PathId,
) -> Result<StatusCode, ApiError> {
    let project_id = caller.project_to_change("deleting a rule")?;
    let id = rule_id(&id)?;
    let current = state
        .store
        .get_rule(project_id, id)
        .await?
        .ok_or_else(|| no_rule(id))?;
    let spec = view(current)?.rule;
    let now = state.clock.now().timestamp_millis();
    if state.store.delete_rule(project_id, id, now).await? {
        caller
            .audit(&state, "rule.deleted", describe(id, &spec))
            .await?;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_rule(id))
    }
}

/// The rule's series over its latest closed buckets, with the threshold or the anomaly band
/// per bucket, judged as the evaluator judges it.
#[utoipa::path(
    get, path = "/api/v1/rules/{id}/preview", tag = "alerting",
    operation_id = "rules_preview",
    params(("id" = i64, Path, description = "Rule id"), PreviewParams),
    responses(
        (status = 200, body = Preview),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 404, description = "No such rule in this project", body = ErrorBody),
        (status = 503, description = "A heavy query: over its time budget (PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS, code query_timeout), or too many running (PULSELINE_DASHBOARD_QUERIES_PER_PROJECT, PULSELINE_DASHBOARD_QUERIES, code overloaded); see Retry-After", body = ErrorBody),
    ),
    security(("bearer" = []), ("basic" = []))
)]
pub async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    id: PathId,
    ApiQuery(params): ApiQuery<PreviewParams>,
) -> Result<Json<Preview>, ApiError> {
    let project_id = caller.project();
    let id = rule_id(&id)?;
    let buckets = preview_buckets(params)?;
    let record = state
        .store
        .get_rule(project_id, id)
        .await?
        .ok_or_else(|| no_rule(id))?;
    let spec = view(record)?.rule;
    Ok(Json(
        series_preview(&state, project_id, Some(id), &spec, buckets).await?,
    ))
}

/// The preview of a draft rule, not saved: what the dashboard's rule form draws while a rule
/// is being written or edited. Reads only, so viewers may use it too.
#[utoipa::path(
    post, path = "/api/v1/rules/preview", tag = "alerting",
    operation_id = "rules_preview_draft",
    request_body = RuleSpec,
    params(PreviewParams),
    responses(
        (status = 200, body = Preview),
        (status = 400, description = "Invalid rule or parameter: the message says what to fix", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 503, description = "A heavy query: over its time budget (PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS, code query_timeout), or too many running (PULSELINE_DASHBOARD_QUERIES_PER_PROJECT, PULSELINE_DASHBOARD_QUERIES, code overloaded); see Retry-After", body = ErrorBody),
    ),
    security(("bearer" = []), ("basic" = []))
)]
pub async fn preview_draft(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<PreviewParams>,
    RuleBody(spec): RuleBody,
) -> Result<Json<Preview>, ApiError> {
    let buckets = preview_buckets(params)?;
    Ok(Json(
        series_preview(&state, caller.project(), None, &spec, buckets).await?,
    ))
}

fn preview_buckets(params: PreviewParams) -> Result<u32, ApiError> {
    let buckets = params.buckets.unwrap_or(DEFAULT_PREVIEW_BUCKETS);
    if !(1..=MAX_PREVIEW_BUCKETS).contains(&buckets) {
        return Err(ApiError::BadRequest(format!(
            "buckets must be between 1 and {MAX_PREVIEW_BUCKETS}, got {buckets}"
        )));
    }
    Ok(buckets)
}

/// The rule's series over its latest `buckets` closed buckets, judged as the evaluator judges.
async fn series_preview(
    state: &AppState,
    project_id: ProjectId,
    rule_id: Option<i64>,
    spec: &RuleSpec,
    buckets: u32,
) -> Result<Preview, ApiError> {
    let _slot = state.dashboard.queries.admit(project_id).await?;
    let width = spec.series.bucket.millis();
    let last = latest_closed_bucket(state.clock.now().timestamp_millis(), width);
    let first = last - i64::from(buckets - 1) * width;
    let history = i64::try_from(spec.history_buckets()).unwrap_or(0);
    let points: BTreeMap<i64, f64> = state
        .store
        .rule_series(
            project_id,
            &spec.series,
            first - history * width,
            last + width,
        )
        .await?
        .into_iter()
        .collect();
    let threshold = match spec.condition {
        Condition::Threshold { value, .. } => Some(value),
        Condition::Anomaly { .. } => None,
    };
    let mut out = Vec::with_capacity(buckets as usize);
    // One detector fed bucket after bucket, as the evaluator's is (it starts from the history
    // before the first bucket drawn).
    let mut track = None;
    let mut b = first;
    while b <= last {
        let value = match (points.get(&b), spec.no_data) {
            (Some(v), _) => Some(*v),
            (None, NoData::Zero) => Some(0.0),
            (None, _) => None,
        };
        let judged = value.map(|v| judge(spec, &points, b - history * width, b, v, &mut track));
        out.push(PreviewPoint {
            start: rfc3339(b),
            value,
            expected: judged.as_ref().and_then(|o| o.expected),
            lower: judged.as_ref().and_then(|o| o.lower),
            upper: judged.as_ref().and_then(|o| o.upper),
            threshold,
            breach: judged.is_some_and(|o| o.breach),
        });
        b += width;
    }
    Ok(Preview {
        rule_id,
        series: spec.series.describe(),
        points: out,
    })
}
