//! Funnels (issue 20) from the per-user-event-day rollup against the scan they replace: the old
//! computation (`analytics::funnel`) over the stored events, on seeded random streams with
//! repeated and out-of-order steps, several events of a step the same day before and after the
//! previous step, events in the same millisecond, on UTC midnight and on the range's edges,
//! anonymous users, bots, late and repeated batches; then after a person delete, after a
//! raw-event retention run, and on a database upgraded by migration 0039's backfill. Bots left
//! out, and with `include_bots=true` (bots' rollup rows, migration 0052): crawlers and people
//! with some bot-flagged events of their own, a key's bot and other events being one user's, as
//! in the scan. The scan limit is set far below the streams' size: the old code refused every
//! one of these ranges.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use pulseline_collector::analytics;
use pulseline_collector::clock::{Clock, FakeClock};
use pulseline_collector::store::Store;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Dash, Login, spawn};
use crate::helpers;

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
/// Far below the streams' event count: a funnel must not read the range's events.
const SCAN_LIMIT: u32 = 10;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 9, 7, 0, 0, 0).unwrap()
}

/// Six days of activity by twelve people (some anonymous, some with both ids), dense enough
/// that a step often happens before and after the previous one on the same day, plus a
/// crawler that does every step and a bot-flagged event among a person's own. With
/// `ambiguous = false` each person does each event at most once a day.
fn activity(seed: u64, from: DateTime<Utc>, ambiguous: bool) -> Vec<Value> {
    let mut rng = StdRng::seed_from_u64(seed);
    let names = ["view", "cart", "buy", "$page"];
    let mut sent = Vec::new();
    for u in 0..12 {
        let (user, anon) = match u % 4 {
            3 => (None, Some(format!("anon-{u}"))),
            2 => (Some(format!("user-{u}")), Some(format!("device-{u}"))),
            _ => (Some(format!("user-{u}")), None),
        };
        for day in 0..6 {
            if !rng.random_bool(0.7) {
                continue;
            }
            let day_start = day * DAY;
            let mut last = day_start + rng.random_range(0..DAY);
            let mut done_today = Vec::new();
            for _ in 0..rng.random_range(1..9) {
                let name = names[rng.random_range(0..names.len())];
                if !ambiguous && done_today.contains(&name) {
                    continue;
                }
                done_today.push(name);
                // Without repeats, no two events share a millisecond either: their order
                // would then be the stored order, which only the raw events know.
                let at = match rng.random_range(0..if ambiguous { 20 } else { 10 }) {
                    0..=9 => day_start + rng.random_range(0..DAY),
                    10..=12 => {
                        (last + rng.random_range(-HOUR..HOUR)).clamp(day_start, day_start + DAY - 1)
                    }
                    13 => day_start,
                    14 => day_start + DAY - 1,
                    _ => last,
                };
                last = at;
                let mut m = if name == "$page" {
                    json!({"type": "page", "name": "Home"})
                } else {
                    json!({"type": "track", "event": name})
                };
                if let Some(user) = &user {
                    m["userId"] = json!(user);
                }
                if let Some(anon) = &anon {
                    m["anonymousId"] = json!(anon);
                }
                m["timestamp"] = json!((from + Duration::milliseconds(at)).to_rfc3339());
                // Some of a person's own events flagged as a bot's (an automated browser
                // logged in as them): steps only when bots count.
                if rng.random_bool(0.15) {
                    m["context"] = json!({"bot": true});
                }
                sent.push(m);
            }
        }
    }
    for day in 0..6 {
        for (i, name) in ["view", "cart", "buy"].iter().enumerate() {
            let at = from + Duration::days(day) + Duration::hours(3 + i as i64);
            sent.push(json!({"type": "track", "event": name, "userId": "crawler",
                             "timestamp": at.to_rfc3339(), "context": {"bot": true}}));
        }
    }
    // Anonymous crawlers doing random steps at random times, some on two days (without
    // repeats, each step at most once a day, as the people).
    for c in 0..6 {
        let mut done = Vec::new();
        for _ in 0..rng.random_range(1..8) {
            let name = names[rng.random_range(0..names.len())];
            let at = rng.random_range(0..2) * DAY + rng.random_range(0..DAY) + c * DAY / 2;
            if !ambiguous && done.contains(&(at / DAY, name)) {
                continue;
            }
            done.push((at / DAY, name));
            let mut m = if name == "$page" {
                json!({"type": "page", "name": "Home"})
            } else {
                json!({"type": "track", "event": name})
            };
            m["anonymousId"] = json!(format!("bot-{c}"));
            m["context"] = json!({"bot": true});
            m["timestamp"] = json!((from + Duration::milliseconds(at)).to_rfc3339());
            sent.push(m);
        }
    }
    // A person's own bot-flagged event in the middle of their day: never a step.
    sent.push(json!({"type": "track", "event": "buy", "userId": "user-0",
                     "timestamp": (from + Duration::hours(30)).to_rfc3339(),
                     "context": {"bot": true}}));
    for m in &mut sent {
        m["messageId"] = json!(uuid::Uuid::now_v7().to_string());
    }
    sent
}

/// Sends `messages` out of time order (every batch after the first holds late events), with
/// one batch sent twice.
async fn ingest_shuffled(app: &Dash, mut messages: Vec<Value>, seed: u64) {
    messages.shuffle(&mut StdRng::seed_from_u64(seed));
    for chunk in messages.chunks(37) {
        app.ingest(chunk.to_vec()).await;
    }
    app.ingest(messages[..20].to_vec()).await;
}

async fn seeded(seed: u64, clock: Arc<FakeClock>) -> (Dash, Login) {
    let app = spawn(|c| c.dashboard.max_scan_events = SCAN_LIMIT, clock).await;
    let me = app.admin().await;
    ingest_shuffled(&app, activity(seed, start(), true), seed + 1).await;
    (app, me)
}

fn clock() -> Arc<FakeClock> {
    Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 9, 20, 12, 0, 0).unwrap(),
    ))
}

const STEPS: [&str; 6] = [
    "view,cart,buy",
    "cart,view,cart",
    "$page,buy",
    "view,view",
    "buy,$page,view,cart",
    "cart,cart,cart",
];
const WINDOWS: [i64; 4] = [1, 3_600, 86_400, 3 * 86_400];

/// Ranges on whole days, starting and ending mid-day, inside one day, and one millisecond
/// either side of midnight.
fn ranges(from: DateTime<Utc>) -> Vec<(i64, i64)> {
    let s = from.timestamp_millis();
    vec![
        (s, s + 6 * DAY),
        (s + 5 * HOUR + 17 * 60_000, s + 4 * DAY + 3 * HOUR),
        (s + 2 * DAY, s + 3 * DAY),
        (s + 2 * DAY + HOUR, s + 2 * DAY + 20 * HOUR),
        (s + DAY - 1, s + 3 * DAY + 1),
        (s + DAY + 1, s + 5 * DAY),
    ]
}

/// The old answer: `analytics::funnel` over the stored events of the range (bots left out
/// unless `bots`), read in the scan's order.
async fn scanned(
    store: &Store,
    project: i64,
    from: i64,
    to: i64,
    steps: &str,
    window: i64,
    bots: bool,
) -> Value {
    let events = store
        .scan_events(project, from, to, None, bots, i64::MAX)
        .await
        .unwrap();
    let steps: Vec<String> = steps.split(',').map(str::to_owned).collect();
    serde_json::to_value(analytics::funnel(&events, &steps, window * 1000)).unwrap()
}

/// A funnel answer as the users per step, with the conversions checked against them: the
/// client's float parsing may differ from the server's printing in the last digit.
fn users(answer: &Value) -> Vec<u64> {
    let steps = answer.as_array().expect("an array of steps");
    let first = steps[0]["users"].as_u64().unwrap();
    for s in steps {
        let n = s["users"].as_u64().unwrap();
        let share = if first == 0 {
            0.0
        } else {
            n as f64 / first as f64
        };
        assert!(
            (s["conversion"].as_f64().unwrap() - share).abs() < 1e-9,
            "{answer}"
        );
    }
    steps.iter().map(|s| s["users"].as_u64().unwrap()).collect()
}

/// Every funnel of [`STEPS`] × [`WINDOWS`] over `ranges` equals the scan's, bots left out and
/// counted in; returns how many answers had someone past the first step (so the comparison is
/// not between empty funnels), and asserts that counting bots changed some answers (so the
/// comparison with bots is not the one without).
async fn funnels_equal_the_scan(app: &Dash, me: &Login, ranges: &[(i64, i64)]) -> usize {
    let store = Store::open(&app.database_url, Default::default())
        .await
        .unwrap();
    let p = format!("/api/dash/projects/{}", app.project);
    let (mut converted, mut bots_changed) = (0, 0);
    for &(from, to) in ranges {
        for steps in STEPS {
            for window in WINDOWS {
                let path =
                    format!("{p}/funnel?steps={steps}&from={from}&to={to}&window_secs={window}");
                let mut answers = Vec::new();
                for bots in [false, true] {
                    let path = format!("{path}&include_bots={bots}");
                    let (status, got) = app.get(me, &path).await;
                    assert_eq!(status, StatusCode::OK, "{path}: {got}");
                    let want = scanned(&store, app.project, from, to, steps, window, bots).await;
                    assert_eq!(users(&got), users(&want), "{path}");
                    assert_eq!(got.as_array().map(Vec::len), want.as_array().map(Vec::len));
                    if !bots && got[1]["users"].as_u64().is_some_and(|n| n > 0) {
                        converted += 1;
                    }
                    answers.push(users(&got));
                }
                bots_changed += usize::from(answers[0] != answers[1]);
            }
        }
    }
    assert!(bots_changed > 5, "bots changed only {bots_changed} funnels");
    converted
}

/// A rollup row's key: event name, user key, UTC day.
type DayKey<'a> = (&'a str, &'a str, i64);

/// Every `user_event_days` (and `_bots`) row's `second_ts` is its day's second event in the
/// scan's order (None for one event), as recomputed from the stored events.
async fn assert_seconds_exact(database_url: &str, project: i64) {
    let store = Store::open(database_url, Default::default()).await.unwrap();
    let scan = |bots| store.scan_events(project, 0, 4_000_000_000_000, None, bots, i64::MAX);
    let people = scan(false).await.unwrap();
    let seqs: HashSet<i64> = people.iter().map(|e| e.seq).collect();
    let everyone = scan(true).await.unwrap();
    let bots = everyone.iter().filter(|e| !seqs.contains(&e.seq));
    for (events, table) in [
        (people.iter().collect::<Vec<_>>(), "user_event_days"),
        (bots.collect(), "user_event_days_bots"),
    ] {
        let mut days: BTreeMap<DayKey<'_>, Vec<(i64, i64)>> = BTreeMap::new();
        for e in events {
            if let Some(user) = &e.user_key {
                let day = e.ts - e.ts.rem_euclid(DAY);
                days.entry((&e.name, user, day))
                    .or_default()
                    .push((e.ts, e.seq));
            }
        }
        let want: Vec<String> = days
            .into_iter()
            .map(|((name, user, day), mut at)| {
                at.sort_unstable();
                let second = at.get(1).map_or(-1, |a| a.0);
                format!("{name}|{user}|{day}|{}|{second}", at.len())
            })
            .collect();
        let got: Vec<String> = helpers::query_column(
            database_url,
            &format!(
                "SELECT name || '|' || user_key || '|' || day || '|' || events || '|'
                        || COALESCE(second_ts, -1)
                 FROM {table} WHERE project_id = {project}
                 ORDER BY name, user_key, day"
            ),
        )
        .await;
        assert!(
            table.ends_with("_bots") || want.iter().any(|r| !r.ends_with("|-1")),
            "no day of two events"
        );
        assert_eq!(got, want, "{table}");
    }
}

async fn rollup_equals_the_scan(seed: u64) {
    let (app, me) = seeded(seed, clock()).await;
    assert_seconds_exact(&app.database_url, app.project).await;
    let converted = funnels_equal_the_scan(&app, &me, &ranges(start())).await;
    assert!(converted > 20, "only {converted} funnels had a second step");
}

#[tokio::test]
async fn funnels_from_the_rollup_equal_the_scan_seed_1() {
    rollup_equals_the_scan(1).await;
}

#[tokio::test]
async fn funnels_from_the_rollup_equal_the_scan_seed_2() {
    rollup_equals_the_scan(2).await;
}

/// With bots the funnel comes from the rollups too: answered whatever the scan limit, and the
/// header says how many bot events the range holds either way.
#[tokio::test]
async fn with_bots_the_funnel_is_answered_over_the_scan_limit() {
    let (app, me) = seeded(3, clock()).await;
    let (from, to) = ranges(start())[0];
    let bots = activity(3, start(), true)
        .iter()
        .filter(|m| m["context"]["bot"] == json!(true))
        .count();
    let path = format!(
        "/api/dash/projects/{}/funnel?steps=view,cart&from={from}&to={to}",
        app.project
    );
    let resp = app
        .http
        .get(app.url(&path))
        .header("cookie", &me.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Every bot event sent (ids are fresh per call, so the stream's count), left out but
    // counted.
    assert!(bots > 19);
    assert_eq!(resp.headers()["pulseline-bot-events"], bots.to_string());
    let resp = app
        .http
        .get(app.url(&format!("{path}&include_bots=true")))
        .header("cookie", &me.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["pulseline-bot-events"], bots.to_string());
    let store = Store::open(&app.database_url, Default::default())
        .await
        .unwrap();
    let want = scanned(&store, app.project, from, to, "view,cart", 86_400, true).await;
    let got: Value = resp.json().await.unwrap();
    assert_eq!(users(&got), users(&want));
}

#[tokio::test]
async fn a_person_delete_takes_their_rows_out_of_the_funnel() {
    let (app, me) = seeded(4, clock()).await;
    let rows_of = "SELECT COUNT(*) FROM user_event_days
                   WHERE user_key IN ('user-2', 'device-2', 'user-5')";
    let bot_rows_of = "SELECT COUNT(*) FROM user_event_days_bots
                   WHERE user_key IN ('user-2', 'device-2', 'user-5')";
    assert!(helpers::query_i64(&app.database_url, rows_of).await > 0);
    assert!(helpers::query_i64(&app.database_url, bot_rows_of).await > 0);
    for who in ["user_id=user-2", "user_id=user-5"] {
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
        assert!(
            body["deleted"]["user_event_days"].as_u64().unwrap() > 0,
            "{body}"
        );
    }
    assert_eq!(helpers::query_i64(&app.database_url, rows_of).await, 0);
    assert_eq!(helpers::query_i64(&app.database_url, bot_rows_of).await, 0);
    let converted = funnels_equal_the_scan(&app, &me, &ranges(start())).await;
    assert!(converted > 10, "only {converted} funnels had a second step");
}

/// Raw events past the project's retention go; the rollup keeps answering for their days (here
/// streams where no one repeats an event within a day, so the rollup alone is exact), and the
/// days whose events remain still equal the scan.
#[tokio::test]
async fn a_retention_run_keeps_the_funnels_of_expired_days() {
    let clock = clock();
    let (app, me) = {
        let app = spawn(|c| c.dashboard.max_scan_events = SCAN_LIMIT, clock.clone()).await;
        let me = app.admin().await;
        (app, me)
    };
    let p = format!("/api/dash/projects/{}", app.project);
    let (status, body) = app
        .send(
            reqwest::Method::PUT,
            &me,
            &format!("{p}/data-retention"),
            json!({"raw_retention_days": 7}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    ingest_shuffled(&app, activity(5, start(), false), 6).await;
    let s = start().timestamp_millis();
    let old_ranges = [(s, s + 6 * DAY), (s + DAY, s + 4 * DAY)];
    let mut before = Vec::new();
    for (from, to) in old_ranges {
        for steps in STEPS {
            for bots in [false, true] {
                let path = format!(
                    "{p}/funnel?steps={steps}&from={from}&to={to}&window_secs=86400\
                     &include_bots={bots}"
                );
                let (status, got) = app.get(&me, &path).await;
                assert_eq!(status, 200, "{got}");
                before.push((path, got));
            }
        }
    }
    assert!(before.iter().any(|(_, f)| f[1]["users"].as_u64() > Some(0)));
    let rows = "SELECT (SELECT COUNT(*) FROM user_event_days)
                     + (SELECT COUNT(*) FROM user_event_days_bots) * 1000000";
    let rows_before = helpers::query_i64(&app.database_url, rows).await;

    clock.advance(Duration::days(10));
    let recent = clock.now() - Duration::days(6);
    let recent = recent - Duration::milliseconds(recent.timestamp_millis().rem_euclid(DAY));
    ingest_shuffled(&app, activity(7, recent, true), 8).await;
    let store = Store::open(&app.database_url, Default::default())
        .await
        .unwrap();
    let report = pulseline_collector::maintenance::run_once(&store, clock.now())
        .await
        .unwrap();
    assert!(report.events_deleted > 0, "{report:?}");
    let old = store
        .scan_events(app.project, s, s + 6 * DAY, None, true, 10)
        .await
        .unwrap();
    assert!(old.is_empty(), "the old raw events expired");
    assert!(helpers::query_i64(&app.database_url, rows).await > rows_before);

    let me = app.admin().await;
    for (path, got) in before {
        let (status, now) = app.get(&me, &path).await;
        assert_eq!(status, 200, "{now}");
        assert_eq!(users(&now), users(&got), "{path}");
    }
    let converted = funnels_equal_the_scan(&app, &me, &ranges(recent)).await;
    assert!(converted > 10, "only {converted} funnels had a second step");
}

/// A database of an older collector (migration 0038) holding events, upgraded by opening it:
/// the backfilled rollup answers as the scan does.
#[tokio::test]
async fn the_upgrade_backfills_the_rollup_from_stored_events() {
    let dir = tempfile::tempdir().unwrap();
    let url = helpers::fresh_database_url(dir.path()).await;
    helpers::migrate_to(&url, 38).await;
    helpers::exec_sql(
        &url,
        "INSERT INTO projects (name, created_at) VALUES ('A', 0)",
    )
    .await;
    let project = helpers::query_i64(&url, "SELECT MIN(id) FROM projects").await;
    let mut messages = activity(9, start(), true);
    messages.shuffle(&mut StdRng::seed_from_u64(10));
    helpers::insert_raw_events(&url, project, &messages).await;
    let store = Store::open(&url, Default::default()).await.unwrap();
    assert!(helpers::query_i64(&url, "SELECT COUNT(*) FROM user_event_days").await > 0);
    assert!(helpers::query_i64(&url, "SELECT COUNT(*) FROM user_event_days_bots").await > 0);
    assert_seconds_exact(&url, project).await;
    let mut converted = 0;
    for (from, to) in ranges(start()) {
        for steps in STEPS {
            for window in WINDOWS {
                for bots in [false, true] {
                    let names: Vec<String> = steps.split(',').map(str::to_owned).collect();
                    let reached = store
                        .funnel_reached(project, from, to, &names, window * 1000, bots)
                        .await
                        .unwrap();
                    let got =
                        serde_json::to_value(analytics::funnel_steps(&names, &reached)).unwrap();
                    let want = scanned(&store, project, from, to, steps, window, bots).await;
                    assert_eq!(
                        got, want,
                        "{steps} over [{from}, {to}) within {window} s, bots {bots}"
                    );
                    converted += usize::from(reached[1] > 0);
                }
            }
        }
    }
    assert!(converted > 20, "only {converted} funnels had a second step");
}

/// More users than one statement of the funnel's rollup read takes (5,000), many doing a step
/// before and after the previous one the same day, often in the same millisecond (then the
/// stored order decides): every user's step is read in batches, and the answer is the scan's.
#[tokio::test]
async fn funnels_over_many_users_equal_the_scan() {
    let app = spawn(|c| c.dashboard.max_scan_events = SCAN_LIMIT, clock()).await;
    let me = app.admin().await;
    let mut rng = StdRng::seed_from_u64(12);
    let mut sent = Vec::new();
    for u in 0..9_000 {
        let mut at = rng.random_range(0..3) * DAY + rng.random_range(0..DAY - 4 * HOUR);
        for _ in 0..rng.random_range(1..7) {
            if !rng.random_bool(0.3) {
                at += rng.random_range(0..HOUR);
            }
            let name = ["view", "cart", "buy"][rng.random_range(0..3)];
            sent.push(
                json!({"type": "track", "event": name, "userId": format!("user-{u}"),
                             "timestamp": (start() + Duration::milliseconds(at)).to_rfc3339(),
                             "messageId": uuid::Uuid::now_v7().to_string()}),
            );
        }
    }
    sent.shuffle(&mut StdRng::seed_from_u64(13));
    for chunk in sent.chunks(500) {
        app.ingest(chunk.to_vec()).await;
    }
    let store = Store::open(&app.database_url, Default::default())
        .await
        .unwrap();
    let s = start().timestamp_millis();
    let p = format!("/api/dash/projects/{}", app.project);
    let mut most = 0;
    for (from, to) in [(s, s + 3 * DAY), (s + 5 * HOUR, s + 2 * DAY + 7 * HOUR)] {
        for steps in ["view,cart,buy", "cart,view,cart", "view,view"] {
            for window in [3_600, 86_400] {
                let path =
                    format!("{p}/funnel?steps={steps}&from={from}&to={to}&window_secs={window}");
                let (status, got) = app.get(&me, &path).await;
                assert_eq!(status, StatusCode::OK, "{path}: {got}");
                let want = scanned(&store, app.project, from, to, steps, window, false).await;
                let got = users(&got);
                assert_eq!(got, users(&want), "{path}");
                most = most.max(got[0]);
                assert!(got[1] > 500, "{path}: {got:?}");
            }
        }
    }
    assert!(most > 5_000, "at most {most} users at step 1");
}

/// A time of the test day: hour and minute.
type HourMinute = (i64, i64);

/// A day on which each user views at 10:00, adds to cart at the given times and orders once:
/// the app, its admin, the path of the day's `view,cart,buy` funnel, and that funnel computed
/// from the stored events.
async fn cart_day(people: &[(&str, &[HourMinute], HourMinute)]) -> (Dash, Login, String, Value) {
    let app = spawn(|c| c.dashboard.max_scan_events = SCAN_LIMIT, clock()).await;
    let me = app.admin().await;
    let at = |h: i64, m: i64| (start() + Duration::minutes(h * 60 + m)).to_rfc3339();
    let mut sent = Vec::new();
    for &(user, carts, order) in people {
        let mut add = |event: &str, (h, m): HourMinute| {
            sent.push(json!({"type": "track", "event": event, "userId": user,
                             "timestamp": at(h, m), "messageId": uuid::Uuid::now_v7().to_string()}));
        };
        add("view", (10, 0));
        for &c in carts {
            add("cart", c);
        }
        add("buy", order);
    }
    app.ingest(sent).await;
    let s = start().timestamp_millis();
    let (from, to) = (s, s + DAY);
    let path = format!(
        "/api/dash/projects/{}/funnel?steps=view,cart,buy&from={from}&to={to}",
        app.project
    );
    let store = Store::open(&app.database_url, Default::default())
        .await
        .unwrap();
    let want = scanned(
        &store,
        app.project,
        from,
        to,
        "view,cart,buy",
        86_400,
        false,
    )
    .await;
    (app, me, path, want)
}

/// A user who did step 2 on the day of step 1 both before and after it has reached step 2
/// without its time being read; step 3 then needs that time only when it could come before
/// the day's last step 2. Each user below views at 10:00 and adds to cart at 09:00 and later:
/// whether their order counts depends on which add to cart came first after the view.
#[tokio::test]
async fn a_step_before_and_after_the_previous_one_is_timed_only_when_the_next_needs_it() {
    // (user, cart times, order time): the order counts when it follows the first cart after
    // 10:00.
    let (app, me, path, want) = cart_day(&[
        // Order after the day's last cart: counts, and needs no cart time.
        ("late-order", &[(9, 0), (11, 0), (13, 0)], (14, 0)),
        // Order between the first cart after the view and the day's last: counts.
        ("between", &[(9, 0), (11, 0), (13, 0)], (12, 0)),
        // Order before the first cart after the view, which is before the day's last: not.
        ("too-early", &[(9, 0), (12, 30), (13, 0)], (12, 0)),
        // Order between the view and the first cart after it: not.
        ("before-cart", &[(9, 0), (12, 30)], (11, 0)),
    ])
    .await;
    assert_eq!(users(&want), [4, 4, 2]);
    let (status, got) = app.get(&me, &path).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(users(&got), users(&want), "{got}");
}

/// A repeated step (`view,view`) after a day's first occurrence is the day's second, which the
/// rollup keeps (migration 0054): with every raw event gone, funnels over whole days still
/// equal the scan taken while the events were there, for windows shorter than the gaps.
#[tokio::test]
async fn a_repeated_step_is_answered_without_the_events() {
    let app = spawn(|c| c.dashboard.max_scan_events = SCAN_LIMIT, clock()).await;
    let me = app.admin().await;
    let mut rng = StdRng::seed_from_u64(21);
    let mut sent = Vec::new();
    for u in 0..300 {
        for day in 0..4 {
            for _ in 0..rng.random_range(0..5) {
                let at = day * DAY + rng.random_range(0..DAY);
                sent.push(
                    json!({"type": "track", "event": "view", "userId": format!("user-{u}"),
                                 "timestamp": (start() + Duration::milliseconds(at)).to_rfc3339(),
                                 "messageId": uuid::Uuid::now_v7().to_string()}),
                );
            }
        }
    }
    sent.shuffle(&mut StdRng::seed_from_u64(22));
    for chunk in sent.chunks(100) {
        app.ingest(chunk.to_vec()).await;
    }
    let store = Store::open(&app.database_url, Default::default())
        .await
        .unwrap();
    let s = start().timestamp_millis();
    let mut cases = Vec::new();
    for (from, to) in [(s, s + 4 * DAY), (s + DAY, s + 3 * DAY)] {
        for steps in ["view,view", "view,view,view"] {
            for window in [60, 3_600, 6 * 3_600, 86_400, 2 * 86_400] {
                let want =
                    users(&scanned(&store, app.project, from, to, steps, window, false).await);
                cases.push((from, to, steps, window, want));
            }
        }
    }
    // Some users convert within an hour, not all: the windows tell the times apart.
    assert!(
        cases
            .iter()
            .any(|(_, _, _, w, u)| *w == 3_600 && u[1] > 0 && u[1] < u[0]),
        "{cases:?}"
    );
    helpers::exec_sql(
        &app.database_url,
        &format!("DELETE FROM events WHERE project_id = {}", app.project),
    )
    .await;
    let p = format!("/api/dash/projects/{}", app.project);
    for (from, to, steps, window, want) in cases {
        let path = format!("{p}/funnel?steps={steps}&from={from}&to={to}&window_secs={window}");
        let (status, got) = app.get(&me, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {got}");
        // The third step follows the second, whose time the rollup does not hold past the
        // day's second occurrence: only the first two steps are the rollup's alone.
        assert_eq!(users(&got)[..2], want[..2], "{path}");
    }
}

/// A database whose rollup outlived some of a day's raw events (raw retention cut the day)
/// cannot know that day's second occurrence: the upgrade leaves it unknown.
#[tokio::test]
async fn the_upgrade_leaves_a_cut_day_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let url = helpers::fresh_database_url(dir.path()).await;
    helpers::migrate_to(&url, 53).await;
    helpers::exec_sql(
        &url,
        "INSERT INTO projects (name, created_at) VALUES ('A', 0)",
    )
    .await;
    let project = helpers::query_i64(&url, "SELECT MIN(id) FROM projects").await;
    let day = start().timestamp_millis();
    // Three views counted, one left in the events; another user's two, both left.
    helpers::exec_sql(
        &url,
        &format!(
            "INSERT INTO user_event_days (project_id, name, user_key, day, events, first_ts, last_ts)
             VALUES ({project}, 'view', 'cut', {day}, 3, {a}, {b}),
                    ({project}, 'view', 'whole', {day}, 2, {a}, {b})",
            a = day + HOUR,
            b = day + 5 * HOUR,
        ),
    )
    .await;
    for (user, ts, id) in [
        ("cut", day + HOUR, "m1"),
        ("whole", day + HOUR, "m2"),
        ("whole", day + 5 * HOUR, "m3"),
    ] {
        helpers::exec_sql(
            &url,
            &format!(
                "INSERT INTO events (project_id, message_id, type, event, user_id, timestamp,
                                     received_at, body)
                 VALUES ({project}, '{id}', 'track', 'view', '{user}', {ts}, 0, '{{}}')"
            ),
        )
        .await;
    }
    Store::open(&url, Default::default()).await.unwrap();
    let seconds: Vec<Option<i64>> = helpers::query_column(
        &url,
        "SELECT second_ts FROM user_event_days ORDER BY user_key",
    )
    .await;
    assert_eq!(seconds, [None, Some(day + 5 * HOUR)]);
}

/// An unknown second occurrence (as the upgrade leaves a cut day) stays unknown when ingest
/// adds to the day, and the funnel then reads the day's events, as it did before.
#[tokio::test]
async fn an_unknown_second_occurrence_stays_unknown() {
    let app = spawn(|c| c.dashboard.max_scan_events = SCAN_LIMIT, clock()).await;
    let me = app.admin().await;
    let view = |h: i64| {
        json!({"type": "track", "event": "view", "userId": "u",
               "timestamp": (start() + Duration::hours(h)).to_rfc3339(),
               "messageId": uuid::Uuid::now_v7().to_string()})
    };
    app.ingest(vec![view(1), view(5)]).await;
    let second = || {
        helpers::query_column::<Option<i64>>(
            &app.database_url,
            "SELECT second_ts FROM user_event_days WHERE user_key = 'u'",
        )
    };
    let day = start().timestamp_millis();
    assert_eq!(second().await, [Some(day + 5 * HOUR)]);
    helpers::exec_sql(
        &app.database_url,
        "UPDATE user_event_days SET second_ts = NULL",
    )
    .await;
    app.ingest(vec![view(3)]).await;
    assert_eq!(second().await, [None]);
    // From the events: the view at 01:00, then the one at 03:00 within two hours.
    let path = format!(
        "/api/dash/projects/{}/funnel?steps=view,view&from={day}&to={}&window_secs=7200",
        app.project,
        day + DAY
    );
    let (status, got) = app.get(&me, &path).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(users(&got), [1, 1], "{got}");
}

/// A step done before and after the previous one on a day, whose second occurrence that day
/// follows the previous step, is timed at that second occurrence from the rollup alone: with
/// every raw event gone, the funnel still equals the scan taken while they were there. (Timed
/// from the events instead, a user whose raw events expired counts at the day's last cart,
/// after the order.)
#[tokio::test]
async fn a_step_after_the_previous_one_is_timed_by_the_days_second_occurrence() {
    // (user, cart times, order time).
    let (app, me, path, want) = cart_day(&[
        // The second cart (11:00) follows the view; the order follows it: counts.
        ("between", &[(9, 0), (11, 0), (13, 0)], (12, 0)),
        // The order comes before the second cart: not.
        ("order-first", &[(9, 0), (11, 0), (13, 0)], (10, 30)),
        // The second cart comes before the view: the third (11:00) is the one, which only the
        // events say (the day's last is 13:00); the order follows it.
        ("third", &[(9, 0), (9, 30), (11, 0), (13, 0)], (12, 0)),
    ])
    .await;
    assert_eq!(users(&want), [3, 3, 2]);
    let (status, got) = app.get(&me, &path).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(users(&got), users(&want), "{got}");
    // Only the third user's cart needs the events.
    helpers::exec_sql(
        &app.database_url,
        &format!(
            "DELETE FROM events WHERE project_id = {} AND user_id IN ('between', 'order-first')",
            app.project
        ),
    )
    .await;
    let (status, got) = app.get(&me, &path).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(users(&got), users(&want), "{got}");
}
