//! Retention (issue 20) from the per-user-day rollup against the scan it replaces: the old
//! computation (`analytics::retention`) run on the events sent, over seeded random streams with
//! anonymous users, a bot, late and repeated batches, for day and week periods and ranges that
//! start and end mid-day.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use pulseline_collector::analytics;
use pulseline_collector::clock::FakeClock;
use pulseline_collector::store::analytics::ScannedEvent;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::{Dash, Login, spawn};

const DAY: i64 = 86_400_000;

/// One generated message: who (`user` is the key retention counts), when, and whether a bot.
struct Sent {
    user: String,
    at: DateTime<Utc>,
    bot: bool,
    message: Value,
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 9, 7, 0, 0, 0).unwrap()
}

/// Nine weeks of activity: users who come and go at random (some anonymous, some with both
/// ids), tracks and page views at any millisecond of the day, and a crawler every day.
fn activity(seed: u64) -> Vec<Sent> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sent = Vec::new();
    for u in 0..24 {
        let first = rng.random_range(0..45);
        let last = rng.random_range(first..63);
        let daily: f64 = rng.random_range(0.1..0.7);
        for day in first..=last {
            for _ in 0..rng.random_range(1..3) {
                if !rng.random_bool(daily) {
                    continue;
                }
                let at = start()
                    + Duration::days(day)
                    + Duration::milliseconds(rng.random_range(0..DAY));
                let mut m = if rng.random_bool(0.2) {
                    json!({"type": "page", "name": "Home"})
                } else {
                    let event = ["view", "click"][rng.random_range(0..2)];
                    json!({"type": "track", "event": event})
                };
                let user = match u % 6 {
                    // Anonymous visitors: counted by their anonymous id.
                    5 => {
                        m["anonymousId"] = json!(format!("anon-{u}"));
                        format!("anon-{u}")
                    }
                    // Signed-in users with a device id too: counted by the user id.
                    4 => {
                        m["anonymousId"] = json!(format!("device-{u}"));
                        m["userId"] = json!(format!("user-{u}"));
                        format!("user-{u}")
                    }
                    _ => {
                        m["userId"] = json!(format!("user-{u}"));
                        format!("user-{u}")
                    }
                };
                sent.push(Sent {
                    user,
                    at,
                    bot: false,
                    message: m,
                });
            }
        }
    }
    for day in 0..63 {
        let at = start() + Duration::days(day) + Duration::hours(3);
        sent.push(Sent {
            user: "crawler".into(),
            at,
            bot: true,
            message: json!({"type": "track", "event": "view", "userId": "crawler",
                            "context": {"bot": true}}),
        });
    }
    for s in &mut sent {
        s.message["timestamp"] = json!(s.at.to_rfc3339());
        s.message["messageId"] = json!(uuid::Uuid::now_v7().to_string());
    }
    sent
}

/// The old answer: the scan's computation over the events sent.
fn expected(sent: &[Sent], from: i64, to: i64, period: i64, bots: bool) -> Value {
    let events: Vec<ScannedEvent> = sent
        .iter()
        .filter(|s| bots || !s.bot)
        .map(|s| ScannedEvent {
            seq: 0,
            ts: s.at.timestamp_millis(),
            name: String::new(),
            user_key: Some(s.user.clone()),
            message_id: String::new(),
            body: String::new(),
        })
        .collect();
    serde_json::to_value(analytics::retention(&events, from, to, period)).unwrap()
}

/// A collector holding `sent`, ingested out of time order (every batch after the first holds
/// late events) and with one batch sent twice.
async fn seeded(seed: u64, max_scan_events: u32) -> (Dash, Login, String, Vec<Sent>) {
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap(),
    ));
    let app = spawn(|c| c.dashboard.max_scan_events = max_scan_events, clock).await;
    let me = app.admin().await;
    let sent = activity(seed);
    let mut messages: Vec<Value> = sent.iter().map(|s| s.message.clone()).collect();
    messages.shuffle(&mut StdRng::seed_from_u64(seed + 1));
    for chunk in messages.chunks(97) {
        app.ingest(chunk.to_vec()).await;
    }
    app.ingest(messages[..50].to_vec()).await;
    let p = format!("/api/dash/projects/{}", app.project);
    (app, me, p, sent)
}

/// Ranges that start and end mid-day, on whole days, within one day, and week-long periods
/// whose first one starts before the range.
fn ranges() -> Vec<(i64, i64, &'static str, i64)> {
    let s = start().timestamp_millis();
    let h = 3_600_000;
    vec![
        (s + 12 * h + 17 * 60_000, s + 40 * DAY + 5 * h, "day", DAY),
        (s + 7 * DAY, s + 21 * DAY, "day", DAY),
        (s + 10 * DAY + 6 * h, s + 10 * DAY + 20 * h, "day", DAY),
        (
            s + 3 * DAY + h + 1,
            s + 62 * DAY + 30 * 60_000,
            "week",
            7 * DAY,
        ),
        (s, s + 63 * DAY, "week", 7 * DAY),
        (s + 30 * DAY - 1, s + 31 * DAY + 1, "day", DAY),
    ]
}

async fn retention_equals_the_scan(seed: u64) {
    let (app, me, p, sent) = seeded(seed, 1_000_000).await;
    for (from, to, name, period) in ranges() {
        let path = format!("{p}/retention?from={from}&to={to}&period={name}");
        let (status, got) = app.get(&me, &path).await;
        assert_eq!(status, 200, "{path}: {got}");
        assert_eq!(got, expected(&sent, from, to, period, false), "{path}");
        assert!(got.as_array().is_some_and(|c| !c.is_empty()), "{path}");
        // With bots the events are read: the crawler becomes a cohort member.
        let (status, got) = app.get(&me, &format!("{path}&include_bots=true")).await;
        assert_eq!(status, 200, "{path}: {got}");
        assert_eq!(
            got,
            expected(&sent, from, to, period, true),
            "{path} with bots"
        );
    }
}

#[tokio::test]
async fn retention_from_the_rollup_equals_the_scan_seed_1() {
    retention_equals_the_scan(1).await;
}

#[tokio::test]
async fn retention_from_the_rollup_equals_the_scan_seed_2() {
    retention_equals_the_scan(2).await;
}

#[tokio::test]
async fn a_range_over_the_scan_limit_is_answered_unless_bots_are_asked_for() {
    let (app, me, p, sent) = seeded(3, 20).await;
    let (from, to) = (
        start().timestamp_millis(),
        start().timestamp_millis() + 56 * DAY,
    );
    assert!(sent.len() > 20 * 10);
    let path = format!("{p}/retention?from={from}&to={to}&period=week");
    let resp = app
        .http
        .get(app.url(&path))
        .header("cookie", &me.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The header still counts the crawler's events of the range: one a day.
    assert_eq!(resp.headers()["pulseline-bot-events"], "56");
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got, expected(&sent, from, to, 7 * DAY, false));
    let (status, body) = app.get(&me, &format!("{path}&include_bots=true")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string()
            .contains("more than 20 events (PULSELINE_DASHBOARD_MAX_SCAN_EVENTS)"),
        "{body}"
    );
}

#[tokio::test]
async fn a_range_over_max_retention_periods_is_refused() {
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap(),
    ));
    let app = spawn(|_| {}, clock).await;
    let me = app.admin().await;
    let p = format!("/api/dash/projects/{}", app.project);
    let from = start().timestamp_millis();
    let (status, body) = app
        .get(
            &me,
            &format!(
                "{p}/retention?from={from}&to={}&period=day",
                from + 104 * DAY
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .get(
            &me,
            &format!(
                "{p}/retention?from={from}&to={}&period=day",
                from + 104 * DAY + 1
            ),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string().contains(
            "this range spans 105 days, more than 104 periods (MAX_RETENTION_PERIODS): \
             narrow the range, or use period=week"
        ),
        "{body}"
    );
    let (status, body) = app
        .get(
            &me,
            &format!(
                "{p}/retention?from={from}&to={}&period=week",
                from + 104 * DAY + 1
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}
