//! Cookieless visitor ids (docs/privacy.md, "Cookieless mode"), over HTTP on both backends: a
//! message with neither id and `context.cookieless = true` gets `anonymousId = ck_<32 hex>` from
//! a daily salt, the client's address and its user agent; the salt of a day is gone the next.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use pulseline_collector::clock::FakeClock;
use serde_json::{Value, json};

use crate::helpers::{self, TestApp};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const SAFARI: &str =
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Version/18.1 Safari/605.1.15";

async fn spawn() -> (TestApp, Arc<FakeClock>) {
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 11, 22, 23, 0, 0).unwrap(),
    ));
    // Loopback is a trusted proxy, so each request can say which client it is for.
    let app = helpers::spawn_app_with_clock(
        |c| c.proxy.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()],
        clock.clone(),
    )
    .await;
    (app, clock)
}

fn cookieless_page(name: &str, extra_context: Value) -> Value {
    let mut context = json!({"cookieless": true, "page": {"path": "/pricing"}});
    context
        .as_object_mut()
        .unwrap()
        .extend(extra_context.as_object().unwrap().clone());
    json!({"type": "page", "name": name, "context": context})
}

/// Sends `message` as `client_ip` with `user_agent`; the stored event.
async fn send(app: &TestApp, write_key: &str, message: Value, ip: &str, ua: &str) -> Value {
    let name = message["name"].as_str().unwrap().to_owned();
    let resp = app
        .http
        .post(app.url("/v1/batch"))
        .basic_auth(write_key, Some(""))
        .header("x-forwarded-for", ip)
        .header("user-agent", ua)
        .json(&json!({ "batch": [message] }))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rejected"], json!([]), "{body}");
    let mut events = app.all_events(&format!("&event={name}")).await;
    assert_eq!(events.len(), 1, "{events:?}");
    events.pop().unwrap()
}

fn visitor(event: &Value) -> String {
    let id = event["anonymousId"]
        .as_str()
        .expect("anonymousId")
        .to_owned();
    assert!(
        id.len() == 35
            && id.starts_with("ck_")
            && id[3..]
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "not ck_ + 32 hex digits: {id}"
    );
    id
}

async fn salt_days(app: &TestApp) -> Vec<String> {
    helpers::query_column(
        &app.database_url,
        "SELECT day FROM cookieless_salts ORDER BY day",
    )
    .await
}

#[tokio::test]
async fn same_visitor_same_day_gets_one_id_and_others_another() {
    let (app, _clock) = spawn().await;
    let key = app.keys.write_key.clone();
    let ip = "203.0.113.7";
    let first = visitor(&send(&app, &key, cookieless_page("p1", json!({})), ip, FIREFOX).await);
    let again = visitor(&send(&app, &key, cookieless_page("p2", json!({})), ip, FIREFOX).await);
    assert_eq!(first, again, "same IP and user agent, same day");
    let other_ip = send(
        &app,
        &key,
        cookieless_page("p3", json!({})),
        "203.0.113.8",
        FIREFOX,
    )
    .await;
    assert_ne!(visitor(&other_ip), first);
    let other_ua = send(&app, &key, cookieless_page("p4", json!({})), ip, SAFARI).await;
    assert_ne!(visitor(&other_ua), first);
    // A browser's own user agent in the message wins over the request's (a server forwarding
    // it sends its own User-Agent header).
    let forwarded = cookieless_page("p5", json!({"userAgent": FIREFOX}));
    assert_eq!(
        visitor(&send(&app, &key, forwarded, ip, "my-server/1.0").await),
        first
    );
    // The stored message is the sent one plus the derived id; the IP is not stored.
    let stored = send(&app, &key, cookieless_page("p6", json!({})), ip, FIREFOX).await;
    assert_eq!(stored["context"]["cookieless"], true);
    assert_eq!(stored["context"]["page"]["path"], "/pricing");
    assert!(stored.get("userId").is_none_or(Value::is_null), "{stored}");
    assert!(
        !stored.to_string().contains(ip),
        "the client IP is stored: {stored}"
    );
    assert_eq!(salt_days(&app).await, ["2026-11-22"]);
}

#[tokio::test]
async fn the_next_day_gives_a_new_id_and_deletes_the_old_salt() {
    let (app, clock) = spawn().await;
    let key = app.keys.write_key.clone();
    let ip = "198.51.100.23";
    let today = visitor(&send(&app, &key, cookieless_page("d1", json!({})), ip, FIREFOX).await);
    assert_eq!(salt_days(&app).await, ["2026-11-22"]);
    clock.advance(Duration::hours(2)); // 01:00 UTC the next day
    let tomorrow = visitor(&send(&app, &key, cookieless_page("d2", json!({})), ip, FIREFOX).await);
    assert_ne!(today, tomorrow, "visitors must not be linkable across days");
    assert_eq!(
        salt_days(&app).await,
        ["2026-11-23"],
        "yesterday's salt must be gone"
    );
    let later = visitor(&send(&app, &key, cookieless_page("d3", json!({})), ip, FIREFOX).await);
    assert_eq!(later, tomorrow);
}

#[tokio::test]
async fn maintenance_deletes_a_past_salt_without_new_traffic() {
    let (app, _clock) = spawn().await;
    let key = app.keys.write_key.clone();
    send(
        &app,
        &key,
        cookieless_page("m1", json!({})),
        "192.0.2.1",
        FIREFOX,
    )
    .await;
    let store = app.store().await;
    pulseline_collector::maintenance::run_once(
        &store,
        Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 1).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(salt_days(&app).await, Vec::<String>::new());
}

#[tokio::test]
async fn another_project_gets_another_id_for_the_same_visitor() {
    let (app, clock) = spawn().await;
    let store = app.store().await;
    let other = pulseline_collector::projects::create_project(
        &store,
        "other",
        "unlimited",
        clock_now(&clock),
    )
    .await
    .unwrap();
    let ip = "203.0.113.99";
    let here = send(
        &app,
        &app.keys.write_key,
        cookieless_page("x1", json!({})),
        ip,
        FIREFOX,
    )
    .await;
    let (status, there) = (200, send_other(&app, &other.write_key, ip).await);
    assert_eq!(status, 200);
    assert_ne!(visitor(&here), there);
}

fn clock_now(clock: &FakeClock) -> chrono::DateTime<Utc> {
    use pulseline_collector::clock::Clock;
    clock.now()
}

/// The visitor id another project stores (read with that project's own secret key is not
/// possible here, so from the database).
async fn send_other(app: &TestApp, write_key: &str, ip: &str) -> String {
    let resp = app
        .http
        .post(app.url("/v1/page"))
        .basic_auth(write_key, Some(""))
        .header("x-forwarded-for", ip)
        .header("user-agent", FIREFOX)
        .json(&cookieless_page("x2", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let ids: Vec<String> = helpers::query_column(
        &app.database_url,
        "SELECT anonymous_id FROM events WHERE event = 'x2'",
    )
    .await;
    assert_eq!(ids.len(), 1);
    visitor(&json!({ "anonymousId": ids[0] }))
}

#[tokio::test]
async fn without_the_cookieless_flag_a_message_still_needs_an_id() {
    let (app, _clock) = spawn().await;
    for context in [
        json!({}),
        json!({"cookieless": false}),
        json!({"cookieless": "true"}),
    ] {
        let resp = app
            .post("/v1/page", &json!({"name": "n", "context": context}))
            .await;
        assert_eq!(resp.status(), 400);
        let body: Value = resp.json().await.unwrap();
        assert!(
            body.to_string()
                .contains("missing 'userId' or 'anonymousId'"),
            "{body}"
        );
    }
    // Ids a cookieless message does carry (after identify) are kept.
    let message = json!({"type": "page", "name": "k1", "userId": "user-1",
                         "context": {"cookieless": true}});
    let stored = send(
        &app,
        &app.keys.write_key.clone(),
        message,
        "192.0.2.9",
        FIREFOX,
    )
    .await;
    assert_eq!(stored["userId"], "user-1");
    assert!(
        stored.get("anonymousId").is_none_or(Value::is_null),
        "{stored}"
    );
    assert_eq!(app.events_total().await, 1);
}
