//! The Web page's input is checked, and the cost of a query bounded.

use super::*;

#[tokio::test]
async fn web_page_input_is_checked_and_its_cost_bounded() {
    let clock = Arc::new(FakeClock::new(now()));
    // A view without filters reads rollup rows (13 per hour with page views here), a filtered
    // one visits: the limit counts those.
    let app = spawn(|c| c.dashboard.max_scan_events = 20, clock).await;
    let admin = app.admin().await;
    let base = format!("/api/dash/projects/{}", app.project);
    for (query, says) in [
        ("period=week", "unknown period"),
        ("period=custom&from=2026-03-01", "needs from and to"),
        ("period=custom&from=2026-3-1&to=2026-03-02", "YYYY-MM-DD"),
        (
            "period=custom&from=2025-01-01&to=2026-03-01",
            "at most 366 days",
        ),
        (
            "period=custom&from=2026-03-02&to=2026-03-01",
            "on or before",
        ),
    ] {
        let (status, body) = app.get(&admin, &format!("{base}/web?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(says),
            "{query}: {body}"
        );
    }
    let long = "x".repeat(301);
    let (status, body) = app.get(&admin, &format!("{base}/web?page={long}")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("300 characters"),
        "{body}"
    );

    let at = |m: i64| (now() - Duration::minutes(m)).to_rfc3339();
    // Filter values are data, never SQL: a quote and a tautology match nothing.
    app.ingest(vec![
        json!({"type": "page", "anonymousId": "x", "timestamp": at(10)}),
    ])
    .await;
    app.web_caught_up(&admin).await;
    let (status, r) = app.get(&admin, &format!("{base}/web?period=today")).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["current"]["pageviews"], 1, "{r}");
    let (status, r) = app
        .get(
            &admin,
            &format!("{base}/web?period=today&source=%27%20OR%201%3D1%20--"),
        )
        .await;
    assert_eq!(
        (status.as_u16(), &r["current"]["pageviews"]),
        (200, &json!(0))
    );

    let views: Vec<Value> = (0..4)
        .map(|i| json!({"type": "page", "anonymousId": "a", "timestamp": at(60 * i + 30)}))
        .collect();
    app.ingest(views).await;
    app.web_caught_up(&admin).await;
    let (status, r) = app
        .get(&admin, &format!("{base}/web?period=7d&source="))
        .await;
    assert_eq!(status, 200, "five visits are within the limit: {r}");
    assert_eq!(r["current"]["visits"], 5, "{r}");
    assert!(r["coverage_from"].is_null(), "{r}");
    // Twenty more visitors on pages of their own: the unfiltered view's day rows (one per
    // value and breakdown) pass the limit, and it says so.
    let views: Vec<Value> = (0..20)
        .map(|i| {
            json!({"type": "page", "anonymousId": format!("n{i}"),
                        "timestamp": at(i + 1), "properties": {"path": format!("/p{i}")}})
        })
        .collect();
    app.ingest(views).await;
    app.web_caught_up(&admin).await;
    let (status, body) = app.get(&admin, &format!("{base}/web?period=7d")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("PULSELINE_DASHBOARD_MAX_SCAN_EVENTS"),
        "{body}"
    );
    // A filtered view reads at most that many visits, the latest, and says from when.
    let (status, r) = app
        .get(
            &admin,
            &format!("{base}/web?period=7d&referrer=&utm_source="),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["current"]["visits"], 20, "{r}");
    let oldest_read = (now() - Duration::minutes(20)).timestamp_millis();
    assert_eq!(r["coverage_from"], oldest_read + 1, "{r}");
    // With the source among two filters, its pair rows give the top row whole.
    let (status, r) = app
        .get(&admin, &format!("{base}/web?period=7d&source=&country="))
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["current"]["visits"], 25, "{r}");
    assert_eq!(r["breakdowns"]["source"][0]["count"], 20, "{r}");
    assert_eq!(r["coverage_from"], oldest_read + 1, "{r}");
    // One visit filter: its day rows give the top row whole, the visits the breakdowns.
    let (status, r) = app
        .get(&admin, &format!("{base}/web?period=7d&source="))
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["current"]["visits"], 25, "{r}");
    assert_eq!(r["breakdowns"]["source"][0]["count"], 20, "{r}");
    assert_eq!(r["coverage_from"], oldest_read + 1, "{r}");
    // Another project's id is not found, like a project that does not exist.
    let (status, _) = app.get(&admin, "/api/dash/projects/999/web").await;
    assert_eq!(status, 404);
    let (status, _) = app.get(&admin, "/api/dash/projects/999/web/realtime").await;
    assert_eq!(status, 404);
}
