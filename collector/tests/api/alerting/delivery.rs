//! Delivery end to end: events through real HTTP ingest become notifications on local
//! stand-ins for Discord, Slack, a signed webhook receiver and an SMTP server, exactly once.

mod caps;
mod channels;
mod discord;
mod lifecycle;
mod packing;
mod retries;
mod tenancy;
mod validation;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::standins::{self, Scripted};
use crate::helpers::{self, TestApp, WAIT, spawn_app, spawn_app_with};

fn event(name: &str, id: &str, properties: Value) -> Value {
    json!({"type": "track", "userId": "user-42", "event": name, "messageId": id,
           "timestamp": "2026-11-22T10:00:00.000Z", "properties": properties})
}

/// The header of each notification Slack accepted (one header block per notification, however
/// they were packed), waiting until there are at least `n`.
async fn slack_headers(slack: &standins::StandIn, n: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let headers: Vec<String> = slack
            .receiver
            .accepted()
            .iter()
            .flat_map(|m| m["blocks"].as_array().cloned().unwrap_or_default())
            .filter(|b| b["type"] == "header")
            .map(|b| b["text"]["text"].as_str().unwrap_or_default().to_owned())
            .collect();
        if headers.len() >= n {
            return headers;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} Slack notifications: {headers:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
