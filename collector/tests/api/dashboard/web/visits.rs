//! Visits kept at ingest (migration 0034) against the plain computation: page views arrive
//! shuffled, some batches twice, with the page read between deliveries (so a late page view
//! meets visits already stored and extends them, or bridges two), then a person is deleted.

use rand::seq::SliceRandom;

use super::*;

/// Views compared after each step: no filter (rollups), and filtered ones (visits).
fn cases() -> Vec<Case<'static>> {
    vec![
        (
            "period=7d",
            vec![],
            berlin_days(3, 4, 7),
            berlin_days(2, 25, 7),
        ),
        (
            "period=custom&from=2026-02-17&to=2026-03-10",
            vec![],
            berlin_days(2, 17, 22),
            berlin_days(1, 26, 22),
        ),
        (
            "period=custom&from=2026-02-17&to=2026-03-10&source=Google",
            vec![("source", "Google")],
            berlin_days(2, 17, 22),
            berlin_days(1, 26, 22),
        ),
        (
            "period=custom&from=2026-02-17&to=2026-03-10&page=%2Fdocs&device=desktop",
            vec![("page", "/docs"), ("device", "desktop")],
            berlin_days(2, 17, 22),
            berlin_days(1, 26, 22),
        ),
    ]
}

/// A page view of `visitor` at `ts` (unix ms) on `path`, with a message id of its own.
fn page_at(visitor: &str, ts: i64, path: &str, id: &str) -> Value {
    json!({"type": "page", "messageId": id, "anonymousId": visitor,
           "timestamp": Utc.timestamp_millis_opt(ts).unwrap().to_rfc3339(),
           "context": {"userAgent": CHROME, "page": {"path": path},
                       "source": {"name": "Google"}, "device": {"type": "desktop"}}})
}

#[tokio::test]
async fn visits_kept_at_ingest_survive_late_and_repeated_page_views_and_deletes() {
    let clock = Arc::new(FakeClock::new(now()));
    let app = spawn(|_| {}, clock.clone()).await;
    let admin = app.admin().await;
    let base = format!("/api/dash/projects/{}", app.project);
    set_zone(&app, &admin, "Europe/Berlin").await;

    let mut rng = StdRng::seed_from_u64(34);
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
        let n = rng.random_range(1..25).min(messages.len() - sent);
        let chunk = messages[sent..sent + n].to_vec();
        app.ingest(chunk.clone()).await;
        if rng.random_bool(0.3) {
            // A retry of the same batch: stored once, counted once.
            app.ingest(chunk).await;
        }
        if rng.random_bool(0.4) {
            // What follows arrives late for the visits folded so far.
            app.web_caught_up(&admin).await;
        }
        sent += n;
    }
    let pvs = stored_page_views(&app).await;
    for case in &cases() {
        check_case(&app, &admin, &pvs, case).await;
    }

    // Late page views that bridge two stored visits (gaps of 31 to 60 minutes) merge them,
    // and one that falls inside a visit extends nothing but its count.
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
            let id = format!("bridge-{}", late.len());
            late.push(page_at(visitor, (w[0] + w[1]) / 2, "/bridge", &id));
        }
    }
    assert!(late.len() >= 3, "bridges: {}", late.len());
    app.ingest(late.clone()).await;
    app.ingest(late).await;
    let with_bridges = stored_page_views(&app).await;
    let before = visits(&pvs, i64::MIN, i64::MAX).len();
    let after = visits(&with_bridges, i64::MIN, i64::MAX).len();
    assert!(after < before, "bridges merge visits: {before} -> {after}");
    for case in &cases() {
        check_case(&app, &admin, &with_bridges, case).await;
    }

    // Deleting a person takes their page views out of every visit and rollup.
    let gone = "v4";
    assert!(with_bridges.iter().any(|p| p.visitor == gone));
    let (status, body) = app
        .send(
            reqwest::Method::DELETE,
            &admin,
            &format!("{base}/persons?anonymous_id={gone}"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let left = stored_page_views(&app).await;
    assert!(left.iter().all(|p| p.visitor != gone));
    for case in &cases() {
        check_case(&app, &admin, &left, case).await;
    }
}

/// The fold reads and writes a chunk's visitors a few hundred per statement, and reads each
/// visitor's page views in windows around the new ones: a chunk of many visitors, and late
/// page views far apart inside one long visit (two windows reading the same visit), before
/// a visit, bridging two and far after, all count as the plain computation says.
#[tokio::test]
async fn many_visitors_and_late_page_views_in_one_chunk_fold_exactly() {
    let clock = Arc::new(FakeClock::new(now()));
    let app = spawn(|_| {}, clock.clone()).await;
    let admin = app.admin().await;
    set_zone(&app, &admin, "Europe/Berlin").await;

    let visitors: i64 = 600;
    let start = |v: i64| berlin_midnight(2, 17) + (v % 20) * 86_400_000 + 8 * 60 * MIN + v * MIN;
    // Each visitor: a visit of seven page views 20 minutes apart, and one more 55 minutes
    // after its end. Sent round-robin, so the first chunk holds hundreds of visitors.
    let paths = ["/", "/pricing", "/docs"];
    let mut first = Vec::new();
    for k in 0..8 {
        for v in 0..visitors {
            let at = if k < 7 { k * 20 * MIN } else { 175 * MIN };
            let path = paths[k as usize % 3];
            first.push(page_at(
                &format!("w{v}"),
                start(v) + at,
                path,
                &format!("f-{v}-{k}"),
            ));
        }
    }
    for batch in first.chunks(1_000) {
        app.ingest(batch.to_vec()).await;
    }
    app.web_caught_up(&admin).await;

    let mut late = Vec::new();
    for v in 0..visitors {
        let mut at = vec![5 * MIN, 115 * MIN];
        if v % 2 == 0 {
            at.push(147 * MIN); // 27 minutes after the visit, 28 before the next one
        }
        if v % 3 == 0 {
            at.push(-25 * MIN); // a new entry page
        }
        if v % 5 == 0 {
            at.push(575 * MIN); // a visit of its own
        }
        for (k, at) in at.into_iter().enumerate() {
            late.push(page_at(
                &format!("w{v}"),
                start(v) + at,
                "/late",
                &format!("l-{v}-{k}"),
            ));
        }
    }
    for batch in late.chunks(1_000) {
        app.ingest(batch.to_vec()).await;
    }
    let pvs = stored_page_views(&app).await;
    assert_eq!(pvs.len(), first.len() + late.len());
    for case in &cases() {
        check_case(&app, &admin, &pvs, case).await;
    }
}
