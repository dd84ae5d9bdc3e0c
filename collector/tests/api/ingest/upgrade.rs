//! PostgreSQL's ingest schema upgraded in place (migration 0038): a database an older collector
//! filled keeps dropping the message ids it stored, and ingest goes on.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgraded_database_still_drops_the_ids_it_stored_before() {
    if !helpers::on_postgres() {
        return; // migration 0038 is PostgreSQL's (SQLite dedupes on its events table)
    }
    let dir = tempfile::tempdir().unwrap();
    let url = helpers::fresh_database_url(dir.path()).await;
    helpers::migrate_to(&url, 35).await;
    // What an older collector left: the dedupe row of a message it stored for the project the
    // first start creates (project 1), and a day partition of events.
    let now = chrono::Utc::now().timestamp_millis();
    helpers::exec_sql(
        &url,
        &format!(
            "INSERT INTO event_ids (project_id, message_id, received_at) VALUES (1, 'old-1', {now})"
        ),
    )
    .await;
    let day = now - now.rem_euclid(86_400_000);
    helpers::exec_sql(
        &url,
        &format!(
            "CREATE TABLE events_p_old PARTITION OF events FOR VALUES FROM ({}) TO ({})",
            day - 86_400_000,
            day
        ),
    )
    .await;

    let app = spawn_app_with(|c| c.database_url = url.clone()).await;
    let projects: Vec<i64> = helpers::query_column(&url, "SELECT id FROM projects").await;
    assert_eq!(projects, [1], "the first start creates project 1");
    let batch =
        json!({"batch": [track("u1", "Signed Up", "old-1"), track("u1", "Signed Up", "new-1")]});
    let (status, resp) = body(app.post("/v1/batch", &batch).await).await;
    assert_eq!(status, 200, "{resp}");
    let stored: Vec<String> = app
        .all_events("")
        .await
        .iter()
        .map(|e| e["messageId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        stored,
        ["new-1"],
        "the id stored before the upgrade is still a duplicate"
    );
    assert_eq!(app.events_total().await, 1);

    // The dedupe rows are found for retention by a BRIN index; bodies compress with lz4 on
    // every events partition, the ones made before the upgrade included.
    let methods: Vec<String> = helpers::query_column(
        &url,
        "SELECT am.amname::TEXT FROM pg_class c JOIN pg_am am ON am.oid = c.relam
         WHERE c.relname = 'event_ids_by_received'",
    )
    .await;
    assert_eq!(methods, ["brin"]);
    let lz4: i64 = helpers::query_i64(
        &url,
        "SELECT COUNT(*) FROM pg_settings
         WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)",
    )
    .await;
    if lz4 == 0 {
        return; // a server built without lz4 keeps pglz (the migration says so)
    }
    let compression: Vec<String> = helpers::query_column(
        &url,
        "SELECT DISTINCT a.attcompression::TEXT FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid
         WHERE a.attname = 'body' AND (c.relname = 'events' OR c.relname LIKE 'events\\_%')",
    )
    .await;
    assert_eq!(
        compression,
        ["l"],
        "every events partition compresses bodies with lz4"
    );
}
