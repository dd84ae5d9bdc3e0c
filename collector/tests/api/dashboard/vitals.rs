//! Web Vitals from the rollup maintained at ingest (issue 20) against the exact computation
//! over the samples sent (`analytics::web_vitals`, the one percentile definition): counts and
//! rating shares equal, every p75 within the sketch's relative accuracy, on seeded random
//! streams with bots, late and repeated batches; and the per-day page cap.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use pulseline_collector::analytics::{self, WEB_VITAL_EVENT};
use pulseline_collector::clock::{Clock, FakeClock};
use pulseline_collector::domain::sketch::RELATIVE_ACCURACY;
use pulseline_collector::store::analytics::ScannedEvent;
use pulseline_collector::store::vitals::{MAX_VITAL_PAGES, OTHER_PAGES};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::{Dash, Login, spawn};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

struct Sent {
    at: i64,
    bot: bool,
    message: Value,
}

fn start() -> i64 {
    Utc.with_ymd_and_hms(2026, 11, 10, 0, 0, 0)
        .unwrap()
        .timestamp_millis()
}

/// Ten days of Web Vitals on a dozen pages: long-tailed times, CLS fractions and zeros, a few
/// samples from a bot, a lower-case metric name, some without a path.
fn activity(seed: u64) -> Vec<Sent> {
    let mut rng = StdRng::seed_from_u64(seed);
    let metrics = ["LCP", "INP", "CLS", "FCP", "TTFB", "lcp"];
    (0..1_500)
        .map(|i| {
            let metric = metrics[rng.random_range(0..metrics.len())];
            let value = if metric == "CLS" {
                if rng.random_bool(0.3) {
                    0.0
                } else {
                    rng.random_range(0.0..0.6)
                }
            } else {
                rng.random_range(0.0f64..1.0).powi(2) * 8_000.0
            };
            let at = start() + rng.random_range(0..10 * DAY);
            let bot = rng.random_bool(0.05);
            let mut props = json!({"metric": metric, "value": value, "rating": "x"});
            if rng.random_bool(0.9) {
                props["path"] = json!(format!("/page/{}", rng.random_range(0..12)));
            }
            let mut message = json!({
                "type": "track", "event": WEB_VITAL_EVENT, "anonymousId": format!("v{}", i % 50),
                "properties": props, "messageId": uuid::Uuid::now_v7().to_string(),
                "timestamp": DateTime::from_timestamp_millis(at).unwrap().to_rfc3339(),
            });
            if bot {
                message["context"] = json!({"bot": true});
            }
            Sent { at, bot, message }
        })
        .collect()
}

/// What the scan used to hand `analytics::web_vitals`: the range's events.
fn scanned(sent: &[Sent], from: i64, to: i64, bots: bool) -> Vec<ScannedEvent> {
    sent.iter()
        .filter(|s| (bots || !s.bot) && s.at >= from && s.at < to)
        .map(|s| ScannedEvent {
            seq: 0,
            ts: s.at,
            name: WEB_VITAL_EVENT.to_owned(),
            user_key: None,
            message_id: String::new(),
            body: s.message.to_string(),
        })
        .collect()
}

/// Within the relative accuracy (plus the float noise of JSON text).
fn close(got: &Value, want: &Value, what: &str) {
    match (got.as_f64(), want.as_f64()) {
        (Some(g), Some(w)) => assert!(
            (g - w).abs() <= RELATIVE_ACCURACY * w.abs() + 1e-6,
            "{what}: {g} vs exact {w}"
        ),
        _ => assert_eq!(got, want, "{what}"),
    }
}

fn summary(got: &Value, want: &Value, what: &str) {
    assert_eq!(got["samples"], want["samples"], "{what}");
    for share in ["good", "poor", "needs_improvement"] {
        let (g, w) = (got[share].as_f64().unwrap(), want[share].as_f64().unwrap());
        assert!((g - w).abs() < 1e-9, "{what} {share}: {g} vs {w}");
    }
    close(&got["p75"], &want["p75"], &format!("{what} p75"));
}

async fn seeded(sent: &[Sent]) -> (Dash, Login, String) {
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap(),
    ));
    let app = spawn(|_| {}, clock).await;
    let me = app.admin().await;
    let mut messages: Vec<Value> = sent.iter().map(|s| s.message.clone()).collect();
    messages.shuffle(&mut StdRng::seed_from_u64(3));
    for chunk in messages.chunks(113) {
        app.ingest(chunk.to_vec()).await;
    }
    // Resent: counted once.
    app.ingest(messages[..40].to_vec()).await;
    let p = format!("/api/dash/projects/{}", app.project);
    (app, me, p)
}

#[tokio::test]
async fn vitals_from_the_rollup_match_the_exact_computation() {
    for seed in [1, 2] {
        let sent = activity(seed);
        let (app, me, p) = seeded(&sent).await;
        for (from, to, bucket) in [
            (start(), start() + 10 * DAY, DAY),
            (start() + 2 * DAY, start() + 5 * DAY, 6 * HOUR),
            (start() + DAY, start() + 2 * DAY, HOUR),
        ] {
            for bots in [false, true] {
                let q =
                    format!("{p}/vitals?from={from}&to={to}&bucket={bucket}&include_bots={bots}");
                let (status, got) = app.get(&me, &q).await;
                assert_eq!(status, 200, "{q}: {got}");
                let events = scanned(&sent, from, to, bots);
                let want =
                    serde_json::to_value(analytics::web_vitals(&events, from, to, bucket)).unwrap();
                assert_eq!(got["buckets"], want["buckets"], "{q}");
                for (g, w) in got["metrics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(want["metrics"].as_array().unwrap())
                {
                    let m = format!("seed {seed} {q} {}", w["vital"]["metric"]);
                    summary(&g["overall"], &w["overall"], &m);
                    let trend = |v: &Value| v["trend"].as_array().unwrap().clone();
                    for (i, (gt, wt)) in trend(g).iter().zip(&trend(w)).enumerate() {
                        close(gt, wt, &format!("{m} trend {i}"));
                    }
                    // Pages over whole days: the range's days here are whole.
                    let pages = |v: &Value| v["pages"].as_array().unwrap().clone();
                    let (gp, wp) = (pages(g), pages(w));
                    assert_eq!(gp.len(), wp.len(), "{m}: pages");
                    for w in &wp {
                        let g = gp
                            .iter()
                            .find(|g| g[0] == w[0])
                            .unwrap_or_else(|| panic!("{m}: page {} missing", w[0]));
                        summary(&g[1], &w[1], &format!("{m} page {}", w[0]));
                    }
                }
                let bot_events = sent
                    .iter()
                    .filter(|s| s.bot && s.at >= from && s.at < to)
                    .count();
                assert_eq!(got["bot_events"], bot_events, "{q}");
            }
        }
    }
}

#[tokio::test]
async fn a_day_keeps_at_most_max_vital_pages_and_counts_the_rest_as_other() {
    let extra = 7;
    let day = start() + 3 * DAY;
    let sent: Vec<Sent> = (0..MAX_VITAL_PAGES + extra)
        .map(|i| {
            let at = day + i64::try_from(i).unwrap() * 1_000;
            Sent {
                at,
                bot: false,
                message: json!({
                    "type": "track", "event": WEB_VITAL_EVENT, "anonymousId": "v",
                    "properties": {"metric": "TTFB", "value": 100 + i, "path": format!("/p/{i:04}")},
                    "messageId": uuid::Uuid::now_v7().to_string(),
                    "timestamp": DateTime::from_timestamp_millis(at).unwrap().to_rfc3339(),
                }),
            }
        })
        .collect();
    // In time order, in batches, so the first MAX_VITAL_PAGES paths are the ones kept.
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap(),
    ));
    let app = spawn(|_| {}, clock).await;
    let me = app.admin().await;
    for chunk in sent.chunks(97) {
        app.ingest(chunk.iter().map(|s| s.message.clone()).collect())
            .await;
    }
    let p = format!("/api/dash/projects/{}", app.project);
    let (status, got) = app
        .get(&me, &format!("{p}/vitals?from={day}&to={}", day + DAY))
        .await;
    assert_eq!(status, 200, "{got}");
    let ttfb = got["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["vital"]["metric"] == "TTFB")
        .unwrap();
    let pages = ttfb["pages"].as_array().unwrap();
    assert_eq!(pages.len(), MAX_VITAL_PAGES + 1, "{ttfb}");
    let other = pages.iter().find(|p| p[0] == OTHER_PAGES).unwrap();
    assert_eq!(other[1]["samples"], extra);
    assert!(pages.iter().any(|p| p[0] == "/p/0000"));
    assert!(
        !pages
            .iter()
            .any(|p| p[0] == format!("/p/{MAX_VITAL_PAGES:04}"))
    );
    assert_eq!(ttfb["overall"]["samples"], MAX_VITAL_PAGES + extra);
}

/// Web Vitals stored before the rollup existed (as after migration 0041 on an old database):
/// the maintenance pass rolls them up, and the page reads the same as if ingest had.
#[tokio::test]
async fn maintenance_rolls_up_the_vitals_stored_before_the_rollup() {
    let sent = activity(5);
    let (app, me, p) = seeded(&sent).await;
    let q = format!(
        "{p}/vitals?from={}&to={}&bucket={DAY}",
        start(),
        start() + 10 * DAY
    );
    let (_, before) = app.get(&me, &q).await;
    assert_eq!(
        before["metrics"][0]["overall"]["samples"]
            .as_u64()
            .map(|n| n > 0),
        Some(true)
    );
    for sql in [
        "DELETE FROM vitals_hourly",
        "DELETE FROM vitals_pages_daily",
        &format!(
            "INSERT INTO vitals_backfill (project_id, next_seq, end_seq) \
             SELECT project_id, 0, MAX(seq) FROM events WHERE project_id = {} GROUP BY project_id",
            app.project
        ),
    ] {
        super::try_exec(&app.database_url, sql).await.unwrap();
    }
    let (_, emptied) = app.get(&me, &q).await;
    assert_eq!(emptied["metrics"][0]["overall"]["samples"], 0);
    let store = pulseline_collector::store::Store::open(&app.database_url, Default::default())
        .await
        .unwrap();
    pulseline_collector::maintenance::run_once(&store, Utc::now())
        .await
        .unwrap();
    // Done: nothing left, and a second pass adds nothing.
    assert!(!store.backfill_vitals().await.unwrap());
    store.close().await;
    let (_, after) = app.get(&me, &q).await;
    assert_eq!(after, before);
}

/// The vitals rollups follow the plan's retention like the hourly counts: hours before the
/// cutoff's hour go, and page days before the cutoff's day.
#[tokio::test]
async fn retention_removes_vitals_rollups_past_the_plan() {
    let day = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
    let clock = Arc::new(FakeClock::new(day + chrono::Duration::hours(11)));
    let app = spawn(|_| {}, clock.clone()).await;
    let store = pulseline_collector::store::Store::open(&app.database_url, Default::default())
        .await
        .unwrap();
    assert!(store.set_project_plan(app.project, "free").await.unwrap()); // 30 days
    let vital = |at: &str, id: &str| {
        json!({"type": "track", "event": WEB_VITAL_EVENT, "anonymousId": "v", "messageId": id,
               "timestamp": at, "properties": {"metric": "LCP", "value": 1200, "path": "/"}})
    };
    app.ingest(vec![
        vital("2026-11-21T23:00:00Z", "a"),
        vital("2026-11-22T09:30:00Z", "b"),
        vital("2026-11-22T10:00:00Z", "c"),
    ])
    .await;
    // The cutoff falls at 10:20 on 22 November: its hour and its day stay.
    clock.set(Utc.with_ymd_and_hms(2026, 12, 22, 10, 20, 0).unwrap());
    store.prepare_partitions(clock.now()).await.unwrap();
    pulseline_collector::maintenance::run_once(&store, clock.now())
        .await
        .unwrap();
    store.close().await;
    let hours: Vec<i64> = crate::helpers::query_column(
        &app.database_url,
        "SELECT hour FROM vitals_hourly ORDER BY hour",
    )
    .await;
    assert_eq!(
        hours,
        [(day + chrono::Duration::hours(10)).timestamp_millis()]
    );
    let days: Vec<i64> = crate::helpers::query_column(
        &app.database_url,
        "SELECT day FROM vitals_pages_daily ORDER BY day",
    )
    .await;
    assert_eq!(days, [day.timestamp_millis()]);
}
