//! `undeclared-status`: a status the operation's contract does not declare. Judged only when `contract.openapi` names a document.

use super::{Exchange, Rule, RuleKind, Severity, Verdict};
use crate::contract::Declared;

/// Flags a status the operation's contract does not declare.
pub static RULE: Rule = Rule {
    id: "undeclared-status",
    kind: RuleKind::Contract,
    title: "Status not declared by the contract",
    severity: Severity::Warning,
    fires_when: "the operation declares no response for the code: no exact code, no range (`4XX`), no `default`",
    rationale: "OpenAPI 3.1 §4.8.16 (Responses Object): an operation documents its responses by code, by range or by `default`; a code outside them is one clients were never told to handle, often an error path nobody designed (an unplanned 500, a proxy 502 passed through, a 404 from a framework default).",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    let Some(Declared::NoResponse(operation)) = exchange.contract else {
        return None;
    };
    let declared: Vec<String> = operation.responses.iter().map(|r| r.key.label()).collect();
    Some(Verdict::new(
        Severity::Warning,
        format!(
            "{} to {} {} is not declared; the contract declares {}",
            exchange.status,
            exchange.method,
            exchange.route,
            declared.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{case, contract};

    #[test]
    fn fires_on_a_code_without_exact_range_or_default() {
        let contract = contract();
        assert!(case(500).on(&contract, "/api/users/{userId}").fires(&RULE));
        assert!(case(201).on(&contract, "/api/users/{userId}").fires(&RULE));
    }

    #[test]
    fn quiet_on_exact_codes_ranges_defaults_and_undeclared_routes() {
        let contract = contract();
        assert!(!case(200).on(&contract, "/api/users/{userId}").fires(&RULE));
        assert!(!case(404).on(&contract, "/api/users/{userId}").fires(&RULE));
        assert!(
            !case(418).on(&contract, "/api/users/{userId}").fires(&RULE),
            "4XX"
        );
        assert!(
            !case(503).on(&contract, "/api/orders").fires(&RULE),
            "default"
        );
        assert!(!case(500).on(&contract, "/nowhere").fires(&RULE));
        assert!(!case(500).fires(&RULE), "no contract configured");
    }
}
