//! `unauthorized-without-challenge`: a 401 that does not say how to authenticate.

use super::{Exchange, Rule, RuleKind, Severity, Verdict};

/// Flags a 401 that does not say how to authenticate.
pub static RULE: Rule = Rule {
    id: "unauthorized-without-challenge",
    kind: RuleKind::Http,
    title: "401 without WWW-Authenticate",
    severity: Severity::Warning,
    fires_when: "401 without `WWW-Authenticate`",
    rationale: "RFC 9110 §15.5.2 and §11.6.1: a server generating a 401 must send `WWW-Authenticate` with \
                at least one challenge. The guide's §5.2: `WWW-Authenticate: Bearer`. If no challenge \
                applies, the right code is probably 403.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    (exchange.status == 401 && !exchange.headers.contains("www-authenticate"))
        .then(|| Verdict::new(Severity::Warning, "401 without WWW-Authenticate"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::case;

    #[test]
    fn fires_without_a_challenge() {
        assert!(case(401).fires(&RULE));
    }

    #[test]
    fn quiet_with_a_challenge() {
        assert!(!case(401)
            .header("www-authenticate", "Bearer realm=\"api\"")
            .fires(&RULE));
        assert!(!case(403).fires(&RULE));
    }
}
