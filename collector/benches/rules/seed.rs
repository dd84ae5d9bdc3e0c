//! The rules benchmark's data: time-ordered events with a daily rhythm (Zipf-like event names,
//! skewed property values, numeric `value`s), sent through the real ingest path, and the
//! 1,000 rules it evaluates.

use chrono::{DateTime, Duration, Timelike, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// Event names and their share of the traffic.
const EVENTS: [(&str, f64); 12] = [
    ("page_view", 0.38),
    ("api.latency", 0.15),
    ("search", 0.10),
    ("login", 0.08),
    ("add_to_cart", 0.08),
    ("checkout", 0.05),
    ("feature_used", 0.05),
    ("signup", 0.03),
    ("error", 0.03),
    ("invite_sent", 0.02),
    ("refund", 0.015),
    ("subscription.renewed", 0.015),
];
const COUNTRIES: [(&str, f64); 8] = [
    ("US", 0.35),
    ("DE", 0.15),
    ("GB", 0.12),
    ("FR", 0.10),
    ("IN", 0.10),
    ("BR", 0.08),
    ("JP", 0.05),
    ("NL", 0.05),
];
const PLANS: [(&str, f64); 3] = [("free", 0.7), ("pro", 0.25), ("team", 0.05)];
const PLATFORMS: [(&str, f64); 3] = [("web", 0.6), ("ios", 0.25), ("android", 0.15)];
const USERS: u32 = 100_000;
const EVENTS_PER_BATCH: usize = 1_000;

fn pick<'a>(rng: &mut StdRng, table: &[(&'a str, f64)]) -> &'a str {
    let mut x = rng.random::<f64>();
    for (name, share) in table {
        if x < *share {
            return name;
        }
        x -= share;
    }
    table[0].0
}

/// Relative traffic in the hour of day (quiet nights, busy afternoons).
fn rhythm(hour: u32) -> f64 {
    let phase = (f64::from(hour) - 15.0) / 24.0 * std::f64::consts::TAU;
    1.0 + 0.7 * phase.cos()
}

/// Sends `n` events of project `write_key` over the `days` before `end` to `base`, in time
/// order, `parallel` requests at a time.
pub(crate) async fn ingest(
    base: &str,
    write_key: &str,
    n: u64,
    days: i64,
    end: DateTime<Utc>,
    seed: u64,
) {
    let http = reqwest::Client::new();
    let mut rng = StdRng::seed_from_u64(seed);
    let hours = days * 24;
    let start = end - Duration::hours(hours);
    let total: f64 = (0..hours)
        .map(|h| rhythm((start + Duration::hours(h)).hour()))
        .sum();
    let mut in_flight = tokio::task::JoinSet::new();
    let mut batch = Vec::with_capacity(EVENTS_PER_BATCH);
    let mut sent = 0u64;
    let started = std::time::Instant::now();
    for h in 0..hours {
        let hour = start + Duration::hours(h);
        let share = rhythm(hour.hour()) / total;
        let count = (n as f64 * share).round() as u64;
        let mut offsets: Vec<i64> = (0..count).map(|_| rng.random_range(0..3_600_000)).collect();
        offsets.sort_unstable();
        for ms in offsets {
            sent += 1;
            batch.push(event(
                &mut rng,
                hour + Duration::milliseconds(ms),
                seed,
                sent,
            ));
            if batch.len() == EVENTS_PER_BATCH {
                let body = json!({ "batch": std::mem::take(&mut batch) });
                if in_flight.len() >= 4 {
                    in_flight.join_next().await.unwrap().unwrap();
                }
                in_flight.spawn(post(
                    http.clone(),
                    format!("{base}/v1/batch"),
                    write_key.to_owned(),
                    body,
                ));
            }
        }
        if h % 48 == 47 {
            eprintln!(
                "  {sent} events sent ({:.0}/s)",
                sent as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    if !batch.is_empty() {
        in_flight.spawn(post(
            http.clone(),
            format!("{base}/v1/batch"),
            write_key.to_owned(),
            json!({ "batch": batch }),
        ));
    }
    while let Some(r) = in_flight.join_next().await {
        r.unwrap();
    }
}

async fn post(http: reqwest::Client, url: String, key: String, body: Value) {
    loop {
        let resp = http
            .post(&url)
            .basic_auth(&key, Some(""))
            .json(&body)
            .send()
            .await
            .unwrap();
        match resp.status().as_u16() {
            200 => return,
            429 | 503 => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
            s => panic!(
                "ingest answered {s}: {}",
                resp.text().await.unwrap_or_default()
            ),
        }
    }
}

fn event(rng: &mut StdRng, ts: DateTime<Utc>, seed: u64, n: u64) -> Value {
    let name = pick(rng, &EVENTS);
    let value = match name {
        // Milliseconds, long-tailed.
        "api.latency" => (40.0 * (1.0 + rng.random::<f64>() * 3.0).powi(3)).round(),
        "checkout" | "refund" | "subscription.renewed" => {
            (rng.random_range(500..50_000) as f64) / 100.0
        }
        _ => f64::from(rng.random_range(1..10)),
    };
    json!({
        "type": "track",
        "event": name,
        "userId": format!("u{}", rng.random_range(0..USERS)),
        "messageId": format!("b{seed}-{n}"),
        "timestamp": ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "properties": {
            "country": pick(rng, &COUNTRIES),
            "plan": pick(rng, &PLANS),
            "platform": pick(rng, &PLATFORMS),
            "value": value,
        }
    })
}

/// 500 rules for one project: 250 hourly counts with property filters (anomaly, daily and
/// weekly seasonality), 125 hourly p75-of-`value` anomaly rules with daily seasonality, 125
/// minute count threshold rules.
pub(crate) fn rules() -> Vec<Value> {
    let mut rng = StdRng::seed_from_u64(1_000);
    let mut out = Vec::with_capacity(500);
    for i in 0..250 {
        let event = pick(&mut rng, &EVENTS);
        let mut filters = json!({"country": pick(&mut rng, &COUNTRIES)});
        if i % 2 == 0 {
            filters["plan"] = json!(pick(&mut rng, &PLANS));
        }
        out.push(json!({
            "name": format!("hourly count {i}"),
            "series": {"event": event, "bucket": "hour", "filters": filters},
            "condition": {"type": "anomaly", "seasonality": "auto", "min_volume": 5},
        }));
    }
    for i in 0..125 {
        let event = ["api.latency", "checkout", "refund", "subscription.renewed"][i % 4];
        let mut filters = json!({});
        if i % 3 != 0 {
            filters["platform"] = json!(pick(&mut rng, &PLATFORMS));
        }
        out.push(json!({
            "name": format!("p75 {i}"),
            "series": {"event": event, "aggregate": "p75", "property": "value", "bucket": "hour",
                       "filters": filters},
            "condition": {"type": "anomaly", "seasonality": "daily"},
            "no_data": "keep",
        }));
    }
    for i in 0..125 {
        let event = pick(&mut rng, &EVENTS);
        let filters = if i % 2 == 0 {
            json!({"platform": pick(&mut rng, &PLATFORMS)})
        } else {
            json!({})
        };
        out.push(json!({
            "name": format!("minute threshold {i}"),
            "series": {"event": event, "bucket": "minute", "filters": filters},
            "condition": {"type": "threshold", "op": ">", "value": 5 + (i % 20)},
        }));
    }
    out
}
