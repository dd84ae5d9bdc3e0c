//! The overview in the project's time zone (issue 21): events just before and after local
//! midnights, across DST changes and in a zone half an hour off the hour, land on the local
//! day a plain computation over the events sent gives, for today, the 30-day chart and
//! DAU/WAU/MAU; also after the time zone changes and the days are re-keyed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, TimeZone as _, Utc};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use pulseline_collector::clock::FakeClock;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use super::{Dash, Login, spawn};
use crate::helpers;

/// One message sent: when (unix ms), by whom, which event, and whether from a bot.
struct Sent {
    at: i64,
    user: String,
    name: &'static str,
    bot: bool,
}

fn local_date(tz: &TimeZone, ms: i64) -> Date {
    Timestamp::from_millisecond(ms)
        .unwrap()
        .to_zoned_datetime(tz.clone())
        .date()
}

fn midnight(tz: &TimeZone, d: Date) -> i64 {
    d.to_zoned_datetime(tz.clone())
        .unwrap()
        .timestamp()
        .as_millisecond()
}

/// Events around every local midnight from 32 days before `now` to `now`: a minute and twenty
/// minutes either side, midday, and a crawler's, by users that recur across days.
fn traffic(tz: &TimeZone, now: i64) -> Vec<Sent> {
    let today = local_date(tz, now);
    let mut sent = Vec::new();
    for back in 0..=32i64 {
        let day = today.checked_sub(jiff::Span::new().days(back)).unwrap();
        let m = midnight(tz, day);
        let minute = 60_000;
        for (k, offset) in [
            -20 * minute,
            -minute,
            0,
            minute,
            20 * minute,
            12 * 60 * minute,
        ]
        .into_iter()
        .enumerate()
        {
            let at = m + offset;
            if at > now {
                continue;
            }
            sent.push(Sent {
                at,
                user: format!("user-{}", (back * 7 + k as i64 * 3) % 23),
                name: ["Signup", "Paid", "View"][k % 3],
                bot: false,
            });
        }
        if m + 5 * minute <= now {
            sent.push(Sent {
                at: m + 5 * minute,
                user: "crawler".into(),
                name: "View",
                bot: true,
            });
        }
    }
    sent
}

/// The overview's day-based numbers, computed plainly from the events sent.
fn expected(tz: &TimeZone, now: i64, sent: &[Sent], bots: bool) -> Value {
    let today = local_date(tz, now);
    let days: Vec<Date> = (0..30)
        .map(|i| today.checked_sub(jiff::Span::new().days(29 - i)).unwrap())
        .collect();
    let mut events: BTreeMap<Date, i64> = BTreeMap::new();
    let mut users: BTreeMap<Date, BTreeSet<&str>> = BTreeMap::new();
    let mut names: BTreeMap<&str, i64> = BTreeMap::new();
    let mut bot_events = 0;
    for s in sent {
        let d = local_date(tz, s.at);
        if d < days[0] || d > today {
            continue;
        }
        if s.bot {
            bot_events += 1;
        } else {
            users.entry(d).or_default().insert(&s.user);
        }
        if bots || !s.bot {
            *events.entry(d).or_default() += 1;
            *names.entry(s.name).or_default() += 1;
        }
    }
    let active_since = |first: usize| {
        days[first..]
            .iter()
            .flat_map(|d| users.get(d).into_iter().flatten())
            .collect::<BTreeSet<_>>()
            .len()
    };
    let mut top: Vec<(&str, i64)> = names.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    json!({
        "events_today": events.get(&today).copied().unwrap_or(0),
        "dau": active_since(29),
        "wau": active_since(23),
        "mau": active_since(0),
        "daily": days.iter().map(|d| json!([midnight(tz, *d), events.get(d).copied().unwrap_or(0)])).collect::<Vec<_>>(),
        "daily_active": days.iter().map(|d| json!([midnight(tz, *d), users.get(d).map_or(0, BTreeSet::len)])).collect::<Vec<_>>(),
        "top_events": top,
        "bot_events": bot_events,
    })
}

fn day_numbers(o: &Value) -> Value {
    let keys = [
        "events_today",
        "dau",
        "wau",
        "mau",
        "daily",
        "daily_active",
        "top_events",
        "bot_events",
    ];
    keys.iter().map(|k| (k.to_string(), o[k].clone())).collect()
}

fn message(s: &Sent) -> Value {
    let mut m = json!({
        "type": "track", "event": s.name, "userId": s.user,
        "timestamp": DateTime::from_timestamp_millis(s.at).unwrap().to_rfc3339(),
        "messageId": uuid::Uuid::now_v7().to_string(),
    });
    if s.bot {
        m["context"] = json!({"bot": true});
    }
    m
}

/// A collector at `now` whose project is in `zone` (set before any event when `first`,
/// else after them all), holding `sent` in shuffled batches.
async fn seeded(zone: &str, now: DateTime<Utc>, first: bool) -> (Dash, Login, String, Vec<Sent>) {
    let app = spawn(|_| {}, Arc::new(FakeClock::new(now))).await;
    let me = app.admin().await;
    let p = format!("/api/dash/projects/{}", app.project);
    let set_zone = async |zone: &str| {
        let (status, body) = app
            .post(&me, &format!("{p}/settings"), json!({"timezone": zone}))
            .await;
        assert_eq!(status, 200, "{body}");
    };
    if first {
        set_zone(zone).await;
    }
    let tz = TimeZone::get(zone).unwrap();
    let sent = traffic(&tz, now.timestamp_millis());
    let mut messages: Vec<Value> = sent.iter().map(message).collect();
    messages.shuffle(&mut StdRng::seed_from_u64(7));
    for chunk in messages.chunks(41) {
        app.ingest(chunk.to_vec()).await;
    }
    if !first {
        set_zone(zone).await;
    }
    (app, me, p, sent)
}

async fn check(app: &Dash, me: &Login, p: &str, zone: &str, now: DateTime<Utc>, sent: &[Sent]) {
    let tz = TimeZone::get(zone).unwrap();
    let now = now.timestamp_millis();
    for bots in [false, true] {
        let (status, o) = app
            .get(me, &format!("{p}/overview?include_bots={bots}"))
            .await;
        assert_eq!(status, 200, "{o}");
        assert_eq!(o["timezone"], zone);
        assert_eq!(
            day_numbers(&o),
            expected(&tz, now, sent, bots),
            "{zone} at {now}, bots {bots}"
        );
    }
}

/// Each zone with a `now` whose 30 days hold a DST change (Berlin's autumn and spring, Los
/// Angeles's autumn) or that is just after a local midnight still on the UTC day before
/// (Kolkata, +05:30: its midnights cut UTC hours in half).
fn cases() -> Vec<(&'static str, DateTime<Utc>)> {
    vec![
        (
            "Europe/Berlin",
            Utc.with_ymd_and_hms(2026, 11, 10, 10, 0, 0).unwrap(),
        ),
        (
            "Europe/Berlin",
            Utc.with_ymd_and_hms(2026, 4, 10, 22, 30, 0).unwrap(),
        ),
        (
            "America/Los_Angeles",
            Utc.with_ymd_and_hms(2026, 11, 10, 6, 30, 0).unwrap(),
        ),
        (
            "Asia/Kolkata",
            Utc.with_ymd_and_hms(2026, 11, 10, 19, 0, 0).unwrap(),
        ),
    ]
}

#[tokio::test]
async fn the_overview_counts_the_projects_local_days() {
    for (zone, now) in cases() {
        let (app, me, p, sent) = seeded(zone, now, true).await;
        check(&app, &me, &p, zone, now, &sent).await;
    }
}

/// Events stored in UTC days, then the zone changes: the settings change re-keys the days
/// in the background; a project migrated from before local days (migration 0040 marks it)
/// is re-keyed by the maintenance pass.
#[tokio::test]
async fn a_time_zone_change_re_keys_the_days() {
    let (zone, now) = cases()[3];
    let (app, me, p, sent) = seeded(zone, now, false).await;
    let pending = format!(
        "SELECT COUNT(*) FROM projects WHERE id = {} AND days_rebuild_next IS NOT NULL",
        app.project
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while helpers::query_i64(&app.database_url, &pending).await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the rebuild never finished"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    check(&app, &me, &p, zone, now, &sent).await;

    // As if migrated: the zone stored, the days still UTC's, the rebuild asked for.
    let (zone, now) = cases()[2];
    let (app, me, p, sent) = seeded("UTC", now, true).await;
    helpers::exec_sql(
        &app.database_url,
        &format!(
            "UPDATE projects SET timezone = '{zone}', days_rebuild_next = -1 WHERE id = {}",
            app.project
        ),
    )
    .await;
    let store = pulseline_collector::store::Store::open(&app.database_url, Default::default())
        .await
        .unwrap();
    pulseline_collector::maintenance::run_once(&store, now)
        .await
        .unwrap();
    store.close().await;
    check(&app, &me, &p, zone, now, &sent).await;
}

/// Weekly retention in Kolkata: weeks are the project's local weeks from Monday 00:00, cohorts
/// computed plainly from the events sent in the whole weeks the range touches.
#[tokio::test]
async fn retention_weeks_start_on_monday_in_the_projects_time_zone() {
    let (zone, now) = cases()[3];
    let (app, me, p, sent) = seeded(zone, now, true).await;
    let tz = TimeZone::get(zone).unwrap();
    let to = now.timestamp_millis();
    let from = to - 26 * 86_400_000 - 3_600_000;
    let monday = |ms: i64| {
        let d = local_date(&tz, ms);
        let back = i64::from(d.weekday().to_monday_zero_offset());
        d.checked_sub(jiff::Span::new().days(back)).unwrap()
    };
    let first = monday(from);
    let week_of = |ms: i64| (monday(ms) - first).get_days() as usize / 7;
    let periods = week_of(to - 1) + 1;
    // The whole weeks the range touches.
    let after = |weeks: usize| {
        let day = first
            .checked_add(jiff::Span::new().days(7 * weeks as i64))
            .unwrap();
        midnight(&tz, day)
    };
    let whole = after(0)..after(periods);
    let mut first_week: BTreeMap<&str, usize> = BTreeMap::new();
    let mut active: BTreeSet<(&str, usize)> = BTreeSet::new();
    for s in sent.iter().filter(|s| !s.bot && whole.contains(&s.at)) {
        let w = week_of(s.at);
        let f = first_week.entry(&s.user).or_insert(w);
        *f = (*f).min(w);
        active.insert((&s.user, w));
    }
    let mut cohorts: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for (u, w) in &first_week {
        cohorts.entry(*w).or_default().push(u);
    }
    let expected: Vec<Value> = cohorts
        .iter()
        .map(|(w, users)| {
            let returning: Vec<u64> = (*w..periods)
                .map(|q| users.iter().filter(|u| active.contains(&(**u, q))).count() as u64)
                .collect();
            let n = users.len() as f64;
            let start = first
                .checked_add(jiff::Span::new().days(7 * *w as i64))
                .unwrap();
            json!({
                "start": midnight(&tz, start),
                "users": users.len(),
                "share": returning.iter().map(|r| *r as f64 / n).collect::<Vec<_>>(),
                "returning": returning,
            })
        })
        .collect();
    // Every user is active in the first whole week: one cohort, returning over four weeks.
    assert!(
        expected[0]["returning"].as_array().unwrap().len() > 3,
        "{expected:?}"
    );
    let path = format!("{p}/retention?from={from}&to={to}&period=week");
    let (status, got) = app.get(&me, &path).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got, json!(expected));
}
