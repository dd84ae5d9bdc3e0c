//! The bots' per-user rollups (migration 0052: `user_event_days_bots`, `active_bots_daily`,
//! `user_sessions_bots`, `sessions_hourly_bots`): the migration's backfill from stored events
//! gives exactly the rows that ingest keeps, for a random stream of people's and bot events
//! (crawlers, and people with bot-flagged events of their own) sent out of order and twice, in
//! UTC and in a time zone whose days the background rebuild re-keys after the upgrade.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use pulseline_collector::clock::{Clock, FakeClock};
use pulseline_collector::store::Store;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::spawn;
use crate::helpers;

const MINUTE: i64 = 60_000;
const DAY: i64 = 86_400_000;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 9, 7, 0, 0, 0).unwrap()
}

/// Four days of people and bots: runs of events minutes to hours apart (so sessions both
/// continue and break), several event names and page views.
fn stream(seed: u64) -> Vec<Value> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sent = Vec::new();
    for u in 0..16 {
        let (user, anon) = match u % 4 {
            3 => (None, Some(format!("anon-{u}"))),
            2 => (Some(format!("user-{u}")), Some(format!("device-{u}"))),
            _ => (Some(format!("user-{u}")), None),
        };
        let crawler = u >= 12;
        let mut at = rng.random_range(0..DAY);
        for _ in 0..rng.random_range(5..30) {
            let mut m = match rng.random_range(0..4) {
                0 => json!({"type": "page", "name": "Home"}),
                n => {
                    let event = ["view", "cart", "buy"][n - 1];
                    json!({"type": "track", "event": event})
                }
            };
            if let Some(user) = &user {
                m["userId"] = json!(user);
            }
            if let Some(anon) = &anon {
                m["anonymousId"] = json!(anon);
            }
            if crawler || rng.random_bool(0.15) {
                m["context"] = json!({"bot": true});
            }
            m["timestamp"] = json!((start() + Duration::milliseconds(at)).to_rfc3339());
            m["messageId"] = json!(uuid::Uuid::now_v7().to_string());
            sent.push(m);
            at += match rng.random_range(0..6) {
                0..=2 => rng.random_range(0..20 * MINUTE),
                3 => 0,
                _ => rng.random_range(30 * MINUTE..10 * 60 * MINUTE),
            };
        }
    }
    sent
}

/// Each table's rows without the project (the two databases number projects apart), as text,
/// in order. People's tables are not compared: their backfills (0039, 0042) ran before the old
/// database held events.
async fn rows(database_url: &str, project: i64) -> Vec<(&'static str, Vec<String>)> {
    let tables: [(&str, &str); 4] = [
        (
            "user_event_days_bots",
            "name || '|' || user_key || '|' || CAST(day AS TEXT) || '|' || CAST(events AS TEXT)
             || '|' || CAST(first_ts AS TEXT) || '|' || CAST(last_ts AS TEXT)",
        ),
        ("active_bots_daily", "user_key || '|' || CAST(day AS TEXT)"),
        (
            "user_sessions_bots",
            "user_key || '|' || CAST(start_ts AS TEXT) || '|' || CAST(end_ts AS TEXT)
             || '|' || CAST(events AS TEXT)",
        ),
        (
            "sessions_hourly_bots",
            "CAST(hour AS TEXT) || '|' || CAST(sessions AS TEXT) || '|' || CAST(total_ms AS TEXT)
             || '|' || CAST(bounces AS TEXT)",
        ),
    ];
    let mut all = Vec::new();
    for (table, row) in tables {
        // Ingest leaves an hour whose sessions all moved at zero; the backfill has no row.
        let nonzero = if table == "sessions_hourly_bots" {
            "AND (sessions <> 0 OR total_ms <> 0 OR bounces <> 0)"
        } else {
            ""
        };
        let mut got: Vec<String> = helpers::query_column(
            database_url,
            &format!("SELECT {row} FROM {table} WHERE project_id = {project} {nonzero}"),
        )
        .await;
        got.sort();
        all.push((table, got));
    }
    all
}

/// The stream ingested by a collector, and the same events stored by a collector of migration
/// 0051 then upgraded, in project time zone `zone`: the same rows.
async fn backfill_equals_ingest(seed: u64, zone: &str) {
    let clock = Arc::new(FakeClock::new(start() + Duration::days(5)));
    let app = spawn(|_| {}, clock.clone()).await;
    helpers::exec_sql(
        &app.database_url,
        &format!(
            "UPDATE projects SET timezone = '{zone}' WHERE id = {}",
            app.project
        ),
    )
    .await;
    let mut messages = stream(seed);
    let bots = messages
        .iter()
        .filter(|m| m["context"]["bot"] == json!(true))
        .count();
    assert!(bots > 40 && bots < messages.len() / 2, "{bots} bot events");
    let mut shuffled = messages.clone();
    shuffled.shuffle(&mut StdRng::seed_from_u64(seed + 1));
    for chunk in shuffled.chunks(29) {
        app.ingest(chunk.to_vec()).await;
    }
    app.ingest(shuffled[..25].to_vec()).await;
    let ingested = rows(&app.database_url, app.project).await;

    let dir = tempfile::tempdir().unwrap();
    let url = helpers::fresh_database_url(dir.path()).await;
    helpers::migrate_to(&url, 51).await;
    helpers::exec_sql(
        &url,
        &format!("INSERT INTO projects (name, created_at, timezone) VALUES ('A', 0, '{zone}')"),
    )
    .await;
    let project = helpers::query_i64(&url, "SELECT MIN(id) FROM projects").await;
    messages.shuffle(&mut StdRng::seed_from_u64(seed + 2));
    helpers::insert_raw_events(&url, project, &messages).await;
    let store = Store::open(&url, Default::default()).await.unwrap();
    // Outside UTC the upgrade keys bots' days in UTC and schedules the rebuild that re-keys
    // them (as the collector's maintenance pass runs it).
    let scheduled = helpers::query_i64(
        &url,
        "SELECT COUNT(*) FROM projects WHERE days_rebuild_next IS NOT NULL",
    )
    .await;
    assert_eq!(scheduled, i64::from(zone != "UTC"));
    store
        .rebuild_local_days(clock.now().timestamp_millis())
        .await
        .unwrap();
    let upgraded = rows(&url, project).await;
    for ((table, want), (_, got)) in ingested.iter().zip(&upgraded) {
        assert!(!want.is_empty(), "{table} is empty");
        assert_eq!(got, want, "{table} in {zone}");
    }
}

#[tokio::test]
async fn the_upgrade_backfills_the_bot_rollups_as_ingest_keeps_them() {
    backfill_equals_ingest(1, "UTC").await;
}

#[tokio::test]
async fn the_upgrade_keys_bot_days_in_the_project_time_zone() {
    backfill_equals_ingest(2, "Asia/Kolkata").await;
}
