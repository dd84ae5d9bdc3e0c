//! The Web page's API (issue 21) against a straightforward computation over the stored events,
//! on random traffic, with a fake clock and the project in Europe/Berlin.

mod filtered;
mod fold;
mod input;
mod pairs;
mod traffic;
mod visits;
mod zones;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use pulseline_collector::clock::FakeClock;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use pulseline_collector::clock::Clock;
use pulseline_collector::config::Config;

use super::{Dash, Login};
use traffic::{stored_page_views, traffic};

/// A visit's values, in `web_visits`' column order: every breakdown but `page`.
const VISIT_KEYS: [&str; 11] = [
    "entry_page",
    "exit_page",
    "source",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "country",
    "browser",
    "os",
    "device",
];

const MIN: i64 = 60_000;
const GAP: i64 = 30 * MIN;
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/131.0.0.0 Safari/537.36";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 15, 0, 0).unwrap()
}

/// Berlin midnight (UTC+1 until March 29) of 2026-`month`-`day`, in unix ms.
fn berlin_midnight(month: u32, day: u32) -> i64 {
    (Utc.with_ymd_and_hms(2026, month, day, 0, 0, 0).unwrap() - Duration::hours(1))
        .timestamp_millis()
}

/// `n` Berlin days from 2026-`month`-`day` (none with a clock change), as `[start, end)` ms.
fn berlin_days(month: u32, day: u32, n: i64) -> Vec<(i64, i64)> {
    let first = berlin_midnight(month, day);
    (0..n)
        .map(|i| (first + i * 86_400_000, first + (i + 1) * 86_400_000))
        .collect()
}

/// The dashboard's test app, folding page views at every tick: these tests wait for the fold
/// after most deliveries ([`Dash::web_caught_up`]), and the default delay would make each wait
/// two seconds. The delay's own test sets its own.
pub(super) async fn spawn(configure: impl FnOnce(&mut Config), clock: Arc<dyn Clock>) -> Dash {
    super::spawn(
        |c| {
            c.web.fold_delay_ms = 0;
            configure(c);
        },
        clock,
    )
    .await
}

impl Dash {
    /// Waits until the background fold has counted every stored page view of the project
    /// (the page's `behind` is null), polling with a deadline.
    pub(super) async fn web_caught_up(&self, who: &Login) {
        // Filtered (a country no one has): the check reads no rollups, so no limit applies.
        let url = format!(
            "/api/dash/projects/{}/web?period=today&country=ZZ",
            self.project
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let (status, r) = self.get(who, &url).await;
            assert_eq!(status, 200, "{r}");
            if r["behind"].is_null() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the fold did not catch up: {}",
                r["behind"]
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// A page view as the read API returns it, reduced to what the page reads.
#[derive(Debug, Clone)]
struct Pv {
    ts: i64,
    visitor: String,
    fields: BTreeMap<&'static str, String>,
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let h = rest.split(['/', '?', '#']).next()?.to_lowercase();
    Some(h.strip_prefix("www.").map(str::to_owned).unwrap_or(h))
}

fn page_view(e: &Value) -> Option<Pv> {
    if e["type"] != "page" || e["context"]["bot"] == true {
        return None;
    }
    let c = &e["context"];
    let visitor = text(&e["anonymousId"]).or_else(|| text(&e["userId"]))?;
    let ts = DateTime::parse_from_rfc3339(e["timestamp"].as_str()?)
        .ok()?
        .timestamp_millis();
    let referrer = text(&c["page"]["referrer"]).and_then(|r| host(&r));
    let own = text(&c["page"]["url"]).and_then(|u| host(&u));
    let referrer = referrer.filter(|r| Some(r) != own.as_ref() && !r.is_empty());
    let mut fields = BTreeMap::new();
    fields.insert(
        "page",
        text(&c["page"]["path"]).unwrap_or_else(|| "/".to_owned()),
    );
    fields.insert("referrer", referrer.unwrap_or_default());
    for (key, value) in [
        ("source", &c["source"]["name"]),
        ("utm_source", &c["campaign"]["source"]),
        ("utm_medium", &c["campaign"]["medium"]),
        ("utm_campaign", &c["campaign"]["name"]),
        ("country", &c["location"]["country"]),
        ("browser", &c["browser"]["name"]),
        ("os", &c["os"]["name"]),
        ("device", &c["device"]["type"]),
    ] {
        fields.insert(key, text(value).unwrap_or_default());
    }
    Some(Pv {
        ts,
        visitor,
        fields,
    })
}

/// Visits of `[from, to)`: each visitor's page views cut where the gap exceeds 30 minutes.
fn visits(pvs: &[Pv], from: i64, to: i64) -> Vec<Vec<Pv>> {
    let mut by_visitor: BTreeMap<&str, Vec<&Pv>> = BTreeMap::new();
    for p in pvs.iter().filter(|p| p.ts >= from && p.ts < to) {
        by_visitor.entry(&p.visitor).or_default().push(p);
    }
    let mut out = Vec::new();
    for (_, mut list) in by_visitor {
        list.sort_by_key(|p| p.ts);
        let mut current: Vec<Pv> = Vec::new();
        for p in list {
            if current.last().is_some_and(|l| p.ts - l.ts > GAP) {
                out.push(std::mem::take(&mut current));
            }
            current.push(p.clone());
        }
        out.push(current);
    }
    out
}

fn visit_value(v: &[Pv], key: &str) -> String {
    match key {
        "entry_page" => v[0].fields["page"].clone(),
        "exit_page" => v[v.len() - 1].fields["page"].clone(),
        other => v[0].fields[other].clone(),
    }
}

fn matches(v: &[Pv], filters: &[(&str, &str)]) -> bool {
    filters.iter().all(|(key, value)| {
        if *key == "page" {
            v.iter().any(|p| p.fields["page"] == *value)
        } else {
            visit_value(v, key) == *value
        }
    })
}

/// What the API should say, computed the plain way.
struct Expected {
    totals: [i64; 5],
    series: Vec<i64>,
    breakdowns: BTreeMap<String, BTreeMap<String, (i64, i64)>>,
}

/// The page's numbers over `[from, to)` (docs/dashboard-web.md): visits are cut over all page
/// views and belong to the range they start in. Without filters, page views, visitors, the
/// chart and the page rows count the page views in the range; with filters, those of the
/// selected visits.
fn expected(
    pvs: &[Pv],
    from: i64,
    to: i64,
    buckets: &[(i64, i64)],
    filters: &[(&str, &str)],
) -> Expected {
    let chosen: Vec<Vec<Pv>> = visits(pvs, i64::MIN, i64::MAX)
        .into_iter()
        .filter(|v| v[0].ts >= from && v[0].ts < to && matches(v, filters))
        .collect();
    let in_range: Vec<&Pv> = if filters.is_empty() {
        pvs.iter().filter(|p| p.ts >= from && p.ts < to).collect()
    } else {
        chosen.iter().flatten().collect()
    };
    let visitors: BTreeSet<&str> = in_range.iter().map(|p| p.visitor.as_str()).collect();
    let totals = [
        visitors.len() as i64,
        in_range.len() as i64,
        chosen.len() as i64,
        chosen.iter().filter(|v| v.len() == 1).count() as i64,
        chosen.iter().map(|v| v[v.len() - 1].ts - v[0].ts).sum(),
    ];
    let series = buckets
        .iter()
        .map(|(s, e)| {
            let who: BTreeSet<&str> = if filters.is_empty() {
                in_range
                    .iter()
                    .filter(|p| p.ts >= *s && p.ts < *e)
                    .map(|p| p.visitor.as_str())
                    .collect()
            } else {
                chosen
                    .iter()
                    .filter(|v| v[0].ts >= *s && v[0].ts < *e)
                    .map(|v| v[0].visitor.as_str())
                    .collect()
            };
            who.len() as i64
        })
        .collect();
    let mut breakdowns: BTreeMap<String, BTreeMap<String, (BTreeSet<String>, i64)>> =
        BTreeMap::new();
    for p in &in_range {
        let e = breakdowns
            .entry("page".into())
            .or_default()
            .entry(p.fields["page"].clone())
            .or_default();
        e.0.insert(p.visitor.clone());
        e.1 += 1;
    }
    for v in &chosen {
        for key in VISIT_KEYS {
            let e = breakdowns
                .entry(key.into())
                .or_default()
                .entry(visit_value(v, key))
                .or_default();
            e.0.insert(v[0].visitor.clone());
            e.1 += 1;
        }
    }
    Expected {
        totals,
        series,
        breakdowns: breakdowns
            .into_iter()
            .map(|(k, rows)| {
                let rows = rows
                    .into_iter()
                    .map(|(value, (who, n))| (value, (who.len() as i64, n)))
                    .collect();
                (k, rows)
            })
            .collect(),
    }
}

/// Unique visitors come from HyperLogLog sketches (about 1.6% standard error): a count is
/// right within three standard errors, and at least one.
fn visitors_close(got: i64, want: i64) -> bool {
    (got - want).abs() as f64 <= (want as f64 * 0.05).max(1.0)
}

fn check_stats(api: &Value, totals: [i64; 5], what: &str) {
    let [visitors, pageviews, visits, bounces, duration] = totals;
    let got = api["visitors"].as_i64().unwrap();
    assert!(
        visitors_close(got, visitors),
        "{what}: visitors {got} vs {visitors}: {api}"
    );
    assert_eq!(api["pageviews"], pageviews, "{what}: {api}");
    assert_eq!(api["visits"], visits, "{what}: {api}");
    let per_visit = |x: i64| {
        if visits == 0 {
            0.0
        } else {
            x as f64 / visits as f64
        }
    };
    for (field, want) in [
        ("bounce_rate", per_visit(bounces)),
        ("views_per_visit", per_visit(pageviews)),
        ("visit_duration_secs", per_visit(duration) / 1000.0),
    ] {
        let got = api[field].as_f64().unwrap();
        assert!((got - want).abs() < 1e-9, "{what}: {field} {got} != {want}");
    }
}

fn check_series(got: &[i64], want: &[i64], what: &str) {
    let close =
        got.len() == want.len() && got.iter().zip(want).all(|(g, w)| visitors_close(*g, *w));
    assert!(close, "{what}: series {got:?} vs {want:?}");
}

fn check_breakdowns(api: &Value, want: &Expected, what: &str) {
    for (key, rows) in api.as_object().unwrap() {
        let got: BTreeMap<String, (i64, i64)> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let value = r["value"].as_str().unwrap().to_owned();
                let n = (
                    r["visitors"].as_i64().unwrap(),
                    r["count"].as_i64().unwrap(),
                );
                (value, n)
            })
            .collect();
        let empty = BTreeMap::new();
        let want_rows = want.breakdowns.get(key).unwrap_or(&empty);
        let same = got.len() == want_rows.len()
            && got
                .iter()
                .zip(want_rows)
                .all(|((gv, g), (wv, w))| gv == wv && g.1 == w.1 && visitors_close(g.0, w.0));
        assert!(same, "{what}: {key}: {got:?} vs {want_rows:?}");
        let visitors: Vec<i64> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["visitors"].as_i64().unwrap())
            .collect();
        assert!(
            visitors.windows(2).all(|w| w[0] >= w[1]),
            "{what}: {key} sorted"
        );
    }
}

/// Sets the project's time zone (its days) and waits for the rollups to follow.
async fn set_zone(app: &Dash, admin: &Login, zone: &str) {
    let (status, body) = app
        .post(
            admin,
            &format!("/api/dash/projects/{}/settings", app.project),
            json!({"timezone": zone}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.web_caught_up(admin).await;
}

/// A query, its filters, and the buckets of its period and of the previous one.
type Case<'a> = (
    &'a str,
    Vec<(&'a str, &'a str)>,
    Vec<(i64, i64)>,
    Vec<(i64, i64)>,
);

/// One view of the page against the plain computation over `pvs`.
async fn check_case(app: &Dash, admin: &Login, pvs: &[Pv], case: &Case<'_>) {
    check_case_in(app, admin, pvs, case, "Europe/Berlin").await;
}

/// [`check_case`] for a project in the time zone `tz`.
async fn check_case_in(app: &Dash, admin: &Login, pvs: &[Pv], case: &Case<'_>, tz: &str) {
    let (query, filters, current, previous) = case;
    let base = format!("/api/dash/projects/{}", app.project);
    app.web_caught_up(admin).await;
    let (status, r) = app.get(admin, &format!("{base}/web?{query}")).await;
    assert_eq!(status, 200, "{query}: {r}");
    assert_eq!(r["timezone"], tz);
    assert_eq!(r["from"], current[0].0, "{query}");
    assert_eq!(r["to"], current[current.len() - 1].1, "{query}");
    assert_eq!(r["previous_from"], previous[0].0, "{query}");
    let (from, to) = (current[0].0, current[current.len() - 1].1);
    let want = expected(pvs, from, to, current, filters);
    check_stats(&r["current"], want.totals, query);
    let series: Vec<i64> = r["series"]["visitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    check_series(&series, &want.series, query);
    let buckets: Vec<i64> = current.iter().map(|b| b.0).collect();
    assert_eq!(r["series"]["buckets"], json!(buckets), "{query}");
    check_breakdowns(&r["breakdowns"], &want, query);
    let before = expected(pvs, previous[0].0, from, previous, filters);
    check_stats(&r["previous"], before.totals, query);
    let prev_series: Vec<i64> = r["series"]["previous"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    check_series(&prev_series, &before.series, query);
}

#[tokio::test]
async fn the_web_page_matches_a_plain_computation_on_random_traffic() {
    let clock = Arc::new(FakeClock::new(now()));
    let app = spawn(|_| {}, clock.clone()).await;
    let admin = app.admin().await;
    let base = format!("/api/dash/projects/{}", app.project);

    // The project's time zone: checked, stored, and what the days are cut by.
    let (status, body) = app
        .post(
            &admin,
            &format!("{base}/settings"),
            json!({"timezone": "Mars/Olympus"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("IANA"), "{body}");
    set_zone(&app, &admin, "Europe/Berlin").await;
    let (_, body) = app.get(&admin, &format!("{base}/settings")).await;
    assert_eq!(body["timezone"], "Europe/Berlin");

    let mut rng = StdRng::seed_from_u64(21);
    for chunk in traffic(&mut rng).chunks(100) {
        app.ingest(chunk.to_vec()).await;
    }
    let pvs = stored_page_views(&app).await;
    assert!(pvs.len() > 150, "enough traffic: {}", pvs.len());
    // Each page view's own row (written by the ingest statement on PostgreSQL, migration
    // 0055; by a trigger on SQLite) holds what the plain derivation reads from the message.
    // A page view's own values: its path and every visit value but the entry and exit page.
    let columns: Vec<&str> = std::iter::once("path")
        .chain(VISIT_KEYS.into_iter().filter(|k| !k.ends_with("_page")))
        .collect();
    let mut rows: Vec<String> = crate::helpers::query_column(
        &app.database_url,
        &format!(
            "SELECT CAST(ts AS TEXT) || '|' || visitor || '|' || {} FROM web_pageviews
             WHERE project_id = {}",
            columns
                .iter()
                .map(|c| format!("COALESCE({c}, '')"))
                .collect::<Vec<_>>()
                .join(" || '|' || "),
            app.project
        ),
    )
    .await;
    let mut want: Vec<String> = pvs
        .iter()
        .map(|p| {
            let fields: Vec<String> = columns
                .iter()
                .map(|&c| p.fields[if c == "path" { "page" } else { c }].clone())
                .collect();
            format!("{}|{}|{}", p.ts, p.visitor, fields.join("|"))
        })
        .collect();
    rows.sort();
    want.sort();
    assert_eq!(rows, want, "the page views' rows");

    let days = |m: u32, d: u32, n: i64| -> Vec<(i64, i64)> {
        let first = berlin_midnight(m, d);
        (0..n)
            .map(|i| (first + i * 86_400_000, first + (i + 1) * 86_400_000))
            .collect()
    };
    let hours = |m: u32, d: u32| -> Vec<(i64, i64)> {
        let first = berlin_midnight(m, d);
        (0..24)
            .map(|h| (first + h * 3_600_000, first + (h + 1) * 3_600_000))
            .collect()
    };
    // Last 7 days in Berlin: March 4 to 10; the previous period February 25 to March 3.
    let cases: Vec<Case> = vec![
        ("period=7d", vec![], days(3, 4, 7), days(2, 25, 7)),
        (
            "period=7d&source=Google&device=desktop",
            vec![("source", "Google"), ("device", "desktop")],
            days(3, 4, 7),
            days(2, 25, 7),
        ),
        (
            "period=custom&from=2026-02-20&to=2026-03-10&page=%2Fpricing&country=",
            vec![("page", "/pricing"), ("country", "")],
            days(2, 20, 19),
            days(2, 1, 19),
        ),
        (
            "period=custom&from=2026-02-18&to=2026-03-10&entry_page=%2Fdocs&referrer=google.com",
            vec![("entry_page", "/docs"), ("referrer", "google.com")],
            days(2, 18, 21),
            days(1, 28, 21),
        ),
        // One visit filter: the top row and chart from its day rows, breakdowns from visits.
        (
            "period=7d&source=Google",
            vec![("source", "Google")],
            days(3, 4, 7),
            days(2, 25, 7),
        ),
        // One page filter alone, over a range that ends before today.
        (
            "period=custom&from=2026-02-22&to=2026-03-06&page=%2Fdocs",
            vec![("page", "/docs")],
            days(2, 22, 13),
            days(2, 9, 13),
        ),
        // Two visit filters, one without an index (browser).
        (
            "period=custom&from=2026-02-18&to=2026-03-10&exit_page=%2Fsignup&browser=Chrome",
            vec![("exit_page", "/signup"), ("browser", "Chrome")],
            days(2, 18, 21),
            days(1, 28, 21),
        ),
        // One visit filter over one day: hours, from visits.
        (
            "period=yesterday&country=DE",
            vec![("country", "DE")],
            hours(3, 9),
            hours(3, 8),
        ),
    ];
    for case in &cases {
        check_case(&app, &admin, &pvs, case).await;
    }

    // Today in Berlin: hourly buckets from 23:00 UTC; hours not begun yet are null.
    app.web_caught_up(&admin).await;
    let (status, r) = app.get(&admin, &format!("{base}/web?period=today")).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["series"]["bucket"], "hour");
    let hours = r["series"]["visitors"].as_array().unwrap();
    assert_eq!(hours.len(), 24);
    assert!(hours[16].is_i64() && hours[17].is_null(), "{hours:?}");
    let today = berlin_midnight(3, 10);
    let hourly: Vec<(i64, i64)> = (0..24)
        .map(|h| (today + h * 3_600_000, today + (h + 1) * 3_600_000))
        .collect();
    let want = expected(&pvs, today, today + 86_400_000, &hourly, &[]);
    check_stats(&r["current"], want.totals, "today");

    // Realtime: the last 5 minutes, each visitor on their latest page; bots left out.
    let at = |m: i64| (now() - Duration::minutes(m)).to_rfc3339();
    app.ingest(vec![
        json!({"type": "page", "anonymousId": "r1", "timestamp": at(4), "context": {"page": {"path": "/a"}}}),
        json!({"type": "page", "anonymousId": "r1", "timestamp": at(1), "context": {"page": {"path": "/b"}}}),
        json!({"type": "page", "anonymousId": "r2", "timestamp": at(2), "context": {"page": {"path": "/b"}}}),
        json!({"type": "page", "anonymousId": "r3", "timestamp": at(3), "context": {"page": {"path": "/a"}}}),
        json!({"type": "page", "anonymousId": "r4", "timestamp": at(6), "context": {"page": {"path": "/c"}}}),
        json!({"type": "page", "anonymousId": "bot", "timestamp": at(1), "context": {"bot": true, "page": {"path": "/c"}}}),
    ])
    .await;
    let (status, r) = app.get(&admin, &format!("{base}/web/realtime")).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r, json!({"visitors": 3, "pages": [["/b", 2], ["/a", 1]]}));

    // Deleting a person removes their page views from the page.
    let gone = "v3";
    let (status, body) = app
        .send(
            reqwest::Method::DELETE,
            &admin,
            &format!("{base}/persons?anonymous_id={gone}"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let left: Vec<Pv> = stored_page_views(&app).await;
    assert!(left.iter().all(|p| p.visitor != gone) && left.len() < pvs.len() + 5);
    let query = "period=custom&from=2026-02-18&to=2026-03-10";
    app.web_caught_up(&admin).await;
    let (_, r) = app.get(&admin, &format!("{base}/web?{query}")).await;
    let range = days(2, 18, 21);
    let want = expected(&left, range[0].0, range[20].1, &range, &[]);
    check_stats(&r["current"], want.totals, "after deleting a person");
}
