//! Filtered views read the matching visits through one filter's index (migration 0043), within
//! a row budget, and say what they cover.

use super::*;

/// A page view of `visitor` on `path` at `ts` (unix ms), referred by Google (its source).
fn view(visitor: &str, path: &str, ts: i64) -> Value {
    let at = DateTime::from_timestamp_millis(ts).unwrap().to_rfc3339();
    json!({"type": "page", "anonymousId": visitor, "timestamp": at,
           "context": {"page": {"path": path, "referrer": "https://www.google.com/"}}})
}

#[tokio::test]
async fn a_page_filter_keeps_visits_that_viewed_it_after_the_range() {
    let clock = Arc::new(FakeClock::new(now()));
    let app = spawn(|_| {}, clock).await;
    let admin = app.admin().await;
    let base = format!("/api/dash/projects/{}", app.project);
    set_zone(&app, &admin, "Europe/Berlin").await;
    // March 5 in Berlin. "a" starts a visit at 23:50 and views /pricing at 00:10 on March 6;
    // "b" views /pricing within the day; "c" crosses midnight without it.
    let midnight = berlin_midnight(3, 6);
    app.ingest(vec![
        view("a", "/", midnight - 10 * MIN),
        view("a", "/pricing", midnight + 10 * MIN),
        view("b", "/pricing", midnight - 40 * MIN),
        view("b", "/", midnight - 35 * MIN),
        view("c", "/", midnight - 5 * MIN),
        view("c", "/docs", midnight + 5 * MIN),
    ])
    .await;
    app.web_caught_up(&admin).await;
    let day = "period=custom&from=2026-03-05&to=2026-03-05";
    let (status, r) = app
        .get(&admin, &format!("{base}/web?{day}&page=%2Fpricing"))
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        r["current"]["visits"], 2,
        "a's visit belongs to March 5: {r}"
    );
    assert_eq!(r["current"]["pageviews"], 4, "{r}");
    assert_eq!(
        r["breakdowns"]["entry_page"],
        json!([
            {"value": "/", "visitors": 1, "count": 1},
            {"value": "/pricing", "visitors": 1, "count": 1},
        ]),
        "{r}"
    );
    // With a second filter, on the visit's last page.
    let (status, r) = app
        .get(
            &admin,
            &format!("{base}/web?{day}&page=%2Fpricing&exit_page=%2Fpricing"),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["current"]["visits"], 1, "{r}");
    assert_eq!(r["current"]["pageviews"], 2, "{r}");
    // The next day holds none of these visits' starts.
    let (_, r) = app
        .get(
            &admin,
            &format!("{base}/web?period=custom&from=2026-03-06&to=2026-03-06&page=%2Fpricing"),
        )
        .await;
    assert_eq!(r["current"]["visits"], 0, "{r}");
}

/// A filtered view's visits reach the collector in JSON arrays of 2,000: one over more visits
/// than that, on a day and the day before, counts every one of them as the plain computation
/// does (a visitor with visits in two arrays counted once).
#[tokio::test]
async fn a_view_over_more_visits_than_one_array_holds_counts_them_all() {
    let clock = Arc::new(FakeClock::new(now()));
    let app = spawn(|_| {}, clock).await;
    let admin = app.admin().await;
    set_zone(&app, &admin, "Europe/Berlin").await;
    let paths = [
        "/", "/pricing", "/docs", "/about", "/blog", "/signup", "/jobs",
    ];
    let mut views = Vec::new();
    for (day, visitors) in [(4, 700), (5, 2_300)] {
        let midnight = berlin_midnight(3, day);
        for i in 0..visitors {
            // Two visits a day for a few: one in the morning, one in the evening.
            let visitor = format!("v{}", i % 2_100);
            let at = midnight + (i % 600) * MIN + (i / 2_100) * 12 * 60 * MIN;
            views.push(view(&visitor, paths[i as usize % 7], at));
            views.push(view(
                &visitor,
                paths[(i as usize + i as usize / 7) % 7],
                at + 5 * MIN,
            ));
        }
    }
    for chunk in views.chunks(500) {
        app.ingest(chunk.to_vec()).await;
    }
    let pvs = stored_page_views(&app).await;
    assert_eq!(pvs.len(), 6_000);
    let hours = |day: u32| -> Vec<(i64, i64)> {
        let midnight = berlin_midnight(3, day);
        (0..24)
            .map(|h| (midnight + h * 60 * MIN, midnight + (h + 1) * 60 * MIN))
            .collect()
    };
    let case: Case<'_> = (
        "period=custom&from=2026-03-05&to=2026-03-05&source=Google",
        vec![("source", "Google")],
        hours(5),
        hours(4),
    );
    check_case(&app, &admin, &pvs, &case).await;
}

#[tokio::test]
async fn filtered_views_read_at_most_their_budget_and_say_from_when() {
    let clock = Arc::new(FakeClock::new(now()));
    let app = spawn(|c| c.dashboard.max_scan_events = 5, clock).await;
    let admin = app.admin().await;
    let base = format!("/api/dash/projects/{}", app.project);
    // Eight one-page visits of /docs from Google, an hour apart, the latest an hour ago; and
    // two visits of /about from Bing.
    let hour = 60 * MIN;
    let t = |i: i64| now().timestamp_millis() - (8 - i) * hour;
    let mut views: Vec<Value> = (0..8)
        .map(|i| view(&format!("v{i}"), "/docs", t(i)))
        .collect();
    for i in 0..2 {
        let mut v = view(&format!("w{i}"), "/about", t(i) + MIN);
        v["context"]["page"]["referrer"] = json!("https://www.bing.com/");
        views.push(v);
    }
    app.ingest(views).await;
    app.web_caught_up(&admin).await;
    let first_read = t(2) + 1;
    // A page filter reads the latest 5 visits that viewed the page: from the 4th on.
    let (status, r) = app
        .get(&admin, &format!("{base}/web?period=7d&page=%2Fdocs"))
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["coverage_from"], first_read, "{r}");
    assert_eq!(r["coverage_breakdowns_only"], false, "{r}");
    assert_eq!(r["current"]["visits"], 5, "{r}");
    // Two filters, one of them the source (which has pair rows): the top row and chart come
    // whole from Google's pair rows of country ''; the breakdowns read through the source's
    // index, the latest 5 of Google's visits.
    let (_, r) = app
        .get(
            &admin,
            &format!("{base}/web?period=7d&source=Google&country="),
        )
        .await;
    assert_eq!(r["coverage_from"], first_read, "{r}");
    assert_eq!(r["coverage_breakdowns_only"], true, "{r}");
    assert_eq!(r["current"]["visits"], 8, "{r}");
    assert_eq!(r["current"]["visitors"], 8, "{r}");
    let chart: i64 = r["series"]["visitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap_or(0))
        .sum();
    assert_eq!(chart, 8, "{r}");
    assert_eq!(r["breakdowns"]["source"][0]["count"], 5, "{r}");
    // Two filters without pair rows (referrer and entry page): everything from the latest 5.
    let (_, r) = app
        .get(
            &admin,
            &format!("{base}/web?period=7d&referrer=google.com&entry_page=%2Fdocs"),
        )
        .await;
    assert_eq!(r["coverage_from"], first_read, "{r}");
    assert_eq!(r["coverage_breakdowns_only"], false, "{r}");
    assert_eq!(r["current"]["visits"], 5, "{r}");
    // One visit filter: the top row and chart come whole from its day rows; the breakdowns
    // from its latest 5 visits, and coverage_from says so.
    let (_, r) = app
        .get(&admin, &format!("{base}/web?period=7d&source=Google"))
        .await;
    assert_eq!(r["current"]["visits"], 8, "{r}");
    assert_eq!(r["current"]["visitors"], 8, "{r}");
    assert_eq!(r["coverage_from"], first_read, "{r}");
    assert_eq!(r["coverage_breakdowns_only"], true, "{r}");
    assert_eq!(r["breakdowns"]["entry_page"][0]["count"], 5, "{r}");
    // Within the budget nothing is cut.
    let (_, r) = app
        .get(&admin, &format!("{base}/web?period=7d&source=Bing"))
        .await;
    assert!(r["coverage_from"].is_null(), "{r}");
    assert_eq!(r["current"]["visits"], 2, "{r}");
    assert_eq!(
        r["breakdowns"]["page"],
        json!([{"value": "/about", "visitors": 2, "count": 2}]),
        "{r}"
    );
}

/// Chart buckets, `[start, end)` in unix ms.
type Buckets = Vec<(i64, i64)>;

/// `n` Berlin days (or, for one day, its hours) from `first`, and the same before it.
fn period_buckets(first: chrono::NaiveDate, n: i64) -> (Buckets, Buckets) {
    let of = |d: chrono::NaiveDate| -> Buckets {
        if n == 1 {
            let start = berlin_midnight(d.month(), d.day());
            (0..24)
                .map(|h| (start + h * 3_600_000, start + (h + 1) * 3_600_000))
                .collect()
        } else {
            berlin_days(d.month(), d.day(), n)
        }
    };
    (of(first), of(first - Duration::days(n)))
}

#[tokio::test]
async fn random_filtered_views_match_a_plain_computation() {
    let clock = Arc::new(FakeClock::new(now()));
    let app = spawn(|_| {}, clock).await;
    let admin = app.admin().await;
    set_zone(&app, &admin, "Europe/Berlin").await;
    let mut rng = StdRng::seed_from_u64(2145);
    for chunk in traffic(&mut rng).chunks(100) {
        app.ingest(chunk.to_vec()).await;
    }
    let pvs = stored_page_views(&app).await;
    assert!(pvs.len() > 150, "enough traffic: {}", pvs.len());
    let visit_keys = [
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
    // A value some stored page view has for `key` (so most filters select something).
    let value_of = |key: &str, rng: &mut StdRng| -> String {
        let p = &pvs[rng.random_range(0..pvs.len())];
        let field = if key.ends_with("page") { "page" } else { key };
        p.fields[field].clone()
    };
    let first_day = chrono::NaiveDate::from_ymd_opt(2026, 2, 18).unwrap();
    for i in 0..16 {
        // One visit filter over days, a page over days, two filters, one filter on one day.
        let kind = i % 4;
        let keys: Vec<&str> = match kind {
            1 => vec!["page"],
            2 => {
                let all: Vec<&str> = std::iter::once("page").chain(visit_keys).collect();
                let a = all[rng.random_range(0..all.len())];
                let b = loop {
                    let b = all[rng.random_range(0..all.len())];
                    if b != a {
                        break b;
                    }
                };
                vec![a, b]
            }
            _ => vec![visit_keys[rng.random_range(0..visit_keys.len())]],
        };
        let filters: Vec<(&str, String)> =
            keys.iter().map(|k| (*k, value_of(k, &mut rng))).collect();
        let days = if kind == 3 {
            1
        } else {
            rng.random_range(2..=8)
        };
        let first = first_day + Duration::days(rng.random_range(0..=(21 - days)));
        let last = first + Duration::days(days - 1);
        let mut query = format!("period=custom&from={first}&to={last}");
        for (k, v) in &filters {
            let v: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
            query.push_str(&format!("&{k}={v}"));
        }
        let (current, previous) = period_buckets(first, days);
        let borrowed: Vec<(&str, &str)> = filters.iter().map(|(k, v)| (*k, v.as_str())).collect();
        check_case(
            &app,
            &admin,
            &pvs,
            &(query.as_str(), borrowed, current, previous),
        )
        .await;
    }
}
