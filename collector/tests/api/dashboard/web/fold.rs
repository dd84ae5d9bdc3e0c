//! The background fold against a count from scratch: random traffic sent shuffled (late page
//! views, resent batches, a person deleted midway), folded in chunks of random sizes (one page
//! view, a few, hundreds, all at once) beside the collector's own fold, then `web_visits`
//! compared with visits cut from the stored page views (and the pages each viewed), and the
//! day and hour rows with those a rebuild counts from scratch.

use rand::seq::SliceRandom;

use super::*;
use crate::helpers::{self, exec_sql, on_postgres, query_column};

/// `web_visits` as text rows, sorted.
async fn stored_visits(app: &Dash) -> Vec<String> {
    let sep = "|| '|' ||";
    let cols = [
        "visitor",
        "CAST(start_ts AS TEXT)",
        "CAST(end_ts AS TEXT)",
        "CAST(pageviews AS TEXT)",
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
    ]
    .join(sep);
    let mut rows: Vec<String> = query_column(
        &app.database_url,
        &format!(
            "SELECT {cols} FROM web_visits WHERE project_id = {}",
            app.project
        ),
    )
    .await;
    rows.sort();
    rows
}

/// The visits of the stored page views, cut the plain way, as [`stored_visits`] rows.
fn expected_visits(pvs: &[Pv]) -> Vec<String> {
    let mut rows: Vec<String> = visits(pvs, i64::MIN, i64::MAX)
        .iter()
        .map(|v| {
            let mut cols = vec![
                v[0].visitor.clone(),
                v[0].ts.to_string(),
                v[v.len() - 1].ts.to_string(),
                v.len().to_string(),
            ];
            for key in [
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
            ] {
                cols.push(visit_value(v, key));
            }
            cols.join("|")
        })
        .collect();
    rows.sort();
    rows
}

/// `web_visit_pages` as text rows (visitor, visit start, path, page views), sorted; a row
/// whose visit is gone names none.
async fn stored_visit_pages(app: &Dash) -> Vec<String> {
    let mut rows: Vec<String> = query_column(
        &app.database_url,
        &format!(
            "SELECT COALESCE(v.visitor, '(no visit)') || '|' || CAST(x.start_ts AS TEXT) || '|'
                    || x.path || '|' || CAST(x.pageviews AS TEXT)
             FROM web_visit_pages x LEFT JOIN web_visits v ON v.id = x.visit_id
                  AND v.start_ts = x.start_ts
             WHERE x.project_id = {}",
            app.project
        ),
    )
    .await;
    rows.sort();
    rows
}

/// Which pages each visit of the stored page views viewed, and how often, as
/// [`stored_visit_pages`] rows.
fn expected_visit_pages(pvs: &[Pv]) -> Vec<String> {
    let mut rows = Vec::new();
    for v in visits(pvs, i64::MIN, i64::MAX) {
        let mut paths: std::collections::BTreeMap<&str, usize> = Default::default();
        for pv in &v {
            *paths.entry(pv.fields["page"].as_str()).or_default() += 1;
        }
        for (path, n) in paths {
            rows.push(format!("{}|{}|{path}|{n}", v[0].visitor, v[0].ts));
        }
    }
    rows.sort();
    rows
}

/// Every day, hour and pair row with its sums and sketch, as text, sorted.
async fn rollup_rows(app: &Dash) -> Vec<String> {
    let hex = if on_postgres() {
        "encode(visitors, 'hex')"
    } else {
        "hex(visitors)"
    };
    let mut rows: Vec<String> = query_column(
        &app.database_url,
        &format!(
            "SELECT 'day|' || CAST(day AS TEXT) || '|' || dim || '|' || value || '|'
                    || CAST(visits AS TEXT) || '|' || CAST(pageviews AS TEXT) || '|'
                    || CAST(bounces AS TEXT) || '|' || CAST(duration_ms AS TEXT) || '|' || {hex}
             FROM web_daily WHERE project_id = {p}
             UNION ALL
             SELECT 'hour|' || CAST(hour AS TEXT) || '|' || CAST(pageviews AS TEXT) || '|'
                    || {hex}
             FROM web_hourly WHERE project_id = {p}",
            p = app.project
        ),
    )
    .await;
    // A pair row's sketch is appended to by each chunk (sketch.rs): compared in short form.
    let order = "ORDER BY fdim, fvalue, dim, day, value";
    let pairs: Vec<String> = query_column(
        &app.database_url,
        &format!(
            "SELECT 'pair|' || fdim || '|' || fvalue || '|' || dim || '|' || CAST(day AS TEXT)
                    || '|' || value || '|' || CAST(visits AS TEXT) || '|'
                    || CAST(pageviews AS TEXT) || '|' || CAST(bounces AS TEXT) || '|'
                    || CAST(duration_ms AS TEXT)
             FROM web_daily_pairs WHERE project_id = {p} {order}",
            p = app.project
        ),
    )
    .await;
    let sketches: Vec<Vec<u8>> = query_column(
        &app.database_url,
        &format!(
            "SELECT visitors FROM web_daily_pairs WHERE project_id = {p} {order}",
            p = app.project
        ),
    )
    .await;
    for (row, sketch) in pairs.into_iter().zip(sketches) {
        let short = pulseline_collector::store::visits::sketch::Visitors::compact(&sketch);
        let hex: String = short.iter().map(|b| format!("{b:02X}")).collect();
        rows.push(format!("{row}|{hex}"));
    }
    rows.sort();
    rows
}

/// Folds in chunks of `size` through a second store on the same database, as a replica or
/// the CLI would, while the collector's own fold runs with its chunk sizes.
async fn fold_in_chunks(app: &Dash, size: i64) {
    let store = pulseline_collector::store::Store::open(&app.database_url, Default::default())
        .await
        .expect("store opens");
    store
        .fold_web_visits_in_chunks(size)
        .await
        .expect("the fold runs");
    store.close().await;
}

#[tokio::test]
async fn any_chunking_folds_what_a_count_from_scratch_finds() {
    let seed: u64 = std::env::var("PULSELINE_TEST_FOLD_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("fold seed {seed} (PULSELINE_TEST_FOLD_SEED reruns it)");
    let mut rng = StdRng::seed_from_u64(seed);
    let clock = Arc::new(FakeClock::new(now()));
    let app = spawn(|_| {}, clock.clone()).await;
    let admin = app.admin().await;
    set_zone(&app, &admin, "Europe/Berlin").await;

    // Three rounds of traffic: each visitor's page views of a later round fall before, inside,
    // between and after the visits already folded.
    let mut messages: Vec<Value> = Vec::new();
    for round in 0..3 {
        for (i, mut m) in traffic(&mut rng).into_iter().enumerate() {
            m["messageId"] = json!(format!("m-{round}-{i}"));
            messages.push(m);
        }
    }
    messages.shuffle(&mut rng);
    let delete_at = messages.len() / 2;
    let mut sent = 0;
    while sent < messages.len() {
        let n = rng.random_range(1..120).min(messages.len() - sent);
        let batch = messages[sent..sent + n].to_vec();
        app.ingest(batch.clone()).await;
        if rng.random_bool(0.3) {
            app.ingest(batch).await; // a resent batch: stored once
        }
        sent += n;
        if sent >= delete_at && sent - n < delete_at {
            let (status, body) = app
                .send(
                    reqwest::Method::DELETE,
                    &admin,
                    &format!("/api/dash/projects/{}/persons?anonymous_id=v4", app.project),
                    json!({}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
        if rng.random_bool(0.5) {
            let size = [1, 2, 3, 7, 30, 250, 100_000][rng.random_range(0..7)];
            fold_in_chunks(&app, size).await;
        }
    }
    fold_in_chunks(&app, 1).await;
    app.web_caught_up(&admin).await;

    let pvs = stored_page_views(&app).await;
    assert!(pvs.len() > 300, "page views: {}", pvs.len());
    assert_eq!(
        stored_visits(&app).await,
        expected_visits(&pvs),
        "visits (seed {seed})"
    );
    assert_eq!(
        stored_visit_pages(&app).await,
        expected_visit_pages(&pvs),
        "pages of each visit (seed {seed})"
    );
    // As a collector before migration 0057 left the database: the upgrade finds the same.
    let drops: &[&str] = if on_postgres() {
        &["DROP TABLE web_visit_pages"]
    } else {
        &[
            "DROP TRIGGER web_visit_pages_gone",
            "DROP TABLE web_visit_pages",
        ]
    };
    for sql in drops
        .iter()
        .chain(&["DELETE FROM _sqlx_migrations WHERE version = 57"])
    {
        exec_sql(&app.database_url, sql).await;
    }
    fold_in_chunks(&app, 1).await;
    assert_eq!(
        stored_visit_pages(&app).await,
        expected_visit_pages(&pvs),
        "pages of each visit after the upgrade (seed {seed})"
    );

    // The rollups as folded, then as a rebuild counts them from the visits and page views.
    let folded = rollup_rows(&app).await;
    set_zone(&app, &admin, "UTC").await;
    set_zone(&app, &admin, "Europe/Berlin").await;
    let rebuilt = rollup_rows(&app).await;
    assert!(folded.len() > 100, "rollup rows: {}", folded.len());
    for (a, b) in folded.iter().zip(&rebuilt) {
        assert_eq!(a, b, "folded vs rebuilt rollup row (seed {seed})");
    }
    assert_eq!(folded.len(), rebuilt.len(), "rollup rows (seed {seed})");
}

/// Live traffic is folded seconds at a time: a few queued page views wait for
/// `PULSELINE_WEB_FOLD_DELAY_MS` (an hour here, so they stay queued across many ticks), while a
/// chunk's worth (1,000) is folded at once, with what waited before it.
#[tokio::test]
async fn a_few_page_views_wait_for_the_fold_delay_and_a_chunks_worth_goes_at_once() {
    let clock = Arc::new(FakeClock::new(now()));
    let app = spawn(|c| c.web.fold_delay_ms = 3_600_000, clock).await;
    let admin = app.admin().await;
    let page = |i: usize| {
        let path = format!("/p{}", i % 7);
        let when = (now() - Duration::minutes(30) + Duration::milliseconds(i as i64)).to_rfc3339();
        json!({"type": "page", "anonymousId": format!("v{}", i % 40), "name": path,
               "timestamp": when,
               "context": {"userAgent": CHROME, "page": {"path": path}}})
    };
    app.ingest((0..3).map(page).collect()).await;
    // Five fold ticks: without the delay, the first one folds them.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let (status, r) = app
        .get(
            &admin,
            &format!(
                "/api/dash/projects/{}/web?period=today&country=ZZ",
                app.project
            ),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["behind"]["pageviews"], 3, "{r}");
    // The maintenance pass (at startup, then hourly) leaves them to the delay too, unless
    // they have waited over a minute, as page views queued before a restart have.
    let behind = || async {
        let url = format!(
            "/api/dash/projects/{}/web?period=today&country=ZZ",
            app.project
        );
        app.get(&admin, &url).await.1["behind"]["pageviews"].clone()
    };
    let store = pulseline_collector::store::Store::open(&app.database_url, Default::default())
        .await
        .expect("store opens");
    pulseline_collector::maintenance::run_once(&store, now())
        .await
        .unwrap();
    assert_eq!(behind().await, 3);
    helpers::exec_sql(
        &app.database_url,
        "UPDATE web_visit_pending SET queued_at = queued_at - 120000",
    )
    .await;
    pulseline_collector::maintenance::run_once(&store, now())
        .await
        .unwrap();
    assert_eq!(behind().await, Value::Null);
    store.close().await;

    for chunk in (3..1_003).collect::<Vec<_>>().chunks(250) {
        app.ingest(chunk.iter().copied().map(page).collect()).await;
    }
    app.web_caught_up(&admin).await;
    let (status, r) = app
        .get(
            &admin,
            &format!("/api/dash/projects/{}/web?period=today", app.project),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["current"]["pageviews"], 1_003, "{}", r["current"]);
}
