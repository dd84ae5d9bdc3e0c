//! Tracked properties (issue 20): Explore's counts filtered and/or grouped by a tracked key come
//! from `rollups_props_hourly` and equal the bounded scan's answer (with a budget covering the
//! range) on seeded random streams with resent messages, late events, bots, and string, number,
//! boolean, nested and missing values; after the backfill of keys tracked once events were
//! stored, after ingest, and after a person delete. Past the value cap Explore reads events;
//! the settings say what is wrong with a bad list.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, TimeZone, Utc};
use pulseline_collector::clock::FakeClock;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Dash, Login, spawn};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
const KEYS: [&str; 5] = ["plan", "country", "n", "flag", "device.os"];

fn start() -> i64 {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
        .unwrap()
        .timestamp_millis()
}

/// `n` random messages over ten days from `start()`, from 30 users and a crawler: plans as
/// strings, the number 42 and `true`; countries; numbers with their digits (`1.10`); booleans;
/// a nested `device.os`; each property missing now and then.
fn stream(seed: u64, n: usize) -> Vec<Value> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let bot = rng.random_bool(0.06);
            let at = start() + rng.random_range(0..10 * DAY);
            let mut props = serde_json::Map::new();
            if rng.random_bool(0.9) {
                let plans = [
                    json!("pro"),
                    json!("free"),
                    json!("team"),
                    json!(42),
                    json!(true),
                ];
                props.insert(
                    "plan".into(),
                    plans[rng.random_range(0..plans.len())].clone(),
                );
            }
            if rng.random_bool(0.85) {
                let c = ["de", "fr", "us", "br", "jp", "in", "(none)"];
                props.insert("country".into(), json!(c[rng.random_range(0..c.len())]));
            }
            if rng.random_bool(0.7) {
                let numbers = ["1.10", "2", "-3", "1.1", "7e2"];
                let v: Value = serde_json::from_str(numbers[rng.random_range(0..5)]).unwrap();
                props.insert("n".into(), v);
            }
            if rng.random_bool(0.8) {
                props.insert("flag".into(), json!(rng.random_bool(0.5)));
            }
            if rng.random_bool(0.75) {
                let os = ["ios", "android", "linux"];
                props.insert("device".into(), json!({"os": os[rng.random_range(0..3)]}));
            }
            let user = if bot {
                "crawler".to_owned()
            } else {
                format!("user-{}", rng.random_range(0..30))
            };
            let mut m = json!({
                "userId": user, "properties": props,
                "timestamp": DateTime::from_timestamp_millis(at).unwrap().to_rfc3339(),
                "messageId": uuid::Uuid::now_v7().to_string(),
            });
            if rng.random_bool(0.15) {
                m["type"] = json!("page");
                m["name"] = json!("Home");
            } else {
                m["type"] = json!("track");
                m["event"] = json!(if rng.random_bool(0.6) { "buy" } else { "view" });
            }
            if bot {
                m["context"] = json!({"bot": true});
            }
            m
        })
        .collect()
}

/// Sends `messages` shuffled in batches of 97, then their first `resend` again.
async fn send(app: &Dash, mut messages: Vec<Value>, resend: usize) {
    messages.shuffle(&mut StdRng::seed_from_u64(11));
    for chunk in messages.chunks(97) {
        app.ingest(chunk.to_vec()).await;
    }
    app.ingest(messages[..resend].to_vec()).await;
}

/// The questions asked: event (or all), filter, group-by, top, bucket; over a range whose ends
/// are not on the hour.
fn asks() -> Vec<String> {
    let from = start() + 90 * 60_000 + 17_000;
    let to = start() + 9 * DAY + 5 * 60_000;
    let questions = [
        ("buy", Some(("plan", "pro")), None, 5),
        ("", Some(("flag", "true")), None, 5),
        ("buy", None, Some("country"), 3),
        ("", None, Some("plan"), 5),
        ("$page", None, Some("device.os"), 5),
        ("buy", Some(("plan", "pro")), Some("country"), 3),
        ("", Some(("country", "de")), Some("plan"), 2),
        ("view", Some(("n", "1.10")), Some("flag"), 5),
        ("", Some(("flag", "false")), Some("n"), 3),
        ("buy", Some(("plan", "42")), Some("plan"), 5),
        ("", Some(("device.os", "ios")), Some("country"), 20),
        ("buy", Some(("country", "(none)")), Some("n"), 5),
    ];
    let mut out = Vec::new();
    for bucket in [DAY, 6 * HOUR] {
        for (event, filter, group, top) in questions {
            let mut q = format!("from={from}&to={to}&bucket={bucket}&top={top}");
            if !event.is_empty() {
                q += &format!("&event={}", urlencoding(event));
            }
            if let Some((k, v)) = filter {
                q += &format!("&filter_property={k}&filter_value={}", urlencoding(v));
            }
            if let Some(g) = group {
                q += &format!("&group_by={g}");
            }
            out.push(q);
        }
    }
    out
}

fn urlencoding(s: &str) -> String {
    s.replace('$', "%24")
        .replace('(', "%28")
        .replace(')', "%29")
}

/// Every answer of [`asks`]: what it read from, and the rest of it.
async fn answers(app: &Dash, me: &Login) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for q in asks() {
        let (status, mut body) = app
            .get(
                me,
                &format!("/api/dash/projects/{}/series?{q}", app.project),
            )
            .await;
        assert_eq!(status, 200, "{q}: {body}");
        let source = body["source"].as_str().unwrap().to_owned();
        assert!(
            body["coverage"].is_null(),
            "{q}: the budget covers the range"
        );
        body.as_object_mut().unwrap().remove("source");
        out.push((source, body));
    }
    out
}

fn assert_same(got: &[(String, Value)], want: &[(String, Value)], got_from: &str) {
    for (q, ((gs, g), (ws, w))) in asks().iter().zip(got.iter().zip(want)) {
        assert_eq!(gs, got_from, "{q}");
        assert_eq!(ws, "events", "{q}");
        assert_eq!(g, w, "{q}: the rollup's answer differs from the scan's");
    }
}

async fn track(app: &Dash, me: &Login, keys: &[&str]) {
    track_without_waiting(app, me, keys).await;
    wait_for_backfill(app, me).await;
}

async fn track_without_waiting(app: &Dash, me: &Login, keys: &[&str]) {
    let (status, body) = app
        .post(
            me,
            &format!("/api/dash/projects/{}/settings", app.project),
            json!({ "tracked_properties": keys }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["tracked_properties"].as_array().unwrap().len(),
        keys.len()
    );
}

async fn wait_for_backfill(app: &Dash, me: &Login) {
    // The backfill runs in the background: wait for the settings to say it is done.
    for _ in 0..600 {
        let (_, s) = app
            .get(me, &format!("/api/dash/projects/{}/settings", app.project))
            .await;
        if s["tracked_properties_pending"]
            .as_array()
            .is_some_and(Vec::is_empty)
        {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    panic!("the tracked properties were not backfilled in 30 s");
}

async fn app() -> (Dash, Login) {
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap(),
    ));
    let app = spawn(|c| c.dashboard.scan_rows = 10_000_000, clock).await;
    let me = app.admin().await;
    (app, me)
}

#[tokio::test]
async fn tracked_keys_answer_from_rollups_as_the_scan_does() {
    let (app, me) = app().await;
    let first = stream(1, 2_500);
    send(&app, first.clone(), 40).await;
    let scanned = answers(&app, &me).await;

    // Tracked once events are stored: the backfill fills the rollup.
    track(&app, &me, &KEYS).await;
    assert_same(&answers(&app, &me).await, &scanned, "rollups");

    // Then ingest: new events, late ones (the stream's times are all in the past), resent
    // messages of both streams, bots.
    let second = stream(2, 1_500);
    let mut again: Vec<Value> = first[..60].to_vec();
    again.extend(second.iter().cloned());
    send(&app, again, 100).await;
    let rolled = answers(&app, &me).await;
    track(&app, &me, &[]).await;
    assert_same(&rolled, &answers(&app, &me).await, "rollups");
}

#[tokio::test]
async fn events_stored_while_a_key_is_tracked_count_once() {
    // Keys tracked apart, with events between: pairs of a key and a later one are the later
    // one's backfill; everything after, ingest's.
    let (app, me) = app().await;
    send(&app, stream(3, 1_200), 20).await;
    track(&app, &me, &["plan", "flag", "n"]).await;
    send(&app, stream(4, 800), 20).await;
    track(&app, &me, &KEYS).await;
    // Dropped and tracked again with no event between: its end_seq ties with device.os's,
    // tracked with it before, and its pairs with device.os are its own backfill's again.
    track(&app, &me, &["plan", "n", "flag", "device.os"]).await;
    track(&app, &me, &KEYS).await;
    send(&app, stream(5, 600), 20).await;
    let rolled = answers(&app, &me).await;
    track(&app, &me, &[]).await;
    assert_same(&rolled, &answers(&app, &me).await, "rollups");
}

#[tokio::test]
async fn events_sent_during_tracking_and_backfill_count_once() {
    // Batches in flight while keys are tracked, dropped and backfilled: each event is ingest's
    // or the backfill's, never both, never neither.
    let (app, me) = app().await;
    send(&app, stream(7, 3_000), 10).await;
    let mut more = stream(8, 2_000);
    more.shuffle(&mut StdRng::seed_from_u64(3));
    let sending = async {
        for chunk in more.chunks(20) {
            app.ingest(chunk.to_vec()).await;
        }
    };
    let tracking = async {
        track(&app, &me, &["plan", "flag"]).await;
        track(&app, &me, &KEYS).await;
        track(&app, &me, &["country", "n", "flag", "device.os"]).await;
        track(&app, &me, &KEYS).await;
    };
    tokio::join!(sending, tracking);
    let rolled = answers(&app, &me).await;
    track(&app, &me, &[]).await;
    assert_same(&rolled, &answers(&app, &me).await, "rollups");
}

#[tokio::test]
async fn a_person_delete_keeps_the_rollup_exact() {
    let (app, me) = app().await;
    send(&app, stream(6, 2_000), 30).await;
    track(&app, &me, &KEYS).await;
    let before = answers(&app, &me).await;
    for user in ["user-3", "user-17", "crawler"] {
        let (status, body) = app
            .send(
                reqwest::Method::DELETE,
                &me,
                &format!("/api/dash/projects/{}/persons?user_id={user}", app.project),
                Value::Null,
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let rolled = answers(&app, &me).await;
    assert_ne!(
        rolled, before,
        "the deleted people's events were in the answers"
    );
    track(&app, &me, &[]).await;
    assert_same(&rolled, &answers(&app, &me).await, "rollups");
}

#[tokio::test]
async fn a_person_deleted_during_the_backfill_leaves_it_exact() {
    // 12,000 events: the backfill takes three chunks, and the deletion's chunks go between
    // them; each deleted event is taken out only where the backfill had already counted it.
    let (app, me) = app().await;
    send(&app, stream(9, 12_000), 10).await;
    track_without_waiting(&app, &me, &KEYS).await;
    for user in ["user-5", "user-21"] {
        let (status, body) = app
            .send(
                reqwest::Method::DELETE,
                &me,
                &format!("/api/dash/projects/{}/persons?user_id={user}", app.project),
                Value::Null,
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    wait_for_backfill(&app, &me).await;
    let rolled = answers(&app, &me).await;
    track(&app, &me, &[]).await;
    assert_same(&rolled, &answers(&app, &me).await, "rollups");
}

#[tokio::test]
async fn past_the_value_cap_explore_reads_events() {
    let (app, me) = app().await;
    // Tracked before any event: ready at once, everything is ingest's.
    track(&app, &me, &["sku", "plan"]).await;
    let day1 = start() + DAY;
    let day3 = start() + 3 * DAY;
    let message = |at: i64, sku: String| {
        json!({"type": "track", "event": "buy", "userId": "u", "messageId": uuid::Uuid::now_v7().to_string(),
               "properties": {"sku": sku, "plan": "pro"},
               "timestamp": DateTime::from_timestamp_millis(at).unwrap().to_rfc3339()})
    };
    // 1,001 distinct values on day 1; 3 on day 3.
    let many: Vec<Value> = (0..1_001)
        .map(|i| message(day1 + i * 60_000, format!("sku-{i}")))
        .collect();
    for chunk in many.chunks(250) {
        app.ingest(chunk.to_vec()).await;
    }
    let few: Vec<Value> = (0..30)
        .map(|i| message(day3 + i * 60_000, format!("sku-{}", i % 3)))
        .collect();
    app.ingest(few).await;
    let ask = |from: i64, to: i64, group: &str| {
        format!(
            "/api/dash/projects/{}/series?event=buy&from={from}&to={to}&bucket={HOUR}&group_by={group}",
            app.project
        )
    };
    let (_, capped) = app.get(&me, &ask(day1, day1 + DAY, "sku")).await;
    assert_eq!(capped["source"], "events", "{capped}");
    assert_eq!(
        capped["series"].as_array().unwrap().len(),
        6,
        "top 5 and (other)"
    );
    let (_, open) = app.get(&me, &ask(day3, day3 + DAY, "sku")).await;
    assert_eq!(open["source"], "rollups", "{open}");
    let names: Vec<&str> = open["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sku-0", "sku-1", "sku-2"]);
    // A range touching the capped day reads events too; the other key is not capped.
    let (_, across) = app.get(&me, &ask(day1, day3 + DAY, "sku")).await;
    assert_eq!(across["source"], "events");
    let (_, plan) = app.get(&me, &ask(day1, day3 + DAY, "plan")).await;
    assert_eq!(plan["source"], "rollups", "{plan}");
    let total: f64 = plan["series"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert_eq!(total, 1_031.0);
}

#[tokio::test]
async fn tracked_property_settings_say_what_is_wrong() {
    let (app, me) = app().await;
    let path = format!("/api/dash/projects/{}/settings", app.project);
    let long = "k".repeat(201);
    for (keys, says) in [
        (
            json!(["a", "b", "c", "d", "e", "f", "g", "h", "i"]),
            "at most 8",
        ),
        (json!(["plan", " "]), "empty"),
        (json!([long]), "longer than 200"),
        (json!(["plan", "plan"]), "twice"),
    ] {
        let (status, body) = app
            .post(&me, &path, json!({ "tracked_properties": keys }))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{keys}: {body}");
        assert!(
            body["message"].as_str().unwrap_or_default().contains(says),
            "{keys}: {body}"
        );
    }
    let (_, s) = app.get(&me, &path).await;
    assert_eq!(s["tracked_properties"], json!([]));
    // Eight keys of 200 characters are fine; the time zone stays as it was.
    let eight: Vec<String> = (0..8).map(|i| format!("{i}{}", "k".repeat(199))).collect();
    let (status, body) = app
        .post(&me, &path, json!({ "tracked_properties": eight }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tracked_properties"].as_array().unwrap().len(), 8);
    assert_eq!(body["timezone"], "UTC");
}
