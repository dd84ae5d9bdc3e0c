//! Client addresses behind proxies: trusted proxies only, IPv6 per /64, RFC 7239.

use super::*;

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
