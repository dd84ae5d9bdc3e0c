//! Python values to JSON, serialized straight from the Python objects into the message bytes
//! (no intermediate `serde_json::Value`, no Python `json.dumps`).
//!
//! Supported: `dict` (string keys) and any other `collections.abc.Mapping`, `list`, `tuple`, `str`,
//! `int` (any size), `float` (finite), `bool`, `None`, `datetime.datetime` and `datetime.date`
//! (ISO 8601 via `isoformat()`), `decimal.Decimal` (its exact digits, as a JSON number),
//! `uuid.UUID` (hyphenated string) and `enum.Enum` (its `value`), including subclasses of all of
//! them. Anything else fails, and the failure records the path to the offending value so the
//! caller can say which key to fix.
//!
//! Numbers are written as what they numerically are, read through the built-in type (`int`,
//! `float`, `Decimal`), never through a subclass's `__str__`, so no subclass can splice text into
//! the message. Mappings other than a plain `dict` are read through their own methods (see
//! [`Value::mapping`]), so a mapping that redacts or computes its values sends what it shows.
//! The caller bounds the output (`pulseline::write_json_within`): serialization stops once the
//! message passes its size limit, however often a value is shared.

use std::cell::RefCell;

use pulseline::{ConversionFailure, Depth, JsonPath, limits::MAX_JSON_DEPTH};
use pyo3::{
    prelude::*,
    sync::PyOnceLock,
    types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType},
};
use serde::ser::{Error as _, Serialize, SerializeMap, SerializeSeq, Serializer};

/// Why a value could not be converted, and where it sits under the argument.
#[derive(Debug)]
pub(crate) struct Failure {
    /// Built while unwinding from the offending value up to the argument.
    pub(crate) path: JsonPath,
    pub(crate) kind: FailureKind,
}

#[derive(Debug)]
pub(crate) enum FailureKind {
    /// The value has no JSON form (the core's kinds and messages).
    Value(ConversionFailure),
    /// Python raised while reading the value (e.g. a property of an Enum, `isoformat()`).
    Python(PyErr),
}

/// One argument to convert (`properties`, `traits`, `context`, `integrations`), holding the
/// first failure met while serializing it.
pub(crate) struct Argument<'py> {
    value: Bound<'py, PyAny>,
    failure: RefCell<Option<Failure>>,
}

impl<'py> Argument<'py> {
    pub(crate) fn new(value: Bound<'py, PyAny>) -> Self {
        Argument {
            value,
            failure: RefCell::new(None),
        }
    }

    /// The failure that stopped serialization, if it was a problem with the Python value.
    pub(crate) fn take_failure(&self) -> Option<Failure> {
        self.failure.borrow_mut().take()
    }

    fn root(&self) -> Value<'_, 'py> {
        Value {
            value: &self.value,
            failure: &self.failure,
            depth: Depth::ARGUMENT,
        }
    }
}

impl Serialize for Argument<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.root().serialize(s)
    }
}

struct Value<'a, 'py> {
    value: &'a Bound<'py, PyAny>,
    failure: &'a RefCell<Option<Failure>>,
    /// Arrays and objects around this value (the core's one nesting rule).
    depth: Depth,
}

impl<'py> Value<'_, 'py> {
    /// A value standing for this one (an Enum's `value`), at the same depth.
    fn same_level<'b>(&'b self, value: &'b Bound<'py, PyAny>) -> Value<'b, 'py> {
        Value {
            value,
            failure: self.failure,
            depth: self.depth,
        }
    }

    /// The depth inside this value, which is a dict, mapping, list or tuple.
    fn enter<E: serde::ser::Error>(&self) -> Result<Depth, E> {
        self.depth.enter().map_err(|k| self.fail(k))
    }

    fn child<'b>(&'b self, value: &'b Bound<'py, PyAny>, depth: Depth) -> Value<'b, 'py> {
        Value {
            value,
            failure: self.failure,
            depth,
        }
    }

    fn fail<E: serde::ser::Error>(&self, kind: ConversionFailure) -> E {
        self.record(FailureKind::Value(kind))
    }

    fn record<E: serde::ser::Error>(&self, kind: FailureKind) -> E {
        *self.failure.borrow_mut() = Some(Failure {
            path: JsonPath::default(),
            kind,
        });
        E::custom("unsupported Python value")
    }

    fn python<E: serde::ser::Error>(&self, err: PyErr) -> E {
        self.record(FailureKind::Python(err))
    }

    /// Adds the key a failure coming up from a child sits under.
    fn at_key<E>(&self, key: &str, err: E) -> E {
        if let Some(failure) = self.failure.borrow_mut().as_mut() {
            failure.path.push_key(key);
        }
        err
    }

    /// Adds the index a failure coming up from a child sits at.
    fn at_index<E>(&self, index: usize, err: E) -> E {
        if let Some(failure) = self.failure.borrow_mut().as_mut() {
            failure.path.push_index(index as u64);
        }
        err
    }

    fn str<'s, E: serde::ser::Error>(&self, s: &'s Bound<'py, PyString>) -> Result<&'s str, E> {
        self.text(s, false)
    }

    /// Borrows CPython's cached UTF-8 (no copy for ASCII strings). Fails only for lone
    /// surrogates, which UTF-8 (and so JSON text) cannot carry.
    fn text<'s, E: serde::ser::Error>(
        &self,
        s: &'s Bound<'py, PyString>,
        key: bool,
    ) -> Result<&'s str, E> {
        s.to_str().map_err(|e| {
            let index = surrogate_index(s.py(), &e);
            self.fail(ConversionFailure::LoneSurrogate { key, index })
        })
    }

    /// A plain `dict`. The user's code that runs while its values are converted (an
    /// `isoformat()`, an Enum's `value`) may change it: a change of size is refused like
    /// Python's own dict iteration does, and the loop never asks pyo3's iterator for more than
    /// the entries it started with (either would be a panic there).
    fn dict<S: Serializer>(&self, dict: &Bound<'py, PyDict>, s: S) -> Result<S::Ok, S::Error> {
        let inner = self.enter()?;
        let len = dict.len();
        let mut map = s.serialize_map(Some(len))?;
        let mut entries = dict.iter();
        for _ in 0..len {
            if dict.len() != len {
                return Err(self.fail(ConversionFailure::ChangedSize));
            }
            let Some((key, value)) = entries.next() else {
                break;
            };
            self.entry(&mut map, &key, &value, inner)?;
        }
        map.end()
    }

    /// Any other mapping (a dict subclass, `MappingProxyType`, a `collections.abc.Mapping`),
    /// read through its own methods so that overrides apply: `items()` when its class defines
    /// one; else, for a dict subclass overriding `keys()` or `__getitem__`, each of `keys()`
    /// with `self[key]` (what `Mapping.items()` means); else the dict's entries.
    fn mapping<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.value;
        let py = v.py();
        let overrides = |name: &str| -> Result<bool, S::Error> {
            let own = v.get_type().getattr(name).map_err(|e| self.python(e))?;
            let dict_method = py.get_type::<PyDict>().getattr(name);
            Ok(!own.is(&dict_method.map_err(|e| self.python(e))?))
        };
        let by_key = match v.cast::<PyDict>() {
            Ok(dict) if !overrides("items")? => {
                if !overrides("keys")? && !overrides("__getitem__")? {
                    return self.dict(dict, s);
                }
                true
            }
            _ => false,
        };
        let inner = self.enter()?;
        let mut map = s.serialize_map(None)?;
        if by_key {
            let keys = v.call_method0("keys").map_err(|e| self.python(e))?;
            for key in keys.try_iter().map_err(|e| self.python(e))? {
                let key = key.map_err(|e| self.python(e))?;
                let value = v.get_item(&key).map_err(|e| self.python(e))?;
                self.entry(&mut map, &key, &value, inner)?;
            }
        } else {
            let items = v.call_method0("items").map_err(|e| self.python(e))?;
            for item in items.try_iter().map_err(|e| self.python(e))? {
                let item = item.map_err(|e| self.python(e))?;
                let Ok((key, value)) = item.extract::<(Bound<'py, PyAny>, Bound<'py, PyAny>)>()
                else {
                    return Err(self.fail(ConversionFailure::NotAPair {
                        type_name: type_name(&item),
                    }));
                };
                self.entry(&mut map, &key, &value, inner)?;
            }
        }
        map.end()
    }

    fn entry<M: SerializeMap>(
        &self,
        map: &mut M,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
        inner: Depth,
    ) -> Result<(), M::Error> {
        let Ok(key) = key.cast::<PyString>() else {
            return Err(self.fail(ConversionFailure::NonStringKey {
                type_name: type_name(key),
            }));
        };
        let key = self.text(key, true)?;
        map.serialize_key(key)?;
        map.serialize_value(&self.child(value, inner))
            .map_err(|e| self.at_key(key, e))
    }

    fn seq<S: Serializer>(
        &self,
        len: usize,
        items: impl Iterator<Item = Bound<'py, PyAny>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let inner = self.enter()?;
        let mut seq = s.serialize_seq(Some(len))?;
        for (i, item) in items.enumerate() {
            seq.serialize_element(&self.child(&item, inner))
                .map_err(|e| self.at_index(i, e))?;
        }
        seq.end()
    }

    /// An `int` or a subclass: its value (read by CPython from the object, whatever the
    /// subclass defines), never its `__str__`.
    fn int<S: Serializer>(&self, int: &Bound<'py, PyAny>, s: S) -> Result<S::Ok, S::Error> {
        if let Ok(i) = int.extract::<i64>() {
            return s.serialize_i64(i);
        }
        if let Ok(u) = int.extract::<u64>() {
            return s.serialize_u64(u);
        }
        // Beyond 64 bits: JSON numbers have no size limit, so keep every digit. `int.__repr__`
        // of the value, not `str(value)`, which a subclass may define to return anything.
        let py = int.py();
        let digits = py
            .get_type::<PyInt>()
            .call_method1("__repr__", (int,))
            .map_err(|e| self.python(e))?;
        let digits = digits
            .cast::<PyString>()
            .map_err(|e| self.python(e.into()))?;
        raw_number(self.str(digits)?.to_owned(), s)
    }

    fn float<S: Serializer>(&self, f: f64, s: S) -> Result<S::Ok, S::Error> {
        if f.is_finite() {
            s.serialize_f64(f)
        } else {
            Err(self.fail(ConversionFailure::NotFinite))
        }
    }

    /// Everything but the exact built-in types: subclasses and the library types.
    fn other<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.value;
        let py = v.py();
        let is = |ty: PyResult<&Bound<'py, PyType>>| -> Result<bool, S::Error> {
            let ty = ty.map_err(|e| self.python::<S::Error>(e))?;
            v.is_instance(ty).map_err(|e| self.python(e))
        };
        // Enum before the built-ins: `class Plan(str, Enum)` is a str too, but means its value.
        let enum_type = ENUM
            .import(py, "enum", "Enum")
            .map_err(|e| self.python::<S::Error>(e))?;
        if is(Ok(enum_type))? {
            // An Enum is no level of nesting, but a `value` may be another Enum (or, through
            // an overriding property, itself): unwrap a bounded number of times.
            let mut value = v.getattr("value").map_err(|e| self.python(e))?;
            for _ in 0..MAX_JSON_DEPTH {
                if !value.is_instance(enum_type).map_err(|e| self.python(e))? {
                    return self.same_level(&value).serialize(s);
                }
                value = value.getattr("value").map_err(|e| self.python(e))?;
            }
            return Err(self.fail(ConversionFailure::TooDeep));
        }
        if let Ok(string) = v.cast::<PyString>() {
            return s.serialize_str(self.str(string)?);
        }
        if v.is_instance_of::<PyBool>() {
            return s.serialize_bool(v.is_truthy().map_err(|e| self.python(e))?);
        }
        if v.is_instance_of::<PyInt>() {
            return self.int(v, s);
        }
        if let Ok(float) = v.cast::<PyFloat>() {
            return self.float(float.value(), s);
        }
        if v.is_instance_of::<PyDict>() {
            return self.mapping(s);
        }
        if let Ok(list) = v.cast::<PyList>() {
            return self.seq(list.len(), list.iter(), s);
        }
        if let Ok(tuple) = v.cast::<PyTuple>() {
            return self.seq(tuple.len(), tuple.iter(), s);
        }
        // `datetime` is a subclass of `date`; both have the `isoformat()` we want.
        if is(DATE.import(py, "datetime", "date"))? {
            let text = v.call_method0("isoformat").map_err(|e| self.python(e))?;
            let text = text.cast::<PyString>().map_err(|e| self.python(e.into()))?;
            return s.serialize_str(self.str(text)?);
        }
        let decimal = DECIMAL
            .import(py, "decimal", "Decimal")
            .map_err(|e| self.python::<S::Error>(e))?;
        if is(Ok(decimal))? {
            // Decimal's own methods, not the value's: a subclass's `is_finite` or `__str__`
            // could say anything, and the digits go into the message as they are.
            let call = |name: &str| decimal.call_method1(name, (v,));
            let finite = call("is_finite").map_err(|e| self.python(e))?;
            if !finite.is_truthy().map_err(|e| self.python(e))? {
                return Err(self.fail(ConversionFailure::NotFinite));
            }
            // A finite Decimal's string is a valid JSON number ("12.50", "1E+3").
            let digits = call("__str__").map_err(|e| self.python(e))?;
            let digits = digits
                .cast::<PyString>()
                .map_err(|e| self.python(e.into()))?;
            return raw_number(self.str(digits)?.to_owned(), s);
        }
        let uuid = UUID
            .import(py, "uuid", "UUID")
            .map_err(|e| self.python::<S::Error>(e))?;
        if is(Ok(uuid))? {
            let text = uuid
                .call_method1("__str__", (v,))
                .map_err(|e| self.python(e))?;
            let text = text.cast::<PyString>().map_err(|e| self.python(e.into()))?;
            return s.serialize_str(self.str(text)?);
        }
        if is(MAPPING.import(py, "collections.abc", "Mapping"))? {
            return self.mapping(s);
        }
        Err(self.fail(ConversionFailure::Unsupported {
            what: type_name(v),
            supported: SUPPORTED,
        }))
    }
}

/// The types [`Argument`] converts, as the error for any other type lists them.
const SUPPORTED: &str =
    "dict, list, tuple, str, int, float, bool, None, datetime, date, Decimal, UUID, Enum";

static ENUM: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DATE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static UUID: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static MAPPING: PyOnceLock<Py<PyType>> = PyOnceLock::new();

impl Serialize for Value<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.value;
        // Exact built-in types first: one pointer comparison each, and they are nearly all
        // values in practice.
        if let Ok(string) = v.cast_exact::<PyString>() {
            s.serialize_str(self.str(string)?)
        } else if v.is_exact_instance_of::<PyInt>() {
            self.int(v, s)
        } else if let Ok(float) = v.cast_exact::<PyFloat>() {
            self.float(float.value(), s)
        } else if let Ok(b) = v.cast_exact::<PyBool>() {
            s.serialize_bool(b.is_true())
        } else if v.is_none() {
            s.serialize_unit()
        } else if let Ok(dict) = v.cast_exact::<PyDict>() {
            self.dict(dict, s)
        } else if let Ok(list) = v.cast_exact::<PyList>() {
            self.seq(list.len(), list.iter(), s)
        } else if let Ok(tuple) = v.cast_exact::<PyTuple>() {
            self.seq(tuple.len(), tuple.iter(), s)
        } else {
            self.other(s)
        }
    }
}

/// Digits written into the message as they are, so they must be one JSON number and nothing
/// else (checked even though they come from `int` and `Decimal` themselves).
fn raw_number<S: Serializer>(digits: String, s: S) -> Result<S::Ok, S::Error> {
    if !is_json_number(&digits) {
        return Err(S::Error::custom(format!("{digits:?} is not a JSON number")));
    }
    let raw = serde_json::value::RawValue::from_string(digits).map_err(S::Error::custom)?;
    raw.serialize(s)
}

/// RFC 8259's `number`: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn is_json_number(text: &str) -> bool {
    fn digits(b: &[u8]) -> usize {
        b.iter().take_while(|c| c.is_ascii_digit()).count()
    }
    let mut b = text.as_bytes();
    if let [b'-', rest @ ..] = b {
        b = rest;
    }
    match digits(b) {
        0 => return false,
        n if n > 1 && b[0] == b'0' => return false,
        n => b = &b[n..],
    }
    if let [b'.', rest @ ..] = b {
        match digits(rest) {
            0 => return false,
            n => b = &rest[n..],
        }
    }
    if let [b'e' | b'E', rest @ ..] = b {
        let rest = match rest {
            [b'+' | b'-', r @ ..] => r,
            r => r,
        };
        match digits(rest) {
            0 => return false,
            n => b = &rest[n..],
        }
    }
    b.is_empty()
}

/// Where the first lone surrogate sits, from the `UnicodeEncodeError` CPython raised.
fn surrogate_index(py: Python<'_>, err: &PyErr) -> Option<usize> {
    err.value(py).getattr("start").ok()?.extract().ok()
}

/// `set`, `bytes`, `myapp.models.User`: the name a Python programmer would recognise.
pub(crate) fn type_name(value: &Bound<'_, PyAny>) -> String {
    let ty = value.get_type();
    let name = ty
        .qualname()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    match ty.module().map(|m| m.to_string()) {
        Ok(module) if module != "builtins" => format!("{module}.{name}"),
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::is_json_number;

    #[test]
    fn only_json_numbers_pass() {
        for ok in [
            "0",
            "-0",
            "12",
            "12.50",
            "1E+3",
            "1e-7",
            "-0.5E10",
            "18446744073709551616",
        ] {
            assert!(is_json_number(ok), "{ok}");
        }
        for bad in [
            "",
            "-",
            "01",
            "1.",
            ".5",
            "1e",
            "1E+",
            "+1",
            "NaN",
            "Infinity",
            "1 ",
            "{\"a\":1}",
            "1,2",
            "[1]",
            "0x10",
            "1_000",
        ] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }
}
