//! Bounded per-caller state and the network edge, over real HTTP on both backends: login rate
//! limits per real client behind trusted proxies (and only behind them), the audit log's
//! address, rate limiters that forget idle keys, and the operations listener and token.

mod counts;
mod limiters;
mod metrics;
mod proxies;

use std::sync::Arc;

use chrono::Utc;
use pulseline_collector::clock::{Clock, FakeClock, SystemClock};
use pulseline_collector::config::Config;
use pulseline_collector::proxy::ForwardedHeader;
use pulseline_collector::startup::Application;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers;
use crate::helpers::standins;

struct App {
    base: String,
    ops_base: Option<String>,
    http: reqwest::Client,
    admin_email: String,
    admin_password: String,
    secret_key: String,
    database_url: String,
    _dir: tempfile::TempDir,
}

async fn spawn(configure: impl FnOnce(&mut Config), clock: Arc<dyn Clock>) -> App {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests_with_database(helpers::fresh_database_url(dir.path()).await);
    configure(&mut config);
    let database_url = config.database_url.clone();
    let app = Application::build_with_clock(config, clock).await.unwrap();
    let admin = app.first_admin().unwrap();
    let keys = app.bootstrap_keys().unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let ops_base = app.ops_port().map(|p| format!("http://127.0.0.1:{p}"));
    tokio::spawn(app.run_until_stopped());
    App {
        base,
        ops_base,
        http: reqwest::Client::new(),
        admin_email: admin.email,
        admin_password: admin.password,
        secret_key: keys.secret_key,
        database_url,
        _dir: dir,
    }
}

fn trusting_loopback(c: &mut Config) {
    c.proxy.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
}

impl App {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A login attempt carrying `header` (e.g. X-Forwarded-For), as a proxy would send it.
    async fn login(&self, email: &str, password: &str, header: Option<(&str, &str)>) -> StatusCode {
        self.login_body(email, password, header).await.0
    }

    async fn login_body(
        &self,
        email: &str,
        password: &str,
        header: Option<(&str, &str)>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(self.url("/api/dash/session"))
            .json(&json!({"email": email, "password": password}));
        if let Some((k, v)) = header {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn login_audit_ips(&self) -> Vec<String> {
        helpers::query_column(
            &self.database_url,
            "SELECT ip FROM audit_log WHERE action = 'user.login' ORDER BY id",
        )
        .await
    }

    /// `pulseline_rate_limiter_keys{limiter=...}` from /metrics.
    async fn limiter_keys(&self, limiter: &str) -> u64 {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let prefix = format!("pulseline_rate_limiter_keys{{limiter=\"{limiter}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix}in /metrics:\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }
}

const XFF: &str = "x-forwarded-for";
