//! `method-not-allowed-without-allow`: a 405 that does not list what is allowed.

use super::parse::headers::allow_lists;
use super::{Exchange, Rule, RuleKind, Severity, Verdict};

/// Flags a 405 that does not list what is allowed.
pub static RULE: Rule = Rule {
    id: "method-not-allowed-without-allow",
    kind: RuleKind::Http,
    title: "405 without a consistent Allow",
    severity: Severity::Warning,
    fires_when: "405 without `Allow`, or with an `Allow` that lists the refused method",
    rationale:
        "RFC 9110 §15.5.6 and §10.2.1: the origin server must send `Allow` with a 405, listing the \
                methods the resource supports; listing the refused method contradicts the status.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    if exchange.status != 405 {
        return None;
    }
    let method = exchange.method.as_str();
    match exchange.header("allow") {
        None => Some(Verdict::new(
            Severity::Warning,
            format!("405 to {method} without Allow"),
        )),
        Some(allow) if allow_lists(allow, method) => Some(Verdict::new(
            Severity::Warning,
            format!(
                "405 to {method} with Allow: {}",
                allow.chars().take(80).collect::<String>()
            ),
        )),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::case;

    #[test]
    fn fires_without_allow_or_when_allow_lists_the_method() {
        assert!(case(405).method("DELETE").fires(&RULE));
        assert!(case(405)
            .method("DELETE")
            .header("allow", "GET, DELETE")
            .fires(&RULE));
    }

    #[test]
    fn quiet_with_a_consistent_allow() {
        assert!(!case(405)
            .method("DELETE")
            .header("allow", "GET, HEAD")
            .fires(&RULE));
        // An empty Allow is valid: the resource allows no method (RFC 9110 §10.2.1).
        assert!(!case(405).method("POST").header("allow", "").fires(&RULE));
        assert!(!case(404).fires(&RULE));
    }
}
