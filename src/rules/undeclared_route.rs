//! `undeclared-route`: a path no path of the contract matches, answered with success. Judged only when `contract.openapi` names a document.

use super::{Exchange, Rule, RuleKind, Severity, Verdict};
use crate::contract::Declared;

/// Flags a path no path of the contract matches, answered with success.
pub static RULE: Rule = Rule {
    id: "undeclared-route",
    kind: RuleKind::Contract,
    title: "Route not declared by the contract",
    severity: Severity::Warning,
    fires_when: "no path of the document matches the request and the service answered 2xx or 3xx (a 404 for an unknown path is the right answer)",
    rationale: "OpenAPI 3.1 §4.8.8 (Paths Object): the paths are the API's surface. A path outside it that succeeds is shadow API: an old version left running, a debug or admin endpoint, a route added without its contract.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    let Some(Declared::NoRoute) = exchange.contract else {
        return None;
    };
    if !(200..400).contains(&exchange.status) {
        return None;
    }
    Some(Verdict::new(
        Severity::Warning,
        format!(
            "{} {} answered {}; no path of the contract matches",
            exchange.method, exchange.route, exchange.status
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{case, contract};

    #[test]
    fn fires_when_an_undeclared_path_succeeds() {
        let contract = contract();
        assert!(case(200).on(&contract, "/internal/debug").fires(&RULE));
        assert!(case(301).on(&contract, "/old/{id}").fires(&RULE));
    }

    #[test]
    fn quiet_on_refusals_and_declared_paths() {
        let contract = contract();
        assert!(!case(404).on(&contract, "/internal/debug").fires(&RULE));
        assert!(!case(200).on(&contract, "/api/orders").fires(&RULE));
        assert!(!case(200).fires(&RULE), "no contract configured");
    }
}
