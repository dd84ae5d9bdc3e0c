//! Pulseline's browser SDK: wasm-bindgen over the `pulseline` core.
//!
//! The core (built with default features off) validates, stamps and batches every message and
//! runs the delivery worker, polled here on the page's event loop. This crate supplies only what
//! is specific to a browser: [`transport`] (`fetch` with `keepalive`, `sendBeacon` on hide),
//! [`outbox`] (the offline buffer in `localStorage`), [`identity`] (persistent `anonymousId`),
//! and [`clock`] (`setTimeout`). Page context and Web Vitals are gathered by the JavaScript
//! package (`js/index.js`), which wraps [`Pulseline`].

mod clock;
mod error;
mod identity;
pub mod outbox;
mod storage;
pub mod transport;

use std::time::Duration;

use pulseline::{Client, FlushOutcome, Identify, Page, Track};
use serde_json::{Map, Value, value::RawValue};
use wasm_bindgen::prelude::*;

use crate::{
    clock::BrowserClock, error::to_js, identity::Identity, outbox::Outbox,
    transport::BrowserTransport,
};

pub use outbox::OFFLINE_BUFFER_MAX_BYTES;
pub use transport::KEEPALIVE_MAX_BYTES;

/// A browser client. Build it through the JavaScript `init()`, which adds page context and Web
/// Vitals; this class is the thin layer over the core.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Pulseline {
    client: Client,
    identity: Identity,
    replay: std::rc::Rc<BrowserTransport>,
    outbox: Outbox,
}

#[wasm_bindgen]
impl Pulseline {
    /// A client sending to `host` (the collector's origin) with `write_key`. The delivery
    /// worker starts at once on the page's event loop. `flush_interval_ms` is how long a
    /// message may wait for its batch (the core's default is 500 ms); `request_timeout_ms`
    /// bounds each `fetch`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        write_key: &str,
        host: &str,
        flush_interval_ms: u32,
        request_timeout_ms: u32,
    ) -> Result<Pulseline, JsError> {
        let outbox = Outbox::new(write_key, OFFLINE_BUFFER_MAX_BYTES);
        let transport = BrowserTransport::new(host, write_key, request_timeout_ms, outbox.clone());
        let (client, worker) = Client::builder(write_key)
            .host(host)
            .library("pulseline-browser", env!("CARGO_PKG_VERSION"))
            .flush_interval(Duration::from_millis(flush_interval_ms.max(1).into()))
            .request_timeout(Duration::from_millis(request_timeout_ms.into()))
            .max_batch_bytes(KEEPALIVE_MAX_BYTES)
            .gzip(false)
            .transport(transport)
            .clock(BrowserClock)
            .on_error(|e| error::warn(&format!("pulseline: {e}")))
            .build_with_worker()
            .map_err(to_js)?;
        wasm_bindgen_futures::spawn_local(worker);
        Ok(Pulseline {
            client,
            identity: Identity::load(),
            replay: std::rc::Rc::new(BrowserTransport::new(
                host,
                write_key,
                request_timeout_ms,
                outbox.clone(),
            )),
            outbox,
        })
    }

    /// Captures a `track` of `event`. `properties` and `context` are JSON texts (objects) or
    /// absent. Returns the `messageId`; throws only for an invalid message.
    pub fn track(
        &self,
        event: &str,
        properties: Option<String>,
        context: Option<String>,
    ) -> Result<String, JsError> {
        let message = Track::new(self.identity.user(), event).context(object(context)?);
        let id = match raw(properties)? {
            Some(properties) => self.client.track(message.properties(properties)),
            None => self.client.track(message),
        };
        id.map(|id| id.to_string()).map_err(to_js)
    }

    /// Captures a `page` named `name` (optional).
    pub fn page(
        &self,
        name: Option<String>,
        properties: Option<String>,
        context: Option<String>,
    ) -> Result<String, JsError> {
        let mut message = Page::new(self.identity.user()).context(object(context)?);
        if let Some(name) = name {
            message = message.name(name);
        }
        let id = match raw(properties)? {
            Some(properties) => self.client.page(message.properties(properties)),
            None => self.client.page(message),
        };
        id.map(|id| id.to_string()).map_err(to_js)
    }

    /// Links this visitor's `anonymousId` to `user_id` (kept for later page loads) and captures
    /// an `identify` with `traits`.
    pub fn identify(
        &mut self,
        user_id: &str,
        traits: Option<String>,
        context: Option<String>,
    ) -> Result<String, JsError> {
        if user_id.is_empty() {
            return Err(JsError::new(
                "identify needs a non-empty userId (your own stable id for the user)",
            ));
        }
        self.identity.set_user_id(user_id);
        let message = Identify::new(self.identity.user()).context(object(context)?);
        let id = match raw(traits)? {
            Some(traits) => self.client.identify(message.traits(traits)),
            None => self.client.identify(message),
        };
        id.map(|id| id.to_string()).map_err(to_js)
    }

    /// Forgets the user id and starts a new `anonymousId` (call on logout).
    pub fn reset(&mut self) {
        self.identity.reset();
    }

    /// The visitor's persistent `anonymousId`.
    #[wasm_bindgen(getter, js_name = anonymousId)]
    pub fn anonymous_id(&self) -> String {
        self.identity.anonymous_id().to_owned()
    }

    /// The `userId` given to `identify`, if any.
    #[wasm_bindgen(getter, js_name = userId)]
    pub fn user_id(&self) -> Option<String> {
        self.identity.user_id().map(str::to_owned)
    }

    /// Sends everything captured so far; resolves to `true` once the collector has it, `false`
    /// if `timeout_ms` passed first (delivery continues).
    pub fn flush(&self, timeout_ms: u32) -> js_sys::Promise {
        let flushed = self
            .client
            .flush_async(Duration::from_millis(timeout_ms.into()));
        wasm_bindgen_futures::future_to_promise(async move {
            Ok(JsValue::from_bool(flushed.await == FlushOutcome::Flushed))
        })
    }

    /// Tells the transport the page is being hidden or unloaded (`true`: send by
    /// `sendBeacon`) or is visible again.
    #[wasm_bindgen(js_name = setPageHidden)]
    pub fn set_page_hidden(&self, hidden: bool) {
        transport::set_page_hidden(hidden);
    }

    /// Sends the batches earlier page loads left in the offline buffer; resolves to how many
    /// the collector took (the rest stay for the next load).
    #[wasm_bindgen(js_name = replayOfflineBuffer)]
    pub fn replay_offline_buffer(&self) -> js_sys::Promise {
        let entries = self.outbox.entries();
        let transport = self.replay.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut sent = 0u32;
            for (key, body) in entries {
                if transport.replay(key, body).await {
                    sent += 1;
                }
            }
            Ok(JsValue::from(sent))
        })
    }
}

/// Optional JSON text → a raw JSON value, checked to be valid JSON.
fn raw(json: Option<String>) -> Result<Option<Box<RawValue>>, JsError> {
    json.map(RawValue::from_string)
        .transpose()
        .map_err(|e| JsError::new(&format!("properties/traits must be a JSON object: {e}")))
}

/// Optional JSON text of an object → its map (empty when absent).
fn object(json: Option<String>) -> Result<Map<String, Value>, JsError> {
    match json {
        None => Ok(Map::new()),
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| JsError::new(&format!("context must be a JSON object: {e}"))),
    }
}
