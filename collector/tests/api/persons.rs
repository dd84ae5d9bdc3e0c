//! Deleting, exporting and suppressing one person's data (docs/privacy.md), over HTTP on both
//! backends: what the read API and the dashboard show after a deletion is what a store that
//! never had the person shows. Also the rest of docs/privacy.md: cookieless visitor ids and
//! raw-event retention.

mod access;
mod cookieless;
mod deletion;
mod export;
mod raw_retention;
mod suppression;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use pulseline_collector::clock::{Clock, FakeClock};
use pulseline_collector::config::Config;
use pulseline_collector::startup::Application;
use serde_json::{Value, json};

use crate::helpers;

struct App {
    base: String,
    http: reqwest::Client,
    write_key: String,
    secret_key: String,
    project: i64,
    cookie: String,
    csrf: String,
    database_url: String,
    _dir: tempfile::TempDir,
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 30, 0).unwrap()
}

async fn spawn() -> App {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::for_tests_with_database(helpers::fresh_database_url(dir.path()).await);
    let database_url = config.database_url.clone();
    let clock: Arc<dyn Clock> = Arc::new(FakeClock::new(now()));
    let app = Application::build_with_clock(config, clock).await.unwrap();
    let admin = app.first_admin().unwrap();
    let keys = app.bootstrap_keys().unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{base}/api/dash/session"))
        .json(&json!({"email": admin.email, "password": admin.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    App {
        base,
        http,
        write_key: keys.write_key,
        secret_key: keys.secret_key,
        project: keys.project_id,
        cookie,
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        database_url,
        _dir: dir,
    }
}

impl App {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn ingest(&self, batch: Vec<Value>) -> Value {
        let resp = self
            .http
            .post(self.url("/v1/batch"))
            .basic_auth(&self.write_key, Some(""))
            .json(&json!({ "batch": batch }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    /// A secret-key request; the status and the body as text.
    async fn secret(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, String) {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.secret_key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn secret_json(&self, method: reqwest::Method, path: &str) -> (u16, Value) {
        let (status, text) = self.secret(method, path, None).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A dashboard change as the user with this cookie and CSRF token.
    async fn dash_send(
        &self,
        method: reqwest::Method,
        (cookie, csrf): (&str, &str),
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let resp = self
            .http
            .request(method, self.url(path))
            .header("cookie", cookie)
            .header("x-csrf-token", csrf)
            .header("origin", &self.base)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn dash(&self, path: &str) -> Value {
        let resp = self
            .http
            .get(self.url(&format!("/api/dash/projects/{}{path}", self.project)))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        resp.json().await.unwrap()
    }

    /// Everything the read API and the dashboard say about the project, except event ids.
    async fn view(&self) -> Value {
        let (_, stats) = self
            .secret_json(reqwest::Method::GET, "/api/v1/stats")
            .await;
        let (_, events) = self
            .secret_json(reqwest::Method::GET, "/api/v1/events?limit=1000")
            .await;
        let mut ids: Vec<String> = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["messageId"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        let day = 86_400_000;
        let to = now().timestamp_millis() + day;
        let from = to - 30 * day;
        let series = self
            .dash(&format!("/series?from={from}&to={to}&bucket=3600000"))
            .await;
        json!({
            "events_total": stats["events_total"],
            "events": ids,
            "overview": self.dash("/overview").await,
            "series": series,
        })
    }
}

fn hours_ago(h: i64) -> String {
    (now() - chrono::Duration::hours(h)).to_rfc3339()
}

fn track(user: Option<&str>, anon: Option<&str>, event: &str, id: &str, hours: i64) -> Value {
    json!({"type": "track", "userId": user, "anonymousId": anon, "event": event,
           "messageId": id, "timestamp": hours_ago(hours), "properties": {"plan": "pro"}})
}

/// Everyone else: present in both stores.
fn others() -> Vec<Value> {
    vec![
        track(Some("bob"), None, "signup", "o-1", 1),
        track(Some("bob"), None, "purchase", "o-2", 30),
        track(None, Some("anon-c"), "signup", "o-3", 1),
        track(Some("carol"), Some("anon-c2"), "purchase", "o-4", 50),
        json!({"type": "page", "userId": "bob", "name": "Home", "messageId": "o-5",
               "timestamp": hours_ago(1)}),
    ]
}

/// Alice under three ids: her user id, the anonymous id an identify links to it, and the id an
/// alias renamed. Her events share hours and names with the others', so rollups must be
/// decremented, not dropped.
fn alice() -> Vec<Value> {
    vec![
        track(Some("alice"), None, "signup", "a-1", 1),
        track(Some("alice"), None, "purchase", "a-2", 30),
        json!({"type": "identify", "userId": "alice", "anonymousId": "anon-a",
               "messageId": "a-3", "timestamp": hours_ago(2), "traits": {"email": "a@x"}}),
        track(None, Some("anon-a"), "signup", "a-4", 75),
        json!({"type": "alias", "userId": "alice", "previousId": "old-alice",
               "messageId": "a-5", "timestamp": hours_ago(3)}),
        track(Some("old-alice"), None, "purchase", "a-6", 50),
        json!({"type": "page", "anonymousId": "anon-a", "name": "Home", "messageId": "a-7",
               "timestamp": hours_ago(1)}),
    ]
}

/// Every `purchase` becomes an outbox notification (to a closed loopback port).
async fn notify_purchases(app: &App) {
    let (status, channel) = app
        .secret(
            reqwest::Method::POST,
            "/api/v1/channels",
            Some(json!({"name": "w", "kind": "webhook", "url": "http://127.0.0.1:9/hook"})),
        )
        .await;
    assert_eq!(status, 201, "{channel}");
    let channel: Value = serde_json::from_str(&channel).unwrap();
    let (status, body) = app
        .secret(
            reqwest::Method::POST,
            "/api/v1/categories",
            Some(
                json!({"name": "Purchases", "pattern": "purchase", "emoji": "💰",
                        "colour": 0x2ECC71, "channel_id": channel["id"]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn delivery_sources(app: &App) -> Vec<String> {
    let (status, body) = app
        .secret_json(reqwest::Method::GET, "/api/v1/deliveries?limit=100")
        .await;
    assert_eq!(status, 200, "{body}");
    let list = body
        .get("deliveries")
        .unwrap_or(&body)
        .as_array()
        .unwrap_or_else(|| panic!("a list of deliveries: {body}"));
    let mut sources: Vec<String> = list
        .iter()
        .map(|d| d["source"].as_str().unwrap().to_owned())
        .collect();
    sources.sort();
    sources
}
