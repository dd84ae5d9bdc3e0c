//! Local stand-ins for Discord, Slack, a Standard Webhooks receiver and an SMTP server. Each
//! enforces what the real one enforces (Discord's payload limits, the webhook signature), can be
//! scripted to answer 429/404/500 or to hold a request open, and records what it accepted.
#![allow(dead_code, unreachable_pub)]

mod limits;
mod smtp;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Notify;

pub use limits::{discord_limits, slack_limits, verify_signature};
pub use smtp::SmtpSink;

/// A scripted answer for the next request.
#[derive(Debug, Clone)]
pub enum Scripted {
    Status(u16, String),
    /// Discord's 429: `retry_after` seconds in the body and the rate-limit headers.
    RateLimited(f64),
    /// Accept, but say the bucket is empty: `X-RateLimit-Remaining: 0` and
    /// `X-RateLimit-Reset-After` seconds.
    Exhausted(f64),
    /// Accept after this long (a slow target: the send is in flight meanwhile).
    Slow(Duration),
    /// Any status, headers and body (a hostile target).
    Raw(u16, Vec<(&'static str, String)>, String),
    /// 200, then a body that never ends (a chunk every few milliseconds).
    Endless,
}

#[derive(Debug, Default)]
pub struct Inner {
    pub accepted: std::sync::Mutex<Vec<(HeaderMap, Value, Instant)>>,
    pub rejected: std::sync::Mutex<Vec<Value>>,
    pub hits: std::sync::Mutex<Vec<Instant>>,
    script: std::sync::Mutex<VecDeque<Scripted>>,
    /// While set, requests are held open and never answered.
    pub hold: AtomicBool,
    pub held: AtomicUsize,
    changed: Notify,
    /// Generic webhooks: the signing secret to verify with.
    pub secret: std::sync::Mutex<Option<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct Receiver(pub Arc<Inner>);

#[derive(Debug, Clone, Copy)]
enum Kind {
    Discord,
    Slack,
    Webhook,
}

impl Receiver {
    pub fn script(&self, s: Scripted) {
        self.0.script.lock().unwrap().push_back(s);
    }

    pub fn accepted(&self) -> Vec<Value> {
        self.0
            .accepted
            .lock()
            .unwrap()
            .iter()
            .map(|(_, v, _)| v.clone())
            .collect()
    }

    pub fn accepted_with_headers(&self) -> Vec<(HeaderMap, Value, Instant)> {
        self.0.accepted.lock().unwrap().clone()
    }

    pub fn hits(&self) -> Vec<Instant> {
        self.0.hits.lock().unwrap().clone()
    }

    pub fn rejected(&self) -> Vec<Value> {
        self.0.rejected.lock().unwrap().clone()
    }

    /// Waits until at least `n` messages were accepted (panics after `within`).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.0.changed.notified();
            let got = self.accepted();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "expected {n} messages within {within:?}, got {}: {got:?}; rejected: {:?}",
                    got.len(),
                    self.rejected()
                );
            }
        }
    }

    /// The Discord embeds of every accepted message, in order: one per notification, however
    /// they were packed into messages.
    pub fn embeds(&self) -> Vec<Value> {
        self.accepted()
            .iter()
            .flat_map(|m| m["embeds"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// Waits until accepted messages hold at least `n` embeds (panics after `within`).
    pub async fn wait_for_embeds(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.0.changed.notified();
            let got = self.embeds();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "expected {n} embeds within {within:?}, got {}: {:?}; rejected: {:?}",
                    got.len(),
                    self.accepted(),
                    self.rejected()
                );
            }
        }
    }

    /// Waits until at least `n` requests arrived (answered or held).
    pub async fn wait_for_hits(&self, n: usize, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.0.changed.notified();
            if self.hits().len() >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "expected {n} requests within {within:?}, got {}",
                    self.hits().len()
                );
            }
        }
    }
}

/// A stand-in server; `url` is its webhook URL.
#[derive(Debug)]
pub struct StandIn {
    pub url: String,
    pub port: u16,
    pub receiver: Receiver,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(kind: Kind) -> StandIn {
    let receiver = Receiver::default();
    let app = Router::new()
        .route("/hook", post(handle))
        .with_state((kind, receiver.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    StandIn {
        url: format!("http://127.0.0.1:{port}/hook"),
        port,
        receiver,
        task,
    }
}

pub async fn discord() -> StandIn {
    serve(Kind::Discord).await
}

pub async fn slack() -> StandIn {
    serve(Kind::Slack).await
}

pub async fn webhook() -> StandIn {
    serve(Kind::Webhook).await
}

async fn handle(
    State((kind, r)): State<(Kind, Receiver)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    r.0.hits.lock().unwrap().push(Instant::now());
    r.0.changed.notify_waiters();
    if r.0.hold.load(Ordering::SeqCst) {
        r.0.held.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<()>().await;
    }
    let scripted = r.0.script.lock().unwrap().pop_front();
    let mut exhausted = None;
    match scripted {
        Some(Scripted::Exhausted(secs)) => exhausted = Some(secs),
        Some(Scripted::Slow(d)) => tokio::time::sleep(d).await,
        Some(Scripted::Status(code, body)) => {
            return (StatusCode::from_u16(code).unwrap(), body).into_response();
        }
        Some(Scripted::Raw(code, headers, body)) => {
            let mut resp = (StatusCode::from_u16(code).unwrap(), body).into_response();
            for (name, value) in headers {
                resp.headers_mut().insert(name, value.parse().unwrap());
            }
            return resp;
        }
        Some(Scripted::Endless) => {
            let chunks = futures::stream::unfold((), |()| async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Some((
                    Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(vec![b'x'; 256])),
                    (),
                ))
            });
            return (StatusCode::OK, axum::body::Body::from_stream(chunks)).into_response();
        }
        Some(Scripted::RateLimited(secs)) => {
            let mut resp = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({"message": "You are being rate limited.", "retry_after": secs, "global": false})),
            )
                .into_response();
            let h = resp.headers_mut();
            h.insert("x-ratelimit-limit", "5".parse().unwrap());
            h.insert("x-ratelimit-remaining", "0".parse().unwrap());
            h.insert(
                "x-ratelimit-reset-after",
                format!("{secs}").parse().unwrap(),
            );
            h.insert(
                "retry-after",
                format!("{}", secs.ceil() as u64).parse().unwrap(),
            );
            return resp;
        }
        None => {}
    }
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")).into_response(),
    };
    let verdict = match kind {
        Kind::Discord => discord_limits(&value),
        Kind::Slack => slack_limits(&value),
        Kind::Webhook => verify_signature(&r, &headers, &body),
    };
    if let Err(errors) = verdict {
        r.0.rejected
            .lock()
            .unwrap()
            .push(json!({"payload": value, "errors": errors}));
        r.0.changed.notify_waiters();
        let status = if matches!(kind, Kind::Webhook) {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        return (
            status,
            axum::Json(json!({"code": 50035, "message": "Invalid Form Body", "errors": errors})),
        )
            .into_response();
    }
    r.0.accepted
        .lock()
        .unwrap()
        .push((headers, value, Instant::now()));
    r.0.changed.notify_waiters();
    let mut resp = match kind {
        Kind::Discord => StatusCode::NO_CONTENT.into_response(),
        Kind::Slack => (StatusCode::OK, "ok").into_response(),
        Kind::Webhook => (StatusCode::OK, "{\"received\":true}").into_response(),
    };
    if let Some(secs) = exhausted {
        let h = resp.headers_mut();
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        h.insert(
            "x-ratelimit-reset-after",
            format!("{secs}").parse().unwrap(),
        );
    }
    resp
}

fn len(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}
