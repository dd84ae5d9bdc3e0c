//! GET /sdk/v1/{file}: the built browser SDK served by the collector, with the content types,
//! caching and CORS a page on another origin needs, and a 404 that says how to build it.

mod common;

use common::spawn_app_with;

fn sdk_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("loader.js"), "window.loader=1").unwrap();
    std::fs::write(dir.path().join("pulseline.js"), "export const v=1").unwrap();
    std::fs::write(dir.path().join("pulseline_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(dir.path().join("web-vitals.js"), "export const w=1").unwrap();
    dir
}

#[tokio::test]
async fn serves_the_sdk_files_with_types_caching_and_cors() {
    let files = sdk_dir();
    let path = files.path().to_owned();
    let app = spawn_app_with(move |c| c.sdk_dir = Some(path)).await;
    for (file, content_type, body) in [
        (
            "loader.js",
            "text/javascript; charset=utf-8",
            &b"window.loader=1"[..],
        ),
        (
            "pulseline.js",
            "text/javascript; charset=utf-8",
            &b"export const v=1"[..],
        ),
        (
            "pulseline_bg.wasm",
            "application/wasm",
            &b"\0asm\x01\0\0\0"[..],
        ),
        (
            "web-vitals.js",
            "text/javascript; charset=utf-8",
            &b"export const w=1"[..],
        ),
    ] {
        let url = format!("{}/sdk/v1/{file}", app.base);
        let response = app
            .http
            .get(&url)
            .header("Origin", "http://127.0.0.1:9")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{file}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], content_type, "{file}");
        assert_eq!(headers["cache-control"], "public, max-age=300");
        assert_eq!(headers["access-control-allow-origin"], "*");
        let etag = headers["etag"].to_str().unwrap().to_owned();
        assert_eq!(&response.bytes().await.unwrap()[..], body);

        let again = app
            .http
            .get(&url)
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{file} unchanged");
    }
    // A changed file gets a new ETag, so a revalidating browser takes the new SDK.
    let url = format!("{}/sdk/v1/loader.js", app.base);
    let first = app.http.get(&url).send().await.unwrap().headers()["etag"].clone();
    std::fs::write(files.path().join("loader.js"), "window.loader=2").unwrap();
    let second = app.http.get(&url).send().await.unwrap();
    assert_ne!(second.headers()["etag"], first);
    assert_eq!(second.text().await.unwrap(), "window.loader=2");
}

#[tokio::test]
async fn unknown_files_and_an_unbuilt_sdk_answer_404_saying_what_to_do() {
    let empty = tempfile::tempdir().unwrap();
    let path = empty.path().to_owned();
    let app = spawn_app_with(move |c| c.sdk_dir = Some(path)).await;

    let missing = app
        .http
        .get(format!("{}/sdk/v1/pulseline_bg.wasm", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("sdk-wasm/build.sh"), "{message}");
    assert!(message.contains("PULSELINE_SDK_DIR"), "{message}");

    let unknown = app
        .http
        .get(format!("{}/sdk/v1/../../etc/passwd", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let other = app
        .http
        .get(format!("{}/sdk/v1/secrets.txt", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let body: serde_json::Value = other.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("loader.js"));
}

/// The browser SDK honours `Retry-After` on 429/503 only if CORS lets the page read it.
#[tokio::test]
async fn ingest_exposes_retry_after_to_browser_pages() {
    let app = common::spawn_app().await;
    let response = app
        .http
        .post(format!("{}/v1/batch", app.base))
        .header("Origin", "http://127.0.0.1:9")
        .header("Content-Type", "text/plain;charset=UTF-8")
        .body(format!(
            r#"{{"writeKey":"{}","batch":[{{"type":"track","event":"e","anonymousId":"a"}}]}}"#,
            app.keys.write_key
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("retry-after"), "{exposed}");
}
