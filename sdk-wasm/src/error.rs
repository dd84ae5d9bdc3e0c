//! Core errors as JavaScript errors, and the console.

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    fn console_warn(message: &str);
}

/// A core error as a JavaScript `Error` whose message says what is wrong and what to fix.
pub(crate) fn to_js(error: pulseline::Error) -> JsError {
    JsError::new(&error.to_string())
}

/// `console.warn` in wasm, nothing on the host (native unit tests).
pub(crate) fn warn(message: &str) {
    if cfg!(target_arch = "wasm32") {
        console_warn(message);
    }
}
