//! Numbers are stored and returned with the digits they were sent with, or refused at ingest.

use crate::helpers::{TestApp, spawn_app};
use serde_json::Value;

async fn post_raw(app: &TestApp, path: &str, body: &str) -> (u16, Value) {
    let resp = app
        .http
        .post(app.url(path))
        .basic_auth(&app.keys.write_key, Some(""))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// The read API's answer as text: parsing it into `Value` would itself round the numbers.
async fn events_text(app: &TestApp) -> String {
    let resp = app
        .http
        .get(app.url("/api/v1/events"))
        .bearer_auth(&app.keys.secret_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

const PROPERTIES: &str = r#"{"u128":340282366920938463463374607431768211455,"pow100":1267650600228229401496703205376,"decimal":12345678901234567890.123456789,"price":1.10,"exp":1E+300,"tiny":-2.5e-300,"nested":{"list":[1.0,0.000001,-0]}}"#;

#[tokio::test]
async fn come_back_with_the_digits_they_were_sent_with() {
    let app = spawn_app().await;
    let body = format!(
        r#"{{"userId":123456789012345678901234567890,"event":"exact","messageId":"m-exact","properties":{PROPERTIES},"context":{{"ratio":1.50}}}}"#
    );
    let (status, answer) = post_raw(&app, "/v1/track", &body).await;
    assert_eq!(status, 200, "{answer}");

    let text = events_text(&app).await;
    assert!(
        text.contains(&format!(r#""properties":{PROPERTIES}"#)),
        "{text}"
    );
    assert!(text.contains(r#""context":{"ratio":1.50}"#), "{text}");
    assert!(
        text.contains(r#""userId":123456789012345678901234567890"#),
        "{text}"
    );
    // The id column (filters, the dashboard) holds the same digits.
    let page: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(page["events"][0]["event"], "exact");
    let filtered = app
        .all_events("&user_id=123456789012345678901234567890")
        .await;
    assert_eq!(filtered.len(), 1);
}

#[tokio::test]
async fn beyond_a_64_bit_float_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let huge = format!("2{}", "0".repeat(10_000));
    let batch = format!(
        r#"{{"batch":[
            {{"type":"track","userId":"u","event":"e","messageId":"big","properties":{{"big":1E+400}}}},
            {{"type":"track","userId":"u","event":"e","messageId":"long","properties":{{"n":{huge}}}}},
            {{"type":"identify","userId":"u","messageId":"small","traits":{{"list":[1,-1e-400]}}}},
            {{"type":"track","userId":1e999,"event":"e","messageId":"id"}},
            {{"type":"track","userId":"u","event":"e","messageId":"deep","properties":{{"p":{}{}}}}},
            {{"type":"track","userId":"u","event":"ok","messageId":"fine","properties":{{"n":1.5e300}}}}
        ]}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let (status, answer) = post_raw(&app, "/v1/batch", &batch).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 1, "{answer}");
    let errors: Vec<(&str, &str)> = answer["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["messageId"].as_str().unwrap(),
                r["error"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(errors.len(), 5, "{answer}");
    let expect = [
        (
            "big",
            "'properties.big' is 1E+400, beyond the range of a 64-bit float",
        ),
        (
            "long",
            "'properties.n' is a number of 10001 characters; the limit is 100",
        ),
        ("small", "'traits.list[1]' is -1e-400, too close to zero"),
        ("id", "'userId' is 1e999, beyond the range"),
        ("deep", "'properties' is nested more than 100 levels deep"),
    ];
    for ((id, error), (want_id, want)) in errors.iter().zip(expect) {
        assert_eq!(*id, want_id);
        assert!(error.starts_with(want), "{error}");
    }
    let stored = app.all_events("").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["messageId"], "fine");

    let (status, answer) = post_raw(
        &app,
        "/v1/track",
        r#"{"userId":"u","event":"e","properties":{"big":-1E+400}}"#,
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("'properties.big' is -1E+400"),
        "{answer}"
    );
}

/// A timestamp an offset pushes past year 9999 in UTC would be returned as `+10000-…`.
#[tokio::test]
async fn timestamps_past_year_9999_in_utc_are_refused() {
    let app = spawn_app().await;
    let (status, answer) = post_raw(
        &app,
        "/v1/track",
        r#"{"userId":"u","event":"e","timestamp":"9999-12-31T23:30:00-01:00"}"#,
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("'timestamp' is outside the years 0000 to 9999"),
        "{answer}"
    );
    let (status, answer) = post_raw(
        &app,
        "/v1/track",
        r#"{"userId":"u","event":"e","timestamp":"9999-12-31T23:30:00.123456789123456789+00:00"}"#,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let text = events_text(&app).await;
    assert!(
        text.contains(r#""timestamp":"9999-12-31T23:30:00.123Z""#),
        "{text}"
    );
}

/// Values PostgreSQL cannot cast (1E+400 to float8, `\u0000` to jsonb) used to be stored
/// and then failed every rule query over their window there; now they are refused, and the
/// rule reads the valid events on both backends.
#[tokio::test]
async fn refused_values_never_reach_a_rule() {
    let app = spawn_app().await;
    let at = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    let track = |props: &str| {
        format!(
            r#"{{"type":"track","userId":"u","event":"checkout","timestamp":"{at}","properties":{props}}}"#
        )
    };
    let batch = format!(
        r#"{{"batch":[{},{},{}]}}"#,
        track(r#"{"value":5}"#),
        track(r#"{"value":1E+400}"#),
        track(r#"{"value":1,"note":"a\u0000b"}"#)
    );
    let (status, answer) = post_raw(&app, "/v1/batch", &batch).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 1, "{answer}");
    let nul = answer["rejected"][1]["error"].as_str().unwrap();
    assert!(
        nul.starts_with(r"'properties.note' holds \u0000 (NUL)"),
        "{nul}"
    );

    let resp = app
        .http
        .post(app.url("/api/v1/rules/preview?buckets=4"))
        .bearer_auth(&app.keys.secret_key)
        .json(&serde_json::json!({
            "name": "Revenue", "channel_ids": [],
            "series": {"event": "checkout", "aggregate": "sum", "property": "value",
                       "bucket": "hour"},
            "condition": {"type": "threshold", "op": ">", "value": 100}
        }))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let preview: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{preview}");
    let values: Vec<f64> = preview["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["value"].as_f64())
        .collect();
    assert_eq!(values.iter().sum::<f64>(), 5.0, "{preview}");
}

/// Rows stored before the limits existed come back whole, not as bare ids.
#[tokio::test]
async fn stored_out_of_range_bodies_keep_every_field() {
    let app = spawn_app().await;
    let (status, answer) = post_raw(
        &app,
        "/v1/track",
        r#"{"userId":"old-user","event":"old","messageId":"old-1","properties":{"n":1}}"#,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
    let old_body = format!(
        r#"{{"type":"track","userId":"old-user","event":"old","messageId":"old-1","properties":{{"n":1E+400,"m":{},"d":{deep}}}}}"#,
        format_args!("9{}", "0".repeat(10_000))
    );
    app.exec_sql(&format!(
        "UPDATE events SET body = '{old_body}' WHERE message_id = 'old-1'"
    ))
    .await;
    let text = events_text(&app).await;
    let head = &text[..text.len().min(300)];
    assert!(
        text.contains(r#""properties":{"n":1E+400,"m":9000"#),
        "{head}"
    );
    assert!(text.contains(&deep), "{head}");
    assert!(text.contains(r#""event":"old""#), "{head}");
    assert!(text.contains(r#""userId":"old-user""#), "{head}");
}
