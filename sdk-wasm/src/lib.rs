//! Pulseline's browser SDK: wasm-bindgen over the `pulseline` core.
//!
//! The core (built with default features off) validates, stamps and batches every message and
//! runs the delivery worker, polled here on the page's event loop. This crate supplies only what
//! is specific to a browser: [`transport`] (`fetch` with `keepalive`, `sendBeacon` on hide),
//! [`outbox`] (the offline buffer in `localStorage`), [`identity`] (persistent `anonymousId`),
//! and [`clock`] (`setTimeout`). Page context, campaign, Web Vitals and the privacy controls
//! are the JavaScript package's (`js/index.js`), which wraps [`Pulseline`] and hands each
//! message its `context` as JSON text.

mod clock;
mod error;
mod identity;
pub mod outbox;
mod storage;
pub mod transport;

use std::time::Duration;

use pulseline::{Alias, Client, FlushOutcome, Group, Identify, Page, RawJson, Track};
use wasm_bindgen::prelude::*;
use web_time::{SystemTime, UNIX_EPOCH};

use crate::{error::to_js, identity::Identity, outbox::Outbox, transport::BrowserTransport};

pub use clock::BrowserClock;
pub use outbox::OFFLINE_BUFFER_MAX_BYTES;
pub use transport::KEEPALIVE_MAX_BYTES;

/// A browser client. Build it through the JavaScript `init()`, which adds page context, Web
/// Vitals and the privacy controls (consent, opt-out); this class is the thin layer over the
/// core.
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
    /// bounds each `fetch`. `cookieless`: no `anonymousId`, no offline buffer, nothing read
    /// from or written to the device's storage.
    #[wasm_bindgen(constructor)]
    pub fn new(
        write_key: &str,
        host: &str,
        flush_interval_ms: u32,
        request_timeout_ms: u32,
        cookieless: bool,
    ) -> Result<Pulseline, JsError> {
        let outbox = Outbox::new(write_key, OFFLINE_BUFFER_MAX_BYTES, !cookieless);
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
            identity: Identity::load(cookieless),
            replay: std::rc::Rc::new(BrowserTransport::new(
                host,
                write_key,
                request_timeout_ms,
                outbox.clone(),
            )),
            outbox,
        })
    }

    /// Captures a `track` of `event` that happened at `at_ms` (ms since the Unix epoch).
    /// `properties` is JSON text of an object; `context` the JSON text of the message's
    /// Segment `context` (page, campaign, user agent: what only the page knows). Returns the
    /// `messageId`; throws only for an invalid message.
    pub fn track(
        &self,
        event: &str,
        properties: String,
        context: String,
        at_ms: f64,
    ) -> Result<String, JsError> {
        let message = Track::new(self.identity.user(), event)
            .context_json(raw(context)?)
            .timestamp(at(at_ms))
            .properties(raw(properties)?);
        id(self.client.track(message))
    }

    /// Captures a `page` named `name` (optional).
    pub fn page(
        &self,
        name: Option<String>,
        properties: String,
        context: String,
        at_ms: f64,
    ) -> Result<String, JsError> {
        let mut message = Page::new(self.identity.user())
            .context_json(raw(context)?)
            .timestamp(at(at_ms));
        if let Some(name) = name {
            message = message.name(name);
        }
        id(self.client.page(message.properties(raw(properties)?)))
    }

    /// Links this visitor's `anonymousId` to `user_id` (kept for later page loads, except in
    /// cookieless mode) and captures an `identify` with `traits`.
    pub fn identify(
        &mut self,
        user_id: &str,
        traits: String,
        context: String,
        at_ms: f64,
    ) -> Result<String, JsError> {
        if user_id.is_empty() {
            return Err(JsError::new(
                "identify needs a non-empty userId (your own stable id for the user)",
            ));
        }
        let (traits, context) = (raw(traits)?, raw(context)?);
        self.identity.set_user_id(user_id);
        let message = Identify::new(self.identity.user())
            .context_json(context)
            .timestamp(at(at_ms))
            .traits(traits);
        id(self.client.identify(message))
    }

    /// Puts the visitor in the group (company, team, account) `group_id`, with its `traits`.
    pub fn group(
        &self,
        group_id: &str,
        traits: String,
        context: String,
        at_ms: f64,
    ) -> Result<String, JsError> {
        let message = Group::new(self.identity.user(), group_id)
            .context_json(raw(context)?)
            .timestamp(at(at_ms))
            .traits(raw(traits)?);
        id(self.client.group(message))
    }

    /// Declares that `previous_id` (default: the current `userId`, else the `anonymousId`)
    /// and `user_id` are the same person.
    pub fn alias(
        &self,
        user_id: &str,
        previous_id: Option<String>,
        context: String,
        at_ms: f64,
    ) -> Result<String, JsError> {
        let previous_id = previous_id
            .or_else(|| self.identity.user_id().map(str::to_owned))
            .or_else(|| self.identity.anonymous_id().map(str::to_owned))
            .ok_or_else(|| {
                JsError::new("alias needs a previousId: a cookieless visitor has no anonymousId")
            })?;
        let message = Alias::new(user_id, previous_id)
            .context_json(raw(context)?)
            .timestamp(at(at_ms));
        id(self.client.alias(message))
    }

    /// Forgets the user id and starts a new `anonymousId` (call on logout).
    pub fn reset(&mut self) {
        self.identity.reset();
    }

    /// The visitor's persistent `anonymousId` (none in cookieless mode).
    #[wasm_bindgen(getter, js_name = anonymousId)]
    pub fn anonymous_id(&self) -> Option<String> {
        self.identity.anonymous_id().map(str::to_owned)
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

/// JSON text (from `JSON.stringify`) → checked raw JSON, carried into the message as it is.
/// The core checks at capture that it is an object. Always present (`{}` when the caller gave
/// none, as Segment's analytics.js sends it): one encoder instance per message type.
fn raw(json: String) -> Result<RawJson, JsError> {
    RawJson::parse(json)
        .map_err(|e| JsError::new(&format!("properties/traits must be a JSON object: {e}")))
}

/// A capture time from JavaScript's `Date.now()`; the JS API stamps messages when they are
/// captured, which is earlier than they reach the core when they waited for consent.
fn at(ms: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms as u64)
}

fn id(result: Result<pulseline::MessageId, pulseline::Error>) -> Result<String, JsError> {
    result.map(|id| id.to_string()).map_err(to_js)
}
