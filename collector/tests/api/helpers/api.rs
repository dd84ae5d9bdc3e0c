//! The secret-key API as a test meets it: requests as the app's project, and the channels,
//! categories, inbound sources and deliveries the alerting and inbound tests work with.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use super::TestApp;

/// How long a test waits for the background delivery loop before it fails.
pub const WAIT: Duration = Duration::from_secs(15);

impl TestApp {
    /// A request to the secret-key API as the app's project: the status and the JSON body.
    pub async fn api(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.api_as(&self.keys.secret_key, method, path, body).await
    }

    /// A request with `key` (a project's secret key) as bearer.
    pub async fn api_as(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// POSTs `body` to `path` and expects it created (201).
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let (status, created) = self.api(Method::POST, path, Some(body)).await;
        assert_eq!(status, 201, "{path}: {created}");
        created
    }

    pub async fn create_channel(&self, body: Value) -> Value {
        self.create("/api/v1/channels", body).await
    }

    pub async fn create_category(&self, body: Value) -> Value {
        self.create("/api/v1/categories", body).await
    }

    pub async fn create_source(&self, body: Value) -> Value {
        self.create("/api/v1/inbound-sources", body).await
    }

    /// Sends `batch` with the write key and expects it accepted.
    pub async fn post_batch(&self, batch: Vec<Value>) {
        let resp = self.post("/v1/batch", &json!({"batch": batch})).await;
        assert_eq!(resp.status(), 200);
    }

    /// Waits until the deliveries API shows `n` deliveries in `status`.
    pub async fn deliveries_in(&self, status: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let (code, body) = self
                .get_json(&format!("/api/v1/deliveries?status={status}"))
                .await;
            assert_eq!(code, 200, "{body}");
            let list = body["deliveries"].as_array().cloned().unwrap_or_default();
            if list.len() >= n {
                return list;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} {status} deliveries, have {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn all_deliveries(&self) -> Vec<Value> {
        let (_, body) = self.get_json("/api/v1/deliveries?limit=500").await;
        body["deliveries"].as_array().cloned().unwrap_or_default()
    }
}
