//! `unstructured-error-body`: an error response a program cannot read.

use std::ops::ControlFlow;

use http::Method;

use super::parse::json::{scan, Shape};
use super::{Exchange, Rule, RuleKind, Severity, Verdict};
use crate::sample::BodyKind;

/// Flags an error response a program cannot read.
pub static RULE: Rule = Rule {
    id: "unstructured-error-body",
    kind: RuleKind::Http,
    title: "Error response without a structured body",
    severity: Severity::Warning,
    fires_when: "a 4xx/5xx from the upstream whose body is not a structured error: not JSON, or JSON \
                 without any of the configured fields (default: `code`, `error`, `type`, `title`, \
                 `message`); an empty 4xx/5xx body is info",
    rationale: "The guide's §7.2: errors carry a structured body such as \
                `{\"code\": \"VALIDATION_ERROR\", \"details\": [...]}` (RFC 9457 problem details are one \
                such shape), so clients can branch on the error and people can read why.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    if !(400..600).contains(&exchange.status) || *exchange.method == Method::HEAD {
        return None;
    }
    let status = exchange.status;
    let empty = || {
        Some(Verdict::new(
            Severity::Info,
            format!("{status} with an empty body"),
        ))
    };
    if exchange.header("content-length").map(str::trim) == Some("0") {
        return empty();
    }
    let content_type = exchange.content_type();
    let Some(body) = exchange.body else {
        // Not sampled: judge by the declared type alone, and only when it says "not JSON".
        let content_type = content_type?;
        return (BodyKind::of(content_type).is_none()).then(|| {
            Verdict::new(
                Severity::Warning,
                format!("{status} with a {content_type} body"),
            )
        });
    };
    if body.bytes.is_empty() && !body.truncated {
        return empty();
    }
    if body.kind != BodyKind::Json {
        let shown = content_type.unwrap_or_default();
        return Some(Verdict::new(
            Severity::Warning,
            format!("{status} with a {shown} body, not JSON"),
        ));
    }
    let mut structured = false;
    let shape = scan(&body.bytes, |key, _| {
        structured = exchange.error_fields.iter().any(|f| f.as_bytes() == key);
        if structured {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    match shape {
        _ if structured => None,
        Shape::NotJson => Some(Verdict::new(
            Severity::Warning,
            format!("{status} declared JSON but the body is not JSON"),
        )),
        Shape::NotObject => Some(Verdict::new(
            Severity::Warning,
            format!("{status} with a JSON body that is not an object"),
        )),
        Shape::Object { complete: true } => Some(Verdict::new(
            Severity::Warning,
            format!(
                "{status} with a JSON object without any of: {}",
                exchange.error_fields.join(", ")
            ),
        )),
        // Cut before a field could appear: no verdict rather than a guess.
        Shape::Object { complete: false } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::case;

    #[test]
    fn fires_on_text_html_and_unstructured_json() {
        assert!(case(500)
            .body("text/plain", "Internal Server Error")
            .fires(&RULE));
        assert!(case(404)
            .body("text/html", "<h1>Not Found</h1>")
            .fires(&RULE));
        assert!(case(400)
            .body("application/json", r#"{"detail": "bad"}"#)
            .fires(&RULE));
        assert!(case(400)
            .body("application/json", r#"["bad"]"#)
            .fires(&RULE));
        assert!(case(502)
            .header("content-type", "application/octet-stream")
            .fires(&RULE));
    }

    #[test]
    fn an_empty_error_body_is_info() {
        assert_eq!(
            case(500)
                .header("content-length", "0")
                .check(&RULE)
                .unwrap()
                .severity,
            Severity::Info
        );
        assert_eq!(
            case(404)
                .body("application/json", "")
                .check(&RULE)
                .unwrap()
                .severity,
            Severity::Info
        );
    }

    #[test]
    fn quiet_on_structured_errors() {
        assert!(!case(400)
            .body(
                "application/json",
                r#"{"code": "VALIDATION_ERROR", "details": ["x"]}"#
            )
            .fires(&RULE));
        assert!(!case(404)
            .body("application/json", r#"{"error": "User ID 999 not found"}"#)
            .fires(&RULE));
        assert!(!case(401)
            .body("application/json", r#"{"code": "INVALID_CREDENTIALS"}"#)
            .fires(&RULE));
        assert!(!case(404)
            .body(
                "application/problem+json",
                r#"{"type": "about:blank", "title": "Not Found"}"#
            )
            .fires(&RULE));
        assert!(!case(200).body("text/plain", "fine").fires(&RULE));
        assert!(!case(500).method("HEAD").fires(&RULE));
    }

    #[test]
    fn configured_fields_count_as_structure() {
        let mut case = case(400).body("application/json", r#"{"errors": [{"msg": "x"}]}"#);
        assert!(case.fires(&RULE));
        case.fields.push("errors".into());
        assert!(!case.fires(&RULE));
    }

    #[test]
    fn a_cut_object_without_a_field_yet_is_not_judged() {
        let mut case = case(500).body("application/json", r#"{"timestamp": "2026-11-26", "pa"#);
        case.body.as_mut().unwrap().truncated = true;
        assert!(!case.fires(&RULE));
    }
}
