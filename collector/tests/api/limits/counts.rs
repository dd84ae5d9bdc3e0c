//! A project holds a bounded number of channels and categories.

use super::*;

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
