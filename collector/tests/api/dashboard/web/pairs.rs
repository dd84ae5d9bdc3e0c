//! One chip on a bounded dimension over days answers its breakdowns from the pair rows
//! (`web_daily_pairs`, migration 0049). After each event of random traffic (page views sent
//! shuffled and late, resent batches, late page views bridging visits, a person deleted, a time
//! zone change) every such view equals the same view read from the visits (the store's visits
//! reader, which the page used before and still uses for every other filtered view) and the
//! plain computation, and the pair rows equal a count from scratch.

mod heavy;
mod pages;
mod recount;

use rand::seq::SliceRandom;

use pulseline_collector::store::Store;
use pulseline_collector::store::visits::PAIR_HEAVY_VISITS;
use pulseline_collector::store::visits::sketch::Visitors;
use pulseline_collector::store::web::{Dimension, Driver, WebQuery};

use super::*;
use crate::helpers::{exec_sql, query_column};

/// The filter dimensions that have pair rows.
const PAIR_FILTERS: [&str; 6] = ["source", "utm_medium", "country", "browser", "os", "device"];
/// The filter dimensions that have pair rows on the days a value is heavy (migration 0056).
const HEAVY_FILTERS: [&str; 5] = [
    "entry_page",
    "exit_page",
    "referrer",
    "utm_source",
    "utm_campaign",
];
/// `PULSELINE_WEB_PAIR_HEAVY_VISITS` of the tests with the random traffic: a few visits a
/// day, so some value-days cross it (mid-day, late, as the traffic comes) and others do not.
const HEAVY: i64 = 2;

/// The filters whose pair rows count visit `v`: its value of each pair filter, and each page
/// it viewed (a page filter keeps the visits that viewed the page, migration 0059).
fn filters_of(v: &[Pv]) -> Vec<(&'static str, String)> {
    let pages: BTreeSet<String> = v.iter().map(|p| p.fields["page"].clone()).collect();
    PAIR_FILTERS
        .into_iter()
        .chain(HEAVY_FILTERS)
        .map(|fdim| (fdim, visit_value(v, fdim)))
        .chain(pages.into_iter().map(|page| ("page", page)))
        .collect()
}

/// The visit breakdowns in the pair rows of filter `fdim`: a page filter's hold its visits'
/// totals (dim `''`) and every visit dimension, the others every dimension but their own.
fn pair_dims(fdim: &str) -> Vec<&'static str> {
    if fdim == "page" {
        std::iter::once("").chain(VISIT_KEYS).collect()
    } else {
        VISIT_KEYS.into_iter().filter(|d| *d != fdim).collect()
    }
}

/// A visit's value of `dim`, `''` for the totals row.
fn pair_value(v: &[Pv], dim: &str) -> String {
    if dim.is_empty() {
        String::new()
    } else {
        visit_value(v, dim)
    }
}

/// Whether the pair rows of filter `fdim` = `fvalue` on `day` are kept (`paired`: the
/// `fdim|fvalue|day` of the heavy day rows marked in `web_daily`).
fn kept(paired: &BTreeSet<String>, fdim: &str, fvalue: &str, day: i64) -> bool {
    PAIR_FILTERS.contains(&fdim) || paired.contains(&format!("{fdim}|{fvalue}|{day}"))
}

/// The heavy day rows marked as having pair rows, as `dim|value|day`.
async fn paired_days(app: &Dash) -> BTreeSet<String> {
    query_column::<String>(
        &app.database_url,
        &format!(
            "SELECT dim || '|' || value || '|' || CAST(day AS TEXT) FROM web_daily
             WHERE project_id = {} AND paired = 1",
            app.project
        ),
    )
    .await
    .into_iter()
    .collect()
}

/// A store on the app's database that folds with the tests' threshold.
async fn heavy_store(app: &Dash, heavy: i64) -> Store {
    let mut store = Store::open(&app.database_url, Default::default())
        .await
        .expect("store opens");
    store.set_pair_heavy_visits(heavy);
    store
}
const DAY: i64 = 86_400_000;

/// `n` days from 2026-`month`-`day` in a zone `offset` ms east of UTC (no clock change).
fn days_at(offset: i64, month: u32, day: u32, n: i64) -> Vec<(i64, i64)> {
    let first = Utc
        .with_ymd_and_hms(2026, month, day, 0, 0, 0)
        .unwrap()
        .timestamp_millis()
        - offset;
    (0..n)
        .map(|i| (first + i * DAY, first + (i + 1) * DAY))
        .collect()
}

/// The pair rows as stored: `fdim|fvalue|dim|day|value|visits|pageviews|bounces|duration`.
async fn stored_pairs(app: &Dash) -> Vec<String> {
    let mut rows: Vec<String> = query_column(
        &app.database_url,
        &format!(
            "SELECT fdim || '|' || fvalue || '|' || dim || '|' || CAST(day AS TEXT) || '|'
                    || value || '|' || CAST(visits AS TEXT) || '|' || CAST(pageviews AS TEXT)
                    || '|' || CAST(bounces AS TEXT) || '|' || CAST(duration_ms AS TEXT)
             FROM web_daily_pairs WHERE project_id = {}",
            app.project
        ),
    )
    .await;
    rows.sort();
    rows
}

/// The pair rows' visitor sketches as stored (in their short form: the fold appends to them),
/// by `fdim|fvalue|dim|day|value`.
async fn stored_sketches(app: &Dash) -> BTreeMap<String, Vec<u8>> {
    let order = "ORDER BY fdim, fvalue, dim, day, value";
    let keys: Vec<String> = query_column(
        &app.database_url,
        &format!(
            "SELECT fdim || '|' || fvalue || '|' || dim || '|' || CAST(day AS TEXT) || '|'
                    || value
             FROM web_daily_pairs WHERE project_id = {} {order}",
            app.project
        ),
    )
    .await;
    let sketches: Vec<Vec<u8>> = query_column(
        &app.database_url,
        &format!(
            "SELECT visitors FROM web_daily_pairs WHERE project_id = {} {order}",
            app.project
        ),
    )
    .await;
    keys.into_iter()
        .zip(sketches.iter().map(|s| Visitors::compact(s)))
        .collect()
}

/// The pair rows' visitor sketches of `pvs` from scratch, as [`stored_sketches`] keys them
/// (those of heavy filters on the `paired` days only).
fn expected_sketches(
    pvs: &[Pv],
    offset: i64,
    paired: &BTreeSet<String>,
) -> BTreeMap<String, Vec<u8>> {
    let mut who: BTreeMap<String, Visitors> = BTreeMap::new();
    for v in visits(pvs, i64::MIN, i64::MAX) {
        let start = v[0].ts;
        let day = start - (start + offset).rem_euclid(DAY);
        for (fdim, fvalue) in filters_of(&v) {
            if !kept(paired, fdim, &fvalue, day) {
                continue;
            }
            let rows = pair_dims(fdim)
                .into_iter()
                .map(|dim| (dim, pair_value(&v, dim)))
                .chain(v.iter().map(|p| ("page", p.fields["page"].clone())));
            for (dim, value) in rows {
                who.entry(format!("{fdim}|{fvalue}|{dim}|{day}|{value}"))
                    .or_default()
                    .insert_all([v[0].visitor.as_str()]);
            }
        }
    }
    who.into_iter().map(|(k, s)| (k, s.to_bytes())).collect()
}

/// The pair rows of `pvs` counted from scratch, with days `offset` ms east of UTC (those of
/// heavy filters on the `paired` days only).
fn expected_pairs(pvs: &[Pv], offset: i64, paired: &BTreeSet<String>) -> Vec<String> {
    let mut sums: BTreeMap<(String, String, String, i64, String), [i64; 4]> = BTreeMap::new();
    for v in visits(pvs, i64::MIN, i64::MAX) {
        let start = v[0].ts;
        let day = start - (start + offset).rem_euclid(DAY);
        let n = v.len() as i64;
        for (fdim, fvalue) in filters_of(&v) {
            if !kept(paired, fdim, &fvalue, day) {
                continue;
            }
            for dim in pair_dims(fdim) {
                let key = (
                    fdim.to_owned(),
                    fvalue.clone(),
                    dim.to_owned(),
                    day,
                    pair_value(&v, dim),
                );
                let s = sums.entry(key).or_default();
                s[0] += 1;
                s[1] += n;
                s[2] += i64::from(n == 1);
                s[3] += v[v.len() - 1].ts - start;
            }
            for p in &v {
                let key = (
                    fdim.to_owned(),
                    fvalue.clone(),
                    "page".to_owned(),
                    day,
                    p.fields["page"].clone(),
                );
                sums.entry(key).or_default()[1] += 1;
            }
        }
    }
    let mut rows: Vec<String> = sums
        .into_iter()
        .map(|((fdim, fvalue, dim, day, value), s)| {
            format!(
                "{fdim}|{fvalue}|{dim}|{day}|{value}|{}|{}|{}|{}",
                s[0], s[1], s[2], s[3]
            )
        })
        .collect();
    rows.sort();
    rows
}

/// value -> (visitors, count) of each breakdown of an API answer.
fn api_breakdowns(r: &Value) -> BTreeMap<String, BTreeMap<String, (i64, i64)>> {
    r.as_object()
        .unwrap()
        .iter()
        .map(|(dim, rows)| {
            let rows = rows
                .as_array()
                .unwrap()
                .iter()
                .map(|row| {
                    (
                        row["value"].as_str().unwrap().to_owned(),
                        (
                            row["visitors"].as_i64().unwrap(),
                            row["count"].as_i64().unwrap(),
                        ),
                    )
                })
                .collect();
            (dim.clone(), rows)
        })
        .collect()
}

/// What [`check_pairs`] compared: one-chip views, and the heavy value-days of the range
/// with pair rows and without.
#[derive(Debug)]
struct Checked {
    views: usize,
    paired: usize,
    unpaired: usize,
    /// Page filters' value-days with pair rows.
    pages_paired: usize,
}

/// Every one-chip view on a pair filter over `days` (`from`..`to` in the URL) against the
/// store's visits reader and the plain computation; then the pair rows against a count from
/// scratch, with every heavy value-day of at least `heavy` visits paired.
#[allow(clippy::too_many_arguments)]
async fn check_pairs(
    app: &Dash,
    admin: &Login,
    store: &Store,
    range: &str,
    days: &[(i64, i64)],
    offset: i64,
    tz: &str,
    heavy: i64,
) -> Checked {
    app.web_caught_up(admin).await;
    // The last chunk's fills may still wait for the background pass: `store` runs them.
    store
        .fold_web_visits_in_chunks(1_000)
        .await
        .expect("the fold runs");
    let pvs = stored_page_views(app).await;
    let (from, to) = (days[0].0, days[days.len() - 1].1);
    let paired = paired_days(app).await;
    let mut visits_of: BTreeMap<String, i64> = BTreeMap::new();
    for v in visits(&pvs, i64::MIN, i64::MAX) {
        let day = v[0].ts - (v[0].ts + offset).rem_euclid(DAY);
        for fdim in HEAVY_FILTERS {
            *visits_of
                .entry(format!("{fdim}|{}|{day}", visit_value(&v, fdim)))
                .or_default() += 1;
        }
    }
    for (key, n) in &visits_of {
        assert!(
            *n < heavy || paired.contains(key),
            "{key}: {n} visits, not paired"
        );
    }
    // A page's days (long over) with at least `heavy` page views of it: filled.
    let mut views_of: BTreeMap<String, i64> = BTreeMap::new();
    for p in &pvs {
        let day = p.ts - (p.ts + offset).rem_euclid(DAY);
        *views_of
            .entry(format!("page|{}|{day}", p.fields["page"]))
            .or_default() += 1;
    }
    for (key, n) in &views_of {
        assert!(
            *n < heavy || paired.contains(key),
            "{key}: {n} page views, not paired"
        );
    }
    let in_range = |key: &str| {
        let day: i64 = key.rsplit('|').next().unwrap().parse().unwrap();
        from <= day && day < to
    };
    let mut checked = Checked {
        views: 0,
        paired: paired
            .iter()
            .filter(|k| in_range(k) && !k.starts_with("page|"))
            .count(),
        unpaired: visits_of
            .keys()
            .filter(|k| in_range(k) && !paired.contains(*k))
            .count(),
        pages_paired: paired
            .iter()
            .filter(|k| in_range(k) && k.starts_with("page|"))
            .count(),
    };
    if std::env::var("DEBUG_PAIRS").is_ok() {
        let got = stored_pairs(app).await;
        let want = expected_pairs(&pvs, offset, &paired);
        for g in &got {
            if !want.contains(g) {
                eprintln!("extra stored {g}");
            }
        }
        for w in &want {
            if !got.contains(w) {
                eprintln!("missing stored {w}");
            }
        }
    }
    for fdim in PAIR_FILTERS
        .into_iter()
        .chain(HEAVY_FILTERS)
        .chain(["page"])
    {
        let mut values: BTreeSet<String> = visits(&pvs, from, i64::MAX)
            .iter()
            .filter(|v| v[0].ts < to)
            .flat_map(|v| filters_of(v))
            .filter(|(d, _)| *d == fdim)
            .map(|(_, value)| value)
            .collect();
        // A value with no visits in the range: empty breakdowns either way.
        values.insert("nowhere".to_owned());
        for value in values {
            let query = format!("{range}&{fdim}={}", urlencoding(&value));
            let (status, r) = app
                .get(
                    admin,
                    &format!("/api/dash/projects/{}/web?{query}", app.project),
                )
                .await;
            assert_eq!(status, 200, "{query}: {r}");
            assert_eq!(r["timezone"], tz, "{query}");
            assert_eq!(r["from"], from, "{query}");
            assert!(r["coverage_from"].is_null(), "{query}: {r}");

            let filters = [(Dimension::from_key(fdim).unwrap(), value.clone())];
            let q = WebQuery {
                project: app.project,
                from,
                to,
                filters: &filters,
                buckets: days,
                breakdown_rows: Some(10),
                driver: Driver::Start,
            };
            let from_visits = store.web_report(&q, false).await.expect("visits read");
            let got = api_breakdowns(&r["breakdowns"]);
            assert_eq!(got.len(), from_visits.breakdowns.len(), "{query}: {r}");
            for (dim, rows) in &from_visits.breakdowns {
                let want: BTreeMap<String, (i64, i64)> = rows
                    .iter()
                    .map(|row| (row.value.clone(), (row.visitors, row.count)))
                    .collect();
                let got = &got[dim.key()];
                let same = got.len() == want.len()
                    && got.iter().zip(&want).all(|((gv, g), (wv, w))| {
                        gv == wv && g.1 == w.1 && visitors_close(g.0, w.0)
                    });
                assert!(
                    same,
                    "{query}: {} from pairs {got:?}, from visits {want:?}",
                    dim.key()
                );
            }
            let plain = expected(&pvs, from, to, days, &[(fdim, value.as_str())]);
            check_stats(&r["current"], plain.totals, &query);
            check_breakdowns(&r["breakdowns"], &plain, &query);
            checked.views += 1;
        }
    }
    assert_eq!(
        stored_pairs(app).await,
        expected_pairs(&pvs, offset, &paired),
        "pair rows against a count from scratch"
    );
    // Every sketch holds exactly its row's visitors: appended to unread, compacted, filled,
    // or recounted after a visitor left.
    let (stored, expected) = (
        stored_sketches(app).await,
        expected_sketches(&pvs, offset, &paired),
    );
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (key, sketch) in &stored {
        assert_eq!(sketch, &expected[key], "visitor sketch of {key}");
    }
    checked
}

/// Enough of percent-encoding for the test's values (spaces and slashes).
fn urlencoding(s: &str) -> String {
    s.replace('%', "%25")
        .replace(' ', "%20")
        .replace('/', "%2F")
        .replace('&', "%26")
}

#[tokio::test]
async fn one_chip_views_from_pairs_equal_the_views_from_visits_after_every_event() {
    let clock = Arc::new(FakeClock::new(now()));
    let app = spawn(|c| c.web.pair_heavy_visits = HEAVY, clock.clone()).await;
    let admin = app.admin().await;
    let base = format!("/api/dash/projects/{}", app.project);
    set_zone(&app, &admin, "Europe/Berlin").await;
    let store = heavy_store(&app, HEAVY).await;
    let range = "period=custom&from=2026-02-17&to=2026-03-10";
    let berlin = days_at(3_600_000, 2, 17, 22);

    // Shuffled, some batches twice, folded between deliveries: later page views arrive late
    // for the visits folded so far.
    let mut rng = StdRng::seed_from_u64(49);
    let mut messages: Vec<Value> = traffic(&mut rng)
        .into_iter()
        .enumerate()
        .map(|(i, mut m)| {
            m["messageId"] = json!(format!("m-{i}"));
            m
        })
        .collect();
    messages.shuffle(&mut rng);
    let mut sent = 0;
    while sent < messages.len() {
        let n = rng.random_range(1..40).min(messages.len() - sent);
        let chunk = messages[sent..sent + n].to_vec();
        app.ingest(chunk.clone()).await;
        if rng.random_bool(0.3) {
            app.ingest(chunk).await;
        }
        if rng.random_bool(0.3) {
            app.web_caught_up(&admin).await;
        }
        sent += n;
    }
    let checked = check_pairs(
        &app,
        &admin,
        &store,
        range,
        &berlin,
        3_600_000,
        "Europe/Berlin",
        HEAVY,
    )
    .await;
    // Both kinds of heavy value-days in the range: read from pair rows and from visits.
    assert!(
        checked.views >= 30
            && checked.paired >= 5
            && checked.unpaired >= 5
            && checked.pages_paired >= 5,
        "{checked:?}"
    );

    // Late page views bridging two stored visits merge them (the merged visit takes the
    // first one's values, so page views move between pair rows), sent twice.
    let pvs = stored_page_views(&app).await;
    let mut by_visitor: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for p in &pvs {
        by_visitor.entry(&p.visitor).or_default().push(p.ts);
    }
    let mut late = Vec::new();
    for (visitor, mut times) in by_visitor {
        times.sort_unstable();
        if let Some(w) = times
            .windows(2)
            .find(|w| w[1] - w[0] > GAP && w[1] - w[0] <= 2 * GAP)
        {
            let at = Utc.timestamp_millis_opt((w[0] + w[1]) / 2).unwrap();
            late.push(
                json!({"type": "page", "messageId": format!("bridge-{}", late.len()),
                "anonymousId": visitor, "timestamp": at.to_rfc3339(),
                "context": {"userAgent": CHROME, "page": {"path": "/bridge"},
                            "source": {"name": "Bing"}, "device": {"type": "desktop"}}}),
            );
        }
    }
    assert!(late.len() >= 3, "bridges: {}", late.len());
    app.ingest(late.clone()).await;
    app.ingest(late).await;
    check_pairs(
        &app,
        &admin,
        &store,
        range,
        &berlin,
        3_600_000,
        "Europe/Berlin",
        HEAVY,
    )
    .await;

    // A person deleted: their page views leave every pair row.
    let (status, body) = app
        .send(
            reqwest::Method::DELETE,
            &admin,
            &format!("{base}/persons?anonymous_id=v4"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    check_pairs(
        &app,
        &admin,
        &store,
        range,
        &berlin,
        3_600_000,
        "Europe/Berlin",
        HEAVY,
    )
    .await;

    // A time zone change rebuilds the pair rows by the new days.
    set_zone(&app, &admin, "UTC").await;
    check_pairs(
        &app,
        &admin,
        &store,
        range,
        &days_at(0, 2, 17, 22),
        0,
        "UTC",
        HEAVY,
    )
    .await;
    store.close().await;
}

/// The breakdowns of `query`, with the view's coverage.
async fn breakdowns_of(app: &Dash, admin: &Login, query: &str) -> (Value, Value) {
    let (status, r) = app
        .get(
            admin,
            &format!("/api/dash/projects/{}/web?{query}", app.project),
        )
        .await;
    assert_eq!(status, 200, "{query}: {r}");
    (r["breakdowns"].clone(), r["coverage_from"].clone())
}

/// Whether any breakdown of an answer has a row.
fn any_rows(breakdowns: &Value) -> bool {
    breakdowns
        .as_object()
        .unwrap()
        .values()
        .any(|rows| !rows.as_array().unwrap().is_empty())
}

/// A one-chip view's breakdowns come from the pair rows alone: with the visits table emptied
/// behind the collector's back they stay as they were, while a view that reads visits (two
/// chips) finds none. Past the pair row limit (`PULSELINE_DASHBOARD_MAX_SCAN_EVENTS`), the
/// same view reads visits again, cut at that many.
#[tokio::test]
async fn one_chip_breakdowns_read_no_visits_up_to_the_pair_row_limit() {
    let range = "period=custom&from=2026-02-17&to=2026-03-10";
    for limit in [None, Some(30)] {
        let clock = Arc::new(FakeClock::new(now()));
        let app = spawn(
            |c| {
                if let Some(n) = limit {
                    c.dashboard.max_scan_events = n;
                }
            },
            clock,
        )
        .await;
        let admin = app.admin().await;
        let mut rng = StdRng::seed_from_u64(7);
        for chunk in traffic(&mut rng).chunks(100) {
            app.ingest(chunk.to_vec()).await;
        }
        app.web_caught_up(&admin).await;
        let one = format!("{range}&device=desktop");
        let two = format!("{range}&device=desktop&source=Google");
        let (before, coverage) = breakdowns_of(&app, &admin, &one).await;
        assert!(any_rows(&before), "{before}");
        assert!(any_rows(&breakdowns_of(&app, &admin, &two).await.0));
        let pair_rows: Vec<i64> = query_column(
            &app.database_url,
            &format!(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM web_daily_pairs
                 WHERE project_id = {} AND fdim = 'device' AND fvalue = 'desktop'",
                app.project
            ),
        )
        .await;
        exec_sql(
            &app.database_url,
            &format!("DELETE FROM web_visits WHERE project_id = {}", app.project),
        )
        .await;
        assert!(!any_rows(&breakdowns_of(&app, &admin, &two).await.0));
        let (after, _) = breakdowns_of(&app, &admin, &one).await;
        match limit {
            None => {
                assert!(coverage.is_null(), "{coverage}");
                assert_eq!(after, before, "one chip, from the pair rows");
            }
            Some(n) => {
                assert!(pair_rows[0] > i64::from(n), "pair rows: {pair_rows:?}");
                assert!(!coverage.is_null(), "visits read, cut at {n}");
                assert!(
                    !any_rows(&after),
                    "one chip past the limit reads visits: {after}"
                );
            }
        }
    }
}

/// A collector for the tests that fold themselves: its background fold waits an hour for
/// fewer than a chunk's worth of page views; `heavy` is its
/// `PULSELINE_WEB_PAIR_HEAVY_VISITS`; its project's days are UTC's.
async fn folding_app(heavy: i64) -> (Dash, Login) {
    let clock = Arc::new(FakeClock::new(now()));
    let app = spawn(
        move |c| {
            c.web.fold_delay_ms = 3_600_000;
            c.web.pair_heavy_visits = heavy;
        },
        clock,
    )
    .await;
    let admin = app.admin().await;
    set_zone(&app, &admin, "UTC").await;
    (app, admin)
}

/// Folds every queued page view in chunks of `size` through a second store on the database,
/// pairing heavy values at `heavy` visits a day.
async fn fold_in_chunks(app: &Dash, size: i64, heavy: i64) {
    let store = heavy_store(app, heavy).await;
    store
        .fold_web_visits_in_chunks(size)
        .await
        .expect("the fold runs");
    store.close().await;
}

/// Upgrading to migration 0053 (browser, OS and UTM medium as pair filters) rebuilds the pair
/// rows of a project with visits: the new dimensions' rows cover its past, and the others are
/// not counted twice.
#[tokio::test]
async fn upgrading_rebuilds_the_pairs_of_the_new_filter_dimensions() {
    let clock = Arc::new(FakeClock::new(now()));
    let app = spawn(|c| c.web.pair_heavy_visits = HEAVY, clock).await;
    let admin = app.admin().await;
    set_zone(&app, &admin, "UTC").await;
    let mut rng = StdRng::seed_from_u64(53);
    for chunk in traffic(&mut rng).chunks(100) {
        app.ingest(chunk.to_vec()).await;
    }
    app.web_caught_up(&admin).await;
    // As a collector before 0053 left the database: no pairs of the new dimensions, no index
    // of long sketches, the migration not applied.
    for sql in [
        "DELETE FROM web_daily_pairs WHERE fdim IN ('browser', 'os', 'utm_medium')",
        "DELETE FROM web_pairs_dirty",
        "DROP INDEX web_daily_pairs_long",
        "DELETE FROM _sqlx_migrations WHERE version = 53",
    ] {
        exec_sql(&app.database_url, sql).await;
    }
    let store = heavy_store(&app, HEAVY).await;
    let days = days_at(0, 2, 17, 22);
    let range = "period=custom&from=2026-02-17&to=2026-03-10";
    check_pairs(&app, &admin, &store, range, &days, 0, "UTC", HEAVY).await;
    store.close().await;
}
