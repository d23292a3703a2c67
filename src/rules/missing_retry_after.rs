//! `missing-retry-after`: a 429 or 503 that does not say when to come back.

use super::{Exchange, Rule, RuleKind, Severity, Verdict};

/// Flags a 429 or 503 that does not say when to come back.
pub static RULE: Rule = Rule {
    id: "missing-retry-after",
    kind: RuleKind::Http,
    title: "Rate limit or unavailability without Retry-After",
    severity: Severity::Warning,
    fires_when: "429 without `Retry-After` (warning); 503 without it (info)",
    rationale: "RFC 6585 §4 and RFC 9110 §10.2.3, §15.6.4: `Retry-After` tells clients when to retry; \
                without it they guess, and well-behaved clients back off blindly while others hammer. \
                The guide's §5.5 shows `Retry-After: 60` on every 429.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    let severity = match exchange.status {
        429 => Severity::Warning,
        503 => Severity::Info,
        _ => return None,
    };
    if exchange.headers.contains("retry-after") {
        return None;
    }
    Some(Verdict::new(
        severity,
        format!("{} without Retry-After", exchange.status),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::case;

    #[test]
    fn fires_with_the_severity_of_the_code() {
        assert_eq!(case(429).check(&RULE).unwrap().severity, Severity::Warning);
        assert_eq!(case(503).check(&RULE).unwrap().severity, Severity::Info);
    }

    #[test]
    fn quiet_with_either_form_of_retry_after() {
        assert!(!case(429).header("retry-after", "60").fires(&RULE));
        assert!(!case(429)
            .header("retry-after", "Wed, 21 Oct 2026 07:28:00 GMT")
            .fires(&RULE));
        assert!(!case(503).header("retry-after", "120").fires(&RULE));
        assert!(!case(500).fires(&RULE));
    }
}
