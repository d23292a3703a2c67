//! `unexpected-continue`: a 100 Continue nobody asked for.

use super::{Exchange, Rule, RuleKind, Severity, Verdict};

/// Flags a 100 Continue nobody asked for.
pub static RULE: Rule = Rule {
    id: "unexpected-continue",
    kind: RuleKind::Http,
    title: "100 Continue without Expect: 100-continue",
    severity: Severity::Warning,
    fires_when: "a 100 Continue to a request without `Expect: 100-continue`",
    rationale: "RFC 9110 §10.1.1 and §15.2.1: 100 Continue answers a client's `Expect: 100-continue`, telling \
                it to send the content. Unasked-for, it is noise some clients mishandle, and HTTP/1.0 \
                clients must never receive a 1xx (§15.2). The guide's §2.1.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    (exchange.sent_continue && !exchange.request.expects_continue).then(|| {
        Verdict::new(
            Severity::Warning,
            format!(
                "100 Continue before the {} to a request without Expect",
                exchange.status
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::case;
    use crate::rules::RequestFacts;

    #[test]
    fn fires_when_continue_was_not_expected() {
        let mut case = case(200).method("POST");
        case.sent_continue = true;
        assert!(case.fires(&RULE));
    }

    #[test]
    fn quiet_when_expected_or_absent() {
        let mut expected = case(200).method("POST").request(RequestFacts {
            expects_continue: true,
            ..RequestFacts::default()
        });
        expected.sent_continue = true;
        assert!(!expected.fires(&RULE));
        assert!(!case(200).fires(&RULE));
    }
}
