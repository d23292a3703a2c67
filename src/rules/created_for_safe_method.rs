//! `created-for-safe-method`: a 201 answering a method that must not create anything.

use http::Method;

use super::{Exchange, Rule, RuleKind, Severity, Verdict};

/// Flags a 201 answering a method that must not create anything.
pub static RULE: Rule = Rule {
    id: "created-for-safe-method",
    kind: RuleKind::Http,
    title: "201 Created answering GET, HEAD or OPTIONS",
    severity: Severity::Warning,
    fires_when: "201 answering GET, HEAD or OPTIONS",
    rationale: "RFC 9110 §9.2.1: GET, HEAD and OPTIONS are safe — read-only by definition — and §15.3.2: \
                201 means the request created a resource. Crawlers, prefetchers and retries will create \
                resources by accident.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    let safe = matches!(
        *exchange.method,
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    (exchange.status == 201 && safe).then(|| {
        Verdict::new(
            Severity::Warning,
            format!("201 answering {}", exchange.method),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::case;

    #[test]
    fn fires_for_safe_methods() {
        for method in ["GET", "HEAD", "OPTIONS"] {
            assert!(case(201).method(method).fires(&RULE), "{method}");
        }
    }

    #[test]
    fn quiet_for_unsafe_methods() {
        assert!(!case(201).method("POST").fires(&RULE));
        assert!(!case(201).method("PUT").fires(&RULE));
        assert!(!case(200).fires(&RULE));
    }
}
