//! `error-body-on-success`: a 2xx whose body says the request failed.

use std::ops::ControlFlow;

use super::parse::html::headline;
use super::parse::json::{scan, Value};
use super::{Exchange, Rule, RuleKind, Severity, Verdict};
use crate::sample::BodyKind;

/// Flags a 2xx whose body says the request failed.
pub static RULE: Rule = Rule {
    id: "error-body-on-success",
    kind: RuleKind::Http,
    title: "Success status with an error body",
    severity: Severity::Error,
    fires_when: "a 2xx whose body is an error: JSON with a top-level `error` (not null/false), a non-empty \
                 `errors` array, `success: false`, `ok: false`, `status` of `error`/`fail`/`failure`, or an \
                 RFC 9457 problem document; or an HTML page whose title or first heading says not found / \
                 error / exception (a \"soft 404\")",
    rationale: "RFC 9110 §15.3: a 2xx means the request succeeded; clients, caches, retries and every \
                dashboard count it as a success. The guide's §7.1: avoid 200 for errors.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    if !(200..300).contains(&exchange.status) {
        return None;
    }
    let body = exchange.body?;
    let evidence = match body.kind {
        BodyKind::Json => json_error(exchange, &body.bytes)?,
        BodyKind::Html => soft_error_page(&body.bytes)?,
        BodyKind::Text | BodyKind::Xml => return None,
    };
    Some(Verdict::new(
        Severity::Error,
        format!("{} answered with {evidence}", exchange.status),
    ))
}

/// The keys [`json_error`] reads.
const ENVELOPE_KEYS: [&[u8]; 6] = [b"error", b"errors", b"success", b"ok", b"status", b"title"];

/// Whether a key [`json_error`] reads may be in the document: some `:` follows one of them
/// as a quoted name. One pass for the rarest structural byte of JSON, a look back at each,
/// instead of a substring search per key (five of those cost twice as much on a 1 KiB body).
/// Every real key has that shape, so a document without one cannot hold what the scan seeks.
fn names_an_envelope_key(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b':', bytes).any(|colon| {
        let Some(name) = bytes[..colon].trim_ascii_end().strip_suffix(b"\"") else {
            return false;
        };
        ENVELOPE_KEYS.iter().any(|key| {
            name.len() > key.len()
                && name.ends_with(key)
                && name[name.len() - key.len() - 1] == b'"'
        })
    })
}

/// Clips a JSON string value for evidence.
fn clip(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let clipped: String = text.chars().take(60).collect();
    if clipped.len() < text.len() {
        format!("\"{clipped}…\"")
    } else {
        format!("\"{clipped}\"")
    }
}

fn json_error(exchange: &Exchange<'_>, bytes: &[u8]) -> Option<String> {
    if exchange.content_type_is(&["application/problem+json"]) {
        return Some("an RFC 9457 problem document (application/problem+json)".to_string());
    }
    if !names_an_envelope_key(bytes) {
        // None of the keys this rule reads appears anywhere: no need to walk the document.
        return None;
    }
    let mut found = None;
    let (mut title, mut problem_status) = (false, false);
    scan(bytes, |key, value| {
        found = match (key, value) {
            (b"error", Value::Null | Value::Bool(false)) => None,
            (b"error", Value::String(b"")) => None,
            (b"error", Value::Number("0")) => None,
            (b"error", Value::String(s)) => Some(format!("top-level \"error\": {}", clip(s))),
            (b"error", _) => Some("a top-level \"error\"".to_string()),
            (b"errors", Value::Array { empty: false }) => {
                Some("a non-empty \"errors\" array".to_string())
            }
            (b"success", Value::Bool(false)) => Some("\"success\": false".to_string()),
            (b"ok", Value::Bool(false)) => Some("\"ok\": false".to_string()),
            (b"status", Value::String(s))
                if [&b"error"[..], b"fail", b"failure"]
                    .iter()
                    .any(|w| s.eq_ignore_ascii_case(w)) =>
            {
                Some(format!("\"status\": {}", clip(s)))
            }
            _ => {
                match (key, value) {
                    (b"title", Value::String(_)) => title = true,
                    (b"status", Value::Number(n)) => {
                        problem_status = n.parse::<u16>().is_ok_and(|n| (400..600).contains(&n))
                    }
                    _ => {}
                }
                None
            }
        };
        if found.is_some() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    found.or_else(|| {
        (title && problem_status)
            .then(|| "a problem document (\"title\" and an error \"status\")".to_string())
    })
}

/// Phrases that mark an error page when they appear in its title or first heading.
const ERROR_PHRASES: &[&str] = &[
    "not found",
    "404",
    "page does not exist",
    "page doesn't exist",
    "internal server error",
    "server error",
    "an error occurred",
    "an error has occurred",
    "something went wrong",
    "unhandled exception",
    "uncaught exception",
    "application error",
    "access denied",
];

fn says_error(text: &str) -> bool {
    let lower = text.to_lowercase();
    // "Error", "Error 500", "Error: …", "Error | Shop" — but not "Error handling in Rust".
    let starts_with_word = |word: &str| {
        lower.strip_prefix(word).is_some_and(|rest| {
            let rest = rest.trim_start();
            rest.chars()
                .next()
                .is_none_or(|c| c.is_ascii_digit() || ":|-–—!".contains(c))
        })
    };
    ERROR_PHRASES.iter().any(|p| lower.contains(p))
        || starts_with_word("error")
        || starts_with_word("exception")
}

fn soft_error_page(bytes: &[u8]) -> Option<String> {
    let found = headline(bytes);
    if let Some(title) = found.title.filter(|t| says_error(t)) {
        return Some(format!(
            "an HTML page titled \"{}\"",
            title.chars().take(80).collect::<String>()
        ));
    }
    let heading = found.heading.filter(|h| says_error(h))?;
    Some(format!(
        "an HTML page headed \"{}\"",
        heading.chars().take(80).collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::case;

    const JSON: &str = "application/json";

    #[test]
    fn the_prefilter_sees_keys_as_json_writes_them_and_not_in_values() {
        for body in [
            r#"{"error" : 1}"#,
            "{\n  \"status\"\t:\"fail\"}",
            r#"{"a":{"ok":false}}"#,
            r#"{"errors":[1]}"#,
        ] {
            assert!(names_an_envelope_key(body.as_bytes()), "{body}");
        }
        for body in [
            r#"{"message":"error"}"#,
            r#"{"terror":1}"#,
            r#"["ok"]"#,
            "error:",
        ] {
            assert!(!names_an_envelope_key(body.as_bytes()), "{body}");
        }
    }

    proptest::proptest! {
        /// Whatever the document, a key the scan reports is never skipped by the prefilter.
        #[test]
        fn the_prefilter_never_hides_a_key_the_scan_reads(
            body in proptest::collection::vec(proptest::sample::select(
                &[b'{', b'}', b'"', b':', b',', b' ', b'\n', b'\\', b'1', b'e', b'r', b'o',
                  b's', b't', b'u', b'a', b'k', b'i', b'l', b'c'][..]), 0..48)
        ) {
            let mut seen = false;
            scan(&body, |key, _| {
                seen |= ENVELOPE_KEYS.contains(&key);
                ControlFlow::Continue(())
            });
            proptest::prop_assert!(!seen || names_an_envelope_key(&body));
        }
    }

    #[test]
    fn fires_on_json_error_envelopes() {
        for body in [
            r#"{"error": "User ID 999 not found"}"#,
            r#"{"error": {"code": 42}}"#,
            r#"{"data": null, "errors": [{"message": "boom"}]}"#,
            r#"{"success": false, "data": {}}"#,
            r#"{"ok": false}"#,
            r#"{"status": "FAIL"}"#,
            r#"{"type": "about:blank", "title": "Not Found", "status": 404}"#,
        ] {
            assert!(case(200).body(JSON, body).fires(&RULE), "{body}");
        }
        assert!(case(200)
            .body("application/problem+json", "{}")
            .fires(&RULE));
    }

    #[test]
    fn a_truncated_error_envelope_still_fires() {
        let mut case = case(200).body(
            JSON,
            r#"{"error": "quota exceeded", "details": ["a very long"#,
        );
        case.body.as_mut().unwrap().truncated = true;
        assert!(case.fires(&RULE));
    }

    #[test]
    fn quiet_on_successful_look_alikes() {
        for body in [
            r#"{"errors": []}"#,
            r#"{"error": null, "data": 1}"#,
            r#"{"error": false}"#,
            r#"{"error": ""}"#,
            r#"{"success": true, "ok": true, "status": "ok"}"#,
            r#"{"id": 101, "name": "Alice", "nested": {"error": "only inside"}}"#,
            r#"{"title": "Report", "status": 200}"#,
            r#"[{"error": "in an array"}]"#,
        ] {
            assert!(!case(200).body(JSON, body).fires(&RULE), "{body}");
        }
        // The same error body on a 4xx is for other rules to judge.
        assert!(!case(404).body(JSON, r#"{"error": "x"}"#).fires(&RULE));
    }

    #[test]
    fn fires_on_soft_404_pages() {
        for page in [
            "<html><head><title>Page Not Found</title></head></html>",
            "<title>Error 500</title>",
            "<title>Shop</title><h1>Oops! Something went wrong</h1>",
            "<title>Exception: NullReference</title>",
        ] {
            assert!(case(200).body("text/html", page).fires(&RULE), "{page}");
        }
    }

    #[test]
    fn quiet_on_ordinary_pages() {
        for page in [
            "<title>Error handling in Rust</title>",
            "<title>Errors and exceptions, a tutorial</title>",
            "<title>Orders</title><h1>Your orders</h1>",
        ] {
            assert!(!case(200).body("text/html", page).fires(&RULE), "{page}");
        }
    }
}
