//! The metrics endpoint: on the operations listener, guarded by a token.

use super::*;

#[tokio::test]
async fn metrics_move_to_the_operations_listener_and_can_require_a_token() {
    let app = spawn(
        |c| {
            c.ops.ops_listen = Some("127.0.0.1:0".parse().unwrap());
            c.ops.metrics_token = Some("scrape-token-1".into());
        },
        Arc::new(SystemClock),
    )
    .await;
    let ops = app.ops_base.clone().expect("an operations listener");
    let get = |url: String, token: Option<&'static str>| {
        let http = app.http.clone();
        async move {
            let mut req = http.get(url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap())
        }
    };
    // Not on the public listener at all, with or without the token.
    assert_eq!(
        get(app.url("/metrics"), Some("scrape-token-1")).await.0,
        404
    );
    // Load balancers still probe the public listener.
    assert_eq!(get(app.url("/healthz"), None).await.0, 200);
    assert_eq!(get(app.url("/readyz"), None).await.0, 200);

    let (status, body) = get(format!("{ops}/metrics"), None).await;
    assert_eq!(status, 401);
    assert!(body.contains("PULSELINE_METRICS_TOKEN"), "{body}");
    assert_eq!(get(format!("{ops}/metrics"), Some("wrong")).await.0, 401);
    let (status, body) = get(format!("{ops}/metrics"), Some("scrape-token-1")).await;
    assert_eq!(status, 200);
    assert!(body.contains("pulseline_rate_limiter_keys"), "{body}");
    assert_eq!(get(format!("{ops}/healthz"), None).await.0, 200);
    assert_eq!(get(format!("{ops}/readyz"), None).await.0, 200);
    // The operations listener serves nothing else.
    assert_eq!(get(format!("{ops}/api/v1/stats"), None).await.0, 404);
}

#[tokio::test]
async fn a_metrics_token_guards_metrics_on_the_main_listener_too() {
    let app = spawn(
        |c| c.ops.metrics_token = Some("scrape-token-2".into()),
        Arc::new(SystemClock),
    )
    .await;
    let status = |token: Option<&'static str>| {
        let mut req = app.http.get(app.url("/metrics"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(None).await, 401);
    assert_eq!(status(Some("scrape-token-2")).await, 200);
}
