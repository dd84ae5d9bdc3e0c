//! Web analytics derived at ingest (docs/web-analytics.md), over a real socket on both
//! backends: User-Agent → browser/OS/device and bots, GeoIP from a database the test writes,
//! the client IP not stored by default, referrer → source, bots out of the analytics, and
//! Segment's browser-SDK paths and settings.

use crate::helpers;

use std::path::Path;
use std::sync::Arc;

use pulseline_collector::clock::SystemClock;
use pulseline_collector::config::Config;
use pulseline_collector::startup::Application;
use reqwest::StatusCode;
use serde_json::{Value, json};

const CHROME_ANDROID: &str = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";
const SAFARI_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

struct App {
    base: String,
    http: reqwest::Client,
    write_key: String,
    secret_key: String,
    project: i64,
    cookie: String,
    _dir: tempfile::TempDir,
}

async fn spawn(configure: impl FnOnce(&mut Config)) -> App {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests_with_database(helpers::fresh_database_url(dir.path()).await);
    configure(&mut config);
    let app = Application::build_with_clock(config, Arc::new(SystemClock))
        .await
        .unwrap();
    let admin = app.first_admin().unwrap();
    let keys = app.bootstrap_keys().unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    let login = http
        .post(format!("{base}/api/dash/session"))
        .json(&json!({"email": admin.email, "password": admin.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    App {
        base,
        http,
        write_key: keys.write_key,
        secret_key: keys.secret_key,
        project: keys.project_id,
        cookie,
        _dir: dir,
    }
}

impl App {
    /// A message as a browser sends it: `Origin`, its own User-Agent, `text/plain`.
    async fn send_as_browser(&self, path: &str, ua: &str, mut message: Value) -> StatusCode {
        message["writeKey"] = json!(self.write_key);
        self.http
            .post(format!("{}{path}", self.base))
            .header("origin", "https://shop.example")
            .header("user-agent", ua)
            .header("content-type", "text/plain;charset=UTF-8")
            .header("x-forwarded-for", "81.2.69.160")
            .body(message.to_string())
            .send()
            .await
            .unwrap()
            .status()
    }

    /// A message as a server SDK sends it: no `Origin`, the SDK's User-Agent.
    async fn send_as_server(&self, message: Value) -> StatusCode {
        self.http
            .post(format!("{}/v1/batch", self.base))
            .basic_auth(&self.write_key, Some(""))
            .header("user-agent", "pulseline-python/1.0 python-requests/2.32")
            .json(&json!({"batch": [message]}))
            .send()
            .await
            .unwrap()
            .status()
    }

    /// The stored message with this id.
    async fn stored(&self, message_id: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}/api/v1/events?limit=1000", self.base))
            .bearer_auth(&self.secret_key)
            .send()
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        let events = body["events"].as_array().unwrap();
        let event = events
            .iter()
            .find(|e| e["messageId"] == message_id)
            .unwrap_or_else(|| panic!("{message_id} not stored: {body}"));
        event.clone()
    }

    async fn dash(&self, path: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        resp.json().await.unwrap()
    }
}

fn page(id: &str, context: Value) -> Value {
    json!({"type": "page", "messageId": id, "anonymousId": format!("anon-{id}"),
           "name": "Home", "context": context})
}

fn trusting_loopback(config: &mut Config) {
    config.proxy.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
}

#[tokio::test]
async fn browser_requests_get_browser_os_and_device_and_no_ip() {
    let app = spawn(trusting_loopback).await;
    let ok = app
        .send_as_browser(
            "/v1/page",
            CHROME_ANDROID,
            page("p1", json!({"locale": "de-DE"})),
        )
        .await;
    assert_eq!(ok, StatusCode::OK);
    let ctx = &app.stored("p1").await["context"];
    assert_eq!(
        ctx["browser"],
        json!({"name": "Chrome Mobile", "version": "131.0.0"})
    );
    assert_eq!(ctx["os"], json!({"name": "Android", "version": "10"}));
    assert_eq!(ctx["device"], json!({"type": "mobile"}));
    assert_eq!(ctx["locale"], "de-DE", "the sender's context is kept");
    assert!(ctx.get("bot").is_none(), "{ctx}");
    assert!(
        ctx.get("ip").is_none(),
        "the raw IP is not stored by default: {ctx}"
    );
    assert!(
        ctx.get("location").is_none(),
        "no GeoIP database, no location: {ctx}"
    );

    // A server SDK's request: its own User-Agent says nothing about a visitor.
    let server = json!({"type": "track", "event": "Signed Up", "userId": "u1",
                        "messageId": "s1", "context": {"library": {"name": "pulseline-python"}}});
    assert_eq!(app.send_as_server(server.clone()).await, StatusCode::OK);
    let stored = app.stored("s1").await;
    assert_eq!(stored["context"], server["context"], "stored untouched");

    // A server SDK forwarding its visitor's User-Agent and IP: derived, and the IP dropped.
    let forwarded = json!({"type": "track", "event": "Viewed", "userId": "u2", "messageId": "s2",
        "context": {"userAgent": SAFARI_MAC, "ip": "198.51.100.4"}});
    assert_eq!(app.send_as_server(forwarded).await, StatusCode::OK);
    let ctx = &app.stored("s2").await["context"];
    assert_eq!(ctx["browser"]["name"], "Safari");
    assert_eq!(ctx["os"]["name"], "Mac OS X");
    assert_eq!(ctx["device"]["type"], "desktop");
    assert!(ctx.get("ip").is_none(), "{ctx}");
    assert_eq!(ctx["userAgent"], SAFARI_MAC);

    let settings = app.dash("/api/dash/web-analytics").await;
    assert_eq!(settings["geo"], false);
    assert_eq!(settings["store_ip"], false);
}

#[tokio::test]
async fn crawlers_and_headless_browsers_are_flagged() {
    let app = spawn(|_| {}).await;
    assert_eq!(
        app.send_as_browser("/v1/page", GOOGLEBOT, page("b1", json!({})))
            .await,
        StatusCode::OK
    );
    let headless = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36";
    let forwarded = json!({"type": "track", "event": "Viewed", "userId": "u", "messageId": "b2",
                           "context": {"userAgent": headless}});
    assert_eq!(app.send_as_server(forwarded).await, StatusCode::OK);
    for id in ["b1", "b2"] {
        let ctx = &app.stored(id).await["context"];
        assert_eq!(ctx["bot"], true, "{ctx}");
        assert_eq!(ctx["device"]["type"], "bot", "{ctx}");
    }
}

#[tokio::test]
async fn store_ip_keeps_the_client_address() {
    let app = spawn(|c| {
        trusting_loopback(c);
        c.web.store_ip = true;
    })
    .await;
    assert_eq!(
        app.send_as_browser("/v1/page", SAFARI_MAC, page("ip1", json!({})))
            .await,
        StatusCode::OK
    );
    assert_eq!(app.stored("ip1").await["context"]["ip"], "81.2.69.160");
    assert_eq!(app.dash("/api/dash/web-analytics").await["store_ip"], true);
}

/// A MaxMind-format City database of two networks, written with a MaxMind DB writer.
fn write_geo_db(path: &Path) {
    use maxminddb_writer::Database;
    use maxminddb_writer::metadata::IpVersion;
    use maxminddb_writer::paths::IpAddrWithMask;
    let mut db = Database::default();
    db.metadata.ip_version = IpVersion::V6;
    db.metadata.database_type = "Pulseline-Test-City".to_owned();
    db.metadata.languages = vec!["en".to_owned()];
    db.metadata.binary_format_major_version = 2;
    let london = db
        .insert_value(json!({
            "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
            "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}],
            "city": {"names": {"en": "London"}},
        }))
        .unwrap();
    let berlin = db
        .insert_value(json!({
            "country": {"iso_code": "DE"},
            "subdivisions": [{"iso_code": "BE", "names": {"en": "Land Berlin"}}],
            "city": {"names": {"en": "Berlin"}},
        }))
        .unwrap();
    // IPv4 networks live at ::a.b.c.d/96+n in an IPv6 database.
    db.insert_node("::81.2.69.0/120".parse::<IpAddrWithMask>().unwrap(), london);
    db.insert_node("::5.9.0.0/112".parse::<IpAddrWithMask>().unwrap(), berlin);
    let file = std::fs::File::create(path).unwrap();
    db.write_to(std::io::BufWriter::new(file)).unwrap();
}

#[tokio::test]
async fn geoip_sets_the_location_and_the_ip_is_still_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("test-city.mmdb");
    write_geo_db(&db);
    let app = spawn(|c| {
        trusting_loopback(c);
        c.web.geoip_db = Some(db.clone());
    })
    .await;
    assert_eq!(
        app.send_as_browser("/v1/page", SAFARI_MAC, page("g1", json!({})))
            .await,
        StatusCode::OK
    );
    let ctx = &app.stored("g1").await["context"];
    assert_eq!(
        ctx["location"],
        json!({"country": "GB", "region": "England", "city": "London"})
    );
    assert!(ctx.get("ip").is_none(), "{ctx}");

    // A server SDK forwarding its visitor's address.
    let forwarded = json!({"type": "track", "event": "Viewed", "userId": "u", "messageId": "g2",
                           "context": {"ip": "5.9.1.2"}});
    assert_eq!(app.send_as_server(forwarded).await, StatusCode::OK);
    let ctx = &app.stored("g2").await["context"];
    assert_eq!(ctx["location"]["country"], "DE");
    assert_eq!(ctx["location"]["city"], "Berlin");
    assert!(ctx.get("ip").is_none(), "{ctx}");

    // An address the database does not hold: no location.
    let unknown = json!({"type": "track", "event": "Viewed", "userId": "u", "messageId": "g3",
                         "context": {"ip": "192.0.2.1"}});
    assert_eq!(app.send_as_server(unknown).await, StatusCode::OK);
    assert!(app.stored("g3").await["context"].get("location").is_none());

    let settings = app.dash("/api/dash/web-analytics").await;
    assert_eq!(settings["geo"], true);
    assert_eq!(settings["geo_database"], "Pulseline-Test-City");
}

#[tokio::test]
async fn a_bad_geoip_database_stops_startup_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("not-a-db.mmdb");
    std::fs::write(&bad, b"hello").unwrap();
    let mut config = Config::for_tests(dir.path());
    config.web.geoip_db = Some(bad);
    let err = Application::build(config).await.unwrap_err().to_string();
    assert!(err.contains("PULSELINE_GEOIP_DB"), "{err}");
}

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

#[tokio::test]
async fn segment_short_paths_and_settings() {
    let app = spawn(|_| {}).await;
    let paths = [
        (
            "/v1/p",
            json!({"type": "page", "messageId": "sp", "anonymousId": "a", "name": "Home"}),
        ),
        (
            "/v1/i",
            json!({"type": "identify", "messageId": "si", "userId": "u", "traits": {"plan": "pro"}}),
        ),
        (
            "/v1/t",
            json!({"type": "track", "messageId": "st", "userId": "u", "event": "Clicked"}),
        ),
        (
            "/v1/g",
            json!({"type": "group", "messageId": "sg", "userId": "u", "groupId": "g"}),
        ),
        (
            "/v1/a",
            json!({"type": "alias", "messageId": "sa", "userId": "u", "previousId": "a"}),
        ),
        (
            "/v1/s",
            json!({"type": "screen", "messageId": "ss", "userId": "u", "name": "Main"}),
        ),
    ];
    for (path, message) in &paths {
        assert_eq!(
            app.send_as_browser(path, SAFARI_MAC, message.clone()).await,
            StatusCode::OK,
            "{path}"
        );
    }
    let batch =
        json!({"batch": [{"type": "track", "messageId": "sb", "userId": "u", "event": "B"}]});
    assert_eq!(
        app.send_as_browser("/v1/b", SAFARI_MAC, batch).await,
        StatusCode::OK
    );
    for id in ["sp", "si", "st", "sg", "sa", "ss", "sb"] {
        assert_eq!(
            app.stored(id).await["context"]["browser"]["name"],
            "Safari",
            "{id}"
        );
    }
    // A preflight, for pages that post with other headers than a simple request allows.
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/v1/t", app.base))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    // A type sent to another type's short path says where it belongs.
    let resp = app
        .http
        .post(format!("{}/v1/p", app.base))
        .header("content-type", "text/plain")
        .body(
            json!({"type": "track", "event": "x", "userId": "u", "writeKey": app.write_key})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let error = resp.text().await.unwrap();
    assert!(
        error.contains("send track messages to /v1/track"),
        "{error}"
    );

    let resp = app
        .http
        .get(format!(
            "{}/v1/projects/{}/settings",
            app.base, app.write_key
        ))
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    let settings: Value = resp.json().await.unwrap();
    let host = app.base.trim_start_matches("http://");
    assert_eq!(
        settings["integrations"]["Segment.io"]["apiHost"],
        format!("{host}/v1")
    );
    assert_eq!(settings["integrations"]["Segment.io"]["protocol"], "http");
    assert_eq!(
        settings["integrations"]["Segment.io"]["apiKey"],
        app.write_key
    );

    let unknown = app
        .http
        .get(format!("{}/v1/projects/wk_nope/settings", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let secret = app
        .http
        .get(format!(
            "{}/v1/projects/{}/settings",
            app.base, app.secret_key
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(secret.status(), StatusCode::FORBIDDEN);
}
