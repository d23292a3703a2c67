//! A lenient scanner of a JSON document's top-level object.
//!
//! It reports each top-level member with a summary of its value, without building a tree and
//! without allocating, and it keeps going as far as a truncated sample allows: an error
//! envelope's top-level keys usually come first, so a cut body can still be judged.

use std::ops::ControlFlow;

/// A top-level member's value, summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// A number, as written.
    Number(&'a str),
    /// A string's raw contents (escapes left as written).
    String(&'a [u8]),
    /// An array; `empty` when it is `[]`.
    Array {
        /// The array has no elements.
        empty: bool,
    },
    /// An object; `empty` when it is `{}`.
    Object {
        /// The object has no members.
        empty: bool,
    },
}

/// What the scanner made of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Not JSON at all.
    NotJson,
    /// JSON whose top level is not an object (an array, a string, ...).
    NotObject,
    /// An object; `complete` when its closing brace was reached.
    Object {
        /// The whole object was seen and is well formed.
        complete: bool,
    },
}

/// Scans `bytes`, calling `visit(key, value)` for each top-level member (keys raw, as written)
/// until it returns [`ControlFlow::Break`]; a scan stopped early reports an incomplete object.
pub fn scan<'a>(
    bytes: &'a [u8],
    mut visit: impl FnMut(&'a [u8], Value<'a>) -> ControlFlow<()>,
) -> Shape {
    let mut at = skip_ws(bytes, skip_bom(bytes));
    match bytes.get(at) {
        Some(b'{') => at += 1,
        Some(b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => return Shape::NotObject,
        _ => return Shape::NotJson,
    }
    let incomplete = Shape::Object { complete: false };
    at = skip_ws(bytes, at);
    if bytes.get(at) == Some(&b'}') {
        return Shape::Object {
            complete: skip_ws(bytes, at + 1) == bytes.len(),
        };
    }
    loop {
        at = skip_ws(bytes, at);
        if bytes.get(at) != Some(&b'"') {
            return incomplete;
        }
        let Some(key_end) = string_end(bytes, at + 1) else {
            return incomplete;
        };
        let key = &bytes[at + 1..key_end];
        at = skip_ws(bytes, key_end + 1);
        if bytes.get(at) != Some(&b':') {
            return incomplete;
        }
        at = skip_ws(bytes, at + 1);
        let Some((value, next)) = value(bytes, at) else {
            return incomplete;
        };
        if visit(key, value).is_break() {
            return incomplete;
        }
        at = skip_ws(bytes, next);
        match bytes.get(at) {
            Some(b',') => at += 1,
            Some(b'}') => {
                let rest = skip_ws(bytes, at + 1);
                return Shape::Object {
                    complete: rest == bytes.len(),
                };
            }
            _ => return incomplete,
        }
    }
}

fn skip_bom(bytes: &[u8]) -> usize {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        3
    } else {
        0
    }
}

fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// The index of the closing quote of a string whose contents start at `at`.
fn string_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    // A plain loop: JSON strings are short, and a memchr call per string costs more than it saves.
    while let Some(&b) = bytes.get(at) {
        match b {
            b'"' => return Some(at),
            b'\\' => at += 2,
            _ => at += 1,
        }
    }
    None
}

/// Parses the value at `at`; returns its summary and the index just past it.
fn value(bytes: &[u8], at: usize) -> Option<(Value<'_>, usize)> {
    let literal = |word: &[u8], value: Value<'static>| {
        bytes[at..]
            .starts_with(word)
            .then_some((value, at + word.len()))
    };
    match bytes.get(at)? {
        b'"' => {
            let end = string_end(bytes, at + 1)?;
            Some((Value::String(&bytes[at + 1..end]), end + 1))
        }
        b't' => literal(b"true", Value::Bool(true)),
        b'f' => literal(b"false", Value::Bool(false)),
        b'n' => literal(b"null", Value::Null),
        b'-' | b'0'..=b'9' => {
            let len = bytes[at..]
                .iter()
                .take_while(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .count();
            // A number running into the end of the sample may be cut short.
            if at + len == bytes.len() {
                return None;
            }
            let text = std::str::from_utf8(&bytes[at..at + len]).ok()?;
            Some((Value::Number(text), at + len))
        }
        open @ (b'[' | b'{') => {
            let close = if *open == b'[' { b']' } else { b'}' };
            let empty = bytes.get(skip_ws(bytes, at + 1)) == Some(&close);
            let end = container_end(bytes, at)?;
            let value = if *open == b'[' {
                Value::Array { empty }
            } else {
                Value::Object { empty }
            };
            Some((value, end))
        }
        _ => None,
    }
}

/// The index just past the container opening at `at`, or `None` if the sample ends inside it.
/// Only brackets of the opener's kind are counted: in well-formed JSON the other kind nests
/// properly inside, and strings are skipped whole.
fn container_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    let open = bytes[at];
    let close = if open == b'[' { b']' } else { b'}' };
    let mut depth = 0usize;
    while let Some(&b) = bytes.get(at) {
        if b == b'"' {
            at = string_end(bytes, at + 1)?;
        } else if b == open {
            depth += 1;
        } else if b == close {
            depth -= 1;
            if depth == 0 {
                return Some(at + 1);
            }
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(text: &str) -> (Vec<(String, Value<'_>)>, Shape) {
        let mut seen = Vec::new();
        let shape = scan(text.as_bytes(), |k, v| {
            seen.push((String::from_utf8_lossy(k).into_owned(), v));
            ControlFlow::Continue(())
        });
        (seen, shape)
    }

    #[test]
    fn summarises_each_top_level_member() {
        let (seen, shape) = members(
            r#" {"a": null, "b": false, "c": -1.5e3, "d": "x\"y", "e": [], "f": [1], "g": {"h": "[}]"}} "#,
        );
        assert_eq!(shape, Shape::Object { complete: true });
        assert_eq!(seen[0], ("a".into(), Value::Null));
        assert_eq!(seen[1], ("b".into(), Value::Bool(false)));
        assert_eq!(seen[2], ("c".into(), Value::Number("-1.5e3")));
        assert_eq!(seen[3], ("d".into(), Value::String(br#"x\"y"#)));
        assert_eq!(seen[4], ("e".into(), Value::Array { empty: true }));
        assert_eq!(seen[5], ("f".into(), Value::Array { empty: false }));
        assert_eq!(seen[6], ("g".into(), Value::Object { empty: false }));
    }

    #[test]
    fn a_truncated_object_yields_the_members_before_the_cut() {
        let (seen, shape) = members(r#"{"error": "quota exceeded", "details": ["first", "sec"#);
        assert_eq!(shape, Shape::Object { complete: false });
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0, "error");
    }

    #[test]
    fn the_visitor_can_stop_the_scan() {
        let mut keys = 0;
        let shape = scan(br#"{"a": 1, "b": 2, "c": 3}"#, |_, _| {
            keys += 1;
            if keys == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(keys, 2);
        assert_eq!(shape, Shape::Object { complete: false });
    }

    #[test]
    fn other_documents_are_told_apart() {
        assert_eq!(members("[1, 2]").1, Shape::NotObject);
        assert_eq!(members("\"text\"").1, Shape::NotObject);
        assert_eq!(members("<html>").1, Shape::NotJson);
        assert_eq!(members("").1, Shape::NotJson);
        assert_eq!(members("{}").1, Shape::Object { complete: true });
        assert_eq!(members("{} trailing").1, Shape::Object { complete: false });
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "{", "{\"", "{\"a", "{\"a\":", "{\"a\":t", "{\"a\":[", "{\"a\":1", "{\"a\"}", "{\"\\",
            "{\"a\":]",
        ] {
            let _ = members(text);
        }
    }
}
