//! JavaScript values serialized straight into the message bytes: `serde::Serialize` over a
//! `napi_value`, walking objects and arrays with raw Node-API calls, so a `track` builds no
//! intermediate `serde_json::Value` (and no JavaScript string via `JSON.stringify`).
//!
//! Semantics follow `JSON.stringify` where it is safe: `undefined` object fields are left out
//! (and become `null` in arrays), `Date` becomes its ISO 8601 string. Where `JSON.stringify`
//! would silently lose data this rejects the call instead, naming the key path: functions,
//! symbols, `NaN`/`±Infinity`, invalid dates, and cycles (through a depth limit). `BigInt`
//! becomes a JSON integer (up to 128 bits). `Map`, `Set`, `WeakMap`, `WeakSet`, `ArrayBuffer`,
//! typed arrays (`Buffer` included), `DataView` and `Promise` are rejected as the Python SDK
//! rejects `set` and `bytes` (`JSON.stringify` would write `{}` or a map of byte indexes).
//!
//! The walk stops as soon as its output must exceed the 32 KiB message limit: a structure
//! shared many ways (a DAG) expands exponentially when written out, and a sparse array
//! `a[2 ** 32 - 2] = 1` has four billion elements; neither may cost more than a small message.
// Raw Node-API calls: the safe wrappers allocate a `String` per key and cost several times more.
#![allow(unsafe_code)]

use std::{
    cell::{Cell, RefCell},
    ptr,
};

use pulseline::{ConversionFailure, Depth, JsonPath, limits::MAX_MESSAGE_BYTES};

use napi::sys;
use serde::{
    Serialize, Serializer,
    ser::{SerializeMap, SerializeSeq},
};

/// Strings up to this size are read through a stack buffer in one call.
const STACK_STRING: usize = 256;

/// The types [`Js`] converts, as the error for any other type lists them.
const SUPPORTED: &str = "plain objects, arrays, strings, numbers, booleans, null, Date, BigInt";

/// Why a value could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// The value has no JSON form (the core's kinds and messages).
    Value(ConversionFailure),
    /// A JavaScript exception is pending (a getter threw while being read).
    Exception,
    /// The JSON written for the call's values passed [`MAX_MESSAGE_BYTES`].
    TooLarge,
    /// Node-API refused a call (should not happen on the JavaScript thread).
    Napi(&'static str),
}

impl FailureKind {
    fn unsupported(what: &str) -> Self {
        FailureKind::Value(ConversionFailure::Unsupported {
            what: what.to_owned(),
            supported: SUPPORTED,
        })
    }
}

/// A conversion failure and where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) kind: FailureKind,
    /// Built while the error unwinds, innermost segment first.
    pub(crate) path: JsonPath,
}

/// The state of one conversion: the env, and the failure if one happened.
#[derive(Debug)]
pub(crate) struct Converter {
    env: sys::napi_env,
    failure: RefCell<Option<Failure>>,
    /// A lower bound of the JSON bytes this conversion has written so far.
    written: Cell<usize>,
    /// `Map`, `Set`, `WeakMap`, `WeakSet`, looked up once per conversion.
    collections: RefCell<Option<[sys::napi_value; 4]>>,
}

impl Converter {
    pub(crate) fn new(env: sys::napi_env) -> Self {
        Converter {
            env,
            failure: RefCell::new(None),
            written: Cell::new(0),
            collections: RefCell::new(None),
        }
    }

    pub(crate) fn env(&self) -> sys::napi_env {
        self.env
    }

    /// A value to serialize (at the top of an argument).
    pub(crate) fn value(&self, value: sys::napi_value) -> Js<'_> {
        Js {
            cx: self,
            value,
            kind: None,
            depth: Depth::ARGUMENT,
        }
    }

    /// The failure recorded by a serialization that returned an error, if it was ours.
    pub(crate) fn take_failure(&self) -> Option<Failure> {
        self.failure.borrow_mut().take()
    }

    fn fail<E: serde::ser::Error>(&self, kind: FailureKind) -> E {
        let message = format!("{kind:?}");
        *self.failure.borrow_mut() = Some(Failure {
            kind,
            path: JsonPath::default(),
        });
        E::custom(message)
    }

    /// Counts `bytes` of output; fails once the conversion is sure to exceed the message limit.
    fn charge(&self, bytes: usize) -> Result<(), FailureKind> {
        let written = self.written.get().saturating_add(bytes);
        self.written.set(written);
        match written > MAX_MESSAGE_BYTES {
            true => Err(FailureKind::TooLarge),
            false => Ok(()),
        }
    }

    /// What an object is when it is one of the types JSON cannot carry, or `None`.
    fn unsupported_object(
        &self,
        value: sys::napi_value,
    ) -> Result<Option<&'static str>, FailureKind> {
        type Check =
            unsafe extern "C" fn(sys::napi_env, sys::napi_value, *mut bool) -> sys::napi_status;
        const CHECKS: [(Check, &str); 4] = [
            (
                sys::napi_is_typedarray,
                "a typed array or Buffer (send e.g. buffer.toString('base64'))",
            ),
            (
                sys::napi_is_arraybuffer,
                "an ArrayBuffer (send e.g. Buffer.from(ab).toString('base64'))",
            ),
            (sys::napi_is_dataview, "a DataView"),
            (sys::napi_is_promise, "a Promise (await it first)"),
        ];
        for (check, what) in CHECKS {
            let mut yes = false;
            // SAFETY: as in `type_of`.
            self::check(unsafe { check(self.env, value, &mut yes) }, "is")?;
            if yes {
                return Ok(Some(what));
            }
        }
        const COLLECTIONS: [&str; 4] = [
            "a Map (send Object.fromEntries(map))",
            "a Set (send [...set])",
            "a WeakMap",
            "a WeakSet",
        ];
        let constructors = self.collections()?;
        for (constructor, what) in constructors.into_iter().zip(COLLECTIONS) {
            let mut yes = false;
            // SAFETY: as in `element` (`instanceof` may run a `Symbol.hasInstance` and throw).
            let status = unsafe { sys::napi_instanceof(self.env, value, constructor, &mut yes) };
            self.check_call(status, "instanceof")?;
            if yes {
                return Ok(Some(what));
            }
        }
        Ok(None)
    }

    fn collections(&self) -> Result<[sys::napi_value; 4], FailureKind> {
        if let Some(found) = *self.collections.borrow() {
            return Ok(found);
        }
        let mut global = ptr::null_mut();
        // SAFETY: as in `type_of`.
        check(
            unsafe { sys::napi_get_global(self.env, &mut global) },
            "global",
        )?;
        let mut found = [ptr::null_mut(); 4];
        for (slot, name) in found
            .iter_mut()
            .zip([c"Map", c"Set", c"WeakMap", c"WeakSet"])
        {
            // SAFETY: as in `element`; `name` is NUL-terminated.
            let status =
                unsafe { sys::napi_get_named_property(self.env, global, name.as_ptr(), slot) };
            self.check_call(status, "constructor")?;
        }
        *self.collections.borrow_mut() = Some(found);
        Ok(found)
    }

    /// Adds the index a failure coming up from an element sits at.
    fn at_index(&self, index: u32) {
        if let Some(f) = self.failure.borrow_mut().as_mut() {
            f.path.push_index(u64::from(index));
        }
    }

    /// Adds the key a failure coming up from a field sits under.
    fn at_key(&self, key: String) {
        if let Some(f) = self.failure.borrow_mut().as_mut() {
            f.path.push_key(key);
        }
    }

    pub(crate) fn type_of(
        &self,
        value: sys::napi_value,
    ) -> Result<sys::napi_valuetype, FailureKind> {
        let mut t = 0;
        // SAFETY: `env` and `value` come from the current callback on the JavaScript thread.
        check(
            unsafe { sys::napi_typeof(self.env, value, &mut t) },
            "typeof",
        )?;
        Ok(t)
    }

    /// Reads a JavaScript string (the caller checked its type).
    pub(crate) fn string(&self, value: sys::napi_value) -> Result<String, FailureKind> {
        self.string_at_most(value, usize::MAX)
    }

    /// Reads a JavaScript string of at most `max` UTF-8 bytes; a longer one is `TooLarge`
    /// before anything is copied (a property value cannot exceed the message limit).
    fn string_at_most(&self, value: sys::napi_value, max: usize) -> Result<String, FailureKind> {
        let mut buf = [0u8; STACK_STRING];
        let mut len = 0usize;
        // SAFETY: the buffer is writable for its whole length; Node writes at most len-1 bytes
        // plus a NUL and never splits a UTF-8 sequence.
        check(
            unsafe {
                sys::napi_get_value_string_utf8(
                    self.env,
                    value,
                    buf.as_mut_ptr().cast(),
                    STACK_STRING,
                    &mut len,
                )
            },
            "string",
        )?;
        // A string that may have been cut short (a 4-byte character might not have fitted).
        if len + 4 >= STACK_STRING {
            // SAFETY: a null buffer asks only for the length in bytes.
            check(
                unsafe {
                    sys::napi_get_value_string_utf8(self.env, value, ptr::null_mut(), 0, &mut len)
                },
                "string",
            )?;
            if len > max {
                return Err(FailureKind::TooLarge);
            }
            let mut heap = vec![0u8; len + 1];
            // SAFETY: as above, with a buffer one byte longer than the string.
            check(
                unsafe {
                    sys::napi_get_value_string_utf8(
                        self.env,
                        value,
                        heap.as_mut_ptr().cast(),
                        len + 1,
                        &mut len,
                    )
                },
                "string",
            )?;
            heap.truncate(len);
            return String::from_utf8(heap).map_err(|_| FailureKind::Napi("utf8"));
        }
        std::str::from_utf8(&buf[..len])
            .map(str::to_owned)
            .map_err(|_| FailureKind::Napi("utf8"))
    }

    pub(crate) fn number(&self, value: sys::napi_value) -> Result<f64, FailureKind> {
        let mut n = 0.0;
        // SAFETY: as in `type_of`.
        check(
            unsafe { sys::napi_get_value_double(self.env, value, &mut n) },
            "number",
        )?;
        Ok(n)
    }

    pub(crate) fn is_date(&self, value: sys::napi_value) -> Result<bool, FailureKind> {
        let mut yes = false;
        // SAFETY: as in `type_of`.
        check(
            unsafe { sys::napi_is_date(self.env, value, &mut yes) },
            "is_date",
        )?;
        Ok(yes)
    }

    /// Milliseconds since the epoch of a `Date` (NaN for an invalid date).
    pub(crate) fn date_millis(&self, value: sys::napi_value) -> Result<f64, FailureKind> {
        let mut ms = 0.0;
        // SAFETY: as in `type_of`; the caller checked it is a Date.
        check(
            unsafe { sys::napi_get_date_value(self.env, value, &mut ms) },
            "date",
        )?;
        Ok(ms)
    }

    pub(crate) fn is_array(&self, value: sys::napi_value) -> Result<bool, FailureKind> {
        let mut yes = false;
        // SAFETY: as in `type_of`.
        check(
            unsafe { sys::napi_is_array(self.env, value, &mut yes) },
            "is_array",
        )?;
        Ok(yes)
    }

    fn array_length(&self, value: sys::napi_value) -> Result<u32, FailureKind> {
        let mut len = 0;
        // SAFETY: as in `type_of`; the value is an array.
        check(
            unsafe { sys::napi_get_array_length(self.env, value, &mut len) },
            "length",
        )?;
        Ok(len)
    }

    fn element(&self, value: sys::napi_value, index: u32) -> Result<sys::napi_value, FailureKind> {
        let mut out = ptr::null_mut();
        // SAFETY: as in `type_of`. A getter may throw: reported as a pending exception.
        let status = unsafe { sys::napi_get_element(self.env, value, index, &mut out) };
        self.check_call(status, "element")?;
        Ok(out)
    }

    fn property(
        &self,
        object: sys::napi_value,
        key: sys::napi_value,
    ) -> Result<sys::napi_value, FailureKind> {
        let mut out = ptr::null_mut();
        // SAFETY: as in `element`.
        let status = unsafe { sys::napi_get_property(self.env, object, key, &mut out) };
        self.check_call(status, "property")?;
        Ok(out)
    }

    /// Own enumerable string keys, in property order (what `Object.keys` returns).
    pub(crate) fn keys(&self, object: sys::napi_value) -> Result<sys::napi_value, FailureKind> {
        let mut out = ptr::null_mut();
        // SAFETY: as in `element` (a Proxy's ownKeys trap may throw).
        let status = unsafe {
            sys::napi_get_all_property_names(
                self.env,
                object,
                sys::KeyCollectionMode::own_only,
                sys::KeyFilter::enumerable | sys::KeyFilter::skip_symbols,
                sys::KeyConversion::numbers_to_strings,
                &mut out,
            )
        };
        self.check_call(status, "keys")?;
        Ok(out)
    }

    /// Calls `visit(key, value)` for each own enumerable field whose value is not `undefined`.
    pub(crate) fn for_each_field(
        &self,
        object: sys::napi_value,
        mut visit: impl FnMut(String, sys::napi_value, sys::napi_valuetype) -> Result<(), FailureKind>,
    ) -> Result<(), FailureKind> {
        let keys = self.keys(object)?;
        for i in 0..self.array_length(keys)? {
            let key = self.element(keys, i)?;
            let value = self.property(object, key)?;
            let kind = self.type_of(value)?;
            if kind != sys::ValueType::napi_undefined {
                visit(self.string_at_most(key, MAX_MESSAGE_BYTES)?, value, kind)?;
            }
        }
        Ok(())
    }

    fn check_call(&self, status: sys::napi_status, what: &'static str) -> Result<(), FailureKind> {
        if status == sys::Status::napi_pending_exception {
            return Err(FailureKind::Exception);
        }
        check(status, what)
    }

    fn bigint<S: Serializer>(&self, value: sys::napi_value, s: S) -> Result<S::Ok, S::Error> {
        let (mut sign, mut count) = (0i32, 0usize);
        // SAFETY: null sign and words pointers ask for the word count only.
        check(
            unsafe {
                sys::napi_get_value_bigint_words(
                    self.env,
                    value,
                    ptr::null_mut(),
                    &mut count,
                    ptr::null_mut(),
                )
            },
            "bigint",
        )
        .map_err(|k| self.fail::<S::Error>(k))?;
        if count > 2 {
            return Err(self.fail(FailureKind::Value(ConversionFailure::IntegerRange)));
        }
        let mut words = [0u64; 2];
        count = words.len();
        // SAFETY: `words` holds `count` (≤ 2) words.
        check(
            unsafe {
                sys::napi_get_value_bigint_words(
                    self.env,
                    value,
                    &mut sign,
                    &mut count,
                    words.as_mut_ptr(),
                )
            },
            "bigint",
        )
        .map_err(|k| self.fail::<S::Error>(k))?;
        let magnitude = u128::from(words[0]) | (u128::from(words[1]) << 64);
        if sign == 0 {
            match u64::try_from(magnitude) {
                Ok(m) => s.serialize_u64(m),
                Err(_) => s.serialize_u128(magnitude),
            }
        } else if magnitude <= 1 << 63 {
            s.serialize_i64((magnitude as i128).wrapping_neg() as i64)
        } else if magnitude <= 1 << 127 {
            s.serialize_i128((magnitude as i128).wrapping_neg())
        } else {
            Err(self.fail(FailureKind::Value(ConversionFailure::IntegerRange)))
        }
    }
}

fn check(status: sys::napi_status, what: &'static str) -> Result<(), FailureKind> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(FailureKind::Napi(what))
    }
}

/// One JavaScript value, serializable with any `serde` serializer.
#[derive(Debug)]
pub(crate) struct Js<'c> {
    cx: &'c Converter,
    value: sys::napi_value,
    /// Its `typeof`, when the caller already asked.
    kind: Option<sys::napi_valuetype>,
    /// Arrays and objects around this value (the core's one nesting rule).
    depth: Depth,
}

impl Js<'_> {
    /// The same value with its `typeof` already known.
    pub(crate) fn with_kind(mut self, kind: sys::napi_valuetype) -> Self {
        self.kind = Some(kind);
        self
    }
}

impl Serialize for Js<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let cx = self.cx;
        let kind = match self.kind {
            Some(kind) => kind,
            None => cx.type_of(self.value).map_err(|k| cx.fail::<S::Error>(k))?,
        };
        let fail = |k| cx.fail::<S::Error>(k);
        // Each value's smallest JSON form (`1`, `{}`, `""`); strings add their length below.
        cx.charge(match kind {
            sys::ValueType::napi_undefined | sys::ValueType::napi_null => 4,
            sys::ValueType::napi_boolean => 4,
            _ => 1,
        })
        .map_err(fail)?;
        match kind {
            sys::ValueType::napi_undefined | sys::ValueType::napi_null => s.serialize_unit(),
            sys::ValueType::napi_boolean => {
                let mut b = false;
                // SAFETY: as in `Converter::type_of`; the value is a boolean.
                check(
                    unsafe { sys::napi_get_value_bool(cx.env, self.value, &mut b) },
                    "bool",
                )
                .map_err(fail)?;
                s.serialize_bool(b)
            }
            sys::ValueType::napi_number => {
                let n = cx.number(self.value).map_err(fail)?;
                serialize_number(n, s, cx)
            }
            sys::ValueType::napi_string => {
                let text = cx
                    .string_at_most(self.value, MAX_MESSAGE_BYTES)
                    .map_err(fail)?;
                cx.charge(text.len() + 1).map_err(fail)?;
                s.serialize_str(&text)
            }
            sys::ValueType::napi_bigint => cx.bigint(self.value, s),
            sys::ValueType::napi_object => self.serialize_object(s),
            sys::ValueType::napi_function => Err(fail(FailureKind::unsupported("a function"))),
            sys::ValueType::napi_symbol => Err(fail(FailureKind::unsupported("a symbol"))),
            _ => Err(fail(FailureKind::unsupported("an external value"))),
        }
    }
}

impl Js<'_> {
    fn serialize_object<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let cx = self.cx;
        let fail = |k| cx.fail::<S::Error>(k);
        let enter = || self.depth.enter().map_err(|k| fail(FailureKind::Value(k)));
        let child = |value, kind, depth| Js {
            cx,
            value,
            kind,
            depth,
        };
        if cx.is_array(self.value).map_err(fail)? {
            let inner = enter()?;
            let len = cx.array_length(self.value).map_err(fail)?;
            let mut seq = s.serialize_seq(Some(len as usize))?;
            for i in 0..len {
                cx.charge(1).map_err(fail)?;
                let item = cx.element(self.value, i).map_err(fail)?;
                seq.serialize_element(&child(item, None, inner))
                    .inspect_err(|_| cx.at_index(i))?;
            }
            return seq.end();
        }
        if cx.is_date(self.value).map_err(fail)? {
            let ms = cx.date_millis(self.value).map_err(fail)?;
            return match pulseline::iso8601_millis(ms) {
                Some(text) => s.serialize_str(&text),
                None => Err(fail(FailureKind::Value(ConversionFailure::InvalidDate))),
            };
        }
        if let Some(what) = cx.unsupported_object(self.value).map_err(fail)? {
            return Err(fail(FailureKind::unsupported(what)));
        }
        let inner = enter()?;
        let mut map = s.serialize_map(None)?;
        let mut failed = None;
        let walked = cx.for_each_field(self.value, |key, value, kind| {
            cx.charge(key.len() + 3)?;
            match map.serialize_entry(&key, &child(value, Some(kind), inner)) {
                Ok(()) => Ok(()),
                Err(e) => {
                    cx.at_key(key);
                    failed = Some(e);
                    Err(FailureKind::Exception)
                }
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        walked.map_err(fail)?;
        map.end()
    }
}

fn serialize_number<S: Serializer>(n: f64, s: S, cx: &Converter) -> Result<S::Ok, S::Error> {
    if !n.is_finite() {
        return Err(cx.fail(FailureKind::Value(ConversionFailure::NotFinite)));
    }
    // Integral values within 2^53 are written as integers (`42`, not `42.0`), as JSON.stringify.
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        if n == 0.0 && n.is_sign_negative() {
            return s.serialize_i64(0);
        }
        return s.serialize_i64(n as i64);
    }
    s.serialize_f64(n)
}
