//! `method-changing-redirect`: 301/302 to a request that must not become a GET.

use http::Method;

use super::{Exchange, Rule, RuleKind, Severity, Verdict};

/// Flags 301/302 to a request that must not become a GET.
pub static RULE: Rule = Rule {
    id: "method-changing-redirect",
    kind: RuleKind::Http,
    title: "301/302 answering a method other than GET or HEAD",
    severity: Severity::Warning,
    fires_when: "301 or 302 answering a method other than GET/HEAD (307/308 preserve the method)",
    rationale: "RFC 9110 §15.4.2 and §15.4.3: user agents may change a POST into a GET when following a 301 \
                or 302, silently dropping the body. 307 and 308 (§15.4.8, §15.4.9, the guide's §4.2) keep \
                the method.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    let rewritable = matches!(exchange.status, 301 | 302);
    let keeps = matches!(*exchange.method, Method::GET | Method::HEAD);
    (rewritable && !keeps).then(|| {
        let instead = if exchange.status == 301 { 308 } else { 307 };
        Verdict::new(
            Severity::Warning,
            format!(
                "{} answering {}; {instead} keeps the method",
                exchange.status, exchange.method
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::case;

    #[test]
    fn fires_for_unsafe_methods() {
        assert!(case(301).method("POST").fires(&RULE));
        assert!(case(302).method("DELETE").fires(&RULE));
    }

    #[test]
    fn quiet_for_get_head_and_method_preserving_codes() {
        assert!(!case(301).method("GET").fires(&RULE));
        assert!(!case(302).method("HEAD").fires(&RULE));
        assert!(!case(307).method("POST").fires(&RULE));
        assert!(!case(308).method("POST").fires(&RULE));
        assert!(!case(303).method("POST").fires(&RULE));
    }
}
