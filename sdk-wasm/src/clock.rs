//! Time in a browser: `performance.now()` / `Date.now()` through web-time, waits through
//! `setTimeout` on the page's event loop.

use pulseline::{BoxFuture, Clock};
use wasm_bindgen::prelude::*;
use web_time::{Instant, SystemTime};

#[wasm_bindgen]
extern "C" {
    // The global one, so the same code runs in a page, a worker and Node (the wasm tests).
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &js_sys::Function, ms: f64) -> JsValue;
}

/// The core's [`Clock`] for the page's event loop.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BrowserClock;

impl Clock for BrowserClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn system_time(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        let ms = deadline
            .saturating_duration_since(Instant::now())
            .as_secs_f64()
            * 1e3;
        let timer = js_sys::Promise::new(&mut |resolve, _reject| {
            set_timeout(&resolve, ms.ceil());
        });
        Box::pin(async move {
            // A timer promise only ever resolves.
            let _ = wasm_bindgen_futures::JsFuture::from(timer).await;
        })
    }
}
