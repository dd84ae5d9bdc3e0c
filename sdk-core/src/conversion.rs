//! What the bindings share when a host value (a Python object, a JavaScript value) cannot be
//! converted to JSON: the path to the value, the kinds of failure with their messages, and the
//! one nesting rule. Each binding walks its own values; it builds paths and errors only here, so
//! Python and Node report the same failure with the same words.

use std::fmt::Write as _;

use crate::limits::MAX_JSON_DEPTH;

/// Where a value sits under the argument being converted, rendered as
/// `properties.items[3].price`.
///
/// Segments are pushed while the failure unwinds, innermost first, so the walk pays nothing
/// for paths of values that convert.
///
/// ```
/// let mut path = pulseline::JsonPath::default();
/// path.push_key("price");
/// path.push_index(3);
/// path.push_key("items");
/// assert_eq!(path.render("properties"), "properties.items[3].price");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonPath {
    /// Innermost first.
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(u64),
}

/// Paths longer than this many segments are shortened in the middle: a cycle taken for deep
/// nesting would otherwise repeat its key [`MAX_JSON_DEPTH`] times in the message.
const PATH_SHOWN_WHOLE: usize = 12;

impl JsonPath {
    /// Adds the key of the object holding the path so far (called while unwinding).
    pub fn push_key(&mut self, key: impl Into<String>) {
        self.segments.push(Segment::Key(key.into()));
    }

    /// Adds the index of the array holding the path so far (called while unwinding).
    pub fn push_index(&mut self, index: u64) {
        self.segments.push(Segment::Index(index));
    }

    /// Number of keys and indexes in the path.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// Whether the path is the argument itself.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// `argument.key[3]["not an identifier"]`: keys that are identifiers follow a dot, others
    /// are JSON strings in brackets. A path of more than 12 segments keeps its first six and
    /// last four, with `…(N more levels)…` between.
    ///
    /// ```
    /// let mut path = pulseline::JsonPath::default();
    /// path.push_key("x\\y");
    /// path.push_key("it's");
    /// assert_eq!(path.render("traits"), r#"traits["it's"]["x\\y"]"#);
    /// ```
    pub fn render(&self, argument: &str) -> String {
        let mut out = argument.to_owned();
        let n = self.segments.len();
        let shorten = n > PATH_SHOWN_WHOLE;
        for (i, segment) in self.segments.iter().rev().enumerate() {
            if shorten && i == 6 {
                let _ = write!(out, "…({} more levels)…", n - 10);
            }
            if shorten && (6..n - 4).contains(&i) {
                continue;
            }
            match segment {
                Segment::Key(k) if is_identifier(k) => {
                    let _ = write!(out, ".{k}");
                }
                Segment::Key(k) => {
                    let quoted = serde_json::to_string(k).unwrap_or_else(|_| format!("{k:?}"));
                    let _ = write!(out, "[{quoted}]");
                }
                Segment::Index(i) => {
                    let _ = write!(out, "[{i}]");
                }
            }
        }
        out
    }
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// How many arrays and objects enclose a value, counting the one being entered.
///
/// The one nesting rule of every binding: each array and each object (a dict, a mapping, a
/// plain JavaScript object) is one level, scalars and values converted to scalars (dates,
/// enums) are none, and a value nested more than [`MAX_JSON_DEPTH`] levels is refused with
/// [`ConversionFailure::TooDeep`]. Deeper input is taken for a circular reference.
///
/// ```
/// use pulseline::{ConversionFailure, Depth, limits::MAX_JSON_DEPTH};
///
/// let mut depth = Depth::ARGUMENT;
/// for _ in 0..MAX_JSON_DEPTH {
///     depth = depth.enter().unwrap();
/// }
/// assert_eq!(depth.enter(), Err(ConversionFailure::TooDeep));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Depth(usize);

impl Depth {
    /// Outside any array or object: the argument itself, before it is looked at.
    pub const ARGUMENT: Depth = Depth(0);

    /// The depth inside one more array or object, or `TooDeep` past [`MAX_JSON_DEPTH`].
    pub fn enter(self) -> Result<Depth, ConversionFailure> {
        match self.0 < MAX_JSON_DEPTH {
            true => Ok(Depth(self.0 + 1)),
            false => Err(ConversionFailure::TooDeep),
        }
    }

    /// Levels of arrays and objects entered so far.
    pub fn levels(self) -> usize {
        self.0
    }
}

/// Why a host value has no JSON form. [`ConversionFailure::message`] is the text every
/// binding shows, after the path.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConversionFailure {
    /// Nested more than [`MAX_JSON_DEPTH`] levels of arrays and objects (see [`Depth`]).
    TooDeep,
    /// `NaN` or an infinity: JSON has no such number.
    NotFinite,
    /// A value of a type with no JSON form.
    Unsupported {
        /// The host's name for it (`set`, `a Map (send Object.fromEntries(map))`).
        what: String,
        /// The types the binding converts, listed for the user.
        supported: &'static str,
    },
    /// An object key that is not a string (Python: a dict key that is not a `str`).
    NonStringKey {
        /// The host's name for the key's type.
        type_name: String,
    },
    /// A string (a value, or a key when `key` is set) holding a lone surrogate, which UTF-8
    /// and so JSON text cannot carry; `index` is where it sits in the string.
    LoneSurrogate {
        /// Whether the string is an object key.
        key: bool,
        /// Where the first lone surrogate sits, when the host says.
        index: Option<usize>,
    },
    /// A mapping changed size while its values were converted (by the user's own code).
    ChangedSize,
    /// A mapping's `items()` yielded something other than a `(key, value)` pair.
    NotAPair {
        /// The host's name for what it yielded.
        type_name: String,
    },
    /// A date whose time value is not a number (JavaScript's `new Date('nope')`).
    InvalidDate,
    /// An integer wider than 128 bits where the binding reads integers through 128 bits.
    IntegerRange,
}

impl ConversionFailure {
    /// The message for a value at `path` (already rendered), saying what to fix.
    ///
    /// ```
    /// use pulseline::ConversionFailure;
    ///
    /// assert_eq!(
    ///     ConversionFailure::TooDeep.message("properties.a"),
    ///     "properties.a: nested more than 64 levels of arrays and objects \
    ///      (limits::MAX_JSON_DEPTH; a circular reference?)",
    /// );
    /// ```
    pub fn message(&self, path: &str) -> String {
        match self {
            ConversionFailure::TooDeep => format!(
                "{path}: nested more than {MAX_JSON_DEPTH} levels of arrays and objects \
                 (limits::MAX_JSON_DEPTH; a circular reference?)"
            ),
            ConversionFailure::NotFinite => {
                format!("{path}: NaN and infinities have no JSON representation")
            }
            ConversionFailure::Unsupported { what, supported } => {
                format!("{path}: {what} has no JSON representation (supported: {supported})")
            }
            ConversionFailure::NonStringKey { type_name } => {
                format!("{path}: object keys must be strings, not {type_name}")
            }
            ConversionFailure::LoneSurrogate { key, index } => {
                let what = match key {
                    true => "a key of this object",
                    false => "this string",
                };
                let at = index.map(|i| format!(" at index {i}")).unwrap_or_default();
                format!(
                    "{path}: {what} holds a lone surrogate{at}, which UTF-8 and JSON text \
                     cannot carry (decode the bytes it came from with errors='replace', or \
                     encode it)"
                )
            }
            ConversionFailure::ChangedSize => format!(
                "{path}: the dict changed size while it was being converted (code it calls, \
                 such as an isoformat() or an Enum's value, modified it); pass a copy"
            ),
            ConversionFailure::NotAPair { type_name } => {
                format!("{path}: items() yielded a {type_name}, not a (key, value) pair")
            }
            ConversionFailure::InvalidDate => format!("{path}: an invalid Date"),
            ConversionFailure::IntegerRange => {
                format!("{path}: an integer wider than 128 bits")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(segments: &[&str]) -> JsonPath {
        let mut p = JsonPath::default();
        for s in segments.iter().rev() {
            match s.parse::<u64>() {
                Ok(i) => p.push_index(i),
                Err(_) => p.push_key(*s),
            }
        }
        p
    }

    #[test]
    fn paths_name_keys_and_indexes() {
        assert_eq!(path(&[]).render("traits"), "traits");
        assert_eq!(
            path(&["items", "3", "price"]).render("properties"),
            "properties.items[3].price"
        );
        assert_eq!(
            path(&["a b", "2", "x", "é", "\"q\"\n"]).render("context"),
            r#"context["a b"][2].x["é"]["\"q\"\n"]"#
        );
    }

    #[test]
    fn long_paths_are_shortened_in_the_middle() {
        let twelve = vec!["a"; 12];
        assert_eq!(path(&twelve).render("p"), format!("p{}", ".a".repeat(12)));
        let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        assert_eq!(
            path(&keys).render("p"),
            "p.k0.k1.k2.k3.k4.k5…(10 more levels)….k16.k17.k18.k19"
        );
    }

    #[test]
    fn depth_counts_every_array_and_object_up_to_the_limit() {
        let mut depth = Depth::ARGUMENT;
        for level in 1..=MAX_JSON_DEPTH {
            depth = depth.enter().expect("within the limit");
            assert_eq!(depth.levels(), level);
        }
        assert_eq!(depth.enter(), Err(ConversionFailure::TooDeep));
    }

    /// The browser SDK converts in JavaScript (sdk-wasm/js/convert.js), not through this
    /// module: its table of cases must hold the messages this module renders, and the
    /// wording the Node SDK uses where both name the same thing.
    #[test]
    fn browser_sdk_cases_have_the_core_messages() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let read = |path: &str| {
            std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        let table: serde_json::Value =
            serde_json::from_str(&read("sdk-wasm/test/conversion-cases.json")).expect("JSON");
        let node = read("sdk-node/src/convert.rs");
        // `Unsupported` holds a `&'static str`, as bindings list their types in a constant.
        let supported: &'static str = table["supported"]
            .as_str()
            .expect("supported")
            .to_owned()
            .leak();
        assert!(
            node.contains(&format!("const SUPPORTED: &str = {supported:?};")),
            "the Node SDK lists other supported types than {supported:?}"
        );
        let mut checked = 0;
        for case in table["cases"].as_array().expect("cases") {
            let Some(core) = case.get("core") else {
                continue;
            };
            let mut path = JsonPath::default();
            for segment in core["path"].as_array().expect("path").iter().rev() {
                match segment.as_u64() {
                    Some(i) => path.push_index(i),
                    None => path.push_key(segment.as_str().expect("key")),
                }
            }
            let what = core["what"].as_str().unwrap_or_default();
            let failure = match core["failure"].as_str().expect("failure") {
                "TooDeep" => ConversionFailure::TooDeep,
                "NotFinite" => ConversionFailure::NotFinite,
                "InvalidDate" => ConversionFailure::InvalidDate,
                "IntegerRange" => ConversionFailure::IntegerRange,
                "Unsupported" => ConversionFailure::Unsupported {
                    what: what.to_owned(),
                    supported,
                },
                other => panic!("{other}: not a failure the browser SDK reports"),
            };
            let argument = case["argument"].as_str().unwrap_or("properties");
            assert_eq!(
                failure.message(&path.render(argument)),
                case["error"].as_str().expect("error"),
                "{}",
                case["name"]
            );
            if case["node"] == true {
                assert!(
                    node.contains(&format!("{what:?}")),
                    "{}: the Node SDK does not say {what:?}",
                    case["name"]
                );
            }
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} cases name a core failure");
    }
}
