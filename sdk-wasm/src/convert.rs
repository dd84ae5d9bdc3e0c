//! Page values (`properties`, `traits`) to JSON text by the core's rules, as the Node SDK
//! converts them: the same accepted types, the same refusals with the core's messages and
//! paths (`pulseline::ConversionFailure`, `JsonPath`, `Depth`), and the same 32 KiB budget
//! checked while the text is written, so a structure shared many ways stops at the limit
//! instead of expanding.
//!
//! Plain objects (own enumerable string keys, as `Object.keys`), arrays, strings, finite
//! numbers, booleans, `null`; `undefined` fields are left out of objects and are `null` in
//! arrays; a `Date` is its ISO 8601 string (its own `toJSON` is not called); a `BigInt` is a
//! JSON integer of at most 128 bits; `new Number(1)` and the like are the value they wrap.
//! Refused: `NaN`/`±Infinity`, functions and symbols (a `toJSON` method included: it is not
//! called), `Map`, `Set`, `WeakMap`, `WeakSet`, `ArrayBuffer`, typed arrays, `DataView`,
//! `Promise`, and nesting past 64 levels (a cycle). Types are told by
//! `Object.prototype.toString`, so an object whose `Symbol.toStringTag` claims another type is
//! taken for it, but its text is never spliced into the JSON unchecked.
//!
//! Every call into the page's JavaScript that can run user code (a getter, a Proxy trap) is a
//! `catch` import: an exception becomes a refusal with its path, never a JavaScript exception
//! unwinding through the wasm (which would leave its stack pointer and borrows behind).

use js_sys::Reflect;
use pulseline::{ConversionFailure, Depth, JsonPath, limits::MAX_MESSAGE_BYTES};
use wasm_bindgen::{JsCast, prelude::*};

/// The types this converts, as the error for any other type lists them (Node's list).
const SUPPORTED: &str = "plain objects, arrays, strings, numbers, booleans, null, Date, BigInt";

#[wasm_bindgen]
extern "C" {
    /// Any JavaScript value, to read its `length`.
    type Any;

    /// `Object.prototype.toString.call(value)`: `[object Number]`, `[object Date]`,
    /// `[object Map]`… from the value's type or internal slots, or its `Symbol.toStringTag`
    /// (which a Proxy's `get` trap reads, and may throw from).
    #[wasm_bindgen(catch, js_namespace = ["Object", "prototype", "toString"], js_name = call)]
    fn tag_of(value: &JsValue) -> Result<String, JsValue>;

    /// Own enumerable string keys in property order (a Proxy's `ownKeys` trap may throw).
    #[wasm_bindgen(catch, js_namespace = Object, js_name = keys)]
    fn own_keys(value: &JsValue) -> Result<JsValue, JsValue>;

    /// The time value of a real `Date`; throws for an object that only claims to be one.
    #[wasm_bindgen(catch, js_namespace = ["Date", "prototype", "getTime"], js_name = call)]
    fn date_time(value: &JsValue) -> Result<f64, JsValue>;

    /// `String(value)`: for a number, JavaScript's shortest round-trip form, which is JSON for
    /// every finite number and keeps float printing out of the wasm; for a thrown error, its
    /// text (its own `toString` may throw again).
    #[wasm_bindgen(catch, js_name = String)]
    fn text(value: &JsValue) -> Result<String, JsValue>;

    /// A string's or an array's length (a Proxy's `get` trap may throw).
    #[wasm_bindgen(catch, method, getter, structural)]
    fn length(this: &Any) -> Result<f64, JsValue>;
}

/// Why a value could not be converted.
enum Problem {
    /// No JSON form: the core's kinds and messages.
    Value(ConversionFailure),
    /// The page's code threw while the value was read (a getter, a Proxy trap).
    Threw(JsValue),
    /// The JSON text passed [`MAX_MESSAGE_BYTES`].
    TooLarge,
}

/// A problem and where it happened; the path is built while the failure unwinds.
struct Failure {
    problem: Problem,
    path: JsonPath,
}

impl From<Problem> for Failure {
    fn from(problem: Problem) -> Self {
        Failure {
            problem,
            path: JsonPath::default(),
        }
    }
}

impl From<ConversionFailure> for Failure {
    fn from(kind: ConversionFailure) -> Self {
        Problem::Value(kind).into()
    }
}

fn threw(error: JsValue) -> Failure {
    Problem::Threw(error).into()
}

fn unsupported(what: &str) -> Failure {
    ConversionFailure::Unsupported {
        what: what.to_owned(),
        supported: SUPPORTED,
    }
    .into()
}

type Walked = Result<(), Failure>;

/// JSON text of `value` (`{}` for `undefined` or `null`), the `properties` or `traits` of a
/// message: `argument` names it in errors. The fields of `base` (a page's url, path, title…)
/// are written first: the caller leaves out those `value` has. Throws an `Error` naming the
/// path of the first value that cannot be sent.
#[wasm_bindgen(js_name = toJson)]
pub fn to_json(
    argument: &str,
    value: &JsValue,
    base: Option<js_sys::Object>,
) -> Result<String, JsError> {
    let mut writer = Writer {
        out: String::new(),
        base,
    };
    let walked = match value.is_undefined() || value.is_null() {
        true => writer.object(&JsValue::NULL, Depth::ARGUMENT),
        false => writer.value(value, Depth::ARGUMENT),
    };
    walked.map(|()| writer.out).map_err(|failure| {
        let path = failure.path.render(argument);
        JsError::new(&match failure.problem {
            Problem::Value(kind) => kind.message(&path),
            Problem::Threw(error) => format!(
                "{path}: reading it threw {} (a getter or Proxy of the page's code)",
                text(&error).unwrap_or_default()
            ),
            Problem::TooLarge => format!(
                "message is above the {MAX_MESSAGE_BYTES}-byte limit (conversion stopped at \
                 {path}); trim properties or traits"
            ),
        })
    })
}

struct Writer {
    out: String,
    /// Fields written before the argument's own, taken by the first object.
    base: Option<js_sys::Object>,
}

impl Writer {
    /// Appends JSON text; fails once the output passes the message limit.
    fn push(&mut self, text: &str) -> Walked {
        self.out.push_str(text);
        match self.out.len() > MAX_MESSAGE_BYTES {
            true => Err(Problem::TooLarge.into()),
            false => Ok(()),
        }
    }

    /// `depth`: the arrays and objects around `value`.
    fn value(&mut self, value: &JsValue, depth: Depth) -> Walked {
        if value.is_function() {
            return Err(unsupported("a function"));
        }
        let tag = tag_of(value).map_err(threw)?;
        let name = tag.strip_prefix("[object ").unwrap_or_default();
        match name {
            "Undefined]" | "Null]" => return self.push("null"),
            "String]" => return self.string(value),
            // `String(n)` is the number's JSON (`-0` is `0`, as JSON.stringify writes it), or
            // `NaN`, `Infinity`, `-Infinity`. An object only claiming the type by its
            // `Symbol.toStringTag` may print anything: only number text is written as it is.
            "Number]" | "Boolean]" | "BigInt]" => {
                let number = text(value).map_err(threw)?;
                if number == "NaN" || number.ends_with("Infinity") {
                    return Err(ConversionFailure::NotFinite.into());
                }
                let digits = |b: u8| b.is_ascii_digit() || b"+-.e".contains(&b);
                if name == "BigInt]" && number.bytes().all(digits) {
                    return self.bigint(number);
                }
                if number == "true"
                    || number == "false"
                    || (!number.is_empty() && number.bytes().all(digits))
                {
                    return self.push(&number);
                }
            }
            "Symbol]" => return Err(unsupported("a symbol")),
            "Array]" => return self.array(value, depth.enter()?),
            "Date]" => {
                let ms = date_time(value).map_err(threw)?;
                let date = pulseline::iso8601_millis(ms).ok_or(ConversionFailure::InvalidDate)?;
                return self.string_text(&date);
            }
            _ => {}
        }
        for (refused, what) in REFUSED {
            if name == refused || (refused.is_empty() && name.ends_with("Array]")) {
                return Err(unsupported(what));
            }
        }
        self.object(value, depth)
    }

    fn array(&mut self, array: &JsValue, inner: Depth) -> Walked {
        // The budget bounds the loop, whatever the length.
        let length = array.unchecked_ref::<Any>().length().map_err(threw)? as u32;
        self.push("[")?;
        for i in 0..length {
            if i > 0 {
                self.push(",")?;
            }
            Reflect::get(array, &i.into())
                .map_err(threw)
                .and_then(|item| self.value(&item, inner))
                .map_err(|mut f| {
                    f.path.push_index(u64::from(i));
                    f
                })?;
        }
        self.push("]")
    }

    /// Own enumerable fields whose value is not `undefined` (`base`'s first, at the top).
    fn object(&mut self, object: &JsValue, depth: Depth) -> Walked {
        let inner = depth.enter()?;
        self.push("{")?;
        let mut first = true;
        if let Some(base) = self.base.take() {
            self.fields(&base, inner, &mut first)?;
        }
        if !object.is_null() {
            self.fields(object, inner, &mut first)?;
        }
        self.push("}")
    }

    fn fields(&mut self, object: &JsValue, inner: Depth, first: &mut bool) -> Walked {
        let keys = own_keys(object).map_err(threw)?;
        let count = keys.unchecked_ref::<Any>().length().map_err(threw)? as u32;
        for i in 0..count {
            let key = Reflect::get(&keys, &i.into()).map_err(threw)?;
            let written = Reflect::get(object, &key).map_err(threw).and_then(|value| {
                if value.is_undefined() {
                    return Ok(());
                }
                if !std::mem::take(first) {
                    self.push(",")?;
                }
                self.string(&key)?;
                self.push(":")?;
                self.value(&value, inner)
            });
            written.map_err(|mut f| {
                f.path.push_key(key.as_string().unwrap_or_default());
                f
            })?;
        }
        Ok(())
    }

    /// A JavaScript string. One longer than the budget in UTF-16 units is longer in UTF-8
    /// too: refused before it is copied into the wasm.
    fn string(&mut self, value: &JsValue) -> Walked {
        if value.unchecked_ref::<Any>().length().map_err(threw)? > MAX_MESSAGE_BYTES as f64 {
            return Err(Problem::TooLarge.into());
        }
        // Lone surrogates become U+FFFD (TextEncoder), as Node-API converts them. A `String`
        // object is its text, as JSON.stringify writes it.
        let text = value.as_string().or_else(|| text(value).ok());
        self.string_text(&text.unwrap_or_default())
    }

    fn string_text(&mut self, text: &str) -> Walked {
        self.out.push('"');
        // Runs of characters that need no escape are copied whole.
        let mut run = 0;
        for (i, byte) in text.bytes().enumerate() {
            if byte >= 0x20 && byte != b'"' && byte != b'\\' {
                continue;
            }
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let escape = [
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ];
            self.out.push_str(&text[run..i]);
            self.out
                .push_str(std::str::from_utf8(&escape).unwrap_or_default());
            run = i + 1;
        }
        self.out.push_str(&text[run..]);
        self.push("\"")
    }

    /// A JSON integer, refused past 128 bits as the Node SDK refuses it (`-2^127` to
    /// `2^128 - 1`: what it reads as an `i128` or a `u128`).
    fn bigint(&mut self, digits: String) -> Walked {
        // Compared as decimal text: equal lengths compare like the numbers.
        let (magnitude, max) = match digits.strip_prefix('-') {
            Some(m) => (m, "170141183460469231731687303715884105728"),
            None => (digits.as_str(), "340282366920938463463374607431768211455"),
        };
        if (magnitude.len(), magnitude) > (max.len(), max) {
            return Err(ConversionFailure::IntegerRange.into());
        }
        self.push(&digits)
    }
}

/// Objects of these types (by their tag, less `[object `) are refused, with the Node SDK's
/// advice (less Node's `Buffer`); the empty name stands for the typed arrays (`Uint8Array]`…,
/// real arrays were taken before).
const REFUSED: [(&str, &str); 9] = [
    ("Map]", "a Map (send Object.fromEntries(map))"),
    ("Set]", "a Set (send [...set])"),
    ("WeakMap]", "a WeakMap"),
    ("WeakSet]", "a WeakSet"),
    (
        "ArrayBuffer]",
        "an ArrayBuffer (send an encoding, e.g. base64)",
    ),
    (
        "SharedArrayBuffer]",
        "an ArrayBuffer (send an encoding, e.g. base64)",
    ),
    ("DataView]", "a DataView"),
    ("Promise]", "a Promise (await it first)"),
    ("", "a typed array (send an encoding, e.g. base64)"),
];
