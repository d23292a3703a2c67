//! `created-without-location`: a 201 that does not say where the new resource is.

use http::Method;

use super::{Exchange, Rule, RuleKind, Severity, Verdict};

/// Flags a 201 that does not say where the new resource is.
pub static RULE: Rule = Rule {
    id: "created-without-location",
    kind: RuleKind::Http,
    title: "201 Created without Location",
    severity: Severity::Warning,
    fires_when: "201 without `Location` (except to PUT, whose target URI is the created resource)",
    rationale: "RFC 9110 §15.3.2: the created resource is identified by `Location`, or else by the target \
                URI. For a POST to a collection the target is the collection, so without `Location` the \
                client cannot find what it created. The guide's §3.2: include `Location: /users/101`.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    if exchange.status != 201
        || *exchange.method == Method::PUT
        || exchange.headers.contains("location")
    {
        return None;
    }
    Some(Verdict::new(
        Severity::Warning,
        format!("201 to {} without Location", exchange.method),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::case;

    #[test]
    fn fires_on_a_post_without_location() {
        assert!(case(201).method("POST").fires(&RULE));
    }

    #[test]
    fn quiet_with_location_or_for_put() {
        assert!(!case(201)
            .method("POST")
            .header("location", "/users/101")
            .fires(&RULE));
        assert!(!case(201).method("PUT").fires(&RULE));
        assert!(!case(200).method("POST").fires(&RULE));
    }
}
