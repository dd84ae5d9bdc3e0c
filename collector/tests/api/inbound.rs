//! Inbound webhooks (issue 24): deliveries from Stripe, GitHub and a Standard Webhooks sender,
//! signed in the test by each service's documented scheme, arrive as events once; unsigned,
//! wrongly signed and stale ones are refused with nothing stored.

use crate::helpers;
use crate::helpers::standins;

use std::time::Duration;

use crate::helpers::TestApp;
use chrono::Utc;
use hmac::{Hmac, Mac};
use pulseline_collector::alerting::delivery::webhook;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

/// Request headers of one delivery.
type Headers = Vec<(&'static str, String)>;

const WAIT: Duration = Duration::from_secs(15);
const STRIPE_SECRET: &str = "whsec_test_5dbb4e1b0c8c4e0f9a7c2d3e1f0a9b8c";
const GITHUB_SECRET: &str = "It's a Secret to Everybody";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/inbound/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    for p in parts {
        mac.update(p);
    }
    hex(&mac.finalize().into_bytes())
}

/// `Stripe-Signature` for `body` signed at `t`, as Stripe computes it.
fn stripe_signature(secret: &str, t: i64, body: &[u8]) -> String {
    format!(
        "t={t},v1={}",
        hmac_hex(secret, &[format!("{t}.").as_bytes(), body])
    )
}

async fn deliver(
    app: &TestApp,
    source: &Value,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, Value) {
    let mut req = app
        .http
        .post(app.url(source["path"].as_str().unwrap()))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn error_text(body: &Value) -> String {
    body.to_string().to_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripe_payment_is_stored_once_and_notifies_discord() {
    let app = helpers::spawn_app().await;
    let discord = standins::discord().await;
    let (status, channel) = app
        .api(
            Method::POST,
            "/api/v1/channels",
            Some(json!({"name": "payments", "kind": "discord", "url": discord.url})),
        )
        .await;
    assert_eq!(status, 201, "{channel}");
    let (status, category) = app
        .api(
            Method::POST,
            "/api/v1/categories",
            Some(
                json!({"name": "Payments", "pattern": "payment_intent.succeeded", "emoji": "💰",
                    "channel_id": channel["id"], "title_template": "{user} paid {amount}"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{category}");
    let source = app
        .create_source(json!({"kind": "stripe", "name": "Stripe live", "secret": STRIPE_SECRET}))
        .await;
    assert!(source.get("signing_secret").is_none(), "{source}");

    let body = fixture("stripe_payment_intent_succeeded.json");
    let now = Utc::now().timestamp();
    // Stripe sends several v1 signatures while a secret is being rolled: any one may match.
    let header = format!(
        "{},v1={}",
        stripe_signature(STRIPE_SECRET, now, &body),
        hmac_hex("whsec_old", &[b"x"])
    );
    for _ in 0..2 {
        let (status, got) = deliver(
            &app,
            &source,
            &[("stripe-signature", header.clone())],
            &body,
        )
        .await;
        assert_eq!(status, 200, "{got}");
        assert_eq!(got["accepted"], 1, "{got}");
    }

    let embeds = discord.receiver.wait_for_embeds(1, WAIT).await;
    assert_eq!(embeds[0]["title"], "cus_NffrFeUfNV2Hib paid 2000");
    let events = app.all_events("").await;
    assert_eq!(
        events.len(),
        1,
        "the repeated delivery is stored once: {events:?}"
    );
    let event = &events[0];
    assert_eq!(event["event"], "payment_intent.succeeded");
    assert_eq!(event["messageId"], "evt_3MtwBwLkdIwHu7ix0ZzKQ0ZL");
    assert_eq!(event["userId"], "cus_NffrFeUfNV2Hib");
    // Stored once, so queued for Discord once.
    let (_, deliveries) = app.api(Method::GET, "/api/v1/deliveries", None).await;
    assert_eq!(
        deliveries["deliveries"].as_array().unwrap().len(),
        1,
        "{deliveries}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_wrongly_signed_and_stale_stripe_deliveries_are_refused() {
    let app = helpers::spawn_app().await;
    let source = app
        .create_source(json!({"kind": "stripe", "name": "Stripe", "secret": STRIPE_SECRET}))
        .await;
    let body = fixture("stripe_payment_intent_succeeded.json");
    let now = Utc::now().timestamp();
    // A minute past the 300 s tolerance on either side: the cases are signed up front, and a
    // loaded machine may take seconds to reach the last one (a 301 s margin once let it in).
    let outside = 300 + 60;
    let cases: Vec<(&str, Headers, &str)> = vec![
        ("missing header", vec![], "missing stripe-signature"),
        (
            "wrong secret",
            vec![(
                "stripe-signature",
                stripe_signature("whsec_wrong", now, &body),
            )],
            "does not match",
        ),
        (
            "no v1",
            vec![("stripe-signature", format!("t={now}"))],
            "no v1=",
        ),
        (
            "stale",
            vec![(
                "stripe-signature",
                stripe_signature(STRIPE_SECRET, now - outside, &body),
            )],
            "tolerance is 300 s",
        ),
        (
            "from the future",
            vec![(
                "stripe-signature",
                stripe_signature(STRIPE_SECRET, now + outside, &body),
            )],
            "tolerance is 300 s",
        ),
    ];
    for (case, headers, says) in cases {
        let (status, got) = deliver(&app, &source, &headers, &body).await;
        assert_eq!(status, 401, "{case}: {got}");
        assert!(error_text(&got).contains(says), "{case}: {got}");
    }
    // A body changed after signing fails too.
    let mut tampered = body.clone();
    let at = tampered.iter().position(|b| *b == b'2').unwrap();
    tampered[at] = b'9';
    let header = stripe_signature(STRIPE_SECRET, now, &body);
    let (status, got) = deliver(&app, &source, &[("stripe-signature", header)], &tampered).await;
    assert_eq!(status, 401, "{got}");
    assert_eq!(app.events_total().await, 0);
}

fn github_headers(event: &str, delivery: &str, body: &[u8], secret: &str) -> Headers {
    vec![
        ("x-github-event", event.to_owned()),
        ("x-github-delivery", delivery.to_owned()),
        (
            "x-hub-signature-256",
            format!("sha256={}", hmac_hex(secret, &[body])),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_release_becomes_an_event_and_a_ping_stores_nothing() {
    let app = helpers::spawn_app().await;
    let source = app
        .create_source(json!({"kind": "github", "name": "Hello-World", "secret": GITHUB_SECRET}))
        .await;
    let ping = fixture("github_ping.json");
    let (status, got) = deliver(
        &app,
        &source,
        &github_headers(
            "ping",
            "a1b2c3d4-0000-11ee-8000-000000000001",
            &ping,
            GITHUB_SECRET,
        ),
        &ping,
    )
    .await;
    assert_eq!((status, got["accepted"].clone()), (200, json!(0)), "{got}");

    let body = fixture("github_release_published.json");
    let delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    let wrong = github_headers("release", delivery, &body, "not the secret");
    let (status, got) = deliver(&app, &source, &wrong, &body).await;
    assert_eq!(status, 401, "{got}");
    let (status, got) = deliver(&app, &source, &wrong[..2], &body).await;
    assert_eq!(status, 401, "{got}");
    assert!(
        error_text(&got).contains("missing x-hub-signature-256"),
        "{got}"
    );
    assert_eq!(app.events_total().await, 0);

    let headers = github_headers("release", delivery, &body, GITHUB_SECRET);
    for _ in 0..2 {
        let (status, got) = deliver(&app, &source, &headers, &body).await;
        assert_eq!(status, 200, "{got}");
    }
    let events = app.all_events("").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "github.release.published");
    assert_eq!(events[0]["messageId"], delivery);
    assert_eq!(events[0]["properties"]["tag_name"], "0.0.1");
    assert_eq!(
        events[0]["properties"]["repository"],
        "Codertocat/Hello-World"
    );
}

/// Standard Webhooks headers for `body`, signed with the collector's own outbound signer.
fn standard_headers(secret: &str, id: &str, t: i64, body: &[u8]) -> Headers {
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", t.to_string()),
        (
            "webhook-signature",
            webhook::sign(secret, id, t, body).unwrap(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generic_delivery_is_mapped_by_its_json_paths() {
    let app = helpers::spawn_app().await;
    let source = app
        .create_source(
            json!({"kind": "generic", "name": "Shop", "event_path": "type",
               "user_path": "data.object.customer"}),
        )
        .await;
    let secret = source["signing_secret"]
        .as_str()
        .expect("generated secret shown once")
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let (_, list) = app.api(Method::GET, "/api/v1/inbound-sources", None).await;
    assert_eq!(list["sources"].as_array().unwrap().len(), 1, "{list}");
    assert!(
        !list.to_string().contains(&secret),
        "the secret is never listed: {list}"
    );

    let body = fixture("generic_order_paid.json");
    let now = Utc::now().timestamp();
    let stale = standard_headers(&secret, "msg_stale", now - 301, &body);
    let (status, got) = deliver(&app, &source, &stale, &body).await;
    assert_eq!(status, 401, "{got}");
    assert!(error_text(&got).contains("tolerance"), "{got}");
    let unsigned = &standard_headers(&secret, "msg_1", now, &body)[..2];
    let (status, got) = deliver(&app, &source, unsigned, &body).await;
    assert_eq!(status, 401, "{got}");
    assert!(
        error_text(&got).contains("missing webhook-signature"),
        "{got}"
    );
    let forged = standard_headers(&webhook::new_secret(), "msg_1", now, &body);
    let (status, got) = deliver(&app, &source, &forged, &body).await;
    assert_eq!(status, 401, "{got}");
    assert_eq!(app.events_total().await, 0);

    let headers = standard_headers(&secret, "msg_2Yk8n1", now, &body);
    for _ in 0..2 {
        let (status, got) = deliver(&app, &source, &headers, &body).await;
        assert_eq!(status, 200, "{got}");
    }
    let events = app.all_events("").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "order.paid");
    assert_eq!(events[0]["userId"], "cust_77");
    assert_eq!(events[0]["messageId"], "msg_2Yk8n1");
    assert_eq!(events[0]["properties"]["data"]["object"]["total"], 4999);

    // A payload without the mapped event name says which path was missing.
    let other = br#"{"kind": "x"}"#;
    let headers = standard_headers(&secret, "msg_3", now, other);
    let (status, got) = deliver(&app, &source, &headers, other).await;
    assert_eq!(status, 400, "{got}");
    assert!(error_text(&got).contains("event_path 'type'"), "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_source_gets_a_400_that_says_what_to_fix() {
    let app = helpers::spawn_app().await;
    let bad = [
        (json!({"kind": "paypal", "name": "x"}), "not a source kind"),
        (json!({"kind": "stripe", "name": "x"}), "needs 'secret'"),
        (
            json!({"kind": "generic", "name": "x"}),
            "needs 'event_path'",
        ),
        (
            json!({"kind": "generic", "name": "x", "event_path": "a..b"}),
            "not a json path",
        ),
        (
            json!({"kind": "generic", "name": "x", "event_path": (["a"; 9].join("."))}),
            "more than 8 segments",
        ),
        (
            json!({"kind": "generic", "name": "x", "event_path": "t", "secret": "whsec_!!"}),
            "base64",
        ),
        (
            json!({"kind": "github", "name": "x", "secret": "s", "event_path": "t"}),
            "generic sources",
        ),
    ];
    for (body, says) in bad {
        let (status, got) = app
            .api(Method::POST, "/api/v1/inbound-sources", Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}: {got}");
        assert!(error_text(&got).contains(says), "{body}: {got}");
    }
}

/// A GitHub source of the app's project, with secret "s".
async fn github_source(app: &TestApp, name: &str) -> Value {
    app.create_source(json!({"kind": "github", "name": name, "secret": "s"}))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_holds_at_most_20_sources() {
    let app = helpers::spawn_app().await;
    for i in 0..20 {
        github_source(&app, &format!("repo {i}")).await;
    }
    let (status, got) = app
        .api(
            Method::POST,
            "/api/v1/inbound-sources",
            Some(json!({"kind": "github", "name": "one too many", "secret": "s"})),
        )
        .await;
    assert_eq!(status, 400, "{got}");
    assert!(error_text(&got).contains("20 inbound sources"), "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_a_delivery_is_refused_before_anything_else() {
    let app = helpers::spawn_app().await;
    let source = github_source(&app, "repo").await;
    let big = vec![b' '; 1024 * 1024 + 1];
    let headers = github_headers("release", "d", &big, "s");
    let (status, got) = deliver(&app, &source, &headers, &big).await;
    assert_eq!(status, 413, "{got}");
}

/// Another project's secret key can neither see nor delete this project's source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_is_invisible_to_another_project() {
    let app = helpers::spawn_app().await;
    let source = github_source(&app, "repo").await;
    let store = app.store().await;
    let b = pulseline_collector::projects::create_project(&store, "B", "unlimited", Utc::now())
        .await
        .unwrap();
    store.close().await;
    let (_, listed) = app
        .api_as(&b.secret_key, Method::GET, "/api/v1/inbound-sources", None)
        .await;
    assert_eq!(listed["sources"], json!([]), "{listed}");
    let path = format!("/api/v1/inbound-sources/{}", source["id"]);
    let (status, _) = app.api_as(&b.secret_key, Method::DELETE, &path, None).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_source_stops_its_url_at_once() {
    let app = helpers::spawn_app().await;
    let source = github_source(&app, "repo").await;
    let path = format!("/api/v1/inbound-sources/{}", source["id"]);
    let (status, _) = app.api(Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let body = fixture("github_release_published.json");
    let headers = github_headers("release", "d", &body, "s");
    let (status, got) = deliver(&app, &source, &headers, &body).await;
    assert_eq!(status, 404, "{got}");
    assert!(error_text(&got).contains("no inbound source"), "{got}");
}

/// The list shows each source's latest delivery: when, the status answered, and why it was
/// refused, so a misconfigured secret is visible without reading logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_shows_each_sources_latest_delivery_and_its_refusal() {
    let app = helpers::spawn_app().await;
    let source = github_source(&app, "repo").await;
    let last = || async {
        let (_, list) = app.api(Method::GET, "/api/v1/inbound-sources", None).await;
        list["sources"][0]["last_delivery"].clone()
    };
    assert_eq!(last().await, Value::Null, "no delivery yet");
    let body = fixture("github_release_published.json");
    let wrong = github_headers("release", "d-1", &body, "not the secret");
    let (status, _) = deliver(&app, &source, &wrong, &body).await;
    assert_eq!(status, 401);
    let refused = last().await;
    assert_eq!(refused["status"], 401, "{refused}");
    assert!(
        error_text(&refused["error"]).contains("x-hub-signature-256"),
        "{refused}"
    );
    assert!(refused["at"].is_string(), "{refused}");
    let good = github_headers("release", "d-1", &body, "s");
    let (status, _) = deliver(&app, &source, &good, &body).await;
    assert_eq!(status, 200);
    let accepted = last().await;
    assert_eq!(
        (accepted["status"].clone(), accepted["error"].clone()),
        (json!(200), Value::Null),
        "{accepted}"
    );
}

mod api_docs;
mod quota;
