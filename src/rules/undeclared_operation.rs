//! `undeclared-operation`: a method the contract does not declare on a declared path, answered with success. Judged only when `contract.openapi` names a document.

use super::{Exchange, Rule, RuleKind, Severity, Verdict};
use crate::contract::Declared;

/// Flags a method the contract does not declare on a declared path, answered with success.
pub static RULE: Rule = Rule {
    id: "undeclared-operation",
    kind: RuleKind::Contract,
    title: "Operation not declared by the contract",
    severity: Severity::Warning,
    fires_when: "the path is declared, not for this method, and the service answered 2xx or 3xx (a refusal such as 404, 405 or 501 is the right answer); `HEAD` counts as declared wherever `GET` is",
    rationale: "OpenAPI 3.1 §4.8.9 (Path Item Object) lists the operations a path offers. A method it does not list that still succeeds is an undocumented endpoint: untested, unreviewed, often a framework default (a PUT that works because a router maps every method). RFC 9110 §9.3.2: HEAD is GET without the body, so it is declared with GET.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    let Some(Declared::NoOperation(path)) = exchange.contract else {
        return None;
    };
    if !(200..400).contains(&exchange.status) {
        return None;
    }
    let declared: Vec<&str> = path
        .operations
        .iter()
        .map(|op| op.method.as_str())
        .collect();
    Some(Verdict::new(
        Severity::Warning,
        format!(
            "{} {} answered {}; the contract declares only {}",
            exchange.method,
            exchange.route,
            exchange.status,
            declared.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{case, contract};

    #[test]
    fn fires_when_an_undeclared_method_succeeds() {
        let contract = contract();
        assert!(case(200)
            .method("DELETE")
            .on(&contract, "/api/users/{userId}")
            .fires(&RULE));
        assert!(case(302)
            .method("PUT")
            .on(&contract, "/api/users/{userId}")
            .fires(&RULE));
    }

    #[test]
    fn quiet_on_refusals_declared_methods_and_head_for_get() {
        let contract = contract();
        for refusal in [404, 405, 501] {
            assert!(!case(refusal)
                .method("DELETE")
                .on(&contract, "/api/users/{userId}")
                .fires(&RULE));
        }
        assert!(!case(200).on(&contract, "/api/users/{userId}").fires(&RULE));
        assert!(!case(200)
            .method("HEAD")
            .on(&contract, "/api/users/{userId}")
            .fires(&RULE));
        assert!(!case(200)
            .method("DELETE")
            .on(&contract, "/elsewhere")
            .fires(&RULE));
    }
}
