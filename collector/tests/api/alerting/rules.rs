//! Alert rules end to end: events in over /v1/batch with explicit timestamps, rules over the
//! REST API, evaluation passes at fake times, and the alert_events rows delivery will send.

mod api;
mod buckets;
mod evaluation;
mod evaluators;

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use pulseline_collector::alerting::rules::run_once;
use pulseline_collector::clock::FakeClock;
use serde_json::{Value, json};

use crate::helpers::{self, TestApp};

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, h, m, s).unwrap()
}

/// 2026-11-20 00:00 UTC plus `hours` (may be negative).
fn hour(hours: i64) -> DateTime<Utc> {
    at(0, 0, 0) + Duration::hours(hours)
}

struct Rig {
    app: TestApp,
    clock: Arc<FakeClock>,
    store: pulseline_collector::store::Store,
    sent: usize,
}

async fn rig() -> Rig {
    let clock = Arc::new(FakeClock::new(at(0, 0, 0)));
    let app = helpers::spawn_app_with_clock(|_| {}, clock.clone()).await;
    let store = app.store().await;
    Rig {
        app,
        clock,
        store,
        sent: 0,
    }
}

impl Rig {
    /// Sends track events `(event, timestamp, properties)` through /v1/batch, 500 per request.
    async fn send(&mut self, events: &[(&str, DateTime<Utc>, Value)]) {
        for chunk in events.chunks(500) {
            let batch: Vec<Value> = chunk
                .iter()
                .map(|(event, ts, props)| {
                    self.sent += 1;
                    json!({
                        "type": "track", "userId": "u", "event": event,
                        "messageId": format!("m-{}", self.sent),
                        "timestamp": ts.to_rfc3339(), "properties": props,
                    })
                })
                .collect();
            let resp = self.app.post("/v1/batch", &json!({ "batch": batch })).await;
            assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        }
    }

    /// `n` events spread over the hour starting at `start`.
    async fn send_hour(&mut self, event: &str, start: DateTime<Utc>, n: usize, props: Value) {
        let events: Vec<(&str, DateTime<Utc>, Value)> = (0..n)
            .map(|i| {
                let offset = Duration::seconds(i64::try_from(i * 3000 / n.max(1)).unwrap() + 30);
                (event, start + offset, props.clone())
            })
            .collect();
        self.send(&events).await;
    }

    async fn create_rule(&self, rule: Value) -> i64 {
        let created = self.app.create("/api/v1/rules", rule).await;
        created["id"].as_i64().unwrap()
    }

    /// A channel of the rig's project to name in `channel_ids` (e-mail: nothing listens).
    async fn channel(&self, name: &str) -> i64 {
        let channel = json!({"name": name, "kind": "email", "email": "ops@pulseline.test"});
        self.app.create_channel(channel).await["id"]
            .as_i64()
            .unwrap()
    }

    /// One evaluation pass at `now`.
    async fn pass_at(&self, now: DateTime<Utc>) {
        self.clock.set(now);
        run_once(&self.store, now, "test-evaluator").await.unwrap();
    }

    async fn rows(&self, kind: &str) -> i64 {
        self.app
            .query_i64(&format!(
                "SELECT COUNT(*) FROM alert_events WHERE kind = '{kind}'"
            ))
            .await
    }

    async fn counts(&self) -> [i64; 4] {
        [
            self.rows("firing").await,
            self.rows("resolved").await,
            self.rows("repeat").await,
            self.rows("no_data").await,
        ]
    }

    async fn last_description(&self, kind: &str) -> String {
        let sql =
            format!("SELECT id FROM alert_events WHERE kind = '{kind}' ORDER BY id DESC LIMIT 1");
        let id = self.app.query_i64(&sql).await;
        text(
            &self.app.database_url,
            &format!("SELECT description FROM alert_events WHERE id = {id}"),
        )
        .await
    }
}

async fn text(database_url: &str, sql: &str) -> String {
    let mut values = helpers::query_column(database_url, sql).await;
    assert!(!values.is_empty(), "no row from {sql}");
    values.swap_remove(0)
}

/// Just after the hour closes (and settles): when the evaluator first sees it.
fn after(h: i64) -> DateTime<Utc> {
    hour(h) + Duration::seconds(20)
}
