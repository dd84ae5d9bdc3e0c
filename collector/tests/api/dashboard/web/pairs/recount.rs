//! The pair rows' sketches and sums stay exact where the fold cannot just add: a person
//! deleted with page views still queued, a busy row's sketch compacted, dirty rows recounted
//! through the narrower index.

use super::*;

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
            // A page filter's rows are filled from visits, never recounted (the fold drops them).
            "SELECT DISTINCT fdim || '|' || fvalue FROM web_daily_pairs
             WHERE project_id = {} AND fdim <> 'page'",
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
