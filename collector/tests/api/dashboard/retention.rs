//! Retention (issue 20) from the per-user-period rollups against the scan it replaces: the old
//! computation (`analytics::retention`) run on the events sent, over seeded random streams with
//! anonymous users, bots, late and repeated batches, a person delete, a time zone with a DST
//! change (set before the events, or after them and re-keyed), for day and week periods and
//! ranges that start and end mid-day (answered for the whole local periods they touch). Bots
//! left out, and counted in (`include_bots=true`, from the bots' days of migration 0052):
//! crawlers, and people with bot-flagged events of their own, a key active as a person and as
//! a bot being one user, as in the scan. The scan limit is far below the streams' size.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use pulseline_collector::analytics;
use pulseline_collector::clock::FakeClock;
use pulseline_collector::store::analytics::ScannedEvent;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::{Dash, Login, spawn};
use crate::helpers;

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
                // Now and then a person's event is flagged as a bot's (an automated browser
                // logged in as them): it counts only with bots.
                let bot = rng.random_bool(0.1);
                if bot {
                    m["context"] = json!({"bot": true});
                }
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
                    bot,
                    message: m,
                });
            }
        }
    }
    // Anonymous crawlers that come back on a few random days.
    for c in 0..5 {
        for _ in 0..rng.random_range(1..6) {
            let at = start()
                + Duration::days(rng.random_range(0..63))
                + Duration::milliseconds(rng.random_range(0..DAY));
            sent.push(Sent {
                user: format!("bot-{c}"),
                at,
                bot: true,
                message: json!({"type": "page", "name": "Home", "anonymousId": format!("bot-{c}"),
                                "context": {"bot": true}}),
            });
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

/// The key of the local date holding `ms` in `tz`: that date's 00:00 UTC (as the rollups').
fn day_key(tz: &TimeZone, ms: i64) -> i64 {
    let date = Timestamp::from_millisecond(ms)
        .unwrap()
        .to_zoned_datetime(tz.clone())
        .date();
    date.to_zoned_datetime(TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_millisecond()
}

/// The local midnight of day key `key` in `tz`.
fn midnight(tz: &TimeZone, key: i64) -> i64 {
    let date = Timestamp::from_millisecond(key)
        .unwrap()
        .to_zoned_datetime(TimeZone::UTC)
        .date();
    date.to_zoned_datetime(tz.clone())
        .unwrap()
        .timestamp()
        .as_millisecond()
}

/// The old answer: the scan's computation over the events sent (`gone`'s left out), for the
/// whole local periods of `zone` that `[from, to)` touches.
fn expected(
    sent: &[Sent],
    zone: &str,
    (from, to): (i64, i64),
    period: i64,
    bots: bool,
    gone: &[&str],
) -> Value {
    let tz = TimeZone::get(zone).unwrap();
    let mut events: Vec<ScannedEvent> = sent
        .iter()
        .filter(|s| (bots || !s.bot) && !gone.contains(&s.user.as_str()))
        .map(|s| ScannedEvent {
            seq: 0,
            ts: s.at.timestamp_millis(),
            name: String::new(),
            user_key: Some(s.user.clone()),
            message_id: String::new(),
            body: String::new(),
        })
        .collect();
    // In time order, as the scan reads them (the first event sets the cohort).
    events.sort_by_key(|e| e.ts);
    // Weeks start on Monday (as in churn and the digest); day key 0 is a Thursday.
    let day_of = |t: i64| day_key(&tz, t);
    let first = if period == DAY {
        day_of(from)
    } else {
        day_of(from) - ((day_of(from) / DAY + 3) % 7) * DAY
    };
    let periods = (day_of(to - 1) - first) / period + 1;
    let (from, to) = (
        midnight(&tz, first),
        midnight(&tz, first + periods * period),
    );
    let mut cohorts =
        analytics::retention(&events, from, to, day_of, first, period, periods as usize);
    for c in &mut cohorts {
        c.start = midnight(&tz, c.start);
    }
    serde_json::to_value(cohorts).unwrap()
}

/// How the project's time zone is set: never (UTC), before the events, or after them (the
/// days are then re-keyed in the background; this waits for it).
#[derive(Clone, Copy)]
enum Zone {
    Utc,
    Before(&'static str),
    After(&'static str),
}

impl Zone {
    fn name(self) -> &'static str {
        match self {
            Zone::Utc => "UTC",
            Zone::Before(z) | Zone::After(z) => z,
        }
    }
}

/// A collector holding `sent`, ingested out of time order (every batch after the first holds
/// late events) and with one batch sent twice, in the time zone `zone`.
async fn seeded(seed: u64, max_scan_events: u32, zone: Zone) -> (Dash, Login, String, Vec<Sent>) {
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap(),
    ));
    let app = spawn(|c| c.dashboard.max_scan_events = max_scan_events, clock).await;
    let me = app.admin().await;
    let p = format!("/api/dash/projects/{}", app.project);
    let set_zone = async |zone: &str| {
        let (status, body) = app
            .post(&me, &format!("{p}/settings"), json!({"timezone": zone}))
            .await;
        assert_eq!(status, 200, "{body}");
    };
    if let Zone::Before(zone) = zone {
        set_zone(zone).await;
    }
    let sent = activity(seed);
    let mut messages: Vec<Value> = sent.iter().map(|s| s.message.clone()).collect();
    messages.shuffle(&mut StdRng::seed_from_u64(seed + 1));
    for chunk in messages.chunks(97) {
        app.ingest(chunk.to_vec()).await;
    }
    app.ingest(messages[..50].to_vec()).await;
    if let Zone::After(zone) = zone {
        set_zone(zone).await;
        let pending = format!(
            "SELECT COUNT(*) FROM projects WHERE id = {} AND days_rebuild_next IS NOT NULL",
            app.project
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while helpers::query_i64(&app.database_url, &pending).await > 0 {
            assert!(std::time::Instant::now() < deadline, "no rebuild");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
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

/// Every range of [`ranges`], by the rollups and (bots included) by the scan, against the
/// plain computation without `gone`'s events.
async fn all_equal_the_scan(
    app: &Dash,
    me: &Login,
    p: &str,
    sent: &[Sent],
    zone: Zone,
    gone: &[&str],
) {
    for (from, to, name, period) in ranges() {
        let path = format!("{p}/retention?from={from}&to={to}&period={name}");
        let (status, got) = app.get(me, &path).await;
        assert_eq!(status, 200, "{path}: {got}");
        let want = expected(sent, zone.name(), (from, to), period, false, gone);
        assert_eq!(got, want, "{path} in {}", zone.name());
        assert!(got.as_array().is_some_and(|c| !c.is_empty()), "{path}");
        // With bots the crawlers become cohort members, and people's bot-flagged events
        // count as theirs.
        let (status, with_bots) = app.get(me, &format!("{path}&include_bots=true")).await;
        assert_eq!(status, 200, "{path}: {with_bots}");
        let want = expected(sent, zone.name(), (from, to), period, true, gone);
        assert_eq!(with_bots, want, "{path} with bots in {}", zone.name());
        assert_ne!(with_bots, got, "{path}: bots changed nothing");
    }
}

async fn retention_equals_the_scan(seed: u64, zone: Zone) {
    let (app, me, p, sent) = seeded(seed, SCAN_LIMIT, zone).await;
    all_equal_the_scan(&app, &me, &p, &sent, zone, &[]).await;
}

#[tokio::test]
async fn retention_from_the_rollup_equals_the_scan_seed_1() {
    retention_equals_the_scan(1, Zone::Utc).await;
}

#[tokio::test]
async fn retention_from_the_rollup_equals_the_scan_seed_2() {
    retention_equals_the_scan(2, Zone::Utc).await;
}

/// New York changes from summer time on 2026-11-01, inside the streams' nine weeks.
#[tokio::test]
async fn retention_in_a_time_zone_with_a_dst_change_equals_the_scan() {
    retention_equals_the_scan(3, Zone::Before("America/New_York")).await;
}

/// Events first stored in UTC days, then the zone changes: the re-keyed days move the users'
/// weeks with them.
#[tokio::test]
async fn retention_after_a_time_zone_change_equals_the_scan() {
    retention_equals_the_scan(4, Zone::After("Asia/Kolkata")).await;
}

/// A deleted person leaves every period they were in; the others' cohorts are unchanged.
#[tokio::test]
async fn a_person_delete_takes_them_out_of_retention() {
    let zone = Zone::Before("Pacific/Auckland");
    let (app, me, p, sent) = seeded(5, SCAN_LIMIT, zone).await;
    let weeks_of = "SELECT COUNT(*) FROM active_users_weekly
                    WHERE user_key IN ('user-10', 'device-10', 'anon-11')";
    let bot_days_of = "SELECT COUNT(*) FROM active_bots_daily
                       WHERE user_key IN ('user-10', 'device-10', 'anon-11')";
    assert!(helpers::query_i64(&app.database_url, weeks_of).await > 0);
    assert!(helpers::query_i64(&app.database_url, bot_days_of).await > 0);
    for who in ["user_id=user-10", "anonymous_id=anon-11"] {
        let resp = app
            .http
            .delete(app.url(&format!("/api/v1/persons?{who}")))
            .bearer_auth(&app.secret_key)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body["deleted"]["events"].as_u64().unwrap() > 0, "{body}");
    }
    assert_eq!(helpers::query_i64(&app.database_url, weeks_of).await, 0);
    assert_eq!(helpers::query_i64(&app.database_url, bot_days_of).await, 0);
    all_equal_the_scan(&app, &me, &p, &sent, zone, &["user-10", "anon-11"]).await;
}

/// Far below the streams' size: retention, with bots or without, must not read the events.
const SCAN_LIMIT: u32 = 20;

#[tokio::test]
async fn a_range_over_the_scan_limit_is_answered_with_bots_or_without() {
    let (app, me, p, sent) = seeded(3, SCAN_LIMIT, Zone::Utc).await;
    let (from, to) = (
        start().timestamp_millis(),
        start().timestamp_millis() + 56 * DAY,
    );
    assert!(sent.len() > 20 * 10);
    let bots = sent
        .iter()
        .filter(|s| s.bot && (from..to).contains(&s.at.timestamp_millis()))
        .count();
    assert!(bots > 56);
    let path = format!("{p}/retention?from={from}&to={to}&period=week");
    for include_bots in [false, true] {
        let resp = app
            .http
            .get(app.url(&format!("{path}&include_bots={include_bots}")))
            .header("cookie", &me.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        // The header counts the range's bot events either way.
        assert_eq!(resp.headers()["pulseline-bot-events"], bots.to_string());
        let got: Value = resp.json().await.unwrap();
        let want = expected(&sent, "UTC", (from, to), 7 * DAY, include_bots, &[]);
        assert_eq!(got, want, "bots {include_bots}");
    }
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

/// A database from before migration 0046: the upgrade fills the weeks from the user-days it
/// holds, and ingest keeps them from then on.
#[tokio::test]
async fn an_upgrade_fills_the_weeks_from_the_user_days() {
    let dir = tempfile::tempdir().unwrap();
    let url = helpers::fresh_database_url(dir.path()).await;
    helpers::migrate_to(&url, 45).await;
    let s = start().timestamp_millis(); // a Monday
    let days: [(&str, &[i64]); 4] = [
        ("a", &[0, 1, 8, 20]),
        ("b", &[2, 6]),
        ("c", &[7, 13, 14, 27]),
        ("d", &[16, 17, 18]),
    ];
    let values: Vec<String> = days
        .iter()
        .flat_map(|(u, ds)| {
            ds.iter()
                .map(move |d| format!("(1, {}, '{u}')", s + d * DAY))
        })
        .collect();
    helpers::exec_sql(
        &url,
        &format!(
            "INSERT INTO active_users_daily (project_id, day, user_key) VALUES {}",
            values.join(", ")
        ),
    )
    .await;
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap(),
    ));
    let app = spawn(|c| c.database_url = url.clone(), clock).await;
    let me = app.admin().await;
    assert_eq!(app.project, 1, "the first start creates project 1");
    let p = format!("/api/dash/projects/{}", app.project);
    let returning = async |query: String| {
        let (status, got) = app.get(&me, &format!("{p}/retention?{query}")).await;
        assert_eq!(status, 200, "{got}");
        got.as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let returning: Vec<i64> = serde_json::from_value(c["returning"].clone()).unwrap();
                (c["start"].as_i64().unwrap(), returning)
            })
            .collect::<Vec<_>>()
    };
    let weeks = format!("from={}&to={}&period=week", s + 3 * DAY, s + 28 * DAY);
    assert_eq!(
        returning(weeks.clone()).await,
        [
            (s, vec![2, 1, 1, 0]),
            (s + 7 * DAY, vec![1, 1, 1]),
            (s + 14 * DAY, vec![1, 0])
        ]
    );
    let days = format!("from={}&to={}&period=day", s, s + 4 * DAY);
    assert_eq!(
        returning(days).await,
        [(s, vec![1, 1, 0, 0]), (s + 2 * DAY, vec![1, 0])]
    );
    // Ingest after the upgrade: d comes back in the fourth week.
    let at = DateTime::from_timestamp_millis(s + 27 * DAY + 3_600_000).unwrap();
    app.ingest(vec![
        json!({"type": "track", "event": "view", "userId": "d",
                           "timestamp": at.to_rfc3339(),
                           "messageId": uuid::Uuid::now_v7().to_string()}),
    ])
    .await;
    assert_eq!(returning(weeks).await[2], (s + 14 * DAY, vec![1, 1]));
}
