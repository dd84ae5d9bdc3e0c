//! The browser's context: browser, OS and device, crawlers flagged, the IP not stored
//! unless asked.

use super::*;

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
