//! Alert rules end to end: events in over /v1/batch with explicit timestamps, rules over the
//! REST API, evaluation passes at fake times, and the alert_events rows delivery will send.

use crate::helpers;

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use pulseline_collector::alerting::rules::run_once;
use pulseline_collector::clock::FakeClock;
use serde_json::{Value, json};

use crate::helpers::TestApp;

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
        let resp = self
            .app
            .http
            .post(self.app.url("/api/v1/rules"))
            .bearer_auth(&self.app.keys.secret_key)
            .json(&rule)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        body["id"].as_i64().unwrap()
    }

    /// A channel of the rig's project to name in `channel_ids` (e-mail: nothing listens).
    async fn channel(&self, name: &str) -> i64 {
        let resp = self
            .app
            .http
            .post(self.app.url("/api/v1/channels"))
            .bearer_auth(&self.app.keys.secret_key)
            .json(&json!({"name": name, "kind": "email", "email": "ops@pulseline.test"}))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        body["id"].as_i64().unwrap()
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

#[tokio::test]
async fn threshold_rule_pends_fires_once_resolves_once_and_cooldown_stops_flapping() {
    let mut rig = rig().await;
    // Signups per hour: 10, 10, 10, 2 (recovery), 10, 10, 10.
    for (h, n) in [(0, 10), (1, 10), (2, 10), (3, 2), (4, 10), (5, 10), (6, 10)] {
        rig.send_hour("signup", hour(h), n, json!({"plan": "pro"}))
            .await;
    }
    rig.send_hour("login", hour(0), 50, json!({})).await; // another event: not counted
    let (c1, c2) = (rig.channel("a").await, rig.channel("b").await);
    let id = rig
        .create_rule(json!({
            "name": "Signup surge", "channel_ids": [c1, c2],
            "series": {"event": "signup", "bucket": "hour"},
            "condition": {"type": "threshold", "op": ">", "value": 5},
            "for_secs": 3600, "cooldown_secs": 10800
        }))
        .await;

    rig.pass_at(after(1)).await; // hour 0 breaches: pending
    assert_eq!(rig.counts().await, [0, 0, 0, 0]);
    let (_, rule) = rig.app.get_json(&format!("/api/v1/rules/{id}")).await;
    assert_eq!(rule["state"], "pending");

    rig.pass_at(after(2)).await; // held for an hour: fires
    assert_eq!(rig.counts().await, [1, 0, 0, 0]);
    let description = rig.last_description("firing").await;
    assert!(
        description.contains("count of signup per hour was 10") && description.contains("> 5"),
        "{description}"
    );
    let channels = text(
        &rig.app.database_url,
        "SELECT CAST(channel_ids AS TEXT) FROM alert_events",
    )
    .await;
    assert_eq!(channels.replace(' ', ""), format!("[{c1},{c2}]"));

    rig.pass_at(after(2) + Duration::minutes(30)).await; // same bucket again
    rig.pass_at(after(3)).await; // still breaching: no new row (no repeat interval)
    assert_eq!(rig.counts().await, [1, 0, 0, 0]);

    rig.pass_at(after(4)).await; // hour 3 has 2: resolved
    assert_eq!(rig.counts().await, [1, 1, 0, 0]);
    rig.pass_at(after(4) + Duration::minutes(10)).await;
    assert_eq!(rig.counts().await, [1, 1, 0, 0]);

    rig.pass_at(after(5)).await; // breaching again, inside the 3 h cooldown
    rig.pass_at(after(6)).await;
    assert_eq!(rig.counts().await, [1, 1, 0, 0], "cooldown holds it back");
    let (_, rule) = rig.app.get_json(&format!("/api/v1/rules/{id}")).await;
    assert_eq!(rule["state"], "pending");
    rig.pass_at(after(7)).await; // 3 h after the resolve, still breaching: fires again
    assert_eq!(rig.counts().await, [2, 1, 0, 0]);

    let (status, alerts) = rig.app.get_json("/api/v1/alerts").await;
    assert_eq!(status, 200, "{alerts}");
    let alerts = alerts["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0]["status"], "firing");
    assert_eq!(alerts[1]["status"], "resolved");
    assert_eq!(alerts[1]["value"], 10.0);
    assert_eq!(alerts[1]["expected"], 5.0);
    assert_eq!(alerts[1]["started_at"], "2026-11-20T02:00:20.000Z");
    assert_eq!(alerts[1]["resolved_at"], "2026-11-20T04:00:20.000Z");
    assert_eq!(alerts[1]["rule_id"], id);

    // Deleting the firing rule closes its open alert; the history stays.
    rig.clock.set(after(8));
    let resp = rig
        .app
        .http
        .delete(rig.app.url(&format!("/api/v1/rules/{id}")))
        .bearer_auth(&rig.app.keys.secret_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (_, alerts) = rig
        .app
        .get_json(&format!("/api/v1/alerts?rule_id={id}"))
        .await;
    assert_eq!(alerts["alerts"][0]["status"], "resolved");
    assert_eq!(
        alerts["alerts"][0]["resolved_at"],
        "2026-11-20T08:00:20.000Z"
    );
    assert_eq!(alerts["alerts"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn repeat_interval_sends_repeat_rows_while_firing() {
    let mut rig = rig().await;
    for h in 0..4 {
        rig.send_hour("error", hour(h), 30, json!({})).await;
    }
    rig.create_rule(json!({
        "name": "Errors", "series": {"event": "error", "bucket": "hour"},
        "condition": {"type": "threshold", "op": ">=", "value": 30},
        "repeat_secs": 7200
    }))
    .await;
    rig.pass_at(after(1)).await;
    assert_eq!(rig.counts().await, [1, 0, 0, 0]);
    rig.pass_at(after(2)).await; // 1 h: not yet
    assert_eq!(rig.counts().await, [1, 0, 0, 0]);
    rig.pass_at(after(3)).await; // 2 h since the firing notice
    assert_eq!(rig.counts().await, [1, 0, 1, 0]);
    rig.pass_at(after(4)).await;
    assert_eq!(rig.counts().await, [1, 0, 1, 0]);
    rig.pass_at(after(5)).await; // hour 4 empty: 0, resolves
    assert_eq!(rig.counts().await, [1, 1, 1, 0]);
    let resolved = rig.last_description("resolved").await;
    assert!(
        resolved.contains("is back to 0") && resolved.contains("after firing for 240 min"),
        "{resolved}"
    );
    let repeat = rig.last_description("repeat").await;
    assert!(repeat.contains("still firing"), "{repeat}");
}

#[tokio::test]
async fn no_data_modes_zero_keep_and_alert() {
    let mut rig = rig().await;
    // Checkout amounts in hours 0 and 1 only; hours 2 and 3 are silent; hour 4 is back.
    for h in [0, 1, 4] {
        rig.send_hour("checkout", hour(h), 4, json!({"value": 100}))
            .await;
    }
    let series = json!({"event": "checkout", "aggregate": "avg", "bucket": "hour"});
    let c = [
        rig.channel("zero").await,
        rig.channel("keep").await,
        rig.channel("alert").await,
    ];
    // zero: the silent hour averages 0, below 50.
    rig.create_rule(json!({"name": "zero", "series": series, "no_data": "zero",
        "condition": {"type": "threshold", "op": "<", "value": 50}, "channel_ids": [c[0]]}))
        .await;
    // keep: a firing rule stays firing through the silence, and nothing is sent.
    rig.create_rule(json!({"name": "keep", "series": series, "no_data": "keep",
        "condition": {"type": "threshold", "op": ">", "value": 50}, "channel_ids": [c[1]]}))
        .await;
    // alert: the silence itself is the alert.
    rig.create_rule(
        json!({"name": "alert", "series": series, "no_data": "alert",
        "condition": {"type": "threshold", "op": ">", "value": 500}, "channel_ids": [c[2]]}),
    )
    .await;
    let by_channel = |c: i64, kind: &str| {
        format!(
            "SELECT COUNT(*) FROM alert_events WHERE kind = '{kind}' AND CAST(channel_ids AS TEXT) = '[{c}]'"
        )
    };
    rig.pass_at(after(1)).await; // hour 0: avg 100
    rig.pass_at(after(2)).await; // hour 1: avg 100
    assert_eq!(rig.app.query_i64(&by_channel(c[1], "firing")).await, 1);
    rig.pass_at(after(3)).await; // hour 2: silent
    rig.pass_at(after(4)).await; // hour 3: silent
    assert_eq!(rig.app.query_i64(&by_channel(c[0], "firing")).await, 1);
    assert_eq!(rig.app.query_i64(&by_channel(c[1], "resolved")).await, 0);
    assert_eq!(rig.app.query_i64(&by_channel(c[2], "no_data")).await, 1);
    let no_data = rig.last_description("no_data").await;
    assert!(
        no_data.contains("No data for avg of checkout.value per hour"),
        "{no_data}"
    );
    rig.pass_at(after(5)).await; // hour 4: data is back at 100
    assert_eq!(rig.app.query_i64(&by_channel(c[0], "resolved")).await, 1);
    assert_eq!(rig.app.query_i64(&by_channel(c[1], "resolved")).await, 0);
    assert_eq!(rig.app.query_i64(&by_channel(c[2], "resolved")).await, 1);
    assert_eq!(rig.counts().await, [2, 2, 0, 1]);
}

#[tokio::test]
async fn aggregates_with_filters_match_hand_computed_values() {
    let mut rig = rig().await;
    let t = |m: i64| hour(0) + Duration::minutes(m);
    // Minute 1: DE 10, 20, 30, 40; FR 1000 (filtered out); a non-numeric value (ignored).
    // Minute 2: DE 5.
    rig.send(&[
        ("latency", t(1), json!({"value": 10, "country": "DE"})),
        ("latency", t(1), json!({"value": 20.0, "country": "DE"})),
        ("latency", t(1), json!({"value": 30, "country": "DE"})),
        ("latency", t(1), json!({"value": 40, "country": "DE"})),
        ("latency", t(1), json!({"value": 1000, "country": "FR"})),
        ("latency", t(1), json!({"value": "slow", "country": "DE"})),
        (
            "latency",
            t(2),
            json!({"value": 5, "country": "DE", "ms": 7}),
        ),
        ("other", t(1), json!({"value": 99, "country": "DE"})),
    ])
    .await;
    let expected = [
        ("count", 5.0, 1.0),
        ("sum", 100.0, 5.0),
        ("avg", 25.0, 5.0),
        ("min", 10.0, 5.0),
        ("max", 40.0, 5.0),
        // percentile_cont(0.75) of 10, 20, 30, 40: position 2.25 → 30 + 0.25 × 10.
        ("p75", 32.5, 5.0),
    ];
    let mut ids = Vec::new();
    for (agg, _, _) in expected {
        let series = if agg == "count" {
            json!({"event": "latency", "aggregate": agg, "bucket": "minute", "filters": {"country": "DE"}})
        } else {
            json!({"event": "latency", "aggregate": agg, "bucket": "minute", "filters": {"country": "DE"}, "property": "value"})
        };
        ids.push(
            rig.create_rule(json!({"name": agg, "series": series,
                "condition": {"type": "threshold", "op": ">", "value": 1e9}, "no_data": "keep"}))
                .await,
        );
    }
    rig.clock
        .set(hour(0) + Duration::minutes(3) + Duration::seconds(20));
    for ((agg, minute1, minute2), id) in expected.iter().zip(&ids) {
        let (status, preview) = rig
            .app
            .get_json(&format!("/api/v1/rules/{id}/preview?buckets=3"))
            .await;
        assert_eq!(status, 200, "{preview}");
        let points = preview["points"].as_array().unwrap();
        assert_eq!(points.len(), 3);
        assert_eq!(points[0]["start"], "2026-11-20T00:00:00.000Z");
        assert_eq!(
            points[0]["value"],
            Value::Null,
            "{agg}: minute 0 has no data"
        );
        assert_eq!(points[1]["value"].as_f64(), Some(*minute1), "{agg}");
        assert_eq!(points[2]["value"].as_f64(), Some(*minute2), "{agg}");
        assert_eq!(points[1]["threshold"].as_f64(), Some(1e9));
    }
    // Numbers and booleans filter by JSON type and value.
    let id = rig
        .create_rule(
            json!({"name": "ms", "series": {"event": "latency", "aggregate": "sum",
            "bucket": "minute", "filters": {"ms": 7}},
            "condition": {"type": "threshold", "op": ">", "value": 1}}),
        )
        .await;
    let (_, preview) = rig
        .app
        .get_json(&format!("/api/v1/rules/{id}/preview?buckets=3"))
        .await;
    assert_eq!(preview["points"][1]["value"].as_f64(), Some(0.0));
    assert_eq!(preview["points"][2]["value"].as_f64(), Some(5.0));
}

#[tokio::test]
async fn anomaly_rule_fires_on_a_seasonal_drop_and_names_the_country_that_moved() {
    let mut rig = rig().await;
    // Three weeks and a bit of a daily pattern (the detector sizes its band by the largest miss
    // of its baseline over the last 500 buckets, so it wants that much seasonal history): busy
    // 09:00–17:00 (DE 24, FR 10, US 6 per hour), quiet nights (4 per hour). On the last day at
    // 14:00 DE collapses to 2.
    const DAYS: i64 = 24;
    let last = (DAYS - 1) * 24;
    let mut events = Vec::new();
    for day in 0..DAYS {
        for h in 0..24 {
            let start = hour(day * 24 + h);
            let busy = (9..17).contains(&h);
            let drop = day == DAYS - 1 && h == 14;
            let mix: Vec<(&str, usize)> = if busy {
                vec![("DE", if drop { 2 } else { 24 }), ("FR", 10), ("US", 6)]
            } else {
                vec![("DE", 2), ("FR", 1), ("US", 1)]
            };
            for (country, n) in mix {
                for i in 0..n {
                    let ts = start + Duration::seconds(i64::try_from(i).unwrap() * 60 + 5);
                    events.push((
                        "purchase",
                        ts,
                        json!({"country": country, "user_id_like": format!("u{i}")}),
                    ));
                }
            }
        }
    }
    rig.send(&events).await;
    let id = rig
        .create_rule(json!({
            "name": "Purchases anomaly",
            "series": {"event": "purchase", "bucket": "hour"},
            "condition": {"type": "anomaly", "direction": "down", "seasonality": "daily",
                          "min_volume": 5}
        }))
        .await;
    // The last day from midnight to 13:00, including the morning ramp to the busy hours: nothing.
    for h in last..=last + 14 {
        rig.pass_at(after(h)).await;
    }
    assert_eq!(
        rig.counts().await,
        [0, 0, 0, 0],
        "normal seasonal peaks do not fire"
    );
    rig.pass_at(after(last + 15)).await; // the 14:00 bucket
    assert_eq!(rig.counts().await, [1, 0, 0, 0]);
    let description = rig.last_description("firing").await;
    assert!(description.contains("expected about 40"), "{description}");
    assert!(
        description.contains("count of purchase per hour was 18"),
        "{description}"
    );
    assert!(
        description
            .contains("The drop is concentrated in country=DE: \u{2212}92% vs baseline (24 → 2)"),
        "{description}"
    );
    let fields = text(
        &rig.app.database_url,
        "SELECT CAST(fields AS TEXT) FROM alert_events WHERE kind = 'firing'",
    )
    .await;
    let fields: Value = serde_json::from_str(&fields).unwrap();
    let movers = fields
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Top movers")
        .expect("a Top movers field");
    assert!(
        movers["value"].as_str().unwrap().starts_with("country=DE"),
        "{movers}"
    );
    rig.pass_at(after(last + 16)).await; // 15:00 is normal again
    assert_eq!(rig.counts().await, [1, 1, 0, 0]);

    // The preview draws the band the evaluator used.
    rig.clock.set(after(last + 16));
    let (_, preview) = rig
        .app
        .get_json(&format!("/api/v1/rules/{id}/preview?buckets=3"))
        .await;
    let p = &preview["points"];
    let start = hour(last + 14).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(p[1]["start"], start.as_str());
    assert_eq!(p[1]["value"].as_f64(), Some(18.0));
    assert_eq!(p[1]["expected"].as_f64(), Some(40.0));
    assert_eq!(p[1]["breach"], true);
    assert_eq!(p[2]["breach"], false);
    assert!(p[1]["lower"].as_f64().unwrap() > 18.0);
}

#[tokio::test]
async fn rules_api_validates_isolates_projects_and_is_documented() {
    let rig = rig().await;
    let app = &rig.app;
    let post = |body: Value| {
        app.http
            .post(app.url("/api/v1/rules"))
            .bearer_auth(&app.keys.secret_key)
            .json(&body)
            .send()
    };
    for (body, says) in [
        (
            json!({"name": "x", "series": {"event": "e"}, "condition": {"type": "threshold", "op": "=>", "value": 1}}),
            "unknown variant `=>`",
        ),
        (
            json!({"name": "", "series": {"event": "e"}, "condition": {"type": "threshold", "op": ">", "value": 1}}),
            "name must be 1 to 200",
        ),
        (
            json!({"name": "x", "series": {"event": "e", "property": "v"}, "condition": {"type": "threshold", "op": ">", "value": 1}}),
            "remove it for count",
        ),
        (
            json!({"name": "x", "series": {"event": "e", "filters": {"a": [1]}}, "condition": {"type": "threshold", "op": ">", "value": 1}}),
            "must be a string, number or boolean",
        ),
        (
            json!({"name": "x", "series": {"event": "e"}, "condition": {"type": "anomaly", "sensitivity": 0}}),
            "sensitivity must be above 0",
        ),
        (
            json!({"name": "x", "series": {"event": "e"}, "condition": {"type": "threshold", "op": ">", "value": 1}, "for_secs": 99999999}),
            "at most 2592000",
        ),
        (
            json!({"name": "x", "series": {"event": "e"}, "condition": {"type": "threshold", "op": ">", "value": 1}, "colour": 1}),
            "unknown field `colour`",
        ),
    ] {
        let resp = post(body).await.unwrap();
        assert_eq!(resp.status(), 400);
        let err: Value = resp.json().await.unwrap();
        assert!(err["message"].as_str().unwrap().contains(says), "{err}");
    }
    // A write key cannot manage rules.
    let resp = app
        .http
        .get(app.url("/api/v1/rules"))
        .bearer_auth(&app.keys.write_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    let rule = json!({"name": "Signups", "series": {"event": "signup"},
        "condition": {"type": "threshold", "op": ">", "value": 50}});
    let id = rig.create_rule(rule.clone()).await;
    let (status, got) = app.get_json(&format!("/api/v1/rules/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(got["name"], "Signups");
    assert_eq!(got["series"]["bucket"], "hour");
    assert_eq!(got["no_data"], "zero");
    assert_eq!(got["state"], "ok");
    let mut changed = rule.clone();
    changed["condition"]["value"] = json!(80);
    let resp = app
        .http
        .put(app.url(&format!("/api/v1/rules/{id}")))
        .bearer_auth(&app.keys.secret_key)
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, list) = app.get_json("/api/v1/rules").await;
    assert_eq!(list["rules"].as_array().unwrap().len(), 1);
    let (status, err) = app
        .get_json(&format!("/api/v1/rules/{id}/preview?buckets=5000"))
        .await;
    assert_eq!(status, 400);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("between 1 and 1000"),
        "{err}"
    );
    let (status, err) = app.get_json("/api/v1/alerts?limit=0").await;
    assert_eq!(status, 400, "{err}");
    let (status, _) = app.get_json("/api/v1/rules/not-a-number").await;
    assert_eq!(status, 404);
    assert_eq!(list["rules"][0]["condition"]["value"], 80.0);

    // Project B's secret key sees none of A's rules.
    let b = pulseline_collector::projects::create_project(&rig.store, "B", "unlimited", Utc::now())
        .await
        .unwrap();
    for (method, path) in [
        ("GET", format!("/api/v1/rules/{id}")),
        ("GET", format!("/api/v1/rules/{id}/preview")),
        ("PUT", format!("/api/v1/rules/{id}")),
        ("DELETE", format!("/api/v1/rules/{id}")),
    ] {
        let resp = app
            .http
            .request(method.parse().unwrap(), app.url(&path))
            .bearer_auth(&b.secret_key)
            .json(&rule)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{method} {path}");
    }
    let resp = app
        .http
        .get(app.url("/api/v1/rules"))
        .bearer_auth(&b.secret_key)
        .send()
        .await
        .unwrap();
    let list: Value = resp.json().await.unwrap();
    assert_eq!(list["rules"], json!([]));

    let resp = app
        .http
        .delete(app.url(&format!("/api/v1/rules/{id}")))
        .bearer_auth(&app.keys.secret_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (status, _) = app.get_json(&format!("/api/v1/rules/{id}")).await;
    assert_eq!(status, 404);

    let (_, doc) = app.get_json("/openapi.json").await;
    for path in [
        "/api/v1/rules",
        "/api/v1/rules/{id}",
        "/api/v1/rules/{id}/preview",
        "/api/v1/alerts",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
}

/// Issue 16: a rule may name only its own project's channels, on create and on update.
#[tokio::test]
async fn rule_channel_ids_must_be_channels_of_the_rules_project() {
    let rig = rig().await;
    let app = &rig.app;
    let own = rig.channel("own").await;
    let b = pulseline_collector::projects::create_project(&rig.store, "B", "unlimited", Utc::now())
        .await
        .unwrap();
    let resp = app
        .http
        .post(app.url("/api/v1/channels"))
        .bearer_auth(&b.secret_key)
        .json(&json!({"name": "b", "kind": "email", "email": "b@pulseline.test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let theirs = resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let rule = |channels: Value| {
        json!({"name": "Signups", "series": {"event": "signup"},
               "condition": {"type": "threshold", "op": ">", "value": 50}, "channel_ids": channels})
    };
    let write = |method: reqwest::Method, path: String, body: Value| {
        app.http
            .request(method, app.url(&path))
            .bearer_auth(&app.keys.secret_key)
            .json(&body)
            .send()
    };
    let missing = own + theirs + 1_000;
    for (channels, named) in [(json!([missing]), missing), (json!([own, theirs]), theirs)] {
        let resp = write(
            reqwest::Method::POST,
            "/api/v1/rules".into(),
            rule(channels),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), 400);
        let err: Value = resp.json().await.unwrap();
        let message = err["message"].as_str().unwrap();
        assert!(
            message.contains(&format!(
                "channel_ids: {named} is not a channel of this project"
            )),
            "{message}"
        );
    }
    let (_, list) = app.get_json("/api/v1/rules").await;
    assert_eq!(list["rules"], json!([]), "nothing was stored");

    let id = rig.create_rule(rule(json!([own]))).await;
    let resp = write(
        reqwest::Method::PUT,
        format!("/api/v1/rules/{id}"),
        rule(json!([theirs])),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains(&theirs.to_string()),
        "{err}"
    );
    let (_, got) = app.get_json(&format!("/api/v1/rules/{id}")).await;
    assert_eq!(got["channel_ids"], json!([own]), "the rule is unchanged");
}

#[tokio::test]
async fn the_background_loop_evaluates_on_its_interval_with_the_injected_clock() {
    let clock = Arc::new(FakeClock::new(at(0, 0, 0)));
    let app = helpers::spawn_app_with_clock(|c| c.rules_interval_secs = 1, clock.clone()).await;
    let batch: Vec<Value> = (0..3)
        .map(|i| {
            json!({"type": "track", "userId": "u", "event": "signup", "messageId": format!("l{i}"),
            "timestamp": (hour(0) + Duration::minutes(i)).to_rfc3339()})
        })
        .collect();
    assert_eq!(
        app.post("/v1/batch", &json!({"batch": batch}))
            .await
            .status(),
        200
    );
    let resp = app
        .http
        .post(app.url("/api/v1/rules"))
        .bearer_auth(&app.keys.secret_key)
        .json(&json!({"name": "any signup", "series": {"event": "signup"},
            "condition": {"type": "threshold", "op": ">", "value": 0}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    clock.set(after(1));
    let sql = "SELECT COUNT(*) FROM alert_events WHERE kind = 'firing'";
    let mut fired = 0;
    for _ in 0..100 {
        fired = app.query_i64(sql).await;
        if fired > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(fired, 1, "the loop fired the rule at the fake time");
}

/// Issue 9: two collector processes on one PostgreSQL, both evaluating every second, store
/// each transition once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_fire_a_rule_once() {
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};

    struct Replica(Child, String);
    impl Drop for Replica {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    fn start(database_url: &str) -> Replica {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pulseline-collector"))
            .env("PULSELINE_LISTEN", "127.0.0.1:0")
            .env("PULSELINE_DATABASE_URL", database_url)
            .env("PULSELINE_RULES_INTERVAL_SECS", "1")
            .env("PULSELINE_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("collector starts");
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            if let Some(url) = line.unwrap().strip_prefix("Listening on ") {
                return Replica(child, url.to_owned());
            }
        }
        panic!("the collector exited before listening: {:?}", child.wait());
    }

    if !helpers::on_postgres() {
        return; // replicas share a PostgreSQL server; the test command runs this on one
    }
    let dir = tempfile::tempdir().unwrap();
    let url = helpers::fresh_database_url(dir.path()).await;
    let created = Command::new(env!("CARGO_BIN_EXE_pulseline-collector"))
        .args(["project", "create", "--name", "Replicated", "--json"])
        .env("PULSELINE_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let keys: Value = serde_json::from_slice(&created.stdout).unwrap();
    let (write, secret) = (
        keys["write_key"].as_str().unwrap().to_owned(),
        keys["secret_key"].as_str().unwrap().to_owned(),
    );
    let (a, b) = (start(&url), start(&url));
    let http = reqwest::Client::new();
    // Yesterday (the latest closed day bucket) gets 5 orders; the rule fires above 2.
    let day = pulseline_collector::alerting::rules::latest_closed_bucket(
        Utc::now().timestamp_millis(),
        86_400_000,
    );
    let noon = DateTime::from_timestamp_millis(day + 43_200_000).unwrap();
    let batch: Vec<Value> = (0..5)
        .map(|i| {
            json!({"type": "track", "userId": "u", "event": "order",
            "messageId": format!("o{i}"), "timestamp": noon.to_rfc3339()})
        })
        .collect();
    let resp = http
        .post(format!("{}/v1/batch", a.1))
        .basic_auth(&write, Some(""))
        .json(&json!({ "batch": batch }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = http
        .post(format!("{}/api/v1/rules", b.1))
        .bearer_auth(&secret)
        .json(
            &json!({"name": "Orders", "series": {"event": "order", "bucket": "day"},
            "condition": {"type": "threshold", "op": ">", "value": 2}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let sql = "SELECT COUNT(*) FROM alert_events WHERE kind = 'firing'";
    let mut fired = 0;
    for _ in 0..100 {
        fired = helpers::query_i64(&url, sql).await;
        if fired > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(fired, 1);
    // Several more passes by both replicas: still one row, one alert.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(helpers::query_i64(&url, sql).await, 1);
    assert_eq!(
        helpers::query_i64(&url, "SELECT COUNT(*) FROM alert_history").await,
        1
    );
    assert_eq!(
        helpers::query_i64(&url, "SELECT COUNT(*) FROM alert_events").await,
        1
    );
}

/// Many evaluators racing on the same rules at the same instant: each transition once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_evaluators_store_each_transition_once() {
    let mut rig = rig().await;
    rig.send_hour("signup", hour(0), 10, json!({})).await;
    for i in 0..5 {
        rig.create_rule(
            json!({"name": format!("r{i}"), "series": {"event": "signup"},
            "condition": {"type": "threshold", "op": ">", "value": 5}}),
        )
        .await;
    }
    let now = after(1);
    let mut passes = Vec::new();
    for n in 0..6 {
        let store = rig.app.store().await;
        passes.push(tokio::spawn(async move {
            run_once(&store, now, &format!("evaluator-{n}"))
                .await
                .unwrap()
        }));
    }
    for p in passes {
        p.await.unwrap();
    }
    // A second round at the same instant changes nothing.
    run_once(&rig.store, now, "late").await.unwrap();
    assert_eq!(rig.counts().await, [5, 0, 0, 0]);
    assert_eq!(
        rig.app
            .query_i64("SELECT COUNT(*) FROM alert_history")
            .await,
        5
    );
}

/// Averages move differently from counts: the explanation ranks by relative change, and
/// context fields (here the OS) are broken down too.
#[tokio::test]
async fn an_average_that_rises_names_the_context_value_that_moved() {
    let rig = rig().await;
    let mut batch = Vec::new();
    for h in 0..13 {
        for i in 0..20 {
            let (os, value) = match i % 2 {
                0 => ("iOS", 100),
                _ => ("Android", if h == 12 { 400 } else { 100 }),
            };
            batch.push(json!({
                "type": "track", "userId": "u", "event": "api.latency",
                "messageId": format!("lat-{h}-{i}"),
                "timestamp": (hour(h) + Duration::minutes(i * 2)).to_rfc3339(),
                "properties": {"value": value, "endpoint": "/search"},
                "context": {"os": {"name": os}, "locale": "en-US"}
            }));
        }
    }
    let resp = rig.app.post("/v1/batch", &json!({ "batch": batch })).await;
    assert_eq!(resp.status(), 200);
    rig.create_rule(json!({
        "name": "Latency", "series": {"event": "api.latency", "aggregate": "avg", "bucket": "hour"},
        "condition": {"type": "anomaly", "direction": "up", "seasonality": "none"}
    }))
    .await;
    for h in 1..=12 {
        rig.pass_at(after(h)).await;
    }
    assert_eq!(rig.counts().await, [0, 0, 0, 0]);
    rig.pass_at(after(13)).await;
    assert_eq!(rig.counts().await, [1, 0, 0, 0]);
    let description = rig.last_description("firing").await;
    assert!(
        description.contains("avg of api.latency.value per hour was 250")
            && description.contains("expected about 100")
            && description.contains(
                "The rise is concentrated in context.os.name=Android: +300% vs baseline (100 → 400)"
            ),
        "{description}"
    );
}
