//! Which project a request acts for, from the key it presents.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::domain::{KeyHash, KeyKind};
use crate::error::ApiError;
use crate::store::{KeyRecord, Store};

/// The key a request presents in its headers: HTTP Basic with the key as user name (Segment's
/// convention; a key in the password with an empty user is accepted too), or Bearer.
pub fn key_from_headers(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("Authorization header is not valid text".into()))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Some(rest.to_owned()).filter(|k| !k.is_empty()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "Authorization: Basic must carry base64 of 'KEY:' (the key as user name, \
                     empty password)"
                        .into(),
                )
            })?;
        let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
        let key = if user.is_empty() { password } else { user };
        return Ok(Some(key.to_owned()).filter(|k| !k.is_empty()));
    }
    Err(ApiError::Unauthorized(format!(
        "Authorization scheme '{scheme}' is not supported: use Basic (key as user name) or Bearer"
    )))
}

/// Looks the key up and checks it may be used for `required`. A revoked key fails at once:
/// there is no cache between revocation and this check.
pub async fn authenticate(
    store: &Store,
    presented: Option<&str>,
    required: KeyKind,
) -> Result<KeyRecord, ApiError> {
    let Some(presented) = presented else {
        return Err(ApiError::Unauthorized(match required {
            KeyKind::Write => "missing write key: send it as the HTTP Basic user name \
                (curl -u KEY:), as Authorization: Bearer KEY, or as \"writeKey\" in the body"
                .into(),
            KeyKind::Secret => "missing secret key: send Authorization: Bearer SECRET_KEY".into(),
        }));
    };
    let Some(key) = store.find_key(&KeyHash::of(presented)).await? else {
        return Err(ApiError::Unauthorized(format!(
            "unknown {required} key: check for a copy/paste error, or create one with \
             `pulseline-collector key create --project ID --kind {required}`"
        )));
    };
    if let Some(at) = key.revoked_at {
        return Err(ApiError::Unauthorized(format!(
            "this key ({}…) was revoked at {}; use the project's current key",
            key.prefix,
            at.to_rfc3339()
        )));
    }
    if key.kind != required {
        return Err(ApiError::Forbidden(match required {
            KeyKind::Write => "this is a secret key; ingest takes the project's write key \
                (secret keys must never be shipped to clients)"
                .into(),
            KeyKind::Secret => "this is a write key, which can only send events; reading takes \
                the project's secret key"
                .into(),
        }));
    }
    Ok(key)
}
