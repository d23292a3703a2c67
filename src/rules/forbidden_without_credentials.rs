//! `forbidden-without-credentials`: a 403 where the client never tried to authenticate.

use super::{Exchange, Rule, RuleKind, Severity, Verdict};

/// Flags a 403 where the client never tried to authenticate.
pub static RULE: Rule = Rule {
    id: "forbidden-without-credentials",
    kind: RuleKind::Http,
    title: "403 to a request without credentials",
    severity: Severity::Info,
    fires_when: "403 to a request that carried neither `Authorization` nor `Cookie` (401 is the code for \
                 missing authentication)",
    rationale: "RFC 9110 §15.5.2 and §15.5.4: 401 means the request lacks valid credentials and invites the \
                client to authenticate; 403 means credentials would not help. The guide's §5.2, §5.3 and \
                §7.1: 401 for authentication failures, 403 for permission issues.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    let anonymous = !exchange.request.has_authorization && !exchange.request.has_cookie;
    (exchange.status == 403 && anonymous).then(|| {
        Verdict::new(
            Severity::Info,
            "403 to a request with neither Authorization nor Cookie",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::case;
    use crate::rules::RequestFacts;

    fn facts(has_authorization: bool, has_cookie: bool) -> RequestFacts<'static> {
        RequestFacts {
            has_authorization,
            has_cookie,
            ..RequestFacts::default()
        }
    }

    #[test]
    fn fires_for_anonymous_requests() {
        assert!(case(403).fires(&RULE));
    }

    #[test]
    fn quiet_when_the_client_authenticated() {
        assert!(!case(403).request(facts(true, false)).fires(&RULE));
        assert!(!case(403).request(facts(false, true)).fires(&RULE));
        assert!(!case(401).fires(&RULE));
    }
}
