//! Evaluation passes at fake times: thresholds that pend, fire, resolve and cool down;
//! repeats; no-data modes; aggregates against hand-computed values; anomalies that name what
//! moved.

use pulseline_collector::alerting::anomaly_cad::REST_BUCKETS;

use super::*;

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
    // Three weeks and a bit of a smooth daily rhythm (contextOSE learns the sequence of levels
    // hour by hour; the baseline that draws the band wants that much seasonal history): from
    // DE 2, FR 1, US 1 per hour at 03:00 to DE 24, FR 10, US 6 at 15:00. On the last day at
    // 14:00 DE collapses to 2.
    const DAYS: i64 = 24;
    let last = (DAYS - 1) * 24;
    let mut events = Vec::new();
    for day in 0..DAYS {
        for h in 0..24 {
            let start = hour(day * 24 + h);
            let share = daily_share(h);
            let drop = day == DAYS - 1 && h == 14;
            let de = if drop { 2 } else { 2 + scaled(22.0, share) };
            let mix = [
                ("DE", de),
                ("FR", 1 + scaled(9.0, share)),
                ("US", 1 + scaled(5.0, share)),
            ];
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
    // The last day from midnight to 13:00, including the morning ramp: nothing.
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

/// A spike in a learnt daily rhythm, ingested over HTTP: the rule's contextOSE detector fires
/// on that hour only, and the explanation names the segment that rose.
#[tokio::test]
async fn anomaly_rule_fires_on_a_spike_in_a_learnt_rhythm_and_explains_it() {
    let mut rig = rig().await;
    const DAYS: i64 = 10;
    let last = (DAYS - 1) * 24;
    let mut events = Vec::new();
    for h in 0..DAYS * 24 {
        let share = daily_share(h % 24);
        let spike = h == last + 11;
        let mix = [
            ("pro", 2 + scaled(22.0, share)),
            ("free", 2 + scaled(18.0, share) + if spike { 60 } else { 0 }),
        ];
        for (plan, n) in mix {
            for i in 0..n {
                let ts = hour(h) + Duration::seconds(i64::try_from(i).unwrap() * 40 + 5);
                events.push(("signup", ts, json!({"plan": plan})));
            }
        }
    }
    rig.send(&events).await;
    let id = rig
        .create_rule(json!({
            "name": "Signups anomaly",
            "series": {"event": "signup", "bucket": "hour"},
            "condition": {"type": "anomaly", "seasonality": "daily"}
        }))
        .await;
    for h in last..=last + 11 {
        rig.pass_at(after(h)).await;
    }
    assert_eq!(rig.counts().await, [0, 0, 0, 0], "the rhythm itself fires");
    rig.pass_at(after(last + 12)).await; // the 11:00 bucket
    assert_eq!(rig.counts().await, [1, 0, 0, 0]);
    let description = rig.last_description("firing").await;
    let share = daily_share(11);
    let spiked = 4 + scaled(22.0, share) + scaled(18.0, share) + 60;
    assert!(
        description.contains(&format!("count of signup per hour was {spiked}")),
        "{description}"
    );
    assert!(
        description.contains("The rise is concentrated in plan=free"),
        "{description}"
    );
    rig.pass_at(after(last + 13)).await;
    assert_eq!(
        rig.counts().await,
        [1, 1, 0, 0],
        "back to the rhythm: resolved"
    );

    // The preview judges with the same detector: only the spike breaches.
    rig.clock.set(after(last + 13));
    let (_, preview) = rig
        .app
        .get_json(&format!("/api/v1/rules/{id}/preview?buckets=4"))
        .await;
    let breaches: Vec<bool> = preview["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["breach"] == true)
        .collect();
    assert_eq!(breaches, [false, false, true, false], "{preview}");
}

/// An outage on a busy seasonal series, ingested over HTTP: the count drops to zero at noon,
/// an hour that is busy every day. contextOSE alone does not fire (zero is close to the
/// levels the series visits every night); the seasonal baseline's score does, at that bucket.
#[tokio::test]
async fn anomaly_rule_fires_on_an_outage_of_a_busy_seasonal_series() {
    let mut rig = rig().await;
    // The baseline measures its yardstick over 500 buckets, so the series needs that much
    // history and four days before them (earlier hours count as empty).
    const DAYS: i64 = 26;
    let last = (DAYS - 1) * 24;
    let outage = last + 12;
    // A daily rhythm between 10 and 260 signups an hour with Poisson-like noise (a fixed
    // pseudo-random stream).
    let mut state: u64 = 6;
    let mut unit = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut events = Vec::new();
    for h in 0..outage {
        let day = 0.5 - 0.5 * ((h % 24) as f64 / 24.0 * std::f64::consts::TAU).cos();
        let mean = 10.0 + 250.0 * day;
        let z = (unit() + unit() + unit() + unit() - 2.0) * 1.7;
        let n = (mean + mean.sqrt() * z).round().max(0.0) as i64;
        for i in 0..n {
            let ts = hour(h) + Duration::milliseconds(i * 3_000_000 / n + 500);
            events.push(("signup", ts, json!({"plan": "pro"})));
        }
    }
    rig.send(&events).await;
    let id = rig
        .create_rule(json!({
            "name": "Signups stopped",
            "series": {"event": "signup", "bucket": "hour"},
            "condition": {"type": "anomaly", "direction": "down", "seasonality": "daily"}
        }))
        .await;
    for h in last..=outage {
        rig.pass_at(after(h)).await;
    }
    assert_eq!(rig.counts().await, [0, 0, 0, 0], "the rhythm itself fires");
    rig.pass_at(after(outage + 1)).await; // the 12:00 bucket, empty
    assert_eq!(rig.counts().await, [1, 0, 0, 0], "the outage does not fire");
    let description = rig.last_description("firing").await;
    assert!(
        description.contains("count of signup per hour was 0"),
        "{description}"
    );

    // The preview judges the same way.
    let (_, preview) = rig
        .app
        .get_json(&format!("/api/v1/rules/{id}/preview?buckets=3"))
        .await;
    let breaches: Vec<bool> = preview["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["breach"] == true)
        .collect();
    assert_eq!(breaches, [false, false, true], "{preview}");
}

/// 0 at 03:00 rising smoothly to 1 at 15:00: the share of its daily peak a series has at hour `h`.
fn daily_share(h: i64) -> f64 {
    0.5 - 0.5 * ((h - 3) as f64 / 24.0 * std::f64::consts::TAU).cos()
}

fn scaled(peak: f64, share: f64) -> usize {
    (peak * share).round() as usize
}

/// Averages move differently from counts: the explanation ranks by relative change, and
/// context fields (here the OS) are broken down too.
#[tokio::test]
async fn an_average_that_rises_names_the_context_value_that_moved() {
    let rig = rig().await;
    // contextOSE stays silent for its first REST_BUCKETS buckets, so a steady series needs
    // that many hours before a rise can fire.
    const HOURS: i64 = REST_BUCKETS as i64 + 20;
    let mut batch = Vec::new();
    for h in 0..=HOURS {
        for i in 0..20 {
            let (os, value) = match i % 2 {
                0 => ("iOS", 100),
                _ => ("Android", if h == HOURS { 400 } else { 100 }),
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
    for chunk in batch.chunks(500) {
        let resp = rig.app.post("/v1/batch", &json!({ "batch": chunk })).await;
        assert_eq!(resp.status(), 200);
    }
    rig.create_rule(json!({
        "name": "Latency", "series": {"event": "api.latency", "aggregate": "avg", "bucket": "hour"},
        "condition": {"type": "anomaly", "direction": "up", "seasonality": "none"}
    }))
    .await;
    for h in 1..=HOURS {
        rig.pass_at(after(h)).await;
    }
    assert_eq!(rig.counts().await, [0, 0, 0, 0]);
    rig.pass_at(after(HOURS + 1)).await;
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
