//! Where visits come from, and bots left out of the charts unless asked.

use super::*;

#[tokio::test]
async fn the_source_comes_from_campaign_and_referrer() {
    let app = spawn(|_| {}).await;
    let cases = [
        (
            "r1",
            json!({"page": {"url": "https://shop.example/", "referrer": "https://www.google.de/"}}),
            json!({"name": "Google", "medium": "search"}),
        ),
        (
            "r2",
            json!({"page": {"url": "https://shop.example/", "referrer": "https://news.ycombinator.com/item?id=1"}}),
            json!({"name": "Hacker News", "medium": "social"}),
        ),
        (
            "r3",
            json!({"page": {"url": "https://shop.example/", "referrer": "https://t.co/x"},
                      "campaign": {"source": "weekly-digest", "medium": "newsletter", "name": "launch"}}),
            json!({"name": "weekly-digest", "medium": "email"}),
        ),
        (
            "r4",
            json!({"page": {"url": "https://shop.example/b", "referrer": "https://shop.example/a"}}),
            json!({"name": "Direct / None", "medium": "none"}),
        ),
        (
            "r5",
            json!({"page": {"url": "https://shop.example/", "referrer": ""}}),
            json!({"name": "Direct / None", "medium": "none"}),
        ),
        (
            "r6",
            json!({"page": {"url": "https://shop.example/"}, "campaign": {"source": "google", "medium": "cpc"}}),
            json!({"name": "Google", "medium": "paid"}),
        ),
    ];
    for (id, context, _) in &cases {
        assert_eq!(
            app.send_as_browser("/v1/page", SAFARI_MAC, page(id, context.clone()))
                .await,
            StatusCode::OK
        );
    }
    for (id, _, source) in &cases {
        assert_eq!(&app.stored(id).await["context"]["source"], source, "{id}");
    }
}

#[tokio::test]
async fn bots_are_left_out_of_overview_series_and_event_names_unless_asked() {
    let app = spawn(|_| {}).await;
    let signup = |id: &str, user: &str| json!({"type": "track", "event": "Signed Up", "messageId": id, "anonymousId": user});
    for (i, ua) in [CHROME_ANDROID, SAFARI_MAC, CHROME_ANDROID]
        .iter()
        .enumerate()
    {
        let status = app
            .send_as_browser(
                "/v1/track",
                ua,
                signup(&format!("h{i}"), &format!("person-{i}")),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    for i in 0..2 {
        let status = app
            .send_as_browser(
                "/v1/t",
                GOOGLEBOT,
                signup(&format!("bot{i}"), &format!("crawler-{i}")),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let p = format!("/api/dash/projects/{}", app.project);
    let top = |o: &Value| o["top_events"][0].clone();

    let overview = app.dash(&format!("{p}/overview")).await;
    assert_eq!(top(&overview), json!(["Signed Up", 3]), "{overview}");
    assert_eq!(overview["events_today"], 3);
    assert_eq!(overview["bot_events"], 2);
    assert_eq!(overview["dau"], 3, "crawlers are not active users");
    let with_bots = app.dash(&format!("{p}/overview?include_bots=true")).await;
    assert_eq!(top(&with_bots), json!(["Signed Up", 5]));
    assert_eq!(with_bots["events_today"], 5);

    let names = app.dash(&format!("{p}/event-names")).await;
    assert_eq!(names, json!([["Signed Up", 3]]));
    let names = app
        .dash(&format!("{p}/event-names?include_bots=true"))
        .await;
    assert_eq!(names, json!([["Signed Up", 5]]));

    let total = |s: &Value| -> f64 {
        s["series"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["values"].as_array().unwrap().clone())
            .filter_map(|v| v.as_f64())
            .sum()
    };
    // From the rollups (all events, and one event), and from the events (grouped).
    for query in ["", "&event=Signed%20Up", "&group_by=nothing"] {
        let s = app.dash(&format!("{p}/series?bucket=3600000{query}")).await;
        assert_eq!(total(&s), 3.0, "{query}: {s}");
        let s = app
            .dash(&format!(
                "{p}/series?bucket=3600000&include_bots=true{query}"
            ))
            .await;
        assert_eq!(total(&s), 5.0, "{query}: {s}");
    }
}
