//! `redirect-without-location`: a redirect that does not say where to.

use super::{Exchange, Rule, RuleKind, Severity, Verdict};

/// Flags a redirect that does not say where to.
pub static RULE: Rule = Rule {
    id: "redirect-without-location",
    kind: RuleKind::Http,
    title: "Redirect without Location",
    severity: Severity::Error,
    fires_when: "301, 302, 303, 307 or 308 without `Location`",
    rationale: "RFC 9110 §15.4: for 301, 302, 303, 307 and 308 the server should send `Location`, the URI \
                to follow; without it the client is stranded. The guide's §4.1: `Location: /new-path`.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    let redirect = matches!(exchange.status, 301 | 302 | 303 | 307 | 308);
    (redirect && !exchange.headers.contains("location")).then(|| {
        Verdict::new(
            Severity::Error,
            format!("{} without Location", exchange.status),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::case;

    #[test]
    fn fires_on_each_redirect_without_location() {
        for status in [301, 302, 303, 307, 308] {
            assert!(case(status).fires(&RULE), "{status}");
        }
    }

    #[test]
    fn quiet_with_location_and_for_other_3xx() {
        assert!(!case(301).header("location", "/new").fires(&RULE));
        assert!(!case(304).fires(&RULE));
        assert!(!case(300).fires(&RULE));
    }
}
