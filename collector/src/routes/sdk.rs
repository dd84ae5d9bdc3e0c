//! `GET /sdk/v1/...`: the browser SDK (loader snippet, module, wasm, Web Vitals, typings), served
//! from the collector's own origin the way Plausible serves its script, so a page needs no
//! other host.
//!
//! Every collector binary carries the SDK: collector/build.rs embeds sdk-wasm/dist, which is
//! committed (built by `sdk-wasm/build.sh`), so `cargo run -p pulseline-collector` needs no wasm
//! toolchain. `PULSELINE_SDK_DIR` serves another build instead, read once at startup.
//!
//! Caching: `loader.js` (what pages include) is cached for [`SDK_MAX_AGE`] and revalidated by
//! ETag; it loads `/sdk/v1/<version>/pulseline.js`, where the version is a hash of every file but
//! the loader, so those URLs never change content and are cached for a year, `immutable`.
//! Each file is stored precompressed (brotli, gzip) and sent as the request's
//! `Accept-Encoding` prefers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ErrorBody};

/// How long browsers and CDNs may reuse the loader (and the unversioned `/sdk/v1/{file}` URLs)
/// without asking again: a new SDK reaches pages within this time; the `ETag` makes a re-check
/// cheap.
pub const SDK_MAX_AGE: Duration = Duration::from_secs(300);

/// How long a versioned file (`/sdk/v1/{version}/{file}`) may be reused: its content never
/// changes, so a year, the longest value caches honour.
pub const SDK_IMMUTABLE_MAX_AGE: Duration = Duration::from_secs(365 * 24 * 3600);

/// The files served, and their content types. Chromium compiles wasm while downloading only
/// when it is served as `application/wasm`. `web-vitals.js` is imported by `pulseline.js` only
/// when Web Vitals are on.
const FILES: [(&str, &str); 5] = [
    ("loader.js", "text/javascript; charset=utf-8"),
    ("pulseline.js", "text/javascript; charset=utf-8"),
    ("pulseline_bg.wasm", "application/wasm"),
    ("web-vitals.js", "text/javascript; charset=utf-8"),
    ("pulseline.d.ts", "application/typescript; charset=utf-8"),
];

/// The module the loader loads: the one versioned URL of an older version that is redirected to
/// the current one (a page may hold a loader of the previous deploy for up to SDK_MAX_AGE).
const ENTRY: &str = "pulseline.js";

/// The files the version hashes, in this order: everything but the loader. sdk-wasm/build.sh
/// computes the same (`sha256sum` of these, hashed again) to version the loader.
const VERSIONED: [&str; 4] = [
    "pulseline.d.ts",
    "pulseline.js",
    "pulseline_bg.wasm",
    "web-vitals.js",
];

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/sdk_assets.rs"));
}

/// One file, with its precompressed forms and the hash its ETags derive from.
#[derive(Debug)]
struct SdkFile {
    name: &'static str,
    content_type: &'static str,
    identity: Bytes,
    brotli: Option<Bytes>,
    gzip: Option<Bytes>,
    sha256: String,
}

/// The browser SDK this collector serves: embedded, or read from `PULSELINE_SDK_DIR`.
#[derive(Debug, Clone)]
pub struct SdkFiles(Arc<Bundle>);

#[derive(Debug)]
struct Bundle {
    source: String,
    /// Empty when the SDK is not built: every route then answers 404 saying how to build it.
    files: Vec<SdkFile>,
    version: String,
}

impl SdkFiles {
    /// The SDK in `dir` (PULSELINE_SDK_DIR) when given, else the one embedded in this binary.
    pub fn load(dir: Option<&Path>) -> Self {
        match dir {
            Some(dir) => Self::from_dir(dir),
            None => Self::embedded(),
        }
    }

    /// The SDK compiled into this binary (sdk-wasm/dist when it was built).
    pub fn embedded() -> Self {
        let find = |name: &str| {
            embedded::SDK_ASSETS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, bytes)| Bytes::from_static(bytes))
        };
        let files = FILES
            .iter()
            .map(|&(name, content_type)| {
                let identity = find(name)?;
                Some(SdkFile::new(
                    name,
                    content_type,
                    identity,
                    find(&format!("{name}.br")),
                    find(&format!("{name}.gz")),
                ))
            })
            .collect();
        Self::from_files("embedded in this binary".into(), files)
    }

    /// The SDK in `dir`, read now. A `.br` or `.gz` older than its file is ignored (it would be
    /// the previous build's), so the file is then sent uncompressed.
    pub fn from_dir(dir: &Path) -> Self {
        let read = |name: &str| std::fs::read(dir.join(name)).ok().map(Bytes::from);
        let modified = |name: &str| {
            std::fs::metadata(dir.join(name))
                .and_then(|m| m.modified())
                .ok()
        };
        let compressed = |name: &str, suffix: &str| {
            let variant = format!("{name}{suffix}");
            let fresh =
                matches!((modified(name), modified(&variant)), (Some(f), Some(v)) if v >= f);
            if !fresh && dir.join(&variant).exists() {
                tracing::warn!(file = variant, dir = %dir.display(), "older than its file: ignored");
            }
            fresh.then(|| read(&variant)).flatten()
        };
        let files = FILES
            .iter()
            .map(|&(name, content_type)| {
                Some(SdkFile::new(
                    name,
                    content_type,
                    read(name)?,
                    compressed(name, ".br"),
                    compressed(name, ".gz"),
                ))
            })
            .collect();
        Self::from_files(dir.display().to_string(), files)
    }

    /// All files, or none (`None` for any missing file: a partial SDK cannot load).
    fn from_files(source: String, files: Option<Vec<SdkFile>>) -> Self {
        let files = files.unwrap_or_default();
        let mut version = String::new();
        if !files.is_empty() {
            // `sha256sum` of the versioned files, hashed again: build.sh computes it alike.
            let listing: String = VERSIONED
                .iter()
                .filter_map(|name| files.iter().find(|f| f.name == *name))
                .map(|f| format!("{}  {}\n", f.sha256, f.name))
                .collect();
            version = format!("{:x}", Sha256::digest(listing.as_bytes()))[..16].to_owned();
            let loader = &files[0];
            let entry = format!("/sdk/v1/{version}/{ENTRY}");
            if !loader
                .identity
                .windows(entry.len())
                .any(|w| w == entry.as_bytes())
            {
                tracing::warn!(
                    source,
                    version,
                    "loader.js does not load this version of pulseline.js, so pages using it \
                     get the unversioned files: rebuild the SDK with sdk-wasm/build.sh"
                );
            }
        }
        SdkFiles(Arc::new(Bundle {
            source,
            files,
            version,
        }))
    }

    /// Where the files come from, for the startup log.
    pub fn source(&self) -> &str {
        &self.0.source
    }

    /// The version in the immutable URLs, `None` when the SDK is not built.
    pub fn version(&self) -> Option<&str> {
        (!self.0.files.is_empty()).then_some(self.0.version.as_str())
    }

    fn file(&self, name: &str) -> Result<&SdkFile, ApiError> {
        if !FILES.iter().any(|(n, _)| *n == name) {
            return Err(ApiError::NotFound(format!(
                "no SDK file '{name}': the browser SDK is loader.js, pulseline.js, \
                 pulseline_bg.wasm, web-vitals.js and pulseline.d.ts"
            )));
        }
        self.0.files.iter().find(|f| f.name == name).ok_or_else(|| {
            ApiError::NotFound(format!(
                "this collector has no browser SDK ({}), so /sdk/v1/{name} cannot be served: \
                 restore the committed sdk-wasm/dist (`git checkout sdk-wasm/dist`) or rebuild \
                 it with `sdk-wasm/build.sh`, then rebuild the collector; or set \
                 PULSELINE_SDK_DIR to a directory holding a built SDK",
                self.0.source
            ))
        })
    }
}

impl SdkFile {
    fn new(
        name: &'static str,
        content_type: &'static str,
        identity: Bytes,
        brotli: Option<Bytes>,
        gzip: Option<Bytes>,
    ) -> Self {
        let sha256 = format!("{:x}", Sha256::digest(&identity));
        SdkFile {
            name,
            content_type,
            identity,
            brotli,
            gzip,
            sha256,
        }
    }
}

pub fn router(files: SdkFiles) -> Router {
    Router::new()
        .route("/sdk/v1/{file}", get(serve))
        .route("/sdk/v1/{version}/{file}", get(serve_versioned))
        .with_state(files)
}

/// A file of the browser SDK at its short-lived URL: `loader.js` (what pages include),
/// `pulseline.js` (the module), `pulseline_bg.wasm`, `web-vitals.js` or `pulseline.d.ts`.
#[utoipa::path(
    get, path = "/sdk/v1/{file}", tag = "browser-sdk",
    params(
        ("file" = String, Path, description = "loader.js, pulseline.js, pulseline_bg.wasm, \
                                               web-vitals.js or pulseline.d.ts"),
        ("Accept-Encoding" = Option<String>, Header, description = "br or gzip: the file \
                                                                    precompressed"),
    ),
    responses(
        (status = 200, description = "The file, cacheable for SDK_MAX_AGE (300 s), with an ETag",
         content(
            (String = "text/javascript"),
            (Vec<u8> = "application/wasm"),
            (String = "application/typescript"),
        )),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 404, description = "No such SDK file, or this collector has no browser SDK \
                                      (the message says how to build it)", body = ErrorBody),
    )
)]
pub async fn serve(
    State(files): State<SdkFiles>,
    UrlPath(file): UrlPath<String>,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    let file = files.file(&file)?;
    let cache = format!("public, max-age={}", SDK_MAX_AGE.as_secs());
    Ok(respond(file, &cache, &request_headers))
}

/// A file of one version of the browser SDK; its content never changes. `loader.js` loads the
/// current version's `pulseline.js`, which loads the rest from next to it.
#[utoipa::path(
    get, path = "/sdk/v1/{version}/{file}", tag = "browser-sdk",
    params(
        ("version" = String, Path, description = "The version loader.js names (16 hex digits)"),
        ("file" = String, Path, description = "pulseline.js, pulseline_bg.wasm, web-vitals.js, \
                                               pulseline.d.ts or loader.js"),
        ("Accept-Encoding" = Option<String>, Header, description = "br or gzip: the file \
                                                                    precompressed"),
    ),
    responses(
        (status = 200, description = "The file, `Cache-Control: public, max-age=31536000, \
                                      immutable`", content(
            (String = "text/javascript"),
            (Vec<u8> = "application/wasm"),
            (String = "application/typescript"),
        )),
        (status = 302, description = "pulseline.js of another version: redirected to this \
                                      collector's version"),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 404, description = "No such file or version (the message names the version \
                                      served)", body = ErrorBody),
    )
)]
pub async fn serve_versioned(
    State(files): State<SdkFiles>,
    UrlPath((version, file)): UrlPath<(String, String)>,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    let sdk_file = files.file(&file)?;
    let current = files.version().unwrap_or_default();
    if version == current {
        let cache = format!(
            "public, max-age={}, immutable",
            SDK_IMMUTABLE_MAX_AGE.as_secs()
        );
        return Ok(respond(sdk_file, &cache, &request_headers));
    }
    let is_version = version.len() == 16 && version.bytes().all(|b| b.is_ascii_hexdigit());
    if is_version && file == ENTRY {
        // A loader from before an upgrade: the module it asks for, in the version served now
        // (its imports resolve against the final URL, so the rest follows).
        let location = format!("/sdk/v1/{current}/{ENTRY}");
        let mut headers = common_headers(&format!("public, max-age={}", SDK_MAX_AGE.as_secs()));
        headers.insert(
            header::LOCATION,
            HeaderValue::from_str(&location).expect("hex digits"),
        );
        return Ok((StatusCode::FOUND, headers).into_response());
    }
    Err(ApiError::NotFound(format!(
        "this collector serves version {current} of the browser SDK, not '{version}': pages \
         load the current one through /sdk/v1/loader.js"
    )))
}

/// Which stored form of a file to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Brotli,
    Gzip,
    Identity,
}

/// The `Accept-Encoding` preference (q-value) for `coding`: its own entry, else `*`'s, else 0.
fn quality(accept: &str, coding: &str) -> f32 {
    let mut star = None;
    for entry in accept.split(',') {
        let mut parts = entry.split(';');
        let name = parts.next().unwrap_or_default().trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
            .map(|v| v.trim().parse::<f32>().unwrap_or(0.0))
            .next()
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case(coding) {
            return q;
        }
        if name == "*" {
            star = Some(q);
        }
    }
    star.unwrap_or(0.0)
}

/// Brotli or gzip when the client takes it and the file has it (the higher q wins, brotli on a
/// tie: it is smaller), else the file as is.
fn negotiate(request_headers: &HeaderMap, file: &SdkFile) -> Encoding {
    let accept = request_headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let br = if file.brotli.is_some() {
        quality(&accept, "br")
    } else {
        0.0
    };
    let gzip = if file.gzip.is_some() {
        quality(&accept, "gzip").max(quality(&accept, "x-gzip"))
    } else {
        0.0
    };
    if br > 0.0 && br >= gzip {
        Encoding::Brotli
    } else if gzip > 0.0 {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// Headers of every SDK response: caching, and what lets any site load it.
fn common_headers(cache_control: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(cache_control).expect("ascii"),
    );
    // Module scripts and wasm are fetched in CORS mode, by pages of any origin.
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The body depends on Accept-Encoding: caches must key on it.
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers
}

fn respond(file: &SdkFile, cache_control: &str, request_headers: &HeaderMap) -> Response {
    let encoding = negotiate(request_headers, file);
    let (body, coding, suffix) = match encoding {
        Encoding::Brotli => (file.brotli.clone(), Some("br"), "-br"),
        Encoding::Gzip => (file.gzip.clone(), Some("gzip"), "-gz"),
        Encoding::Identity => (Some(file.identity.clone()), None, ""),
    };
    let body = body.unwrap_or_else(|| file.identity.clone());
    // One ETag per representation (RFC 9110 8.8.3), all derived from the file's own hash.
    let tag = &file.sha256[..16];
    let etag = format!("\"{tag}{suffix}\"");
    let mut headers = common_headers(cache_control);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(file.content_type),
    );
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("hex digits"),
    );
    if let Some(coding) = coding {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    let unchanged = request_headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|t| {
            t == "*"
                || t.strip_prefix(tag)
                    .is_some_and(|rest| ["", "-br", "-gz"].contains(&rest))
        });
    if unchanged {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, Body::from(body)).into_response()
}
