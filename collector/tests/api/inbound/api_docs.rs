//! `/docs/api`: the embedded viewer and the description it renders (issue 24).

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_docs_page_serves_its_viewer_and_the_ingest_protocol() {
    let app = helpers::spawn_app().await;
    let get = |path: &str| app.http.get(app.url(path)).send();

    let page = get("/docs/api").await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css", "init.js"] {
        assert!(html.contains(&format!("/docs/api/{asset}")), "{html}");
        let resp = get(&format!("/docs/api/{asset}")).await.unwrap();
        assert_eq!(resp.status(), 200, "{asset}");
    }
    let bundle = get("/docs/api/swagger-ui-bundle.js").await.unwrap();
    assert!(
        bundle.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(bundle.text().await.unwrap().contains("SwaggerUIBundle"));
    let init = get("/docs/api/init.js")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/openapi.json"), "{init}");
    assert_eq!(get("/docs/api/../Cargo.toml").await.unwrap().status(), 404);
    assert_eq!(get("/docs/api/nothing.js").await.unwrap().status(), 404);

    let spec: Value = get("/openapi.json").await.unwrap().json().await.unwrap();
    let description = spec["info"]["description"].as_str().unwrap();
    for needle in ["POST /v1/batch", "curl -u", "messageId", "Retry-After"] {
        assert!(
            description.contains(needle),
            "{needle} missing: {description}"
        );
    }
    assert!(spec["components"]["schemas"]["BatchDoc"]["example"]["batch"].is_array());
    for path in [
        "/v1/inbound/{token}",
        "/api/v1/inbound-sources",
        "/api/dash/projects/{project}/inbound-sources",
    ] {
        assert!(spec["paths"].get(path).is_some(), "{path} not described");
    }
}
