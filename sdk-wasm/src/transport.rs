//! The browser transport: `fetch` with `keepalive`, or `navigator.sendBeacon` while the page is
//! being hidden or unloaded, writing each batch ahead into the offline buffer.
//!
//! Bodies are sent as `text/plain` with the write key inside (`"writeKey"`, which the collector
//! accepts like Basic auth), so a cross-origin post is a CORS "simple request": no preflight, and
//! `sendBeacon` (which cannot set headers) sends the very same body.

use std::sync::atomic::{AtomicBool, Ordering};

use pulseline::{BatchRequest, BoxFuture, Error, Transport, TransportErrorKind, TransportResponse};
use wasm_bindgen::{JsCast, prelude::*};
use wasm_bindgen_futures::JsFuture;

use crate::outbox::{Outbox, batch_key};

/// Largest body sent with `fetch(..., {keepalive: true})` or `sendBeacon`: browsers cap the
/// bodies of all keepalive requests in flight at 64 KiB. The client seals batches below it.
pub const KEEPALIVE_MAX_BYTES: usize = 60 * 1024;

/// Set while the page is hidden or being unloaded: sends then go by `sendBeacon`.
static PAGE_HIDDEN: AtomicBool = AtomicBool::new(false);

pub(crate) fn set_page_hidden(hidden: bool) {
    PAGE_HIDDEN.store(hidden, Ordering::SeqCst);
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn fetch_with_init(url: &str, init: &web_sys::RequestInit) -> js_sys::Promise;
}

#[derive(Debug)]
pub(crate) struct BrowserTransport {
    url: String,
    write_key: String,
    timeout_ms: u32,
    outbox: Outbox,
}

impl BrowserTransport {
    pub(crate) fn new(host: &str, write_key: &str, timeout_ms: u32, outbox: Outbox) -> Self {
        BrowserTransport {
            url: format!("{}/v1/batch", host.trim_end_matches('/')),
            write_key: write_key.to_owned(),
            timeout_ms,
            outbox,
        }
    }

    /// Sends a body kept by an earlier page, and forgets it once the answer is final.
    pub(crate) async fn replay(&self, key: String, body: String) -> bool {
        match post(&self.url, body, self.timeout_ms).await {
            Ok(response) if response.is_final() => {
                self.outbox.remove(&key);
                true
            }
            _ => false,
        }
    }
}

impl Transport for BrowserTransport {
    fn send(&self, request: BatchRequest) -> BoxFuture<Result<TransportResponse, Error>> {
        let body = with_write_key(&request.body, &self.write_key);
        let kept = self.outbox.put(batch_key(&request.body), &body);
        if PAGE_HIDDEN.load(Ordering::SeqCst) && send_beacon(&self.url, &body) {
            // The browser owns the delivery now and reports nothing back. The copy stays in the
            // outbox: the next page load sends it again, and the collector stores it once.
            return Box::pin(async { Ok(TransportResponse::new(202, Vec::new())) });
        }
        // fetch() starts here, not when the worker first polls, so a send during unload leaves.
        let response = post(&self.url, body, self.timeout_ms);
        let outbox = self.outbox.clone();
        Box::pin(async move {
            let response = response.await;
            if let (Ok(answer), Some(key)) = (&response, kept)
                && answer.is_final()
            {
                outbox.remove(&key);
            }
            response
        })
    }
}

/// `{"writeKey":"…",` + the core's body without its opening brace.
fn with_write_key(body: &[u8], write_key: &str) -> String {
    let rest = String::from_utf8_lossy(body.strip_prefix(b"{").unwrap_or(body));
    // Serialized as a JSON string directly: a `Value`'s `Display` would link serde_json's
    // pretty printer into the wasm for this one field.
    let key = serde_json::to_string(write_key).unwrap_or_default();
    format!("{{\"writeKey\":{key},{rest}")
}

fn send_beacon(url: &str, body: &str) -> bool {
    body.len() <= KEEPALIVE_MAX_BYTES
        && web_sys::window()
            .and_then(|w| w.navigator().send_beacon_with_opt_str(url, Some(body)).ok())
            .unwrap_or(false)
}

fn post(
    url: &str,
    body: String,
    timeout_ms: u32,
) -> impl Future<Output = Result<TransportResponse, Error>> + 'static {
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    // Not in web-sys' RequestInit bindings: set the plain property.
    let _ = js_sys::Reflect::set(
        &init,
        &JsValue::from_str("keepalive"),
        &JsValue::from_bool(body.len() <= KEEPALIVE_MAX_BYTES),
    );
    init.set_body(&JsValue::from_str(&body));
    init.set_signal(Some(&web_sys::AbortSignal::timeout_with_u32(timeout_ms)));
    let sent = fetch_with_init(url, &init);
    async move {
        let response: web_sys::Response = JsFuture::from(sent)
            .await
            .map_err(failure)?
            .unchecked_into();
        let retry_after = response.headers().get("retry-after").ok().flatten();
        let text = match response.text() {
            Ok(text) => JsFuture::from(text).await.map_err(failure)?,
            Err(error) => return Err(failure(error)),
        };
        let mut answer = TransportResponse::new(
            response.status(),
            text.as_string().unwrap_or_default().into_bytes(),
        );
        if let Some(value) = retry_after {
            answer = answer.with_retry_after(value);
        }
        Ok(answer)
    }
}

/// A rejected `fetch`: `TimeoutError` from the abort signal, else the network failed. The
/// message is the error's own (`fetch` rejects with a `TypeError` or `DOMException`, both of
/// which have one); not `JsValue`'s `Debug`, which would add a value printer to the glue.
fn failure(error: JsValue) -> Error {
    let name = js_sys::Reflect::get(&error, &JsValue::from_str("name"))
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_default();
    let kind = if name == "TimeoutError" {
        TransportErrorKind::Timeout
    } else {
        TransportErrorKind::Connect
    };
    let message = js_sys::Reflect::get(&error, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| "fetch failed".to_owned());
    Error::Transport { kind, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_key_goes_first_in_the_body() {
        let body = with_write_key(br#"{"batch":[],"sentAt":"x"}"#, "wk_\"q");
        assert_eq!(body, r#"{"writeKey":"wk_\"q","batch":[],"sentAt":"x"}"#);
    }
}
