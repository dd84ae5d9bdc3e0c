//! A page filter's pair rows (migration 0059): filled from the visits of the days that are
//! over, read with the visits of the others (today).

use super::*;

/// One page view of `visitor` on `path` at `at`.
fn view(visitor: &str, n: usize, path: &str, at: DateTime<Utc>) -> Value {
    json!({"type": "page", "messageId": format!("{visitor}-{n}"), "anonymousId": visitor,
           "timestamp": at.to_rfc3339(),
           "context": {"userAgent": CHROME, "source": {"name": "Google"},
                       "page": {"path": path, "url": format!("https://shop.example{path}")}}})
}

/// The page filter's view: the top row's visits, page views and bounces, and the page
/// breakdown as `path` -> (visitors, page views).
async fn pricing(app: &Dash, admin: &Login) -> ((i64, i64, i64), BTreeMap<String, (i64, i64)>) {
    let query = "period=7d&page=%2Fpricing";
    let (status, r) = app
        .get(
            admin,
            &format!("/api/dash/projects/{}/web?{query}", app.project),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert!(r["coverage_from"].is_null(), "{r}");
    let c = &r["current"];
    let top = (
        c["visits"].as_i64().unwrap(),
        c["pageviews"].as_i64().unwrap(),
        // The view gives the share: back to a count of visits.
        (c["bounce_rate"].as_f64().unwrap() * c["visits"].as_f64().unwrap()).round() as i64,
    );
    (top, api_breakdowns(&r["breakdowns"])["page"].clone())
}

/// Days that are over come from the pair rows alone (unchanged with the visits emptied behind
/// the collector's back), today from its visits (gone with them); a late page view on a day
/// with pair rows drops them and the fill counts the day again.
#[tokio::test]
async fn a_page_filter_reads_pair_rows_of_days_that_are_over_and_visits_of_today() {
    let now = Utc::now();
    let app = spawn(
        |c| {
            c.web.fold_delay_ms = 3_600_000;
            c.web.pair_heavy_visits = 1;
        },
        Arc::new(FakeClock::new(now)),
    )
    .await;
    let admin = app.admin().await;
    set_zone(&app, &admin, "UTC").await;
    let today = Utc
        .with_ymd_and_hms(now.year(), now.month(), now.day(), 0, 0, 0)
        .unwrap();
    let day = |back: i64, hour: i64| today - Duration::days(back) + Duration::hours(hour);
    let minute = Duration::minutes(1);
    app.ingest(vec![
        view("a", 0, "/pricing", day(3, 10)),
        view("a", 1, "/docs", day(3, 10) + minute),
        view("b", 0, "/pricing", day(3, 12)),
        view("c", 0, "/docs", day(2, 9)),
        view("c", 1, "/pricing", day(2, 9) + minute),
        view("d", 0, "/docs", day(2, 11)),
        view("e", 0, "/pricing", today + (now - today) / 2),
    ])
    .await;
    fold_in_chunks(&app, 1_000, 1).await;
    let paired = paired_days(&app).await;
    let ms = |d: DateTime<Utc>| d.timestamp_millis();
    for back in [3, 2] {
        let key = format!("page|/pricing|{}", ms(day(back, 0)));
        assert!(paired.contains(&key), "{key}: {paired:?}");
    }
    let key = format!("page|/pricing|{}", ms(today));
    assert!(!paired.contains(&key), "today is not over: {paired:?}");
    // Queued, but it does not keep the fold busy until the day is over.
    let queued = crate::helpers::query_i64(
        &app.database_url,
        &format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM web_pairs_fill
             WHERE project_id = {} AND dim = 'page' AND value = '/pricing' AND day = {}",
            app.project,
            ms(today)
        ),
    )
    .await;
    assert_eq!(queued, 1);
    let store = heavy_store(&app, 1).await;
    let backlog = store.web_fold_backlog().await.expect("backlog reads");
    assert!(backlog.is_empty(), "{backlog:?}");
    store.close().await;

    let pages = |list: &[(&str, i64, i64)]| -> BTreeMap<String, (i64, i64)> {
        list.iter()
            .map(|(p, visitors, n)| ((*p).to_owned(), (*visitors, *n)))
            .collect()
    };
    let whole = ((4, 6, 2), pages(&[("/pricing", 4, 4), ("/docs", 2, 2)]));
    assert_eq!(pricing(&app, &admin).await, whole);

    // A late page view of a new visit three days ago: that day's pair rows go with the fold's
    // chunk, and the fill counts the day again.
    app.ingest(vec![view("f", 0, "/pricing", day(3, 15))]).await;
    fold_in_chunks(&app, 1_000, 1).await;
    let key = format!("page|/pricing|{}", ms(day(3, 0)));
    assert!(paired_days(&app).await.contains(&key));
    let visits: i64 = crate::helpers::query_i64(
        &app.database_url,
        &format!(
            "SELECT visits FROM web_daily_pairs
             WHERE project_id = {} AND fdim = 'page' AND fvalue = '/pricing' AND dim = ''
               AND day = {}",
            app.project,
            ms(day(3, 0))
        ),
    )
    .await;
    assert_eq!(visits, 3, "the day counted again");
    let late = ((5, 7, 3), pages(&[("/pricing", 5, 5), ("/docs", 2, 2)]));
    assert_eq!(pricing(&app, &admin).await, late);

    exec_sql(
        &app.database_url,
        &format!("DELETE FROM web_visits WHERE project_id = {}", app.project),
    )
    .await;
    let over = ((4, 6, 2), pages(&[("/pricing", 4, 4), ("/docs", 2, 2)]));
    assert_eq!(pricing(&app, &admin).await, over, "today's visit gone");
}
