//! Under load and failure: 503 with Retry-After, nothing acknowledged lost, group commits,
//! graceful shutdown.

use super::*;

#[tokio::test]
async fn overload_is_refused_with_503_and_retry_after() {
    let app = spawn_app_with(|c| c.limits.max_queued_events = 1).await;
    let batch = json!({"batch": [track("u", "e", "o-1"), track("u", "e", "o-2")]});
    let resp = app.post("/v1/batch", &batch).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    let (_, body) = body(resp).await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("PULSELINE_MAX_QUEUED_EVENTS")
    );
    assert_eq!(app.events_total().await, 0);
    // One event fits: the queue is bounded by events, and frees up after each commit.
    assert_eq!(
        app.post("/v1/batch", &json!({"batch": [track("u", "e", "o-3")]}))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.post("/v1/batch", &json!({"batch": [track("u", "e", "o-4")]}))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_failing_database_answers_503_and_loses_nothing_acknowledged() {
    let app = spawn_app().await;
    assert_eq!(
        app.post("/v1/batch", &json!({"batch": [track("u", "e", "before")]}))
            .await
            .status(),
        200
    );

    // Make every insert fail, as a full disk or a broken volume would.
    if helpers::on_postgres() {
        app.exec_sql("CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk I/O error'; END $$").await;
        app.exec_sql("CREATE TRIGGER fail_inserts BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION fail_insert()").await;
    } else {
        app.exec_sql("CREATE TRIGGER fail_inserts BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END").await;
    }
    let resp = app
        .post("/v1/batch", &json!({"batch": [track("u", "e", "during")]}))
        .await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let (_, body) = body(resp).await;
    assert_eq!(body["code"], "storage_unavailable");
    assert!(
        !body["message"].as_str().unwrap().contains("disk I/O"),
        "internals leaked: {body}"
    );

    if helpers::on_postgres() {
        app.exec_sql("DROP TRIGGER fail_inserts ON events").await;
    } else {
        app.exec_sql("DROP TRIGGER fail_inserts").await;
    }
    assert_eq!(
        app.post("/v1/batch", &json!({"batch": [track("u", "e", "during")]}))
            .await
            .status(),
        200
    );
    let ids: Vec<String> = app
        .all_events("")
        .await
        .iter()
        .map(|e| e["messageId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["during", "before"]);
}

#[tokio::test]
async fn concurrent_requests_are_group_committed_and_all_stored() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for t in 0..16 {
        let http = app.http.clone();
        let url = app.url("/v1/batch");
        let key = app.keys.write_key.clone();
        tasks.push(tokio::spawn(async move {
            for r in 0..10 {
                let batch: Vec<Value> = (0..50)
                    .map(|i| track("u", "e", &format!("c-{t}-{r}-{i}")))
                    .collect();
                let resp = http
                    .post(&url)
                    .basic_auth(&key, Some(""))
                    .json(&json!({"batch": batch}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(app.events_total().await, 16 * 10 * 50);
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_commits() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let http = app.http.clone();
        let url = app.url("/v1/batch");
        let key = app.keys.write_key.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = 0;
            for r in 0.. {
                let batch: Vec<Value> = (0..100)
                    .map(|i| track("u", "e", &format!("g-{t}-{r}-{i}")))
                    .collect();
                match http
                    .post(&url)
                    .basic_auth(&key, Some(""))
                    .json(&json!({"batch": batch}))
                    .send()
                    .await
                {
                    Ok(resp) if resp.status() == 200 => acked += 100,
                    _ => break,
                }
            }
            acked
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    app.shutdown.shutdown();
    let mut acked = 0;
    for t in tasks {
        acked += t.await.unwrap();
    }
    app.task.await.unwrap().unwrap();
    assert!(acked > 0);

    let stored = helpers::query_i64(&app.database_url, "SELECT COUNT(*) FROM events").await;
    assert!(stored >= acked, "acknowledged {acked}, stored {stored}");
}
