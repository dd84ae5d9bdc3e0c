//! GET /sdk/v1/...: the browser SDK embedded in the collector, with the content types,
//! precompressed encodings, caching and CORS a page on another origin needs, and a 404 that
//! says how to build it.

use crate::helpers;

use crate::helpers::{spawn_app, spawn_app_with};

/// A client that sends exactly the Accept-Encoding a test gives and decodes nothing itself.
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_gzip()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get(url: &str, accept_encoding: Option<&str>) -> reqwest::Response {
    let mut request = raw_client().get(url).header("Origin", "http://127.0.0.1:9");
    if let Some(value) = accept_encoding {
        request = request.header("Accept-Encoding", value);
    }
    request.send().await.unwrap()
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli_decompressor::BrotliDecompress(&mut &bytes[..], &mut out).expect("valid brotli");
    out
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut out)
        .expect("valid gzip");
    out
}

/// The path of pulseline.js that the served loader loads: `/sdk/v1/<version>/pulseline.js`.
async fn versioned_entry(base: &str) -> String {
    let loader = get(&format!("{base}/sdk/v1/loader.js"), None).await;
    assert_eq!(loader.status(), 200);
    let text = loader.text().await.unwrap();
    let start = text
        .find("/sdk/v1/")
        .expect("the loader names the SDK's URL");
    let path = &text[start..];
    let path = &path[..path.find("pulseline.js").expect("it loads pulseline.js") + 12];
    let version = path
        .trim_start_matches("/sdk/v1/")
        .trim_end_matches("/pulseline.js");
    assert_eq!(version.len(), 16, "a versioned URL, not {path}");
    assert!(version.bytes().all(|b| b.is_ascii_hexdigit()), "{path}");
    path.to_owned()
}

const SDK: [(&str, &str); 5] = [
    ("loader.js", "text/javascript; charset=utf-8"),
    ("pulseline.js", "text/javascript; charset=utf-8"),
    ("pulseline_bg.wasm", "application/wasm"),
    ("web-vitals.js", "text/javascript; charset=utf-8"),
    ("pulseline.d.ts", "application/typescript; charset=utf-8"),
];

/// No PULSELINE_SDK_DIR and no sdk-wasm/dist needed at run time: the binary carries the SDK.
#[tokio::test]
async fn every_binary_serves_the_sdk_it_embeds_compressed_and_versioned() {
    let app = spawn_app().await;
    let entry = versioned_entry(&app.base).await;
    let version_dir = entry.trim_end_matches("pulseline.js");
    for (file, content_type) in SDK {
        let url = format!("{}{version_dir}{file}", app.base);
        let plain = get(&url, None).await;
        assert_eq!(plain.status(), 200, "{file}");
        let headers = plain.headers().clone();
        assert_eq!(headers["content-type"], content_type, "{file}");
        assert_eq!(
            headers["cache-control"], "public, max-age=31536000, immutable",
            "{file}: a versioned URL never changes content"
        );
        assert_eq!(headers["access-control-allow-origin"], "*");
        assert_eq!(headers["vary"], "accept-encoding");
        assert!(headers.get("content-encoding").is_none(), "{file}");
        let identity = plain.bytes().await.unwrap();
        assert!(identity.len() > 100, "{file} is the built SDK");

        let br = get(&url, Some("gzip, deflate, br, zstd")).await;
        assert_eq!(br.headers()["content-encoding"], "br", "{file}");
        let br_etag = br.headers()["etag"].clone();
        let br_body = br.bytes().await.unwrap();
        assert!(
            br_body.len() < identity.len(),
            "{file} is smaller in brotli"
        );
        assert_eq!(
            unbrotli(&br_body),
            identity,
            "{file}: brotli of the same bytes"
        );

        let gz = get(&url, Some("gzip")).await;
        assert_eq!(gz.headers()["content-encoding"], "gzip", "{file}");
        assert_ne!(gz.headers()["etag"], br_etag, "one ETag per encoding");
        let gz_body = gz.bytes().await.unwrap();
        assert!(gz_body.len() < identity.len(), "{file} is smaller in gzip");
        assert_eq!(gunzip(&gz_body), identity, "{file}: gzip of the same bytes");

        // A client that refuses brotli gets gzip; one that refuses both gets the file as is.
        let no_br = get(&url, Some("br;q=0, gzip;q=0.5")).await;
        assert_eq!(no_br.headers()["content-encoding"], "gzip", "{file}");
        let none = get(&url, Some("identity")).await;
        assert!(none.headers().get("content-encoding").is_none(), "{file}");
        assert_eq!(none.bytes().await.unwrap(), identity);

        let revalidated = raw_client()
            .get(&url)
            .header("Accept-Encoding", "br")
            .header("If-None-Match", &br_etag)
            .send()
            .await
            .unwrap();
        assert_eq!(revalidated.status(), 304, "{file} unchanged");
    }
}

#[tokio::test]
async fn the_loader_is_short_lived_and_revalidates_by_etag() {
    let app = spawn_app().await;
    let url = format!("{}/sdk/v1/loader.js", app.base);
    let loader = get(&url, Some("br")).await;
    assert_eq!(loader.status(), 200);
    assert_eq!(loader.headers()["cache-control"], "public, max-age=300");
    assert_eq!(loader.headers()["content-encoding"], "br");
    let etag = loader.headers()["etag"].to_str().unwrap().to_owned();
    let text = String::from_utf8(unbrotli(&loader.bytes().await.unwrap())).unwrap();
    assert!(
        text.contains("data-write-key"),
        "the loader snippet: {text}"
    );

    let again = raw_client()
        .get(&url)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["cache-control"], "public, max-age=300");
    // The unversioned module URL (older inline snippets) is short-lived too.
    let module = get(&format!("{}/sdk/v1/pulseline.js", app.base), None).await;
    assert_eq!(module.status(), 200);
    assert_eq!(module.headers()["cache-control"], "public, max-age=300");
}

/// A page may hold the previous deploy's loader for up to 300 s: its module request is sent to
/// the current version, and the other files of an unknown version are refused plainly.
#[tokio::test]
async fn another_version_of_the_module_redirects_to_the_current_one() {
    let app = spawn_app().await;
    let entry = versioned_entry(&app.base).await;
    let old = get(
        &format!("{}/sdk/v1/0123456789abcdef/pulseline.js", app.base),
        None,
    )
    .await;
    assert_eq!(old.status(), 302);
    assert_eq!(old.headers()["location"], entry.as_str());
    assert_eq!(old.headers()["access-control-allow-origin"], "*");

    let wasm = get(
        &format!("{}/sdk/v1/0123456789abcdef/pulseline_bg.wasm", app.base),
        None,
    )
    .await;
    assert_eq!(wasm.status(), 404);
    let body: serde_json::Value = wasm.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    let current = entry.split('/').nth(3).unwrap();
    assert!(
        message.contains(current),
        "names the version served: {message}"
    );
    for path in [
        "/sdk/v1/not-a-version/pulseline.js",
        "/sdk/v1/0123456789abcdef/secrets.txt",
    ] {
        let response = get(&format!("{}{path}", app.base), None).await;
        assert_eq!(response.status(), 404, "{path}");
    }
}

/// PULSELINE_SDK_DIR: a build of the SDK served instead of the embedded one, with its
/// precompressed files unless they are older than the file (a stale build's).
#[tokio::test]
async fn a_configured_directory_replaces_the_embedded_sdk() {
    let dir = tempfile::tempdir().unwrap();
    for (file, _) in SDK {
        std::fs::write(
            dir.path().join(file),
            format!("// {file} from the directory"),
        )
        .unwrap();
    }
    let gz = |text: &str| {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    };
    std::fs::write(
        dir.path().join("web-vitals.js.gz"),
        gz("// web-vitals.js from the directory"),
    )
    .unwrap();
    // A .gz from before its file was rebuilt must not be served for it.
    let stale = dir.path().join("pulseline.js.gz");
    std::fs::write(&stale, gz("// the previous pulseline.js")).unwrap();
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(past)
        .unwrap();

    let path = dir.path().to_owned();
    let app = spawn_app_with(move |c| c.sdk_dir = Some(path)).await;
    let vitals = get(&format!("{}/sdk/v1/web-vitals.js", app.base), Some("gzip")).await;
    assert_eq!(vitals.headers()["content-encoding"], "gzip");
    assert_eq!(
        gunzip(&vitals.bytes().await.unwrap()),
        b"// web-vitals.js from the directory"
    );
    let module = get(&format!("{}/sdk/v1/pulseline.js", app.base), Some("gzip")).await;
    assert!(module.headers().get("content-encoding").is_none());
    assert_eq!(
        module.text().await.unwrap(),
        "// pulseline.js from the directory"
    );
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
    let app = helpers::spawn_app().await;
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
