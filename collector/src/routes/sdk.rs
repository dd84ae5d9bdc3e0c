//! `GET /sdk/v1/{file}`: the built browser SDK (loader snippet, module, wasm), served from the
//! collector's own origin the way Plausible serves its script, so a page needs no other host.
//!
//! The files come from a directory found at startup ([`SdkFiles::locate`]): `PULSELINE_SDK_DIR`
//! when set, else `sdk-wasm/dist` under the working directory or next to the binary's
//! `target/<profile>/`. `cargo run -p pulseline-collector` needs no wasm toolchain: when the SDK
//! is not built, these routes answer 404 with how to build it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Router, body::Body};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ErrorBody};

/// How long browsers and CDNs may reuse a file without asking again (the URLs are not
/// versioned, so a new SDK reaches pages within this time; the `ETag` makes a re-check cheap).
pub const SDK_MAX_AGE: Duration = Duration::from_secs(300);

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

/// Where the built SDK is, if anywhere.
#[derive(Debug, Clone)]
pub struct SdkFiles {
    dir: Option<PathBuf>,
}

impl SdkFiles {
    /// `configured` (PULSELINE_SDK_DIR) if given, else the first `sdk-wasm/dist` found under
    /// the working directory or the repository holding the running binary.
    pub fn locate(configured: Option<&Path>) -> Self {
        if let Some(dir) = configured {
            return SdkFiles {
                dir: Some(dir.to_owned()),
            };
        }
        let mut candidates = vec![PathBuf::from("sdk-wasm/dist")];
        if let Ok(exe) = std::env::current_exe()
            && let Some(repo) = exe.ancestors().nth(3)
        {
            // <repo>/target/<profile>/pulseline-collector
            candidates.push(repo.join("sdk-wasm/dist"));
        }
        let dir = candidates
            .into_iter()
            .find(|dir| dir.join("pulseline_bg.wasm").is_file());
        SdkFiles { dir }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }
}

pub fn router(files: SdkFiles) -> Router {
    Router::new()
        .route("/sdk/v1/{file}", get(serve))
        .with_state(files)
}

/// A file of the browser SDK: `loader.js` (the snippet pages paste), `pulseline.js` (the
/// module), `pulseline_bg.wasm`, `web-vitals.js` or `pulseline.d.ts`.
#[utoipa::path(
    get, path = "/sdk/v1/{file}", tag = "browser-sdk",
    params(("file" = String, Path, description = "loader.js, pulseline.js, pulseline_bg.wasm, \
                                                 web-vitals.js or pulseline.d.ts")),
    responses(
        (status = 200, description = "The file, cacheable for SDK_MAX_AGE, with an ETag", content(
            (String = "text/javascript"),
            (Vec<u8> = "application/wasm"),
            (String = "application/typescript"),
        )),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 404, description = "No such SDK file, or the browser SDK is not built (the \
                                      message says how to build it)", body = ErrorBody),
    )
)]
pub async fn serve(
    State(files): State<SdkFiles>,
    UrlPath(file): UrlPath<String>,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some((name, content_type)) = FILES.iter().find(|(name, _)| *name == file) else {
        return Err(ApiError::NotFound(format!(
            "no SDK file '{file}': the browser SDK is loader.js, pulseline.js, \
             pulseline_bg.wasm, web-vitals.js and pulseline.d.ts"
        )));
    };
    let not_built = || {
        ApiError::NotFound(format!(
            "the browser SDK is not built, so /sdk/v1/{name} cannot be served: run \
             `sdk-wasm/build.sh` (it writes sdk-wasm/dist), or set PULSELINE_SDK_DIR to a \
             directory holding loader.js, pulseline.js and pulseline_bg.wasm"
        ))
    };
    let dir = files.dir.as_ref().ok_or_else(not_built)?;
    let bytes = match tokio::fs::read(dir.join(name)).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_built()),
        Err(e) => {
            tracing::error!(error = %e, dir = %dir.display(), file = name, "reading the SDK");
            return Err(ApiError::Internal(anyhow::anyhow!(
                "reading SDK file {name}: {e}"
            )));
        }
    };
    let digest = format!("{:x}", Sha256::digest(&bytes));
    let etag = format!("\"{}\"", &digest[..16]);
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&format!("public, max-age={}", SDK_MAX_AGE.as_secs()))
            .expect("ascii"),
    );
    // Any site may embed the SDK (module scripts and wasm are fetched in CORS mode).
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
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    let unchanged = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    if unchanged {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    Ok((headers, Body::from(bytes)).into_response())
}
