//! The one error type of the HTTP API. Every variant maps to an explicit status, and every body
//! says what is wrong in words a developer can act on. 5xx bodies never carry internals.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    Unprocessable {
        message: String,
        /// Per-message details, for a batch none of whose messages were valid.
        rejected: Vec<crate::ingest::Rejected>,
    },
    /// A rate limit or quota: the client should slow down or wait for the reset.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after: Duration,
    },
    #[error("{message}")]
    Overloaded {
        message: String,
        retry_after: Duration,
    },
    /// A heavy dashboard query spent its time budget (PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS):
    /// its statements were stopped.
    #[error("{message}")]
    QueryTimeout {
        message: String,
        retry_after: Duration,
    },
    /// The database failed or is unreachable. `detail` is logged, never sent.
    #[error("storage unavailable: {detail}")]
    StorageUnavailable {
        retry_after: Duration,
        detail: String,
    },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Always false.
    pub success: bool,
    /// A stable, machine-readable code, e.g. `payload_too_large`.
    pub code: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<crate::ingest::Rejected>,
}

impl ApiError {
    pub(crate) fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::Unprocessable { .. } => (StatusCode::BAD_REQUEST, "invalid_messages"),
            Self::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            Self::Overloaded { .. } => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            Self::QueryTimeout { .. } => (StatusCode::SERVICE_UNAVAILABLE, "query_timeout"),
            Self::StorageUnavailable { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable")
            }
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// A body that is not the JSON a route takes ([`crate::routes::extract::ApiJson`]): 400 with
/// axum's reason, in the product's error body rather than axum's plain text.
impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        Self::BadRequest(format!("invalid JSON body: {}", e.body_text()))
    }
}

/// A query string that does not parse ([`crate::routes::extract::ApiQuery`]).
impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        Self::BadRequest(format!("invalid query: {}", e.body_text()))
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        // A statement stopped by its request's time budget says so, not "storage unavailable".
        if let Some(over) = crate::state::query_budget::over_budget(&e) {
            return over;
        }
        Self::StorageUnavailable {
            retry_after: Duration::from_secs(2),
            detail: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let retry_after = match &self {
            Self::Overloaded { retry_after, .. }
            | Self::QueryTimeout { retry_after, .. }
            | Self::TooManyRequests { retry_after, .. }
            | Self::StorageUnavailable { retry_after, .. } => Some(retry_after.as_secs().max(1)),
            _ => None,
        };
        let message = match &self {
            Self::StorageUnavailable { detail, .. } => {
                tracing::error!(error = %detail, "storage unavailable");
                "storage is temporarily unavailable; retry after the Retry-After delay".to_owned()
            }
            Self::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "internal error; it has been logged".to_owned()
            }
            other => other.to_string(),
        };
        let rejected = match self {
            Self::Unprocessable { rejected, .. } => rejected,
            _ => Vec::new(),
        };
        let body = ErrorBody {
            success: false,
            code,
            message,
            rejected,
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"pulseline\""),
            );
        }
        response
    }
}
