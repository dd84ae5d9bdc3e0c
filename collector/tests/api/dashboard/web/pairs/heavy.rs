//! The heavy values of referrer, UTM source and campaign, entry and exit page (migration 0056):
//! the upgrade queues their fill, a one-chip view reads pair rows on the paired days and visits
//! on the others, and the fill keeps to its time budget.

use super::*;

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
        format!("DELETE FROM web_daily_pairs WHERE fdim IN {heavy_dims} OR fdim = 'page'"),
        "DELETE FROM web_pairs_dirty".to_owned(),
        "DROP TABLE web_pairs_fill".to_owned(),
        "ALTER TABLE web_daily DROP COLUMN paired".to_owned(),
        // And before 0059 (page filters' pairs), which queues their past in 0056's table.
        "DELETE FROM _sqlx_migrations WHERE version IN (56, 59)".to_owned(),
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
