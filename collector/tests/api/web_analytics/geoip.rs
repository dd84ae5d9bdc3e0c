//! GeoIP: the location set from a local database, and a bad database stops the start.

use super::*;

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
