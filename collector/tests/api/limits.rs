//! Bounded per-caller state and the network edge, over real HTTP on both backends: login rate
//! limits per real client behind trusted proxies (and only behind them), the audit log's
//! address, rate limiters that forget idle keys, and the operations listener and token.

use crate::helpers;
use crate::helpers::standins;

use std::sync::Arc;

use chrono::Utc;
use pulseline_collector::clock::{Clock, FakeClock, SystemClock};
use pulseline_collector::config::Config;
use pulseline_collector::proxy::ForwardedHeader;
use pulseline_collector::startup::Application;
use reqwest::StatusCode;
use serde_json::{Value, json};

struct App {
    base: String,
    ops_base: Option<String>,
    http: reqwest::Client,
    admin_email: String,
    admin_password: String,
    secret_key: String,
    database_url: String,
    _dir: tempfile::TempDir,
}

async fn spawn(configure: impl FnOnce(&mut Config), clock: Arc<dyn Clock>) -> App {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests_with_database(helpers::fresh_database_url(dir.path()).await);
    configure(&mut config);
    let database_url = config.database_url.clone();
    let app = Application::build_with_clock(config, clock).await.unwrap();
    let admin = app.first_admin().unwrap();
    let keys = app.bootstrap_keys().unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let ops_base = app.ops_port().map(|p| format!("http://127.0.0.1:{p}"));
    tokio::spawn(app.run_until_stopped());
    App {
        base,
        ops_base,
        http: reqwest::Client::new(),
        admin_email: admin.email,
        admin_password: admin.password,
        secret_key: keys.secret_key,
        database_url,
        _dir: dir,
    }
}

fn trusting_loopback(c: &mut Config) {
    c.proxy.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
}

impl App {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A login attempt carrying `header` (e.g. X-Forwarded-For), as a proxy would send it.
    async fn login(&self, email: &str, password: &str, header: Option<(&str, &str)>) -> StatusCode {
        self.login_body(email, password, header).await.0
    }

    async fn login_body(
        &self,
        email: &str,
        password: &str,
        header: Option<(&str, &str)>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(self.url("/api/dash/session"))
            .json(&json!({"email": email, "password": password}));
        if let Some((k, v)) = header {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn login_audit_ips(&self) -> Vec<String> {
        helpers::query_column(
            &self.database_url,
            "SELECT ip FROM audit_log WHERE action = 'user.login' ORDER BY id",
        )
        .await
    }

    /// `pulseline_rate_limiter_keys{limiter=...}` from /metrics.
    async fn limiter_keys(&self, limiter: &str) -> u64 {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let prefix = format!("pulseline_rate_limiter_keys{{limiter=\"{limiter}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix}in /metrics:\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }
}

const XFF: &str = "x-forwarded-for";

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_login_limit_and_audit_address() {
    let app = spawn(
        |c| {
            trusting_loopback(c);
            c.dashboard.login_attempts_per_minute = 2;
        },
        Arc::new(SystemClock),
    )
    .await;
    let attacker = Some((XFF, "203.0.113.1"));
    for n in 0..2 {
        let status = app
            .login(
                &format!("nobody{n}@example.com"),
                "wrong password",
                attacker,
            )
            .await;
        assert_eq!(status, 401);
    }
    let (status, body) = app
        .login_body("nobody9@example.com", "wrong password", attacker)
        .await;
    assert_eq!(status, 429, "{body}");
    // What the client writes left of the proxy's entry proves nothing: still the same client.
    let spoofed = Some((XFF, "198.51.100.77, 203.0.113.1"));
    assert_eq!(
        app.login("nobody8@example.com", "wrong password", spoofed)
            .await,
        429
    );

    // Another client behind the same proxy is not locked out, and is audited by its address.
    let (status, body) = app
        .login_body(
            &app.admin_email,
            &app.admin_password,
            Some((XFF, "192.0.2.44")),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.login_audit_ips().await, ["192.0.2.44"]);

    // A server-side tool with the secret key, through the same proxy, is audited the same way.
    let resp = app
        .http
        .post(app.url("/api/v1/channels"))
        .bearer_auth(&app.secret_key)
        .header(XFF, "192.0.2.55")
        .json(&json!({"name": "ops", "kind": "slack", "url": "http://127.0.0.1:9/hook"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let ips: Vec<String> = helpers::query_column(
        &app.database_url,
        "SELECT ip FROM audit_log WHERE action = 'channel.created'",
    )
    .await;
    assert_eq!(ips, ["192.0.2.55"]);
}

#[tokio::test]
async fn ipv6_clients_are_limited_per_64_prefix() {
    let app = spawn(
        |c| {
            trusting_loopback(c);
            c.dashboard.login_attempts_per_minute = 2;
        },
        Arc::new(SystemClock),
    )
    .await;
    // One host with a /64 rotates through its addresses: still one client.
    for (n, ip) in ["2001:db8:1:2::1", "2001:db8:1:2::2"].iter().enumerate() {
        let status = app
            .login(
                &format!("v{n}@example.com"),
                "wrong password",
                Some((XFF, ip)),
            )
            .await;
        assert_eq!(status, 401);
    }
    let status = app
        .login(
            "v3@example.com",
            "wrong password",
            Some((XFF, "2001:db8:1:2:ffff::9")),
        )
        .await;
    assert_eq!(status, 429);
    // The neighbouring /64 is someone else.
    let status = app
        .login(
            &app.admin_email,
            &app.admin_password,
            Some((XFF, "2001:db8:1:3::1")),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.login_audit_ips().await, ["2001:db8:1:3::1"]);
}

#[tokio::test]
async fn forwarding_headers_are_ignored_unless_the_peer_is_a_trusted_proxy() {
    let app = spawn(
        |c| c.dashboard.login_attempts_per_minute = 2,
        Arc::new(SystemClock),
    )
    .await;
    // A direct client cannot pick a fresh address per attempt to escape the limit.
    for (n, ip) in ["203.0.113.1", "203.0.113.2"].iter().enumerate() {
        let status = app
            .login(
                &format!("x{n}@example.com"),
                "wrong password",
                Some((XFF, ip)),
            )
            .await;
        assert_eq!(status, 401);
    }
    let status = app
        .login(
            "x3@example.com",
            "wrong password",
            Some((XFF, "203.0.113.3")),
        )
        .await;
    assert_eq!(status, 429);

    let app = spawn(|_| {}, Arc::new(SystemClock)).await;
    let status = app
        .login(
            &app.admin_email,
            &app.admin_password,
            Some(("forwarded", "for=203.0.113.9")),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.login_audit_ips().await, ["127.0.0.1"]);
}

#[tokio::test]
async fn the_rfc_7239_forwarded_header_when_configured() {
    let app = spawn(
        |c| {
            trusting_loopback(c);
            c.proxy.forwarded_header = ForwardedHeader::Forwarded;
        },
        Arc::new(SystemClock),
    )
    .await;
    let forwarded = "for=198.51.100.1, for=\"[2001:db8:cafe::17]:4711\";proto=https";
    let status = app
        .login(
            &app.admin_email,
            &app.admin_password,
            Some(("forwarded", forwarded)),
        )
        .await;
    assert_eq!(status, 200);
    // X-Forwarded-For is someone else's header in this mode: passed through, not believed.
    let status = app
        .login(
            &app.admin_email,
            &app.admin_password,
            Some((XFF, "198.51.100.2")),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        app.login_audit_ips().await,
        ["2001:db8:cafe::17", "127.0.0.1"]
    );
}

#[tokio::test]
async fn an_overlong_email_is_refused_before_it_costs_a_limiter_key() {
    let app = spawn(|_| {}, Arc::new(SystemClock)).await;
    let huge = format!("{}@example.com", "a".repeat(100_000));
    let (status, body) = app.login_body(&huge, "wrong password", None).await;
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("254"), "{message}");
    assert!(message.len() < 300, "the address is not echoed back");
    assert_eq!(app.limiter_keys("login").await, 0);
}

#[tokio::test]
async fn the_login_limiter_forgets_clients_once_their_limit_has_refilled() {
    let clock = Arc::new(FakeClock::new(Utc::now()));
    let app = spawn(
        |c| {
            trusting_loopback(c);
            c.dashboard.login_attempts_per_minute = 2;
        },
        clock.clone(),
    )
    .await;
    // Each attempt from a new address leaves one key per address (the e-mail's is shared).
    for n in 0..30 {
        let ip = format!("203.0.113.{n}");
        let status = app
            .login("victim@example.com", "wrong password", Some((XFF, &ip)))
            .await;
        assert!(matches!(status.as_u16(), 401 | 429), "{status}");
    }
    assert_eq!(app.limiter_keys("login").await, 31);

    clock.advance(chrono::Duration::minutes(2));
    let status = app
        .login(
            &app.admin_email,
            &app.admin_password,
            Some((XFF, "192.0.2.1")),
        )
        .await;
    assert_eq!(status, 200);
    // The first check after a refill time prunes: only this login's two keys remain.
    assert_eq!(app.limiter_keys("login").await, 2);
    // The fake clock drives the limit itself too: the e-mail's allowance is back.
    assert_eq!(
        app.login(
            "victim@example.com",
            "wrong password",
            Some((XFF, "192.0.2.2"))
        )
        .await,
        401
    );
}

#[tokio::test]
async fn the_ingest_limiter_forgets_idle_write_keys() {
    let clock = Arc::new(FakeClock::new(Utc::now()));
    let app = spawn(
        |c| {
            c.rate_limit_events_per_sec = 1_000;
            c.rate_limit_burst = 2_500;
        },
        clock.clone(),
    )
    .await;
    let store = pulseline_collector::store::Store::open(&app.database_url, Default::default())
        .await
        .unwrap();
    let mut keys = Vec::new();
    for n in 0..5 {
        let p = pulseline_collector::projects::create_project(
            &store,
            &format!("p{n}"),
            "unlimited",
            clock.now(),
        )
        .await
        .unwrap();
        keys.push(p.write_key);
    }
    let send = |key: String| {
        let app = &app;
        async move {
            let resp = app
                .http
                .post(app.url("/v1/batch"))
                .basic_auth(key, Some(""))
                .json(
                    &json!({"batch": [helpers::track("u", "e", &uuid::Uuid::now_v7().to_string())]}),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
    };
    for key in &keys {
        send(key.clone()).await;
    }
    assert_eq!(app.limiter_keys("ingest").await, 5);
    clock.advance(chrono::Duration::seconds(10));
    send(keys[0].clone()).await;
    assert_eq!(app.limiter_keys("ingest").await, 1);
}

#[tokio::test]
async fn webhook_pacing_forgets_urls_it_no_longer_paces() {
    let slack = standins::slack().await;
    // One request per millisecond per URL: a URL used once is fresh again almost at once.
    let app = spawn(
        |c| {
            c.delivery.pace_burst = 1;
            c.delivery.pace_period_ms = 1;
        },
        Arc::new(SystemClock),
    )
    .await;
    let call = |method: reqwest::Method, path: String, body: Option<Value>| {
        let app = &app;
        async move {
            let mut req = app
                .http
                .request(method, app.url(&path))
                .bearer_auth(&app.secret_key);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Channels whose URL changes (a query string per channel): each URL is a pacing key.
    for n in 0..12 {
        let (status, channel) = call(
            reqwest::Method::POST,
            "/api/v1/channels".into(),
            Some(json!({"name": format!("s{n}"), "kind": "slack",
                        "url": format!("{}?n={n}", slack.url)})),
        )
        .await;
        assert_eq!(status, 201, "{channel}");
        let (status, result) = call(
            reqwest::Method::POST,
            format!("/api/v1/channels/{}/test", channel["id"]),
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(result["delivered"], true, "{result}");
    }
    let held = app.limiter_keys("webhook_pace").await;
    assert!(
        held <= 2,
        "{held} URLs still held after 12 sends to distinct URLs"
    );
}

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

#[test]
fn a_malformed_trusted_proxy_list_stops_the_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pulseline-collector"))
        .arg("serve")
        .env(
            "PULSELINE_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("p.db").display()),
        )
        .env("PULSELINE_LISTEN", "127.0.0.1:0")
        .env("PULSELINE_TRUSTED_PROXIES", "10.0.0.0/8, 10.0.0.0/33")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("'10.0.0.0/33' is not an address or CIDR range")
            && stderr.contains("PULSELINE_TRUSTED_PROXIES"),
        "{stderr}"
    );
}

/// What one project can hold in alerting is bounded, whoever holds its secret key.
#[tokio::test]
async fn a_project_holds_a_bounded_number_of_channels_and_categories() {
    use pulseline_collector::routes::categories::MAX_CATEGORIES_PER_PROJECT;
    use pulseline_collector::routes::channels::MAX_CHANNELS_PER_PROJECT;
    let app = spawn(|_| {}, Arc::new(SystemClock)).await;
    let create = |path: &'static str, body: Value| {
        app.http
            .post(app.url(path))
            .bearer_auth(&app.secret_key)
            .json(&body)
            .send()
    };
    let channel = json!({"name": "ops", "kind": "email", "email": "ops@pulseline.test"});
    let mut channel_id = Value::Null;
    for _ in 0..MAX_CHANNELS_PER_PROJECT {
        let resp = create("/api/v1/channels", channel.clone()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        channel_id = resp.json::<Value>().await.unwrap()["id"].clone();
    }
    let resp = create("/api/v1/channels", channel).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("MAX_CHANNELS_PER_PROJECT"),
        "{body}"
    );
    let category =
        json!({"name": "c", "pattern": "signup", "colour": "#123456", "channel_id": channel_id});
    for _ in 0..MAX_CATEGORIES_PER_PROJECT {
        let resp = create("/api/v1/categories", category.clone())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let resp = create("/api/v1/categories", category).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("MAX_CATEGORIES_PER_PROJECT"),
        "{body}"
    );
}
