//! One chip on a bounded dimension over days answers its breakdowns from the pair rows
//! (`web_daily_pairs`, migration 0049). After each event of random traffic (page views sent
//! shuffled and late, resent batches, late page views bridging visits, a person deleted, a time
//! zone change) every such view equals the same view read from the visits (the store's visits
//! reader, which the page used before and still uses for every other filtered view) and the
//! plain computation, and the pair rows equal a count from scratch.

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
        for fdim in PAIR_FILTERS.into_iter().chain(HEAVY_FILTERS) {
            let fvalue = visit_value(&v, fdim);
            if !kept(paired, fdim, &fvalue, day) {
                continue;
            }
            let rows = VISIT_KEYS
                .iter()
                .filter(|d| **d != fdim)
                .map(|dim| (*dim, visit_value(&v, dim)))
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
        for fdim in PAIR_FILTERS.into_iter().chain(HEAVY_FILTERS) {
            let fvalue = visit_value(&v, fdim);
            if !kept(paired, fdim, &fvalue, day) {
                continue;
            }
            for dim in VISIT_KEYS.iter().filter(|d| **d != fdim) {
                let key = (
                    fdim.to_owned(),
                    fvalue.clone(),
                    (*dim).to_owned(),
                    day,
                    visit_value(&v, dim),
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
    let in_range = |key: &str| {
        let day: i64 = key.rsplit('|').next().unwrap().parse().unwrap();
        from <= day && day < to
    };
    let mut checked = Checked {
        views: 0,
        paired: paired.iter().filter(|k| in_range(k)).count(),
        unpaired: visits_of
            .keys()
            .filter(|k| in_range(k) && !paired.contains(*k))
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
    for fdim in PAIR_FILTERS.into_iter().chain(HEAVY_FILTERS) {
        let mut values: BTreeSet<String> = visits(&pvs, from, i64::MAX)
            .iter()
            .filter(|v| v[0].ts < to)
            .map(|v| visit_value(v, fdim))
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
        checked.views >= 30 && checked.paired >= 5 && checked.unpaired >= 5,
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

/// A person deleted while some of their page views are still queued: those were never in the
/// page pairs and must not be taken out of them, while the folded ones are, even when the
/// fold recounts their visits before their removal's turn (chunks of one page view).
#[tokio::test]
async fn a_person_deleted_with_page_views_still_queued_leaves_the_pairs_exact() {
    let (app, admin) = folding_app(HEAVY).await;
    let base = format!("/api/dash/projects/{}", app.project);
    let mut rng = StdRng::seed_from_u64(3);
    for chunk in traffic(&mut rng).chunks(100) {
        app.ingest(chunk.to_vec()).await;
    }
    fold_in_chunks(&app, 100_000, HEAVY).await;

    // More page views of v4 inside its folded visits, left queued, then v4 deleted.
    let pvs = stored_page_views(&app).await;
    // On the paths of the folded ones: taking a queued one out of the pairs would show.
    let mut mine: Vec<(i64, String)> = pvs
        .iter()
        .filter(|p| p.visitor == "v4")
        .map(|p| (p.ts, p.fields["page"].clone()))
        .collect();
    mine.sort_unstable();
    let inside: Vec<(i64, String)> = mine
        .windows(2)
        .filter(|w| w[1].0 - w[0].0 > 1 && w[1].0 - w[0].0 <= GAP)
        .map(|w| ((w[0].0 + w[1].0) / 2, w[0].1.clone()))
        .collect();
    assert!(inside.len() >= 2, "v4's page views: {mine:?}");
    let late: Vec<Value> = inside
        .iter()
        .enumerate()
        .map(|(i, (ts, path))| {
            json!({"type": "page", "messageId": format!("queued-{i}"), "anonymousId": "v4",
                   "timestamp": Utc.timestamp_millis_opt(*ts).unwrap().to_rfc3339(),
                   "context": {"userAgent": CHROME, "page": {"path": path},
                               "source": {"name": "Bing"}, "device": {"type": "mobile"}}})
        })
        .collect();
    app.ingest(late).await;
    let (status, body) = app
        .send(
            reqwest::Method::DELETE,
            &admin,
            &format!("{base}/persons?anonymous_id=v4"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    fold_in_chunks(&app, 1, HEAVY).await;

    let store = heavy_store(&app, HEAVY).await;
    let days = days_at(0, 2, 17, 22);
    check_pairs(
        &app,
        &admin,
        &store,
        "period=custom&from=2026-02-17&to=2026-03-10",
        &days,
        0,
        "UTC",
        HEAVY,
    )
    .await;
    store.close().await;
}

/// A pair row with thousands of visitors a day: the fold appends each chunk's register values
/// to its sketch unread, and rewrites it short once it passes twice a dense sketch's bytes
/// (`COMPACT_ABOVE`); every sketch still holds exactly its visitors.
#[tokio::test]
async fn a_busy_pair_rows_sketch_is_compacted_and_stays_exact() {
    let (app, admin) = folding_app(PAIR_HEAVY_VISITS).await;
    // 4,000 visitors with one page view each on one day, the same values but for the page.
    let day = Utc.with_ymd_and_hms(2026, 3, 8, 0, 0, 0).unwrap();
    let views: Vec<Value> = (0..4_000)
        .map(|i| {
            let at = (day + Duration::seconds(i * 20)).to_rfc3339();
            json!({"type": "page", "messageId": format!("busy-{i}"),
                   "anonymousId": format!("busy-{i}"), "timestamp": at,
                   "context": {"userAgent": CHROME, "page": {"path": format!("/p{}", i % 7)},
                               "source": {"name": "Google"}, "device": {"type": "desktop"}}})
        })
        .collect();
    // Folded 300 at a time (fewer than the background fold takes at once): each chunk appends
    // about 900 bytes to the busy rows, which pass the bound after about ten.
    for batch in views.chunks(300) {
        app.ingest(batch.to_vec()).await;
        fold_in_chunks(&app, 300, PAIR_HEAVY_VISITS).await;
    }

    let longest = crate::helpers::query_i64(
        &app.database_url,
        &format!(
            "SELECT CAST(MAX(length(visitors)) AS BIGINT) FROM web_daily_pairs
             WHERE project_id = {}",
            app.project
        ),
    )
    .await;
    assert!(longest <= 8_194, "a sketch left long: {longest} bytes");
    let dense: Vec<Vec<u8>> = query_column(
        &app.database_url,
        &format!(
            "SELECT visitors FROM web_daily_pairs
             WHERE project_id = {} AND fdim = 'device' AND fvalue = 'desktop' AND dim = 'source'",
            app.project
        ),
    )
    .await;
    // Only a compaction writes the dense form (the fold appends sparse triples).
    assert_eq!(dense.len(), 1);
    assert_eq!(dense[0][0], 2, "compacted into the dense form");
    let pvs = stored_page_views(&app).await;
    assert_eq!(pvs.len(), 4_000);
    let paired = paired_days(&app).await;
    assert!(
        paired.contains(&format!("entry_page|/p0|{}", day.timestamp_millis())),
        "{paired:?}"
    );
    let (stored, expected) = (
        stored_sketches(&app).await,
        expected_sketches(&pvs, 0, &paired),
    );
    assert_eq!(
        stored, expected,
        "every pair row's sketch holds its visitors"
    );
    let (status, r) = app
        .get(
            &admin,
            &format!(
                "/api/dash/projects/{}/web?period=custom&from=2026-03-07&to=2026-03-08&device=desktop",
                app.project
            ),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    // One source (ingest names it from the referrer): its row is the busy one's sum.
    let source = &r["breakdowns"]["source"];
    assert_eq!(source.as_array().unwrap().len(), 1, "{r}");
    assert_eq!(source[0]["count"], 4_000);
    let visitors = source[0]["visitors"].as_i64().unwrap();
    assert!(
        (visitors - 4_000).abs() <= 200,
        "estimated visitors: {visitors}"
    );
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

/// `n` visits of one page view each (two for every third) on `day` from the referrer
/// news.example, entering on /launch, half of them from a newsletter.
fn news_visits(day: DateTime<Utc>, n: i64, tag: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for i in 0..n {
        let at = day + Duration::seconds(i * 60);
        let mut context = json!({"userAgent": CHROME,
            "page": {"path": "/launch", "url": "https://shop.example/launch",
                     "referrer": "https://news.example/today"},
            "device": {"type": "desktop"}});
        if i % 2 == 0 {
            context["campaign"] = json!({"source": "newsletter", "name": "launch"});
        }
        let visitor = format!("{tag}-{i}");
        out.push(json!({"type": "page", "messageId": format!("{tag}-{i}-a"),
                        "anonymousId": visitor, "timestamp": at.to_rfc3339(),
                        "context": context.clone()}));
        if i % 3 == 0 {
            let later = at + Duration::seconds(30);
            context["page"]["path"] = json!(format!("/docs/{}", i % 4));
            out.push(json!({"type": "page", "messageId": format!("{tag}-{i}-b"),
                            "anonymousId": visitor, "timestamp": later.to_rfc3339(),
                            "context": context}));
        }
    }
    out
}

/// Upgrading to migration 0056 queues the fill of every heavy value-day at the default
/// threshold, without a rebuild; a one-chip view on a heavy value then reads its paired days
/// from pair rows only (unchanged with the visits emptied behind the collector's back) and
/// its other days from visits.
#[tokio::test]
async fn upgrading_fills_heavy_values_and_views_read_visits_only_for_unpaired_days() {
    let (app, admin) = folding_app(PAIR_HEAVY_VISITS).await;
    let busy = Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap();
    let quiet = Utc.with_ymd_and_hms(2026, 3, 4, 8, 0, 0).unwrap();
    // Twice the threshold and more: each UTM value of the day (half of them) crosses it too.
    let mut messages = news_visits(busy, 2 * PAIR_HEAVY_VISITS + 20, "busy");
    messages.extend(news_visits(quiet, 12, "quiet"));
    for chunk in messages.chunks(100) {
        app.ingest(chunk.to_vec()).await;
    }
    fold_in_chunks(&app, 1_000, PAIR_HEAVY_VISITS).await;
    let busy_day = Utc
        .with_ymd_and_hms(2026, 3, 2, 0, 0, 0)
        .unwrap()
        .timestamp_millis();
    assert!(
        paired_days(&app)
            .await
            .contains(&format!("referrer|news.example|{busy_day}")),
        "the fold pairs a value that crosses the threshold"
    );
    // As a collector before 0056 left the database.
    let heavy_dims = "('entry_page', 'exit_page', 'referrer', 'utm_source', 'utm_campaign')";
    for sql in [
        format!("DELETE FROM web_daily_pairs WHERE fdim IN {heavy_dims}"),
        "DELETE FROM web_pairs_dirty".to_owned(),
        "DROP TABLE web_pairs_fill".to_owned(),
        "ALTER TABLE web_daily DROP COLUMN paired".to_owned(),
        "DELETE FROM _sqlx_migrations WHERE version = 56".to_owned(),
    ] {
        exec_sql(&app.database_url, &sql).await;
    }
    let store = heavy_store(&app, PAIR_HEAVY_VISITS).await;
    let rebuilding = crate::helpers::query_i64(
        &app.database_url,
        "SELECT CAST(COUNT(*) AS BIGINT) FROM web_rebuild",
    )
    .await;
    assert_eq!(rebuilding, 0, "no rebuild");
    let days = days_at(0, 2, 17, 22);
    let range = "period=custom&from=2026-02-17&to=2026-03-10";
    let checked = check_pairs(
        &app,
        &admin,
        &store,
        range,
        &days,
        0,
        "UTC",
        PAIR_HEAVY_VISITS,
    )
    .await;
    assert!(checked.paired >= 3 && checked.unpaired >= 3, "{checked:?}");
    let paired = paired_days(&app).await;
    assert!(paired.contains(&format!("referrer|news.example|{busy_day}")));
    assert!(
        paired.contains(&format!("utm_source||{busy_day}")),
        "{paired:?}"
    );

    let only_busy = "period=custom&from=2026-03-01&to=2026-03-03&referrer=news.example";
    let both = "period=custom&from=2026-03-01&to=2026-03-05&referrer=news.example";
    let (busy_before, coverage) = breakdowns_of(&app, &admin, only_busy).await;
    assert!(
        coverage.is_null() && any_rows(&busy_before),
        "{busy_before}"
    );
    let (both_before, _) = breakdowns_of(&app, &admin, both).await;
    exec_sql(
        &app.database_url,
        &format!("DELETE FROM web_visits WHERE project_id = {}", app.project),
    )
    .await;
    let (busy_after, _) = breakdowns_of(&app, &admin, only_busy).await;
    assert_eq!(busy_after, busy_before, "a paired day reads no visits");
    let (both_after, _) = breakdowns_of(&app, &admin, both).await;
    assert_ne!(
        both_after, both_before,
        "an unpaired day is read from visits"
    );
    assert_eq!(
        both_after["entry_page"][0]["count"],
        2 * PAIR_HEAVY_VISITS + 20,
        "{both_after}"
    );
    store.close().await;
}

/// The heavy-pair fill holds the writer for one value-day past its time budget
/// (`FILL_TX_BUDGET`): with a budget of zero, each transaction takes exactly one queued
/// value-day and says more may wait, and the queue still drains to pair rows equal to a count
/// from scratch. A fill that ignored its budget would take up to `FILL_CHUNK` (20) at once.
#[tokio::test]
async fn the_fill_stops_at_its_budget_and_still_drains_to_the_exact_pairs() {
    let (app, admin) = folding_app(PAIR_HEAVY_VISITS).await;
    // Three days of twelve visits each: at five visits a day, the referrer, both UTM source
    // and campaign values, the entry page and the main exit page cross it every day.
    let heavy = 5;
    let mut messages = Vec::new();
    for day in 2..5 {
        let at = Utc.with_ymd_and_hms(2026, 3, day, 8, 0, 0).unwrap();
        messages.extend(news_visits(at, 12, &format!("d{day}")));
    }
    for chunk in messages.chunks(100) {
        app.ingest(chunk.to_vec()).await;
    }
    let mut store = heavy_store(&app, heavy).await;
    store.set_fill_budget(std::time::Duration::ZERO);
    let queued = || async {
        crate::helpers::query_i64(
            &app.database_url,
            "SELECT CAST(COUNT(*) AS BIGINT) FROM web_pairs_fill",
        )
        .await
    };
    // A pass whose deadline has passed: the chunk, then a single fill transaction.
    let folded = store
        .fold_web_visits_until(Some(std::time::Instant::now()))
        .await
        .expect("the fold runs");
    assert_eq!(folded, messages.len() as u64);
    let mut left = queued().await;
    assert!(left >= 3 * 7 - 1, "fills queued by the fold: {left}");
    let mut transactions = 1;
    loop {
        let step = store.fill_heavy_pairs().await.expect("the fill runs");
        transactions += 1;
        if step.taken == 0 {
            assert!(!step.more, "{step:?}");
            break;
        }
        assert_eq!(step.taken, 1, "one value-day past a zero budget");
        assert!(step.more, "stopped at the budget: {step:?}");
        left -= 1;
        assert_eq!(queued().await, left);
    }
    assert_eq!(left, 0);
    assert!(transactions >= 3 * 7, "{transactions} transactions");
    let days = days_at(0, 3, 1, 5);
    let range = "period=custom&from=2026-03-01&to=2026-03-05";
    let checked = check_pairs(&app, &admin, &store, range, &days, 0, "UTC", heavy).await;
    assert!(checked.paired >= 3 * 7, "{checked:?}");
    store.close().await;
}

/// Filter dimensions whose values have an index on `web_visits` (migration 0043): the others
/// (browser, OS, device) can only be read with the whole day's visits.
const INDEXED: [&str; 8] = [
    "entry_page",
    "exit_page",
    "source",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "country",
];

/// The dirty pair rows of one filter value on a busy day (most visits without UTM fields or
/// referrer, so a breakdown value of `''` holds most of the day's visits) are recounted
/// exactly, each filter value's rows read through whichever is narrower: one read of the
/// filter value's visits of the day (the day's, for browser, OS and device, which have no
/// index), or each row's own value through its index. Every filter value of the day in turn,
/// with a set of its rows (all, the indexed ones, the exit pages, the `''` values; then a few
/// exit pages, as a chunk whose visits grew leaves them): their sketches blanked, queued dirty,
/// recounted, the visits read bounded, then every sketch compared with a count from scratch.
#[tokio::test]
async fn dirty_pair_rows_are_recounted_through_the_narrower_index() {
    let (app, _) = folding_app(HEAVY).await;
    let day = Utc.with_ymd_and_hms(2026, 3, 8, 0, 0, 0).unwrap();
    let mut rng = StdRng::seed_from_u64(21);
    let paths: Vec<String> = (0..24).map(|i| format!("/p{i}")).collect();
    let agents = [
        ("Chrome", "Windows", "desktop"),
        ("Firefox", "Linux", "desktop"),
        ("Safari", "iOS", "mobile"),
    ];
    let mut views = Vec::new();
    for v in 0..300 {
        let mut at = day + Duration::minutes(rng.random_range(10..23 * 60));
        let (browser, os, device) = agents[rng.random_range(0..agents.len())];
        let source = ["Google", "Bing", "Reddit"][rng.random_range(0..3)];
        let mut context = json!({
            "userAgent": CHROME,
            "source": {"name": source},
            "browser": {"name": browser, "version": "1"},
            "os": {"name": os},
            "device": {"type": device},
        });
        if rng.random_bool(0.1) {
            let name = ["spring", "launch"][rng.random_range(0..2)];
            context["campaign"] = json!({"source": "newsletter", "medium": "email", "name": name});
        }
        if rng.random_bool(0.1) {
            let country = ["DE", "FR"][rng.random_range(0..2)];
            context["location"] = json!({"country": country});
        }
        for i in 0..rng.random_range(1..4) {
            let path = &paths[rng.random_range(0..paths.len())];
            let mut c = context.clone();
            let referrer = if rng.random_bool(0.1) {
                "https://news.ycombinator.com/item?id=1"
            } else {
                ""
            };
            c["page"] = json!({"path": path, "url": format!("https://shop.example{path}"),
                               "referrer": referrer});
            views.push(json!({"type": "page", "messageId": format!("d{v}-{i}"),
                              "anonymousId": format!("d{v}"), "timestamp": at.to_rfc3339(),
                              "context": c}));
            at += Duration::minutes(rng.random_range(1..10));
        }
    }
    for batch in views.chunks(200) {
        app.ingest(batch.to_vec()).await;
    }
    fold_in_chunks(&app, 100_000, HEAVY).await;

    let pvs = stored_page_views(&app).await;
    let paired = paired_days(&app).await;
    let expected = expected_sketches(&pvs, 0, &paired);
    assert_eq!(stored_sketches(&app).await, expected, "the fold's sketches");
    // Visits of the day per `dim|value`, and in all ('').
    let day_ms = day.timestamp_millis();
    let mut sizes: BTreeMap<String, u64> = BTreeMap::new();
    for v in visits(&pvs, i64::MIN, i64::MAX) {
        assert_eq!(v[0].ts - v[0].ts.rem_euclid(DAY), day_ms);
        *sizes.entry(String::new()).or_default() += 1;
        for key in VISIT_KEYS {
            *sizes
                .entry(format!("{key}|{}", visit_value(&v, key)))
                .or_default() += 1;
        }
    }
    let size = |key: &str| sizes.get(key).copied().unwrap_or(0);

    let store = heavy_store(&app, HEAVY).await;
    let empty = if crate::helpers::on_postgres() {
        "'\\x01'::bytea"
    } else {
        "X'01'"
    };
    let groups: Vec<String> = query_column(
        &app.database_url,
        &format!(
            "SELECT DISTINCT fdim || '|' || fvalue FROM web_daily_pairs WHERE project_id = {}",
            app.project
        ),
    )
    .await;
    let (mut broad, mut narrow) = (0, 0);
    // Each filter value twice: a set of its rows by turn, then a few exit pages.
    let turns = groups
        .iter()
        .enumerate()
        .flat_map(|(n, g)| [(g, n % 6), (g, 4)]);
    for (group, turn) in turns {
        let (fdim, fvalue) = group.split_once('|').unwrap();
        let quote = |v: &str| format!("'{}'", v.replace('\'', "''"));
        let of_group = format!(
            "project_id = {} AND fdim = '{fdim}' AND fvalue = {}",
            app.project,
            quote(fvalue)
        );
        let all: Vec<String> = query_column(
            &app.database_url,
            &format!("SELECT dim || '|' || value FROM web_daily_pairs WHERE {of_group}"),
        )
        .await;
        let indexed = |r: &String| INDEXED.contains(&r.split_once('|').unwrap().0);
        let exits = all.iter().filter(|r| r.starts_with("exit_page|"));
        let blank = all.iter().filter(|r| r.ends_with('|'));
        let rows: Vec<&String> = match turn {
            0 => all.iter().collect(),
            1 => all.iter().filter(|r| indexed(r)).collect(),
            2 => exits.collect(),
            3 => blank.collect(),
            // As a chunk leaves them: a few visits grew, their old exit pages lost them.
            4 => exits.take(3).collect(),
            _ => exits.take(3).chain(blank).collect(),
        };
        assert!(rows.len() < 500, "{group}: one recount takes them all");
        if !rows.is_empty() {
            let list: Vec<String> = rows
                .iter()
                .map(|r| {
                    let (dim, value) = r.split_once('|').unwrap();
                    format!("({}, {})", quote(dim), quote(value))
                })
                .collect();
            let these = format!(
                "{of_group} AND (dim, value) IN (VALUES {})",
                list.join(", ")
            );
            exec_sql(
                &app.database_url,
                &format!("UPDATE web_daily_pairs SET visitors = {empty} WHERE {these}"),
            )
            .await;
            exec_sql(
                &app.database_url,
                &format!(
                    "INSERT INTO web_pairs_dirty (project_id, day, fdim, fvalue, dim, value)
                     SELECT project_id, day, fdim, fvalue, dim, value FROM web_daily_pairs
                     WHERE {these}"
                ),
            )
            .await;
        }
        let done = store.rebuild_dirty_pairs().await.expect("the recount runs");
        assert_eq!(done.rows, rows.len() as u64, "{group}");
        // Its visits of the day, and what the one read of them holds.
        let (values, whole) = if INDEXED.contains(&fdim) {
            (size(group), size(group))
        } else {
            (size(group), size(""))
        };
        // Every row read alone through its own index would hand back this many.
        let own: u64 = rows.iter().filter(|r| indexed(r)).map(|r| size(r)).sum();
        if rows.iter().any(|r| !indexed(r) && !r.starts_with("page|")) {
            // A browser, OS or device row: only the one read has it.
            assert_eq!(done.visits_read, values, "{group}: {rows:?}");
            continue;
        }
        assert!(
            done.visits_read <= own.min(whole),
            "{group}: the recount read {} visits, where its rows' own reads hold {own} and \
             the filter value's read {whole}: {rows:?}",
            done.visits_read
        );
        if own > whole {
            broad += 1;
        } else if own > 0 {
            narrow += 1;
        }
    }
    // Both occur: rows whose own reads hold more than the filter value's visits (the `''`
    // values of an exit page) and rows narrower than it (an exit page of a browser).
    assert!(
        broad >= 10 && narrow >= 10,
        "broad {broad}, narrow {narrow}"
    );
    assert_eq!(
        stored_sketches(&app).await,
        expected,
        "every recounted sketch holds its visitors"
    );
    store.close().await;
}
