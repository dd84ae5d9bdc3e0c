//! Web analytics derived at ingest (docs/web-analytics.md): browser, OS, device and bot flag
//! from the User-Agent, location from GeoIP, the visit's source from campaign and referrer, and
//! the client IP kept only when PULSELINE_STORE_IP says so.
//!
//! Only messages that carry something to derive from pay for it: a request from a browser
//! (it sends `Origin`), or a message whose text names `userAgent`, `ip`, `page`, `campaign` or
//! `bot`. A server SDK's `track` has none of these and is stored untouched.

pub mod agent;
pub mod geo;
pub mod source;

use std::net::IpAddr;

use axum::http::{HeaderMap, header};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

pub use crate::config::WebConfig;
use crate::domain::Message;

pub use agent::{AgentParser, MAX_USER_AGENT_BYTES};
pub use geo::GeoDb;

/// Who sent a request, as far as ingest needs to know.
#[derive(Debug, Clone, Default)]
pub struct RequestOrigin {
    /// The client's address (after PULSELINE_TRUSTED_PROXIES).
    pub client_ip: Option<IpAddr>,
    /// Browsers send `Origin` on every cross-site or POST request; server SDKs do not. Only
    /// then are the request's User-Agent and address the visitor's.
    pub from_browser: bool,
    pub user_agent: Option<String>,
}

impl RequestOrigin {
    pub fn of(headers: &HeaderMap, client_ip: Option<IpAddr>) -> Self {
        let from_browser = headers.contains_key(header::ORIGIN);
        let user_agent = from_browser
            .then(|| headers.get(header::USER_AGENT)?.to_str().ok())
            .flatten()
            .map(str::to_owned);
        Self {
            client_ip,
            from_browser,
            user_agent,
        }
    }
}

/// The derivations, shared by every ingest request.
#[derive(Debug)]
pub struct WebAnalytics {
    agents: AgentParser,
    geo: Option<GeoDb>,
    store_ip: bool,
}

/// Keys whose presence in a message's text means there may be something to derive.
const WEB_KEYS: [&str; 5] = [
    "\"userAgent\"",
    "\"ip\"",
    "\"page\"",
    "\"campaign\"",
    "\"bot\"",
];

impl WebAnalytics {
    /// Opens the GeoIP database when one is configured.
    pub fn new(config: &WebConfig) -> anyhow::Result<Self> {
        let geo = config.geoip_db.as_deref().map(GeoDb::open).transpose()?;
        if let Some(db) = &geo {
            tracing::info!(
                kind = db.kind(),
                "GeoIP database loaded: context.location is on"
            );
        }
        Ok(Self {
            agents: AgentParser::new(config.ua_cache_entries),
            geo,
            store_ip: config.store_ip,
        })
    }

    /// Whether locations are derived (a GeoIP database is loaded).
    pub fn geo_enabled(&self) -> bool {
        self.geo.is_some()
    }

    /// The GeoIP database's type, e.g. "GeoLite2-City".
    pub fn geo_database(&self) -> Option<&str> {
        self.geo.as_ref().map(GeoDb::kind)
    }

    /// Whether client addresses are stored (PULSELINE_STORE_IP).
    pub fn stores_ip(&self) -> bool {
        self.store_ip
    }

    /// Adds what can be derived to `m.body`'s `context` and sets `m.bot`.
    pub fn enrich(&self, m: &mut Message, origin: &RequestOrigin) {
        if !origin.from_browser && !WEB_KEYS.iter().any(|k| m.body.contains(k)) {
            return;
        }
        let Some((span, mut ctx)) = context_of(&m.body) else {
            return;
        };
        let mut changed = false;
        let sent_ua = ctx.get("userAgent").and_then(Value::as_str);
        if let Some(ua) = sent_ua.or(origin.user_agent.as_deref()) {
            let agent = self.agents.parse(ua);
            if let Some(b) = &agent.browser {
                ctx.insert("browser".into(), to_value(b));
            }
            if let Some(os) = &agent.os {
                ctx.insert("os".into(), to_value(os));
            }
            // Mobile SDKs send `device` with an id and model: only its type is ours to set.
            let device = ctx
                .entry("device")
                .or_insert_with(|| Value::Object(Map::new()));
            if !device.is_object() {
                *device = Value::Object(Map::new());
            }
            if let Value::Object(d) = device {
                d.insert("type".into(), agent.device.as_str().into());
            }
            if agent.bot {
                ctx.insert("bot".into(), Value::Bool(true));
            }
            changed = true;
        }
        m.bot = ctx.get("bot") == Some(&Value::Bool(true));

        let sent_ip = ctx
            .get("ip")
            .and_then(Value::as_str)
            .and_then(|s| s.trim().parse::<IpAddr>().ok());
        let ip = sent_ip.or(origin.client_ip.filter(|_| origin.from_browser));
        if let (Some(geo), Some(ip)) = (&self.geo, ip)
            && let Some(location) = geo.locate(ip)
        {
            let entry = ctx
                .entry("location")
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let (Value::Object(l), Value::Object(found)) = (entry, to_value(&location)) {
                l.extend(found);
            }
            changed = true;
        }
        if !self.store_ip {
            changed |= ctx.remove("ip").is_some();
        } else if sent_ip.is_none()
            && let Some(ip) = ip
        {
            ctx.insert("ip".into(), ip.to_string().into());
            changed = true;
        }

        if ctx.contains_key("page") || ctx.contains_key("campaign") {
            let text = |obj: &str, key: &str| {
                ctx.get(obj)
                    .and_then(|o| o.get(key))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            let found = source::classify(
                text("campaign", "source").as_deref(),
                text("campaign", "medium").as_deref(),
                text("page", "referrer").as_deref(),
                text("page", "url").as_deref(),
            );
            ctx.insert("source".into(), to_value(&found));
            changed = true;
        }

        if changed {
            let context = Value::Object(ctx).to_string();
            m.body = match span {
                Some((start, end)) => {
                    format!("{}{context}{}", &m.body[..start], &m.body[end..])
                }
                None => {
                    let rest = &m.body[1..];
                    let comma = if rest.trim_start().starts_with('}') {
                        ""
                    } else {
                        ","
                    };
                    format!("{{\"context\":{context}{comma}{rest}")
                }
            };
        }
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A byte range of a message's text.
type Span = (usize, usize);

/// Where a message's `context` is in its text, and its members. `None` span: no `context`
/// key; `None` overall: the message is not an object or `context` is not an object or null
/// (validation has refused those already).
fn context_of(body: &str) -> Option<(Option<Span>, Map<String, Value>)> {
    #[derive(Deserialize)]
    struct Outer<'a> {
        #[serde(default, borrow, deserialize_with = "present")]
        context: Option<&'a RawValue>,
    }
    // `null` as well as an object: a plain `Option` would read `"context":null` as absent.
    fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
        <&'de RawValue>::deserialize(d).map(Some)
    }
    let outer: Outer<'_> = serde_json::from_str(body).ok()?;
    let Some(raw) = outer.context else {
        return Some((None, Map::new()));
    };
    let text = raw.get();
    // The raw value borrows from `body`, so its address gives its position.
    let start = text.as_ptr() as usize - body.as_ptr() as usize;
    let span = Some((start, start + text.len()));
    match serde_json::from_str::<Value>(text).ok()? {
        Value::Object(map) => Some((span, map)),
        Value::Null => Some((span, Map::new())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

    fn message(json: &str) -> Message {
        let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
        Message::parse(&raw, None, 32 * 1024, Utc::now()).unwrap()
    }

    fn web(store_ip: bool) -> WebAnalytics {
        WebAnalytics::new(&WebConfig {
            store_ip,
            ..Default::default()
        })
        .unwrap()
    }

    fn browser() -> RequestOrigin {
        RequestOrigin {
            client_ip: Some("203.0.113.9".parse().unwrap()),
            from_browser: true,
            user_agent: Some(FIREFOX.to_owned()),
        }
    }

    fn context(m: &Message) -> Value {
        serde_json::from_str::<Value>(&m.body).unwrap()["context"].clone()
    }

    #[test]
    fn server_messages_without_web_fields_are_untouched() {
        let json = r#"{"type":"track","event":"Signed Up","userId":"u","context":{"library":{"name":"x"}}}"#;
        let mut m = message(json);
        web(true).enrich(&mut m, &RequestOrigin::default());
        assert_eq!(m.body, json);
        assert!(!m.bot);
    }

    #[test]
    fn browser_requests_get_agent_fields_and_the_rest_of_the_text_is_kept() {
        let json = r#"{"type":"page", "userId":"u","context":null ,"properties":{"a":[1, 2]}}"#;
        let mut m = message(json);
        web(false).enrich(&mut m, &browser());
        assert!(
            m.body.ends_with(r#" ,"properties":{"a":[1, 2]}}"#),
            "{}",
            m.body
        );
        let ctx = context(&m);
        assert_eq!(ctx["browser"]["name"], "Firefox");
        assert_eq!(ctx["os"]["name"], "Linux");
        assert_eq!(ctx["device"]["type"], "desktop");
        assert!(ctx.get("bot").is_none());
        assert!(ctx.get("ip").is_none());

        // No context at all: one is added.
        let mut m = message(r#"{"type":"identify","userId":"u"}"#);
        web(true).enrich(&mut m, &browser());
        assert_eq!(context(&m)["ip"], "203.0.113.9");
        assert_eq!(context(&m)["browser"]["name"], "Firefox");
    }

    #[test]
    fn sent_user_agent_and_ip_win_and_the_ip_is_dropped_by_default() {
        let json = r#"{"type":"track","event":"e","userId":"u","context":{"ip":"198.51.100.4","userAgent":"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)","device":{"id":"d1"}}}"#;
        let mut m = message(json);
        web(false).enrich(&mut m, &RequestOrigin::default());
        let ctx = context(&m);
        assert!(ctx.get("ip").is_none(), "{ctx}");
        assert_eq!(ctx["bot"], true);
        assert_eq!(
            ctx["device"],
            serde_json::json!({"id": "d1", "type": "bot"})
        );
        assert!(m.bot);
        let mut m = message(json);
        web(true).enrich(&mut m, &browser());
        assert_eq!(context(&m)["ip"], "198.51.100.4");
    }

    #[test]
    fn source_from_page_and_campaign() {
        let mut m = message(
            r#"{"type":"page","anonymousId":"a","context":{"page":{"url":"https://shop.example/","referrer":"https://www.google.com/"}}}"#,
        );
        web(false).enrich(&mut m, &RequestOrigin::default());
        assert_eq!(
            context(&m)["source"],
            serde_json::json!({"name": "Google", "medium": "search"})
        );
        let mut m = message(
            r#"{"type":"page","anonymousId":"a","context":{"campaign":{"source":"newsletter","medium":"email"},"page":{"referrer":""}}}"#,
        );
        web(false).enrich(&mut m, &RequestOrigin::default());
        assert_eq!(
            context(&m)["source"],
            serde_json::json!({"name": "newsletter", "medium": "email"})
        );
    }
}
