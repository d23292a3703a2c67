//! `missing-declared-header`: a response without a header its declaration requires. Judged only when `contract.openapi` names a document.

use super::{Exchange, Rule, RuleKind, Severity, Verdict};
use crate::contract::Declared;

/// Flags a response without a header its declaration requires.
pub static RULE: Rule = Rule {
    id: "missing-declared-header",
    kind: RuleKind::Contract,
    title: "Required header missing",
    severity: Severity::Warning,
    fires_when: "a response header the declared response marks `required: true` is absent",
    rationale: "OpenAPI 3.1 §4.8.21 (Header Object), `required`: clients may rely on the header being there — a `Location` after a create, a `RateLimit` or `ETag` their caching and pacing are built on.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    let Some(Declared::Response(_, response)) = exchange.contract else {
        return None;
    };
    let missing = response
        .required_headers
        .iter()
        .find(|name| !exchange.headers.contains(name))?;
    Some(Verdict::new(
        Severity::Warning,
        format!(
            "{} without `{missing}`, which response {} requires",
            exchange.status,
            response.key.label()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{case, contract};

    #[test]
    fn fires_when_a_required_header_is_absent() {
        let contract = contract();
        assert!(case(201)
            .method("POST")
            .on(&contract, "/api/orders")
            .fires(&RULE));
    }

    #[test]
    fn quiet_when_present_or_optional() {
        let contract = contract();
        assert!(!case(201)
            .method("POST")
            .header("location", "/api/orders/1")
            .on(&contract, "/api/orders")
            .fires(&RULE));
        assert!(
            !case(200).on(&contract, "/api/users/{userId}").fires(&RULE),
            "optional"
        );
    }
}
