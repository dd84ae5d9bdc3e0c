//! CSV downloads of Explore: cells that cannot run as spreadsheet formulas, and the response.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

pub(super) fn iso(ms: i64) -> String {
    crate::store::from_millis(ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A text cell a spreadsheet shows as text: one starting with `=`, `+`, `-`, `@`, tab or CR
/// would run as a formula (CSV injection), so it gets OWASP's `'` prefix. Only for text sent
/// to us; numbers we format ourselves stay numbers.
pub fn csv_text(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

pub(super) fn csv_error(e: csv::Error) -> ApiError {
    ApiError::Internal(e.into())
}

pub(super) fn csv_response(w: csv::Writer<Vec<u8>>, name: &str) -> Result<Response, ApiError> {
    let bytes = w
        .into_inner()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
