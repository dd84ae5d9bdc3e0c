//! What a stored message may hold so that every later reader can use it: numbers the collector
//! keeps digit for digit *and* can aggregate as 64-bit floats on both backends, and strings and
//! nesting that PostgreSQL's `jsonb` (which rules read) and serde_json's `Value` accept.

use super::MessageError;

/// Longest number literal accepted, in characters. A 128-bit integer has 39 digits and a
/// 256-bit one 78; longer literals only reach PostgreSQL's `numeric` limits.
pub const MAX_NUMBER_CHARS: usize = 100;
/// Deepest nesting of objects and arrays in a message, counting the message itself. Above the
/// SDKs' limit (64 levels of properties) and below serde_json's (128) and PostgreSQL's stack.
pub const MAX_NESTING_DEPTH: usize = 100;
/// Longest field name quoted in an error, in characters.
const MAX_QUOTED_KEY_CHARS: usize = 40;

enum Frame<'a> {
    Object {
        key: Option<&'a str>,
        expect_key: bool,
    },
    Array {
        index: usize,
    },
}

/// Checks every number and the nesting of `json`, which must already be valid JSON (the
/// collector's parser checked it). The error names the field, e.g. `properties.items[2].price`.
pub fn check(json: &str) -> Result<(), MessageError> {
    let b = json.as_bytes();
    let mut stack: Vec<Frame<'_>> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            open @ (b'{' | b'[') => {
                if stack.len() >= MAX_NESTING_DEPTH {
                    return Err(MessageError::new(format!(
                        "'{}' is nested more than {MAX_NESTING_DEPTH} levels deep \
                         (MAX_NESTING_DEPTH): flatten it",
                        path(&stack[..1])
                    )));
                }
                stack.push(if open == b'{' {
                    Frame::Object {
                        key: None,
                        expect_key: true,
                    }
                } else {
                    Frame::Array { index: 0 }
                });
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                i += 1;
            }
            b',' => {
                match stack.last_mut() {
                    Some(Frame::Object { expect_key, .. }) => *expect_key = true,
                    Some(Frame::Array { index }) => *index += 1,
                    None => {}
                }
                i += 1;
            }
            b'"' => {
                let start = i + 1;
                let (end, nul) = string_end(b, start);
                i = end;
                if let Some(Frame::Object { key, expect_key }) = stack.last_mut()
                    && *expect_key
                {
                    *key = Some(&json[start..i - 1]);
                    *expect_key = false;
                }
                if nul {
                    return Err(MessageError::new(format!(
                        "'{}' holds \\u0000 (NUL), which PostgreSQL cannot store in JSON: \
                         remove it",
                        path(&stack)
                    )));
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                check_number(&json[start..i])
                    .map_err(|why| MessageError::new(format!("'{}' {why}", path(&stack))))?;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Why a number literal cannot be stored, if it cannot.
fn check_number(text: &str) -> Result<(), String> {
    if text.len() > MAX_NUMBER_CHARS {
        return Err(format!(
            "is a number of {} characters; the limit is {MAX_NUMBER_CHARS} (MAX_NUMBER_CHARS): \
             send it as a string to keep every digit",
            text.len()
        ));
    }
    // JSON's number syntax is a subset of Rust's, which rounds like PostgreSQL's float8 and
    // SQLite's JSON functions: the stored digits stay exact, this is what aggregates see.
    let value: f64 = text.parse().map_err(|_| "is not a number".to_owned())?;
    if value.is_infinite() {
        return Err(format!(
            "is {text}, beyond the range of a 64-bit float (±1.7976931348623157e308) that sums \
             and alerts use: send it as a string to keep it"
        ));
    }
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    if value == 0.0 && mantissa.bytes().any(|c| matches!(c, b'1'..=b'9')) {
        return Err(format!(
            "is {text}, too close to zero for a 64-bit float (smallest 5e-324) that sums and \
             alerts use: send it as a string, or 0"
        ));
    }
    Ok(())
}

/// The index just past the closing quote of the string whose content starts at `start`, and
/// whether the string holds an escaped NUL (`\u0000`).
fn string_end(b: &[u8], mut j: usize) -> (usize, bool) {
    let mut nul = false;
    while j < b.len() {
        match b[j] {
            b'\\' => {
                nul |= b[j + 1..].starts_with(b"u0000");
                j += 2;
            }
            b'"' => return (j + 1, nul),
            _ => j += 1,
        }
    }
    (b.len(), nul)
}

/// `properties.items[2].price`, from the message's top level down.
fn path(stack: &[Frame<'_>]) -> String {
    let mut out = String::new();
    for frame in stack {
        match frame {
            Frame::Object { key: Some(k), .. } => {
                if !out.is_empty() {
                    out.push('.');
                }
                match k.char_indices().nth(MAX_QUOTED_KEY_CHARS) {
                    Some((cut, _)) => {
                        out.push_str(&k[..cut]);
                        out.push('…');
                    }
                    None => out.push_str(k),
                }
            }
            Frame::Object { key: None, .. } => {}
            Frame::Array { index } => out.push_str(&format!("[{index}]")),
        }
    }
    if out.is_empty() {
        out.push_str("message");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        check(json).unwrap_err().to_string()
    }

    #[test]
    fn exact_numbers_in_the_float_range_pass() {
        for n in [
            "0",
            "-0",
            "1.10",
            "12345678901234567890.123456789",
            "340282366920938463463374607431768211455",
            "1E+300",
            "-1.5e-300",
            "5e-324",
            "0.000",
        ] {
            check(&format!(r#"{{"properties":{{"n":{n}}}}}"#)).unwrap();
        }
    }

    #[test]
    fn out_of_range_numbers_name_their_field() {
        let e = err(r#"{"a":"x,y]","properties":{"items":[1,{"price":1E+400}]}}"#);
        assert!(
            e.starts_with("'properties.items[1].price' is 1E+400, beyond"),
            "{e}"
        );
        let e = err(r#"{"context":{"tiny":-1e-400}}"#);
        assert!(
            e.contains("'context.tiny' is -1e-400, too close to zero"),
            "{e}"
        );
        let long = "7".repeat(101);
        let e = err(&format!(r#"{{"userId":{long}}}"#));
        assert!(e.contains("'userId' is a number of 101 characters"), "{e}");
        let e = err(r#"{"properties":{"we\"ird":1e999}}"#);
        assert!(e.starts_with(r#"'properties.we\"ird' is 1e999"#), "{e}");
    }

    #[test]
    fn escaped_nul_is_refused_in_values_and_keys() {
        let e = err(r#"{"properties":{"note":"a\u0000b"}}"#);
        assert!(
            e.starts_with("'properties.note' holds \\u0000 (NUL)"),
            "{e}"
        );
        let e = err(r#"{"properties":{"k\u0000":1}}"#);
        assert!(e.starts_with(r"'properties.k\u0000' holds"), "{e}");
        check(r#"{"properties":{"note":"\\u0000 \u0001"}}"#).unwrap();
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = format!("{}{}", "[".repeat(99), "]".repeat(99));
        check(&format!(r#"{{"p":{ok}}}"#)).unwrap();
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let e = err(&format!(r#"{{"p":{deep}}}"#));
        assert!(e.starts_with("'p' is nested more than 100 levels"), "{e}");
        assert!(e.contains("MAX_NESTING_DEPTH"), "{e}");
    }
}
