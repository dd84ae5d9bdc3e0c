//! Day rows in the project's time zone: a zone with a clock change in the range
//! (America/New_York, March 8 2026 has 23 hours) and one half an hour off UTC (Asia/Kolkata,
//! hours start at :30), each set after the page views were stored, so the rollups are rebuilt.

use super::*;

/// `[start, end)` spans between consecutive UTC instants (year 2026).
fn spans(points: &[(u32, u32, u32, u32)]) -> Vec<(i64, i64)> {
    let ms: Vec<i64> = points
        .iter()
        .map(|(mo, d, h, mi)| {
            Utc.with_ymd_and_hms(2026, *mo, *d, *h, *mi, 0)
                .unwrap()
                .timestamp_millis()
        })
        .collect();
    ms.windows(2).map(|w| (w[0], w[1])).collect()
}

async fn set_zone(app: &Dash, admin: &Login, tz: &str) {
    let base = format!("/api/dash/projects/{}", app.project);
    let (status, body) = app
        .post(
            admin,
            &format!("{base}/settings"),
            json!({ "timezone": tz }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.web_caught_up(admin).await;
}

#[tokio::test]
async fn days_follow_the_zone_through_clock_changes_and_half_hours() {
    let clock = Arc::new(FakeClock::new(now()));
    let app = spawn(|_| {}, clock).await;
    let admin = app.admin().await;
    let mut rng = StdRng::seed_from_u64(2126);
    let mut messages = traffic(&mut rng);
    // Page views either side of Kolkata's midnight (18:30 UTC) and of New York's (04:00 and
    // 05:00 UTC), each a visit of its own: a day cut at the whole hour counts them wrong.
    for d in 2..10 {
        for (h, m) in [(18, 10), (18, 40), (4, 20), (4, 40), (5, 20)] {
            let ts = Utc.with_ymd_and_hms(2026, 3, d, h, m, 0).unwrap();
            messages.push(
                json!({"type": "page", "anonymousId": format!("edge-{d}-{h}-{m}"),
                "timestamp": ts.to_rfc3339(), "context": {"page": {"path": "/edge"}}}),
            );
        }
    }
    for chunk in messages.chunks(100) {
        app.ingest(chunk.to_vec()).await;
    }
    app.web_caught_up(&admin).await;
    let pvs = stored_page_views(&app).await;

    // New York: EST (UTC-5) until 2026-03-08 02:00, then EDT (UTC-4).
    set_zone(&app, &admin, "America/New_York").await;
    let ny_week = spans(&[
        (3, 4, 5, 0),
        (3, 5, 5, 0),
        (3, 6, 5, 0),
        (3, 7, 5, 0),
        (3, 8, 5, 0),
        (3, 9, 4, 0),
        (3, 10, 4, 0),
        (3, 11, 4, 0),
    ]);
    let ny_before: Vec<(i64, i64)> = spans(&[
        (2, 25, 5, 0),
        (2, 26, 5, 0),
        (2, 27, 5, 0),
        (2, 28, 5, 0),
        (3, 1, 5, 0),
        (3, 2, 5, 0),
        (3, 3, 5, 0),
        (3, 4, 5, 0),
    ]);
    for case in [
        ("period=7d", vec![], ny_week.clone(), ny_before.clone()),
        (
            "period=7d&country=DE",
            vec![("country", "DE")],
            ny_week.clone(),
            ny_before.clone(),
        ),
    ] {
        check_case_in(&app, &admin, &pvs, &case, "America/New_York").await;
    }

    // Kolkata: UTC+5:30, days from 18:30 UTC, and the one-day chart's hours at :30.
    set_zone(&app, &admin, "Asia/Kolkata").await;
    let points: Vec<(u32, u32, u32, u32)> = (0..8)
        .map(|i| {
            let d = Utc.with_ymd_and_hms(2026, 3, 3, 18, 30, 0).unwrap() + Duration::days(i);
            (d.month(), d.day(), 18, 30)
        })
        .collect();
    let before: Vec<(u32, u32, u32, u32)> = (0..8)
        .map(|i| {
            let d = Utc.with_ymd_and_hms(2026, 2, 24, 18, 30, 0).unwrap() + Duration::days(i);
            (d.month(), d.day(), 18, 30)
        })
        .collect();
    let case = ("period=7d", vec![], spans(&points), spans(&before));
    check_case_in(&app, &admin, &pvs, &case, "Asia/Kolkata").await;
    let today = Utc.with_ymd_and_hms(2026, 3, 9, 18, 30, 0).unwrap();
    let yesterday = today - Duration::days(1);
    let hours = |from: DateTime<Utc>| -> Vec<(i64, i64)> {
        (0..24)
            .map(|h| {
                let s = (from + Duration::hours(h)).timestamp_millis();
                (s, s + 3_600_000)
            })
            .collect()
    };
    let base = format!("/api/dash/projects/{}", app.project);
    let (status, r) = app.get(&admin, &format!("{base}/web?period=today")).await;
    assert_eq!(status, 200, "{r}");
    let want = expected(
        &pvs,
        today.timestamp_millis(),
        (today + Duration::days(1)).timestamp_millis(),
        &hours(today),
        &[],
    );
    check_stats(&r["current"], want.totals, "Kolkata today");
    let starts: Vec<i64> = hours(today).iter().map(|h| h.0).collect();
    assert_eq!(r["series"]["buckets"], json!(starts));
    // Hours up to now (15:00 UTC = 20:30 local, the 21st hour) are counted, later ones null.
    let got: Vec<i64> = r["series"]["visitors"].as_array().unwrap()[..21]
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    check_series(&got, &want.series[..21], "Kolkata today by hour");
    let (status, r) = app
        .get(&admin, &format!("{base}/web?period=yesterday"))
        .await;
    assert_eq!(status, 200, "{r}");
    let want = expected(
        &pvs,
        yesterday.timestamp_millis(),
        today.timestamp_millis(),
        &hours(yesterday),
        &[],
    );
    check_stats(&r["current"], want.totals, "Kolkata yesterday");
    let got: Vec<i64> = r["series"]["visitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    check_series(&got, &want.series, "Kolkata yesterday by hour");
    assert!(want.series.iter().sum::<i64>() > 0, "traffic yesterday");
}
