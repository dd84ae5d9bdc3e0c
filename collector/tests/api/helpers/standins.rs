//! Local stand-ins for Discord, Slack, a Standard Webhooks receiver and an SMTP server. Each
//! enforces what the real one enforces (Discord's payload limits, the webhook signature), can be
//! scripted to answer 429/404/500 or to hold a request open, and records what it accepted.
#![allow(dead_code, unreachable_pub)]

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

/// Discord's documented limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
pub fn discord_limits(p: &Value) -> Result<(), Vec<String>> {
    let errors = std::cell::RefCell::new(Vec::new());
    let check = |what: String, n: usize, max: usize| {
        if n > max {
            errors.borrow_mut().push(format!(
                "{what}: Must be {max} or fewer in length (got {n})"
            ));
        }
    };
    check("content".into(), len(&p["content"]), 2_000);
    let embeds = p["embeds"].as_array().cloned().unwrap_or_default();
    check("embeds".into(), embeds.len(), 10);
    let mut total = 0;
    for (i, e) in embeds.iter().enumerate() {
        check(format!("embeds.{i}.title"), len(&e["title"]), 256);
        check(
            format!("embeds.{i}.description"),
            len(&e["description"]),
            4_096,
        );
        check(
            format!("embeds.{i}.footer.text"),
            len(&e["footer"]["text"]),
            2_048,
        );
        check(
            format!("embeds.{i}.author.name"),
            len(&e["author"]["name"]),
            256,
        );
        let fields = e["fields"].as_array().cloned().unwrap_or_default();
        check(format!("embeds.{i}.fields"), fields.len(), 25);
        total += len(&e["title"])
            + len(&e["description"])
            + len(&e["footer"]["text"])
            + len(&e["author"]["name"]);
        for (j, f) in fields.iter().enumerate() {
            check(format!("embeds.{i}.fields.{j}.name"), len(&f["name"]), 256);
            check(
                format!("embeds.{i}.fields.{j}.value"),
                len(&f["value"]),
                1_024,
            );
            if len(&f["name"]) == 0 || len(&f["value"]) == 0 {
                errors.borrow_mut().push(format!(
                    "embeds.{i}.fields.{j}: name and value are required"
                ));
            }
            total += len(&f["name"]) + len(&f["value"]);
        }
    }
    check("embeds (total characters)".into(), total, 6_000);
    for (i, e) in embeds.iter().enumerate() {
        let mut texts = vec![(format!("embeds.{i}.description"), &e["description"])];
        for (j, f) in e["fields"].as_array().into_iter().flatten().enumerate() {
            texts.push((format!("embeds.{i}.fields.{j}.name"), &f["name"]));
            texts.push((format!("embeds.{i}.fields.{j}.value"), &f["value"]));
        }
        for (what, text) in texts {
            if let Some(link) = text.as_str().and_then(masked_link) {
                errors.borrow_mut().push(format!(
                    "{what}: renders the masked link {link} (its text disguises the URL)"
                ));
            }
        }
    }
    if p["allowed_mentions"] != json!({"parse": []}) {
        let text = p.to_string();
        if ["@everyone", "@here", "<@"]
            .iter()
            .any(|m| text.contains(m))
        {
            errors
                .borrow_mut()
                .push("would ping: a mention without allowed_mentions {\"parse\": []}".into());
        }
    }
    if embeds.is_empty() && len(&p["content"]) == 0 {
        errors
            .borrow_mut()
            .push("Cannot send an empty message".into());
    }
    let errors = errors.into_inner();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// A masked link `[text](url)` as Discord's markdown renders it (backslash escapes honoured).
fn masked_link(s: &str) -> Option<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '[' => {
                let rest: String = chars[i..].iter().collect();
                if let Some(close) = rest.find("](")
                    && let Some(end) = rest[close..].find(')')
                {
                    return Some(rest[..close + end + 1].to_owned());
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// A Slack control sequence (`<!channel>`, `<@U123>`, `<https://evil|text>`) in mrkdwn text:
/// Slack renders it as a ping or a link instead of the characters.
fn slack_control(s: &str) -> Option<&str> {
    let open = s.find('<')?;
    let close = s[open..].find('>')?;
    Some(&s[open..open + close + 1])
}

/// Slack's Block Kit limits for what the collector sends.
fn slack_limits(p: &Value) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    if len(&p["text"]) == 0 {
        errors.push("text is required (the notification fallback)".into());
    }
    let blocks = p["blocks"].as_array().cloned().unwrap_or_default();
    if blocks.len() > 50 {
        errors.push("more than 50 blocks".into());
    }
    for b in &blocks {
        match b["type"].as_str() {
            Some("header") if len(&b["text"]["text"]) > 150 => {
                errors.push("header text over 150".into())
            }
            Some("section") => {
                if len(&b["text"]["text"]) > 3_000 {
                    errors.push("section text over 3000".into());
                }
                let fields = b["fields"].as_array().cloned().unwrap_or_default();
                if fields.len() > 10 || fields.iter().any(|f| len(&f["text"]) > 2_000) {
                    errors.push("section fields over limits".into());
                }
            }
            _ => {}
        }
    }
    let mut mrkdwn = vec![&p["text"]];
    for b in &blocks {
        if b["text"]["type"] == "mrkdwn" {
            mrkdwn.push(&b["text"]["text"]);
        }
        for f in b["fields"]
            .as_array()
            .into_iter()
            .chain(b["elements"].as_array())
            .flatten()
        {
            if f["type"] == "mrkdwn" {
                mrkdwn.push(&f["text"]);
            }
        }
    }
    for text in mrkdwn.iter().filter_map(|t| t.as_str()) {
        if let Some(seq) = slack_control(text) {
            errors.push(format!(
                "unescaped {seq}: Slack renders it as a ping or a disguised link"
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Standard Webhooks verification, as a receiver implements it from the specification.
fn verify_signature(r: &Receiver, headers: &HeaderMap, body: &[u8]) -> Result<(), Vec<String>> {
    let secret =
        r.0.secret
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| vec!["no secret configured".to_owned()])?;
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (Some(id), Some(ts), Some(sigs)) = (
        get("webhook-id"),
        get("webhook-timestamp"),
        get("webhook-signature"),
    ) else {
        return Err(vec![
            "missing webhook-id, webhook-timestamp or webhook-signature".into(),
        ]);
    };
    let ts_num: i64 = ts.parse().map_err(|_| vec!["bad timestamp".to_owned()])?;
    if (chrono::Utc::now().timestamp() - ts_num).abs() > 300 {
        return Err(vec!["timestamp outside the 5-minute tolerance".into()]);
    }
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .map_err(|_| vec!["bad secret".to_owned()])?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    if sigs.split(' ').any(|s| s == expected) {
        Ok(())
    } else {
        Err(vec![format!("signature mismatch: got {sigs}")])
    }
}

/// A minimal SMTP server that accepts every message and keeps it.
#[derive(Debug)]
pub struct SmtpSink {
    pub url: String,
    pub messages: Arc<std::sync::Mutex<Vec<String>>>,
    changed: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = Arc::new(std::sync::Mutex::new(Vec::new()));
        let changed = Arc::new(Notify::new());
        let (m, c) = (Arc::clone(&messages), Arc::clone(&changed));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (m, c) = (Arc::clone(&m), Arc::clone(&c));
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    write.write_all(b"220 sink ESMTP ready\r\n").await.ok();
                    let mut data: Option<String> = None;
                    while let Ok(Some(line)) = lines.next_line().await {
                        if let Some(buf) = &mut data {
                            if line == "." {
                                m.lock().unwrap().push(std::mem::take(buf));
                                data = None;
                                c.notify_waiters();
                                write.write_all(b"250 2.0.0 queued\r\n").await.ok();
                            } else {
                                buf.push_str(&line);
                                buf.push('\n');
                            }
                            continue;
                        }
                        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250-sink\r\n250 8BITMIME\r\n",
                            "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 2.1.0 ok\r\n",
                            "DATA" => {
                                data = Some(String::new());
                                b"354 end with <CRLF>.<CRLF>\r\n"
                            }
                            "QUIT" => {
                                write.write_all(b"221 bye\r\n").await.ok();
                                return;
                            }
                            _ => b"502 not implemented\r\n",
                        };
                        write.write_all(reply).await.ok();
                    }
                });
            }
        });
        Self {
            url: format!("smtp://127.0.0.1:{port}"),
            messages,
            changed,
            task,
        }
    }

    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.changed.notified();
            let got = self.messages.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("expected {n} emails within {within:?}, got {}", got.len());
            }
        }
    }
}
