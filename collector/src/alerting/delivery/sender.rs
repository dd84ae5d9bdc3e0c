//! Sending one notification to one channel: the payload per kind, the SSRF guard, pacing per
//! webhook URL, and what the response says about retrying.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::Quota;
use reqwest::Url;
use reqwest::header::HeaderMap;

use super::address::forbidden_reason;
use super::{discord, slack, webhook};
use crate::alerting::notification::Notification;
use crate::clock::SystemClock;
use crate::config::DeliveryConfig;
use crate::limiter::{KeyedLimiter, LimiterClock};
use crate::store::delivery::ChannelRecord;

/// Bytes of a response body kept with an attempt; no more than this is read from the target.
pub const RESPONSE_EXCERPT_BYTES: usize = 512;
/// Longest wait a target's answer (a 429's `retry_after`, `Retry-After`,
/// `X-RateLimit-Reset-After`) can impose on its URL; longer values are cut to this.
pub const MAX_TARGET_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// What came of one send.
#[derive(Debug, Clone)]
pub enum SendOutcome {
    /// The target answered.
    Answered {
        status: u16,
        excerpt: String,
        /// From a 429: Discord's `retry_after` (JSON, seconds, float) or `Retry-After`.
        retry_after: Option<Duration>,
        latency: Duration,
    },
    /// No answer (refused, unreachable, timeout) or refused before sending.
    Failed {
        error: String,
        retryable: bool,
        latency: Duration,
    },
    /// Not sent: this URL must wait (pacing or a rate-limit reset).
    Paced(Duration),
}

#[derive(Debug)]
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
    pace: KeyedLimiter<String>,
    /// URLs a rate-limit header or a 429 told us to leave alone until then.
    blocked: Mutex<HashMap<String, Instant>>,
    /// One request at a time per webhook URL in this replica, so each response's rate-limit
    /// headers govern the next request.
    gates: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    smtp_url: Option<String>,
    smtp_from: Option<String>,
    timeout: Duration,
}

impl Sender {
    pub fn new(config: &DeliveryConfig) -> anyhow::Result<Self> {
        let timeout = Duration::from_millis(config.timeout_ms);
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("Pulseline/", env!("CARGO_PKG_VERSION")));
        if !config.allow_private_webhooks {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        Ok(Self {
            client: builder.build()?,
            allow_private: config.allow_private_webhooks,
            // Per webhook URL, per replica; `X-RateLimit-*` headers and 429s tighten it further.
            // Real time even under a test's fake clock: pacing protects real receivers.
            pace: KeyedLimiter::new(
                "webhook_pace",
                Quota::with_period(Duration::from_millis(config.pace_period_ms.max(1)))
                    .unwrap_or_else(|| Quota::per_second(std::num::NonZeroU32::MIN))
                    .allow_burst(
                        std::num::NonZeroU32::new(config.pace_burst)
                            .unwrap_or(std::num::NonZeroU32::MIN),
                    ),
                LimiterClock::new(Arc::new(SystemClock)),
            ),
            blocked: Mutex::new(HashMap::new()),
            gates: Mutex::new(HashMap::new()),
            smtp_url: config.smtp_url.clone(),
            smtp_from: config.smtp_from.clone(),
            timeout,
        })
    }

    /// Sends `n` to the channel. `message_id` is the Standard Webhooks id (stable per delivery,
    /// so a retry carries the same id and receivers can dedupe). With `finish_by` (the end of
    /// the caller's lease), a request that could outlast it is not started: `Paced(0)`.
    pub async fn send(
        &self,
        channel: &ChannelRecord,
        n: &Notification,
        message_id: &str,
        finish_by: Option<Instant>,
    ) -> SendOutcome {
        self.send_many(channel, std::slice::from_ref(n), message_id, finish_by)
            .await
    }

    /// Sends `ns` to the channel as one message (Discord embeds, Slack blocks, an email
    /// digest); the caller packs them within the target's limits. A generic webhook carries
    /// one notification per request, so `ns` holds one for it.
    pub async fn send_many(
        &self,
        channel: &ChannelRecord,
        ns: &[Notification],
        message_id: &str,
        finish_by: Option<Instant>,
    ) -> SendOutcome {
        let gate = Arc::clone(
            self.gates
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(channel.target.clone())
                .or_default(),
        );
        let _turn = gate.lock().await;
        if finish_by.is_some_and(|end| Instant::now() + self.timeout > end) {
            return SendOutcome::Paced(Duration::ZERO);
        }
        self.send_now(channel, ns, message_id).await
    }

    async fn send_now(
        &self,
        channel: &ChannelRecord,
        ns: &[Notification],
        message_id: &str,
    ) -> SendOutcome {
        if channel.kind == "email" {
            return self.send_email(channel, ns).await;
        }
        let started = Instant::now();
        let failed = |error: String, retryable: bool| SendOutcome::Failed {
            error,
            retryable,
            latency: started.elapsed(),
        };
        let url = match Url::parse(&channel.target) {
            Ok(u) => u,
            Err(e) => {
                return failed(
                    format!("the channel URL is invalid ({e}); update the channel"),
                    false,
                );
            }
        };
        if let Err(e) = check_target(&url, self.allow_private).await {
            return failed(e, false);
        }
        if let Some(wait) = self.wait_for(&channel.target) {
            return SendOutcome::Paced(wait);
        }
        let (body, extra) = match channel.kind.as_str() {
            "discord" => (discord::payload_many(ns), None),
            "slack" => (slack::payload_many(ns), None),
            _ => {
                let [n] = ns else {
                    return failed(
                        "a webhook request carries exactly one notification (an internal error)"
                            .into(),
                        false,
                    );
                };
                let body = serde_json::json!({
                    "type": "pulseline.notification",
                    "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "data": n,
                });
                (body, Some(()))
            }
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if extra.is_some() {
            let ts = chrono::Utc::now().timestamp();
            let secret = channel.secret.as_deref().unwrap_or_default();
            match webhook::sign(secret, message_id, ts, &bytes) {
                Ok(sig) => {
                    request = request
                        .header("webhook-id", message_id)
                        .header("webhook-timestamp", ts.to_string())
                        .header("webhook-signature", sig);
                }
                Err(e) => return failed(e, false),
            }
        }
        match request.body(bytes).send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                let text = read_excerpt(resp).await;
                let retry_after = self.note_rate_limits(&channel.target, status, &headers, &text);
                SendOutcome::Answered {
                    status,
                    excerpt: excerpt(&text),
                    retry_after,
                    latency: started.elapsed(),
                }
            }
            Err(e) => {
                let what = if e.is_timeout() {
                    format!(
                        "no answer within {:?} (PULSELINE_DELIVERY_TIMEOUT_MS)",
                        self.timeout
                    )
                } else if e.is_connect() {
                    format!("could not connect: {}", error_chain(&e))
                } else {
                    error_chain(&e)
                };
                failed(what, true)
            }
        }
    }

    /// Keys the per-URL pacing holds (for `/metrics`).
    pub fn paced_urls(&self) -> usize {
        self.pace.len()
    }

    /// Forgets per-URL state nobody needs any more, when the pacing limiter prunes: expired
    /// blocks, and gates no send holds or waits for. URLs come from channel settings, which
    /// change, so these maps must not keep every URL ever used.
    fn prune_url_state(&self, now: Instant) {
        if !self.pace.prune_if_due() {
            return;
        }
        self.blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, until| *until > now);
        self.gates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, gate| Arc::strong_count(gate) > 1);
    }

    /// `Some(wait)` if this URL must not be called now.
    fn wait_for(&self, url: &str) -> Option<Duration> {
        let now = Instant::now();
        self.prune_url_state(now);
        {
            let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(until) = blocked.get(url).copied() {
                if until > now {
                    return Some(until - now);
                }
                blocked.remove(url);
            }
        }
        self.pace.check(&url.to_owned()).err()
    }

    /// Honours `X-RateLimit-Remaining: 0` + `X-RateLimit-Reset-After`, and a 429's wait.
    fn note_rate_limits(
        &self,
        url: &str,
        status: u16,
        headers: &HeaderMap,
        body: &str,
    ) -> Option<Duration> {
        let header_secs = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .and_then(target_wait)
        };
        let mut block = None;
        if headers
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "0")
        {
            block = header_secs("x-ratelimit-reset-after");
        }
        let retry_after = (status == 429).then(|| {
            serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("retry_after").and_then(serde_json::Value::as_f64))
                .and_then(target_wait)
                .or_else(|| header_secs("retry-after"))
                .unwrap_or(Duration::from_secs(1))
        });
        if let Some(wait) = block.into_iter().chain(retry_after).max() {
            self.blocked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(url.to_owned(), Instant::now() + wait);
        }
        retry_after
    }

    /// One email for `ns`: the notification itself, or a digest of several (at most
    /// `pack::EMAIL_DIGEST_MAX`), each in the order it happened.
    async fn send_email(&self, channel: &ChannelRecord, ns: &[Notification]) -> SendOutcome {
        use lettre::message::header::ContentType;
        use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
        let started = Instant::now();
        let failed = |error: String, retryable: bool| SendOutcome::Failed {
            error,
            retryable,
            latency: started.elapsed(),
        };
        let (Some(url), Some(from)) = (&self.smtp_url, &self.smtp_from) else {
            return failed(
                "email channels need an SMTP server: set PULSELINE_SMTP_URL and PULSELINE_SMTP_FROM".into(),
                false,
            );
        };
        let transport = match AsyncSmtpTransport::<Tokio1Executor>::from_url(url) {
            Ok(t) => t.timeout(Some(self.timeout)).build(),
            Err(e) => return failed(format!("PULSELINE_SMTP_URL is not usable: {e}"), false),
        };
        let (subject, body) = match ns {
            [n] => (n.title.clone(), n.plain_text()),
            [first, ..] => (
                format!("{} notifications: {} …", ns.len(), first.title),
                ns.iter()
                    .map(Notification::plain_text)
                    .collect::<Vec<_>>()
                    .join("\n\n----------\n\n"),
            ),
            [] => return failed("no notification to send (an internal error)".into(), false),
        };
        let email =
            (|| -> Result<Message, String> {
                Message::builder()
                    .from(from.parse().map_err(|e| {
                        format!("PULSELINE_SMTP_FROM '{from}' is not an address: {e}")
                    })?)
                    .to(channel.target.parse().map_err(|e| {
                        format!("'{}' is not an email address: {e}", channel.target)
                    })?)
                    .subject(one_line(&discord::truncate(&subject, 200)))
                    .header(ContentType::TEXT_PLAIN)
                    .body(body)
                    .map_err(|e| format!("could not build the email: {e}"))
            })();
        let email = match email {
            Ok(m) => m,
            Err(e) => return failed(e, false),
        };
        match transport.send(email).await {
            Ok(resp) => SendOutcome::Answered {
                status: resp.code().to_string().parse().unwrap_or(250),
                excerpt: excerpt(&resp.message().collect::<Vec<_>>().join(" ")),
                retry_after: None,
                latency: started.elapsed(),
            },
            Err(e) => failed(format!("SMTP: {}", error_chain(&e)), !e.is_permanent()),
        }
    }
}

/// A subject on one line: a title built from event data may hold CR/LF, which must not start
/// a header of its own (`Bcc:`) or a body; runs of control characters become one space.
pub(crate) fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut gap = false;
    for c in s.chars() {
        if c.is_control() {
            gap = true;
            continue;
        }
        if gap && !out.is_empty() {
            out.push(' ');
        }
        gap = false;
        out.push(c);
    }
    out
}

/// A wait in seconds sent by a target, as a duration of at most [`MAX_TARGET_WAIT`]; `None`
/// for a negative or non-number value. Checked: any f64 can arrive here.
fn target_wait(secs: f64) -> Option<Duration> {
    if secs.is_nan() || secs < 0.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(secs).map_or(MAX_TARGET_WAIT, |d| d.min(MAX_TARGET_WAIT)))
}

/// At most the first [`RESPONSE_EXCERPT_BYTES`] (and a few more, to tell a cut body) of a
/// response: the rest is never read, so a huge or endless body costs nothing.
async fn read_excerpt(mut resp: reqwest::Response) -> String {
    let limit = RESPONSE_EXCERPT_BYTES + 4;
    let mut buf = Vec::with_capacity(limit);
    while buf.len() < limit {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                buf.extend_from_slice(&chunk[..chunk.len().min(limit - buf.len())]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// The first [`RESPONSE_EXCERPT_BYTES`] of a body, cut at a character boundary.
pub fn excerpt(body: &str) -> String {
    if body.len() <= RESPONSE_EXCERPT_BYTES {
        return body.to_owned();
    }
    let mut end = RESPONSE_EXCERPT_BYTES;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &body[..end])
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn refusal(host: &str, ip: IpAddr, why: &str) -> String {
    format!(
        "refusing to send to {host} ({ip}): it is {why}. Webhooks may only reach public \
         addresses unless the operator sets PULSELINE_ALLOW_PRIVATE_WEBHOOKS=true"
    )
}

/// Checks where `url` leads now (resolving its name), so a name that later resolves to a
/// private address is caught at send time, not only when the channel was created.
pub async fn check_target(url: &Url, allow_private: bool) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("'{url}' is not an http(s) URL"));
    }
    if allow_private {
        return Ok(());
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let Some(host) = url.host_str() else {
        return Err(format!("'{url}' has no host"));
    };
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match literal.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect(),
    };
    for a in &addrs {
        if let Some(why) = forbidden_reason(a.ip()) {
            return Err(refusal(host, a.ip(), &why));
        }
    }
    Ok(())
}

/// Resolves names for outbound requests and refuses private answers, at connection time: what
/// the check before sending saw cannot be swapped for a private address (DNS rebinding).
#[derive(Debug)]
struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for a in &addrs {
                if let Some(why) = forbidden_reason(a.ip()) {
                    let e: Box<dyn std::error::Error + Send + Sync> =
                        refusal(&host, a.ip(), &why).into();
                    return Err(e);
                }
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}
