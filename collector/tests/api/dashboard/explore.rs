//! Explore without a scan cap (issue 20): series with a filter, a group-by, a unique count and
//! a p75, streamed from the raw events, against a plain computation over the events sent
//! (seeded random streams with bots and repeated batches); a range above the scan budget
//! answers for its newest buckets and says from when; group-bys keep at most MAX_GROUPS.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use pulseline_collector::analytics::MAX_GROUPS;
use pulseline_collector::clock::FakeClock;
use pulseline_collector::domain::percentile::percentile;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::{Dash, Login, spawn};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
const PLANS: [&str; 5] = ["free", "pro", "team", "biz", "42"];

struct Sent {
    at: i64,
    user: String,
    event: &'static str,
    plan: Option<&'static str>,
    amount: Option<f64>,
    bot: bool,
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
}

/// Thirty days of purchases and views by 40 users, some without a plan or an amount, and a
/// crawler that buys too.
fn activity(seed: u64, n: usize) -> Vec<Sent> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let bot = rng.random_bool(0.05);
            Sent {
                at: start().timestamp_millis() + rng.random_range(0..30 * DAY),
                user: if bot {
                    "crawler".to_owned()
                } else {
                    format!("user-{}", rng.random_range(0..40))
                },
                event: if rng.random_bool(0.7) { "buy" } else { "view" },
                plan: rng
                    .random_bool(0.9)
                    .then(|| PLANS[rng.random_range(0..PLANS.len())]),
                amount: rng
                    .random_bool(0.8)
                    .then(|| f64::from(rng.random_range(1..100_000)) / 100.0),
                bot,
            }
        })
        .collect()
}

fn message(s: &Sent) -> Value {
    let mut props = json!({});
    if let Some(p) = s.plan {
        // "42" goes as a number: a filter and a group match its text.
        props["plan"] = if p == "42" { json!(42) } else { json!(p) };
    }
    if let Some(a) = s.amount {
        props["amount"] = json!(a);
    }
    let mut m = json!({
        "type": "track", "event": s.event, "userId": s.user, "properties": props,
        "timestamp": DateTime::from_timestamp_millis(s.at).unwrap().to_rfc3339(),
        "messageId": uuid::Uuid::now_v7().to_string(),
    });
    if s.bot {
        m["context"] = json!({"bot": true});
    }
    m
}

/// A collector holding `sent` (shuffled, one batch sent twice) with a scan budget.
async fn seeded(sent: &[Sent], scan_rows: u32) -> (Dash, Login, String) {
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap(),
    ));
    let app = spawn(|c| c.dashboard.scan_rows = scan_rows, clock).await;
    let me = app.admin().await;
    let mut messages: Vec<Value> = sent.iter().map(message).collect();
    messages.shuffle(&mut StdRng::seed_from_u64(7));
    for chunk in messages.chunks(101) {
        app.ingest(chunk.to_vec()).await;
    }
    app.ingest(messages[..30].to_vec()).await;
    let p = format!("/api/dash/projects/{}", app.project);
    (app, me, p)
}

/// What a chart asks, for the plain computation.
struct Ask<'a> {
    from: i64,
    to: i64,
    bucket: i64,
    agg: &'a str,
    filter: Option<&'a str>,
    group_by: bool,
    top: usize,
    bots: bool,
}

/// The plain computation: every event sent, in memory, per group and bucket.
fn expected(sent: &[Sent], a: &Ask) -> Value {
    let first = a.from - a.from.rem_euclid(a.bucket);
    let n = usize::try_from((a.to - first + a.bucket - 1) / a.bucket).unwrap();
    let mut groups: HashMap<String, Vec<Vec<&Sent>>> = HashMap::new();
    for s in sent {
        let plan = s.plan.unwrap_or("(none)");
        if s.event != "buy" || s.at < a.from || s.at >= a.to || (s.bot && !a.bots) {
            continue;
        }
        if a.filter.is_some_and(|f| s.plan != Some(f)) {
            continue;
        }
        let group = if a.group_by { plan } else { "all" };
        let cells = groups
            .entry(group.to_owned())
            .or_insert_with(|| vec![Vec::new(); n]);
        cells[usize::try_from((s.at - first) / a.bucket).unwrap()].push(s);
    }
    let total = |cells: &Vec<Vec<&Sent>>| {
        cells
            .iter()
            .flatten()
            .filter(|s| a.agg != "p75" || s.amount.is_some())
            .count()
    };
    let mut ranked: Vec<(String, Vec<Vec<&Sent>>)> = groups.into_iter().collect();
    ranked.sort_by(|x, y| total(&y.1).cmp(&total(&x.1)).then_with(|| x.0.cmp(&y.0)));
    if a.group_by && ranked.len() > a.top {
        let mut other = vec![Vec::new(); n];
        for (_, cells) in ranked.split_off(a.top) {
            for (o, c) in other.iter_mut().zip(cells) {
                o.extend(c);
            }
        }
        ranked.push(("(other)".to_owned(), other));
    }
    let value = |cell: &Vec<&Sent>| -> Value {
        match a.agg {
            "count" => json!(cell.len() as f64),
            "unique" => json!(cell.iter().map(|s| &s.user).collect::<HashSet<_>>().len() as f64),
            "p75" => {
                let mut v: Vec<f64> = cell.iter().filter_map(|s| s.amount).collect();
                json!(percentile(&mut v, 0.75))
            }
            other => panic!("{other}"),
        }
    };
    json!(
        ranked
            .iter()
            .map(|(name, cells)| json!({"name": name, "values": cells.iter().map(value).collect::<Vec<_>>()}))
            .collect::<Vec<_>>()
    )
}

/// Series (or value lists) equal but for the last bits of a float: JSON's text does not
/// round-trip every f64 exactly.
fn same(got: &Value, want: &Value, what: &str) {
    match (got, want) {
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{what}: {got} vs {want}");
            for (g, w) in g.iter().zip(w) {
                same(g, w, what);
            }
        }
        (Value::Object(g), Value::Object(w)) => {
            assert_eq!(g["name"], w["name"], "{what}");
            same(&g["values"], &w["values"], what);
        }
        (Value::Number(g), Value::Number(w)) => {
            let (g, w) = (g.as_f64().unwrap(), w.as_f64().unwrap());
            assert!(
                (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                "{what}: {g} vs {w}"
            );
        }
        _ => assert_eq!(got, want, "{what}"),
    }
}

fn query(p: &str, a: &Ask) -> String {
    let mut q = format!(
        "{p}/series?event=buy&from={}&to={}&bucket={}&agg={}&top={}",
        a.from, a.to, a.bucket, a.agg, a.top
    );
    if a.agg == "p75" {
        q.push_str("&property=amount");
    }
    if let Some(f) = a.filter {
        q.push_str(&format!("&filter_property=plan&filter_value={f}"));
    }
    if a.group_by {
        q.push_str("&group_by=plan");
    }
    if a.bots {
        q.push_str("&include_bots=true");
    }
    q
}

fn asks() -> Vec<Ask<'static>> {
    let s = start().timestamp_millis();
    let ask = |from, to, bucket, agg, filter, group_by, bots| Ask {
        from,
        to,
        bucket,
        agg,
        filter,
        group_by,
        top: 3,
        bots,
    };
    vec![
        ask(s, s + 30 * DAY, DAY, "count", Some("pro"), false, false),
        ask(s, s + 30 * DAY, DAY, "count", None, true, false),
        ask(
            s + 5 * HOUR + 7,
            s + 9 * DAY,
            6 * HOUR,
            "count",
            Some("1.10"),
            true,
            true,
        ),
        ask(s, s + 30 * DAY, 7 * DAY, "unique", None, true, false),
        ask(
            s + 2 * DAY,
            s + 20 * DAY,
            DAY,
            "p75",
            Some("team"),
            false,
            false,
        ),
        ask(s, s + 3 * HOUR, 15 * 60_000, "count", None, false, true),
    ]
}

#[tokio::test]
async fn filtered_and_grouped_series_equal_the_plain_computation() {
    for seed in [1, 2] {
        let sent = activity(seed, 900);
        let (app, me, p) = seeded(&sent, 2_000_000).await;
        for a in asks() {
            let q = query(&p, &a);
            let (status, got) = app.get(&me, &q).await;
            assert_eq!(status, 200, "{q}: {got}");
            same(
                &got["series"],
                &expected(&sent, &a),
                &format!("seed {seed}: {q}"),
            );
            assert_eq!(got["coverage"], Value::Null, "{q}");
            assert_eq!(got["groups_capped"], false, "{q}");
            let bots = sent
                .iter()
                .filter(|s| s.bot && s.event == "buy" && s.at >= a.from && s.at < a.to)
                .count();
            assert_eq!(got["bot_events"], bots, "{q}");
        }
    }
}

/// Buy events of `sent` (bots too: the budget counts every row read) from `t` on.
fn buys_from(sent: &[Sent], t: i64, to: i64) -> usize {
    sent.iter()
        .filter(|s| s.event == "buy" && s.at >= t && s.at < to)
        .count()
}

#[tokio::test]
async fn a_range_above_the_scan_budget_answers_for_its_newest_buckets() {
    let sent = activity(3, 900);
    let budget = 150;
    let (app, me, p) = seeded(&sent, budget).await;
    for a in asks().into_iter().filter(|a| a.bucket >= HOUR) {
        let q = query(&p, &a);
        let (status, got) = app.get(&me, &q).await;
        assert_eq!(status, 200, "{q}: {got}");
        if buys_from(&sent, a.from, a.to) <= budget as usize {
            assert_eq!(got["coverage"], Value::Null, "{q}");
            continue;
        }
        let from = got["coverage"]["from"].as_i64().expect("coverage stated");
        assert_eq!(got["coverage"]["to"], a.to, "{q}");
        assert_eq!(
            from.rem_euclid(a.bucket),
            0,
            "{q}: coverage starts on a bucket"
        );
        // Read whole buckets within the budget, and as many as the budget allows.
        assert!(buys_from(&sent, from, a.to) <= budget as usize, "{q}");
        assert!(
            buys_from(&sent, from - a.bucket, a.to) > budget as usize,
            "{q}: covers less than the budget allows"
        );
        let note = got["coverage"]["note"].as_str().unwrap();
        assert!(note.contains("PULSELINE_DASHBOARD_SCAN_ROWS"), "{note}");
        // The covered buckets are the plain computation over the covered part; the rest null.
        let covered = Ask { from, ..a };
        let want = expected(&sent, &covered);
        let first_covered =
            usize::try_from((from - (a.from - a.from.rem_euclid(a.bucket))) / a.bucket).unwrap();
        let names: Vec<&Value> = got["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| &s["name"])
            .collect();
        let want_names: Vec<&Value> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|s| &s["name"])
            .collect();
        assert_eq!(names, want_names, "{q}: {got}");
        for (g, w) in got["series"]
            .as_array()
            .unwrap()
            .iter()
            .zip(want.as_array().unwrap())
        {
            let values = g["values"].as_array().unwrap();
            assert!(
                values[..first_covered].iter().all(Value::is_null),
                "{q}: {g}"
            );
            let w = w["values"].as_array().unwrap();
            assert_eq!(
                &values[first_covered..],
                &w[w.len() - (values.len() - first_covered)..],
                "{q}"
            );
        }
    }
    // The CSV says the same in a header, and the events table reads within the budget too.
    let s = start().timestamp_millis();
    let range = format!("event=buy&from={s}&to={}", s + 30 * DAY);
    for path in [
        format!("{p}/series?{range}&bucket={DAY}&group_by=plan&format=csv"),
        format!("{p}/events?{range}&format=csv"),
        format!("{p}/events?{range}"),
    ] {
        let resp = app
            .http
            .get(app.url(&path))
            .header("cookie", &me.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let from: i64 = resp.headers()["pulseline-covered-from"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            buys_from(&sent, from, s + 30 * DAY) <= budget as usize,
            "{path}"
        );
        if path.contains("/events?") && path.ends_with("csv") {
            let body = resp.text().await.unwrap();
            let rows = body.lines().count() - 1;
            let people = sent
                .iter()
                .filter(|e| e.event == "buy" && !e.bot && e.at >= from && e.at < s + 30 * DAY)
                .count();
            assert_eq!(rows, people, "{path}");
            assert!(
                buys_from(&sent, from - 1, s + 30 * DAY) > budget as usize,
                "{path}"
            );
        }
    }
}

#[tokio::test]
async fn a_group_by_keeps_at_most_max_groups_and_counts_the_rest_as_other() {
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap(),
    ));
    let app = spawn(|_| {}, clock).await;
    let me = app.admin().await;
    let t0 = start() + Duration::days(3);
    let extra = 25;
    // One distinct `order` per event: more values than MAX_GROUPS.
    let batch: Vec<Value> = (0..MAX_GROUPS + extra)
        .map(|i| {
            let mut m = message(&Sent {
                at: (t0 + Duration::seconds(i64::try_from(i).unwrap())).timestamp_millis(),
                user: format!("u{i}"),
                event: "buy",
                plan: None,
                amount: None,
                bot: false,
            });
            m["properties"]["order"] = json!(format!("order-{i:05}"));
            m
        })
        .collect();
    for chunk in batch.chunks(500) {
        app.ingest(chunk.to_vec()).await;
    }
    let (from, to) = (
        start().timestamp_millis(),
        (start() + Duration::days(7)).timestamp_millis(),
    );
    let q = format!(
        "/api/dash/projects/{}/series?event=buy&from={from}&to={to}&bucket={}\
         &group_by=order&top=20",
        app.project,
        7 * DAY
    );
    let (status, got) = app.get(&me, &q).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["groups_capped"], true);
    let series = got["series"].as_array().unwrap();
    assert_eq!(series.len(), 21);
    assert_eq!(series[20]["name"], "(other)");
    // Every event is counted once: 20 groups of one, and the rest under (other).
    let counts: BTreeMap<String, f64> = series
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["values"][0].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts["(other)"], (MAX_GROUPS + extra - 20) as f64);
    assert_eq!(counts.values().sum::<f64>(), (MAX_GROUPS + extra) as f64);
}
