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

use pulseline::{Client, FlushOutcome, Identify, Page, RawJson, Track};
use serde_json::{Map, Value, json};
use wasm_bindgen::prelude::*;

use crate::{error::to_js, identity::Identity, outbox::Outbox, transport::BrowserTransport};

pub use clock::BrowserClock;
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
    /// The Segment `context` of the next message, from [`Pulseline::set_page`].
    context: Map<String, Value>,
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
            context: Map::new(),
        })
    }

    /// Sets the page the next messages are about: their `context.page`, `userAgent`, `locale`
    /// and `screen`. The JavaScript API calls it before every capture (the URL and title of a
    /// single-page app change); as typed values, so nothing is parsed from JSON here.
    #[wasm_bindgen(js_name = setPage)]
    #[allow(clippy::too_many_arguments)] // one call across the JS boundary, field by field
    pub fn set_page(
        &mut self,
        url: String,
        path: String,
        referrer: String,
        title: String,
        search: String,
        user_agent: String,
        locale: String,
        screen_width: u32,
        screen_height: u32,
        density: f64,
    ) {
        let context = json!({
            "page": { "url": url, "path": path, "referrer": referrer, "title": title, "search": search },
            "userAgent": user_agent,
            "locale": locale,
            "screen": { "width": screen_width, "height": screen_height, "density": density },
        });
        if let Value::Object(context) = context {
            self.context = context;
        }
    }

    /// Captures a `track` of `event`. `properties` is JSON text (an object) or absent.
    /// Returns the `messageId`; throws only for an invalid message.
    pub fn track(&self, event: &str, properties: Option<String>) -> Result<String, JsError> {
        let message = Track::new(self.identity.user(), event).context(self.context.clone());
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
    ) -> Result<String, JsError> {
        let mut message = Page::new(self.identity.user()).context(self.context.clone());
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
    pub fn identify(&mut self, user_id: &str, traits: Option<String>) -> Result<String, JsError> {
        if user_id.is_empty() {
            return Err(JsError::new(
                "identify needs a non-empty userId (your own stable id for the user)",
            ));
        }
        self.identity.set_user_id(user_id);
        let message = Identify::new(self.identity.user()).context(self.context.clone());
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

/// Optional JSON text (from `JSON.stringify`) → checked raw JSON, carried into the message as
/// it is. The core checks at capture that it is an object.
fn raw(json: Option<String>) -> Result<Option<RawJson>, JsError> {
    json.map(RawJson::parse)
        .transpose()
        .map_err(|e| JsError::new(&format!("properties/traits must be a JSON object: {e}")))
}
