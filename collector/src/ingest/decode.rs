//! Request body → JSON text, with every size limit enforced before memory is spent.

use std::io::Read;

use axum::http::{HeaderMap, header};
use bytes::Bytes;
use flate2::read::MultiGzDecoder;

use crate::error::ApiError;

/// A request body, decompressed and checked against the request size limit.
#[derive(Debug)]
pub struct DecodedBody(pub Bytes);

/// Checks the content type and encoding, and inflates gzip without ever holding more than
/// `max_bytes + 1` bytes of output: a gzip bomb is refused after reading one byte too many.
pub fn decode_body(
    headers: &HeaderMap,
    body: Bytes,
    max_bytes: usize,
) -> Result<DecodedBody, ApiError> {
    check_content_type(headers)?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("" | "identity") => {
            if body.len() > max_bytes {
                return Err(too_large(body.len(), max_bytes, ""));
            }
            Ok(DecodedBody(body))
        }
        Some("gzip" | "x-gzip") => {
            let mut out = Vec::with_capacity((body.len() * 4).min(max_bytes + 1));
            MultiGzDecoder::new(&body[..])
                .take(max_bytes as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    ApiError::BadRequest(format!(
                        "body is not valid gzip ({e}); send gzip with Content-Encoding: gzip, or \
                         drop the header for plain JSON"
                    ))
                })?;
            if out.len() > max_bytes {
                return Err(too_large(
                    out.len(),
                    max_bytes,
                    " after gzip decompression (at least)",
                ));
            }
            Ok(DecodedBody(Bytes::from(out)))
        }
        Some(other) => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding '{other}' is not supported: send gzip or uncompressed JSON"
        ))),
    }
}

fn too_large(len: usize, max: usize, what: &str) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "request body is {len} bytes{what}; the limit is {max} bytes (PULSELINE_MAX_REQUEST_BYTES): \
         split it into smaller batches"
    ))
}

/// JSON, or `text/plain` (what `navigator.sendBeacon` sends with a string body). A request
/// without a Content-Type is read as JSON, as Segment's API does.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let mime = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "application/json" || mime == "text/plain" || mime.ends_with("+json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type '{mime}' is not supported: send JSON with Content-Type: application/json"
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use axum::http::HeaderValue;
    use flate2::{Compression, write::GzEncoder};

    use super::*;

    fn gzip(data: &[u8]) -> Bytes {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(data).unwrap();
        Bytes::from(enc.finish().unwrap())
    }

    fn headers(ct: &str, ce: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        if let Some(ce) = ce {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_str(ce).unwrap());
        }
        h
    }

    #[test]
    fn gzip_round_trips_and_bombs_stop_at_the_limit() {
        let body = decode_body(
            &headers("application/json", Some("gzip")),
            gzip(b"{\"a\":1}"),
            100,
        )
        .unwrap();
        assert_eq!(&body.0[..], b"{\"a\":1}");
        let bomb = gzip(&vec![b' '; 10 * 1024 * 1024]);
        assert!(bomb.len() < 20_000);
        let err = decode_body(&headers("application/json", Some("gzip")), bomb, 1000).unwrap_err();
        assert!(matches!(err, ApiError::PayloadTooLarge(_)), "{err:?}");
    }

    #[test]
    fn content_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "text/plain;charset=UTF-8",
        ] {
            assert!(
                decode_body(&headers(ok, None), Bytes::from_static(b"{}"), 10).is_ok(),
                "{ok}"
            );
        }
        let err = decode_body(
            &headers("application/x-www-form-urlencoded", None),
            Bytes::new(),
            10,
        )
        .unwrap_err();
        assert!(err.to_string().contains("application/json"));
        let err =
            decode_body(&headers("application/json", Some("br")), Bytes::new(), 10).unwrap_err();
        assert!(matches!(err, ApiError::UnsupportedMediaType(_)));
    }
}
