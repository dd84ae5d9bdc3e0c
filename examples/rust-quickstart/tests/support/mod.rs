//! Shared test support: an in-process collector, and sdk-core's fault-injecting HTTP server on
//! 127.0.0.1 (one file, shared with the core's own tests).
#![allow(dead_code, unreachable_pub)]

#[path = "../../../../sdk-core/tests/support/fault_server.rs"]
pub mod fault_server;

use std::time::Duration;

use pulseline_collector::{config::Config, startup::Application};

/// A live in-process collector with a fresh SQLite database.
pub struct Collector {
    pub port: u16,
    pub write_key: String,
    pub secret_key: String,
    _dir: tempfile::TempDir,
    _task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Collector {
    pub async fn start() -> Collector {
        let dir = tempfile::tempdir().unwrap();
        let app = Application::build(Config::for_tests(dir.path()))
            .await
            .unwrap();
        let port = app.port();
        let keys = app
            .bootstrap_keys()
            .expect("fresh db creates a default project");
        let task = tokio::spawn(app.run_until_stopped());
        Collector {
            port,
            write_key: keys.write_key,
            secret_key: keys.secret_key,
            _dir: dir,
            _task: task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every stored event, following pagination.
    pub async fn events(&self) -> Vec<serde_json::Value> {
        let http = reqwest::Client::new();
        let mut events = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{}/api/v1/events?limit=1000", self.url());
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page: serde_json::Value = http
                .get(url)
                .bearer_auth(&self.secret_key)
                .send()
                .await
                .unwrap()
                .error_for_status()
                .unwrap()
                .json()
                .await
                .unwrap();
            events.extend(page["events"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return events,
            }
        }
    }

    pub async fn events_total(&self) -> u64 {
        let stats: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/api/v1/stats", self.url()))
            .bearer_auth(&self.secret_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        stats["events_total"].as_u64().unwrap()
    }

    /// Waits until the collector holds at least `n` events (for deliveries no flush tracks,
    /// such as a replay of another process's disk buffer).
    pub async fn wait_for_events(&self, n: u64, timeout: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let total = self.events_total().await;
            if total >= n || tokio::time::Instant::now() >= deadline {
                return total;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
