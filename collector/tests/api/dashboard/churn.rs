//! Churn (issue 24) against a straightforward computation over seeded random activity: by
//! inactivity and by an event, weekly and monthly, with bots left out.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use pulseline_collector::clock::FakeClock;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::{Dash, Login, spawn};

const CANCEL: &str = "subscription_cancelled";

/// One generated event: who, what, when, and whether it came from a bot.
struct Sent {
    user: String,
    event: &'static str,
    at: DateTime<Utc>,
    bot: bool,
}

/// Twelve weeks of activity from Monday 2026-09-07: users who fade at random, some who cancel,
/// anonymous visitors, and a crawler active every day that must count nowhere.
fn activity(seed: u64) -> Vec<Sent> {
    let mut rng = StdRng::seed_from_u64(seed);
    let start = Utc.with_ymd_and_hms(2026, 9, 7, 0, 0, 0).unwrap();
    let mut sent = Vec::new();
    for u in 0..30 {
        let user = if u % 7 == 6 {
            format!("anon-{u}")
        } else {
            format!("user-{u}")
        };
        let first = rng.random_range(0..40);
        let last = rng.random_range(first..84);
        let daily: f64 = rng.random_range(0.1..0.6);
        for day in first..=last {
            if !rng.random_bool(daily) {
                continue;
            }
            let at = start + Duration::days(day) + Duration::minutes(rng.random_range(0..1440));
            let event = if rng.random_bool(0.05) {
                CANCEL
            } else {
                ["view", "click"][rng.random_range(0..2)]
            };
            sent.push(Sent {
                user: user.clone(),
                event,
                at,
                bot: false,
            });
        }
    }
    for day in 0..84 {
        let at = start + Duration::days(day) + Duration::hours(3);
        for event in ["view", CANCEL] {
            sent.push(Sent {
                user: "crawler".into(),
                event,
                at,
                bot: true,
            });
        }
    }
    sent
}

fn message(s: &Sent) -> Value {
    let id = if s.user.starts_with("anon-") {
        "anonymousId"
    } else {
        "userId"
    };
    let mut m = json!({
        "type": "track", "event": s.event, "timestamp": s.at.to_rfc3339(),
        "messageId": uuid::Uuid::now_v7().to_string(),
    });
    m[id] = json!(s.user);
    if s.bot {
        m["context"] = json!({"bot": true});
    }
    m
}

/// The straightforward computation: users per period, then set differences.
fn expected(sent: &[Sent], starts: &[i64], event: Option<&str>) -> Vec<(i64, i64)> {
    let period_of = |t: i64| starts.iter().rposition(|s| *s <= t);
    let mut active: BTreeMap<usize, BTreeSet<&str>> = BTreeMap::new();
    let mut did: BTreeMap<usize, BTreeSet<&str>> = BTreeMap::new();
    for s in sent.iter().filter(|s| !s.bot) {
        let Some(p) = period_of(s.at.timestamp_millis()) else {
            continue;
        };
        active.entry(p).or_default().insert(&s.user);
        if Some(s.event) == event {
            did.entry(p).or_default().insert(&s.user);
        }
    }
    let empty = BTreeSet::new();
    (0..starts.len() - 2)
        .map(|p| {
            let now = active.get(&p).unwrap_or(&empty);
            let next = match event {
                None => active.get(&(p + 1)).unwrap_or(&empty),
                Some(_) => did.get(&(p + 1)).unwrap_or(&empty),
            };
            let churned = match event {
                None => now.difference(next).count(),
                Some(_) => now.intersection(next).count(),
            };
            (now.len() as i64, churned as i64)
        })
        .collect()
}

async fn seeded(seed: u64) -> (Dash, Login, String, Vec<Sent>) {
    seeded_in(seed, None, Vec::new()).await
}

/// `seeded`, with the project in `zone` (set before any event) and `extra` events sent too.
async fn seeded_in(
    seed: u64,
    zone: Option<&str>,
    extra: Vec<Sent>,
) -> (Dash, Login, String, Vec<Sent>) {
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap(),
    ));
    let app = spawn(|_| {}, clock).await;
    let me = app.admin().await;
    if let Some(zone) = zone {
        let p = format!("/api/dash/projects/{}/settings", app.project);
        let (status, body) = app.post(&me, &p, json!({"timezone": zone})).await;
        assert_eq!(status, 200, "{body}");
    }
    let mut sent = activity(seed);
    sent.extend(extra);
    let messages: Vec<Value> = sent.iter().map(message).collect();
    for chunk in messages.chunks(500) {
        app.ingest(chunk.to_vec()).await;
    }
    let p = format!("/api/dash/projects/{}", app.project);
    (app, me, p, sent)
}

fn got(series: &Value) -> Vec<(i64, i64)> {
    series["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["active"].as_i64().unwrap(),
                p["churned"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn ms(y: i32, m: u32, d: u32) -> i64 {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0)
        .unwrap()
        .timestamp_millis()
}

#[tokio::test]
async fn weekly_churn_matches_a_straightforward_computation() {
    let (app, me, p, sent) = seeded(24).await;
    // Weeks from Monday 2026-09-07 to Monday 2026-11-30: 12 weeks, 10 with a complete next.
    let starts: Vec<i64> = (0..13)
        .map(|w| ms(2026, 9, 7) + w * 7 * 86_400_000)
        .collect();
    // `from` mid-week is rounded down to its Monday.
    let query = format!(
        "{p}/churn?period=week&from={}&to={}",
        starts[0] + 3_600_000,
        starts[12]
    );
    let (status, by_inactivity) = app.get(&me, &query).await;
    assert_eq!(status, 200, "{by_inactivity}");
    assert_eq!(by_inactivity["points"][0]["start"], starts[0]);
    let want = expected(&sent, &starts, None);
    assert_eq!(got(&by_inactivity), want, "{by_inactivity}");
    assert!(
        want.iter().any(|(_, churned)| *churned > 0) && want.iter().all(|(a, _)| *a < 30),
        "the data must exercise churn: {want:?}"
    );
    let point = &by_inactivity["points"][2];
    let rate = point["churned"].as_f64().unwrap() / point["active"].as_f64().unwrap();
    assert!(
        (point["rate"].as_f64().unwrap() - rate).abs() < 1e-12,
        "{point}"
    );

    let (status, by_event) = app.get(&me, &format!("{query}&event={CANCEL}")).await;
    assert_eq!(status, 200, "{by_event}");
    assert_eq!(by_event["event"], CANCEL);
    let want = expected(&sent, &starts, Some(CANCEL));
    assert_eq!(got(&by_event), want, "{by_event}");
    assert!(
        want.iter().any(|(_, churned)| *churned > 0),
        "someone must cancel: {want:?}"
    );
}

#[tokio::test]
async fn churn_weeks_start_at_local_midnight_in_the_projects_zone() {
    let zone = "America/New_York";
    let tz = jiff::tz::TimeZone::get(zone).unwrap();
    let local = |d: i8, h: i8| {
        jiff::civil::date(2026, 9, d)
            .at(h, 0, 0, 0)
            .to_zoned_datetime(tz.clone())
            .unwrap()
            .timestamp()
            .as_millisecond()
    };
    // Active in the week of Monday 14 September, cancels on Sunday 27 September at 21:00 in
    // New York: still that zone's week of the 21st, though already Monday the 28th in UTC.
    let at = |t: i64| DateTime::from_timestamp_millis(t).unwrap();
    let edge = |event, t| Sent {
        user: "user-edge".into(),
        event,
        at: at(t),
        bot: false,
    };
    let extra = vec![edge("view", local(16, 12)), edge(CANCEL, local(27, 21))];
    let (app, me, p, sent) = seeded_in(24, Some(zone), extra).await;
    let starts: Vec<i64> = (0..13)
        .map(|w| {
            jiff::civil::date(2026, 9, 7)
                .checked_add(jiff::Span::new().days(7 * w))
                .unwrap()
                .to_zoned_datetime(tz.clone())
                .unwrap()
                .timestamp()
                .as_millisecond()
        })
        .collect();
    let query = format!(
        "{p}/churn?period=week&from={}&to={}",
        starts[0] + 3_600_000,
        starts[12]
    );
    for event in [None, Some(CANCEL)] {
        let query = match event {
            None => query.clone(),
            Some(e) => format!("{query}&event={e}"),
        };
        let (status, series) = app.get(&me, &query).await;
        assert_eq!(status, 200, "{series}");
        // Points are keyed by their first local date, at 00:00 UTC.
        assert_eq!(series["points"][0]["start"], ms(2026, 9, 7), "{series}");
        assert_eq!(got(&series), expected(&sent, &starts, event), "{query}");
    }
}

#[tokio::test]
async fn monthly_churn_by_default_ends_at_the_last_complete_next_month() {
    let (app, me, p, sent) = seeded(7).await;
    // The clock is 2026-12-03: December is not over, so November's churn is not known yet and
    // October is the last point.
    let (status, series) = app.get(&me, &format!("{p}/churn?period=month")).await;
    assert_eq!(status, 200, "{series}");
    let points = series["points"].as_array().unwrap();
    assert_eq!(points.last().unwrap()["start"], ms(2026, 10, 1), "{series}");
    let starts = [
        ms(2026, 8, 1),
        ms(2026, 9, 1),
        ms(2026, 10, 1),
        ms(2026, 11, 1),
        ms(2026, 12, 1),
    ];
    let want = expected(&sent, &starts, None);
    let shown: Vec<(i64, i64)> = got(&series).into_iter().rev().take(3).rev().collect();
    assert_eq!(shown, want, "{series}");
    let want = expected(&sent, &starts, Some(CANCEL));
    let (_, series) = app
        .get(&me, &format!("{p}/churn?period=month&event={CANCEL}"))
        .await;
    let shown: Vec<(i64, i64)> = got(&series).into_iter().rev().take(3).rev().collect();
    assert_eq!(shown, want, "{series}");
}

#[tokio::test]
async fn churn_reads_the_rollup_whole_however_many_active_user_days() {
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap(),
    ));
    let app = spawn(|c| c.dashboard.max_scan_events = 5, clock).await;
    let me = app.admin().await;
    let p = format!("/api/dash/projects/{}", app.project);
    // Six users on one day of the week of 2026-11-16.
    let day = Utc.with_ymd_and_hms(2026, 11, 17, 10, 0, 0).unwrap();
    let batch = (0..6)
        .map(|u| {
            message(&Sent {
                user: format!("user-{u}"),
                event: "view",
                at: day,
                bot: false,
            })
        })
        .collect();
    app.ingest(batch).await;
    let (from, to) = (ms(2026, 11, 16), ms(2026, 11, 30));
    // More active-user days than PULSELINE_DASHBOARD_MAX_SCAN_EVENTS (5), which used to
    // refuse the range: all six users count, and all six churned by inactivity.
    let (status, body) = app
        .get(&me, &format!("{p}/churn?from={from}&to={to}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(got(&body), [(6, 6)], "{body}");
}

#[tokio::test]
async fn bad_churn_parameters_say_what_to_fix() {
    let clock = Arc::new(FakeClock::new(Utc::now()));
    let app = spawn(|_| {}, clock).await;
    let me = app.admin().await;
    let p = format!("/api/dash/projects/{}", app.project);
    let long = "e".repeat(201);
    for (query, says) in [
        ("period=day", "use week or month"),
        ("from=0&to=253402300799999", "more than 104 periods"),
        ("from=10&to=5", "must be before"),
        ("to=-1", "unix milliseconds from 0"),
        (&format!("event={long}") as &str, "longer than 200"),
    ] {
        let (status, body) = app.get(&me, &format!("{p}/churn?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.to_string().contains(says), "{query}: {body}");
    }
    let (status, _) = app
        .get(
            &me,
            &format!("/api/dash/projects/{}/churn", app.project + 1000),
        )
        .await;
    assert_eq!(status, 404);
}
