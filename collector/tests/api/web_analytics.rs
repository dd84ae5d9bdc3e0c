//! Web analytics derived at ingest (docs/web-analytics.md), over a real socket on both
//! backends: User-Agent → browser/OS/device and bots, GeoIP from a database the test writes,
//! the client IP not stored by default, referrer → source, bots out of the analytics, and
//! Segment's browser-SDK paths and settings.

mod bots;
mod context;
mod geoip;
mod segment;
mod sources;

use std::path::Path;
use std::sync::Arc;

use pulseline_collector::clock::SystemClock;
use pulseline_collector::config::Config;
use pulseline_collector::startup::Application;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers;

const CHROME_ANDROID: &str = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";

const SAFARI_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15";

const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

struct App {
    base: String,
    http: reqwest::Client,
    write_key: String,
    secret_key: String,
    project: i64,
    cookie: String,
    _dir: tempfile::TempDir,
}

async fn spawn(configure: impl FnOnce(&mut Config)) -> App {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests_with_database(helpers::fresh_database_url(dir.path()).await);
    configure(&mut config);
    let app = Application::build_with_clock(config, Arc::new(SystemClock))
        .await
        .unwrap();
    let admin = app.first_admin().unwrap();
    let keys = app.bootstrap_keys().unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    let login = http
        .post(format!("{base}/api/dash/session"))
        .json(&json!({"email": admin.email, "password": admin.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    App {
        base,
        http,
        write_key: keys.write_key,
        secret_key: keys.secret_key,
        project: keys.project_id,
        cookie,
        _dir: dir,
    }
}

impl App {
    /// A message as a browser sends it: `Origin`, its own User-Agent, `text/plain`.
    async fn send_as_browser(&self, path: &str, ua: &str, mut message: Value) -> StatusCode {
        message["writeKey"] = json!(self.write_key);
        self.http
            .post(format!("{}{path}", self.base))
            .header("origin", "https://shop.example")
            .header("user-agent", ua)
            .header("content-type", "text/plain;charset=UTF-8")
            .header("x-forwarded-for", "81.2.69.160")
            .body(message.to_string())
            .send()
            .await
            .unwrap()
            .status()
    }

    /// A message as a server SDK sends it: no `Origin`, the SDK's User-Agent.
    async fn send_as_server(&self, message: Value) -> StatusCode {
        self.http
            .post(format!("{}/v1/batch", self.base))
            .basic_auth(&self.write_key, Some(""))
            .header("user-agent", "pulseline-python/1.0 python-requests/2.32")
            .json(&json!({"batch": [message]}))
            .send()
            .await
            .unwrap()
            .status()
    }

    /// The stored message with this id.
    async fn stored(&self, message_id: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}/api/v1/events?limit=1000", self.base))
            .bearer_auth(&self.secret_key)
            .send()
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        let events = body["events"].as_array().unwrap();
        let event = events
            .iter()
            .find(|e| e["messageId"] == message_id)
            .unwrap_or_else(|| panic!("{message_id} not stored: {body}"));
        event.clone()
    }

    async fn dash(&self, path: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        resp.json().await.unwrap()
    }
}

fn page(id: &str, context: Value) -> Value {
    json!({"type": "page", "messageId": id, "anonymousId": format!("anon-{id}"),
           "name": "Home", "context": context})
}

fn trusting_loopback(config: &mut Config) {
    config.proxy.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
}
