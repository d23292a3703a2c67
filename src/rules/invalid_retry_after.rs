//! `invalid-retry-after`: a `Retry-After` clients cannot parse.

use super::parse::headers::retry_after_is_valid;
use super::{Exchange, Rule, RuleKind, Severity, Verdict};

/// Flags a `Retry-After` clients cannot parse.
pub static RULE: Rule = Rule {
    id: "invalid-retry-after",
    kind: RuleKind::Http,
    title: "Retry-After is neither seconds nor an HTTP-date",
    severity: Severity::Warning,
    fires_when: "`Retry-After` that is neither delay-seconds nor an HTTP-date",
    rationale: "RFC 9110 §10.2.3: `Retry-After` is an HTTP-date or a non-negative whole number of seconds. \
                Anything else (\"1.5\", \"-1\", an ISO 8601 time) is ignored or misread by clients.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    let value = exchange.headers.get("retry-after")?;
    let text = crate::rules::visible_ascii(value).unwrap_or("");
    if retry_after_is_valid(text) {
        return None;
    }
    let shown: String = String::from_utf8_lossy(value).chars().take(60).collect();
    Some(Verdict::new(
        Severity::Warning,
        format!("Retry-After: {shown}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::case;

    #[test]
    fn fires_on_values_clients_cannot_parse() {
        for value in ["1.5", "-1", "soon", "2026-10-21T07:28:00Z"] {
            assert!(
                case(429).header("retry-after", value).fires(&RULE),
                "{value}"
            );
        }
    }

    #[test]
    fn quiet_on_seconds_dates_and_absence() {
        assert!(!case(429).header("retry-after", "120").fires(&RULE));
        assert!(!case(429)
            .header("retry-after", "Wed, 21 Oct 2026 07:28:00 GMT")
            .fires(&RULE));
        assert!(!case(429).fires(&RULE));
    }
}
