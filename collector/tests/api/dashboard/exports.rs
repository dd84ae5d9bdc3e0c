//! What the dashboard shows and downloads is what was sent: CSV cannot carry formulas, and
//! numbers keep their digits in every view.

use std::sync::Arc;

use pulseline_collector::clock::{FakeClock, SystemClock};
use serde_json::{Value, json};

use super::{at, ev, spawn};
use crate::helpers;

/// Text sent with the write key cannot run as a spreadsheet formula in any CSV download, and
/// an event whose id the collector assigned is exported with that id.
#[tokio::test]
async fn csv_downloads_neutralise_formulas_and_export_stored_ids() {
    let clock = Arc::new(FakeClock::new(at(12, 0)));
    let app = spawn(|_| {}, clock).await;
    let mut formula = ev(
        "+cmd|' /C calc'!A0",
        "=HYPERLINK(\"https://evil.example\",\"Open\")",
        at(10, 0),
        json!({"plan": "@SUM(1+1)"}),
    );
    formula["messageId"] = json!("-2+3");
    let mut tabbed = ev(
        "\t=1+1",
        "=HYPERLINK(\"https://evil.example\",\"Open\")",
        at(10, 5),
        json!({"plan": "\r=2"}),
    );
    tabbed["messageId"] = json!("tabbed");
    let mut no_id = ev(
        "u1",
        "=HYPERLINK(\"https://evil.example\",\"Open\")",
        at(10, 10),
        json!({"plan": "=1+2"}),
    );
    no_id.as_object_mut().unwrap().remove("messageId");
    app.ingest(vec![formula, tabbed, no_id]).await;
    let me = app.admin().await;
    let day = at(0, 0).timestamp_millis();
    let query = format!(
        "/api/dash/projects/{}/{{}}?event=%3DHYPERLINK(%22https://evil.example%22,%22Open%22)&from={day}&to={}&bucket=86400000&format=csv",
        app.project,
        day + 86_400_000
    );
    let download = |what: &str, extra: &str| {
        let url = app.url(&format!("{}{extra}", query.replace("{}", what)));
        let (http, cookie) = (app.http.clone(), me.cookie.clone());
        async move {
            let resp = http.get(url).header("cookie", cookie).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.text().await.unwrap()
        }
    };
    let cells = |csv: &str| -> Vec<Vec<String>> {
        csv::Reader::from_reader(csv.as_bytes())
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect()
    };
    let events = cells(&download("events", "").await);
    assert_eq!(events.len(), 3, "{events:?}");
    let stored_id: Vec<String> = helpers::query_column(
        &app.database_url,
        "SELECT message_id FROM events WHERE user_id = 'u1'",
    )
    .await;
    // Newest first: no_id, tabbed, formula.
    assert_eq!(
        events[0][1],
        "'=HYPERLINK(\"https://evil.example\",\"Open\")"
    );
    assert_eq!(events[0][2], "u1");
    assert_eq!(events[0][3], stored_id[0], "the id the collector assigned");
    assert_eq!(events[1][2], "'\t=1+1");
    assert_eq!(events[2][2], "'+cmd|' /C calc'!A0");
    assert_eq!(events[2][3], "'-2+3");
    for row in &events {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a formula cell: {row:?}"
            );
        }
    }
    let series = download("series", "&group_by=plan").await;
    let header = &csv::Reader::from_reader(series.as_bytes())
        .headers()
        .unwrap()
        .clone();
    let mut names: Vec<&str> = header.iter().skip(1).collect();
    names.sort();
    assert_eq!(names, ["'\r=2", "'=1+2", "'@SUM(1+1)"], "{series}");
}

/// Numbers keep the digits they were sent with in every dashboard view: the live tail, the
/// events table and CSV, and group names and filters of the explore chart.
#[tokio::test]
async fn dashboard_views_show_numbers_as_sent() {
    let app = spawn(|_| {}, Arc::new(SystemClock)).await;
    let me = app.admin().await;
    let p = format!("/api/dash/projects/{}", app.project);
    let get_text = |path: String| {
        let (app, me) = (&app, me.clone());
        async move {
            let resp = app
                .http
                .get(app.url(&path))
                .header("cookie", &me.cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp
        }
    };
    let mut tail = get_text(format!("{p}/tail")).await;
    let props = r#"{"price":1.10,"big":340282366920938463463374607431768211455,"d":12345678901234567890.123456789}"#;
    let body = format!(r#"{{"userId":"u","event":"Exact","properties":{props}}}"#);
    let resp = app
        .http
        .post(app.url("/v1/track"))
        .basic_auth(&app.write_key, Some(""))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());

    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen.contains("Exact") {
        let chunk = tokio::time::timeout_at(deadline, tail.chunk())
            .await
            .expect("within 10 s");
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
    }
    assert!(seen.contains(&format!(r#""properties":{props}"#)), "{seen}");

    let table = get_text(format!("{p}/events?event=Exact"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        table.contains(&format!(r#""properties":{props}"#)),
        "{table}"
    );
    let csv = get_text(format!("{p}/events?event=Exact&format=csv"))
        .await
        .text()
        .await
        .unwrap();
    let quoted = props.replace('"', "\"\"");
    assert!(csv.contains(",Exact,u,"), "{csv}");
    assert!(csv.trim_end().ends_with(&format!(r#""{quoted}""#)), "{csv}");

    let (status, grouped) = app
        .get(&me, &format!("{p}/series?event=Exact&group_by=big"))
        .await;
    assert_eq!(status, 200, "{grouped}");
    assert_eq!(
        grouped["series"][0]["name"],
        "340282366920938463463374607431768211455"
    );
    let (_, filtered) = app
        .get(
            &me,
            &format!("{p}/series?event=Exact&filter_property=price&filter_value=1.10"),
        )
        .await;
    let counts = filtered["series"][0]["values"].as_array().unwrap();
    assert_eq!(counts.iter().filter_map(Value::as_f64).sum::<f64>(), 1.0);
}
