//! Which project a request acts for, from the key it presents.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use std::num::NonZeroU32;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::domain::{KeyHash, KeyKind, ProjectId};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{KeyRecord, Quota, next_month_start};

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
    state: &AppState,
    presented: Option<&str>,
    required: KeyKind,
) -> Result<KeyRecord, ApiError> {
    let presented = presented.ok_or_else(|| missing(required))?;
    let key = state.store.find_key(&KeyHash::of(presented)).await?;
    usable(key, required, state.clock.now())
}

/// What the ingest rate limit counts against: a write key, or an inbound webhook source (which
/// has no write key: its receiving URL is its key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKey {
    WriteKey(i64),
    InboundSource(i64),
}

/// The ingest rate limiter: events per second, per [`RateKey`], in this process.
pub type KeyRateLimiter = crate::limiter::KeyedLimiter<RateKey>;

/// Admits `events` messages for ingest: a usable write key, within its rate limit, and its
/// project within this month's quota. One database query.
pub async fn admit_ingest(
    state: &AppState,
    presented: Option<&str>,
    events: usize,
) -> Result<KeyRecord, ApiError> {
    let presented = presented.ok_or_else(|| missing(KeyKind::Write))?;
    let now = state.clock.now();
    let found = state
        .store
        .find_key_with_quota(&KeyHash::of(presented), now)
        .await?;
    let (key, quota) = match found {
        Some((key, quota)) => (Some(key), Some(quota)),
        None => (None, None),
    };
    let key = usable(key, KeyKind::Write, now)?;
    check_rate(state, RateKey::WriteKey(key.id), events)?;
    if let Some(quota) = quota {
        check_quota(key.project_id, &quota, now)?;
    }
    Ok(key)
}

/// Admits `events` messages under PULSELINE_RATE_LIMIT_EVENTS_PER_SEC for `key`, or says when
/// to retry (429 with Retry-After).
pub fn check_rate(state: &AppState, key: RateKey, events: usize) -> Result<(), ApiError> {
    let Some(limiter) = &state.rate_limiter else {
        return Ok(());
    };
    let n = NonZeroU32::new(u32::try_from(events).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
    let what = match key {
        RateKey::WriteKey(_) => "this write key",
        RateKey::InboundSource(_) => "this inbound source",
    };
    match limiter.check_n(&key, n) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(wait)) => {
            metrics::counter!("pulseline_ingest_rate_limited_total").increment(1);
            Err(ApiError::TooManyRequests {
                message: format!(
                    "{what} is over its rate limit of {} events/s \
                     (PULSELINE_RATE_LIMIT_EVENTS_PER_SEC); retry after the Retry-After delay",
                    state.limits_rate_per_sec
                ),
                retry_after: wait.max(Duration::from_secs(1)),
            })
        }
        Err(_) => Err(ApiError::PayloadTooLarge(format!(
            "{events} events in one request exceed {what}'s burst allowance \
             (PULSELINE_RATE_LIMIT_BURST): send smaller batches"
        ))),
    }
}

/// Refuses ingest for a project that has used its plan's monthly quota (429, retry when the
/// month resets).
pub fn check_quota(
    project_id: ProjectId,
    quota: &Quota,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    if let Some(limit) = quota.events_per_month
        && quota.used_this_month >= limit
    {
        metrics::counter!("pulseline_ingest_quota_exceeded_total").increment(1);
        let resets = next_month_start(now);
        return Err(ApiError::TooManyRequests {
            message: format!(
                "project {project_id} has used its monthly quota of {limit} events (plan '{}'); \
                 it resets at {}. Raise it with `pulseline-collector project set-plan \
                 {project_id} PLAN`",
                quota.plan,
                resets.to_rfc3339_opts(SecondsFormat::Secs, true),
            ),
            retry_after: (resets - now).to_std().unwrap_or(Duration::from_secs(60)),
        });
    }
    Ok(())
}

fn missing(required: KeyKind) -> ApiError {
    ApiError::Unauthorized(match required {
        KeyKind::Write => "missing write key: send it as the HTTP Basic user name \
            (curl -u KEY:), as Authorization: Bearer KEY, or as \"writeKey\" in the body"
            .into(),
        KeyKind::Secret => "missing secret key: send Authorization: Bearer SECRET_KEY".into(),
    })
}

fn usable(
    key: Option<KeyRecord>,
    required: KeyKind,
    now: DateTime<Utc>,
) -> Result<KeyRecord, ApiError> {
    let Some(key) = key else {
        return Err(ApiError::Unauthorized(format!(
            "unknown {required} key: check for a copy/paste error, or create one with \
             `pulseline-collector key create --project ID --kind {required}`"
        )));
    };
    if let Some(at) = key.revoked_at
        && at <= now
    {
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
