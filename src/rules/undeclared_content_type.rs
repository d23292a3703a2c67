//! `undeclared-content-type`: a response whose media type the declared response does not list. Judged only when `contract.openapi` names a document.

use super::{Exchange, Rule, RuleKind, Severity, Verdict};
use crate::contract::Declared;

/// Flags a response whose media type the declared response does not list.
pub static RULE: Rule = Rule {
    id: "undeclared-content-type",
    kind: RuleKind::Contract,
    title: "Content type not declared by the contract",
    severity: Severity::Warning,
    fires_when: "the declared response lists media types (`content`) and the response's `Content-Type` (parameters ignored; `type/*` and `*/*` honoured) matches none; a declared response without `content`, or a response without `Content-Type`, says nothing about the body",
    rationale: "OpenAPI 3.1 §4.8.17 (Response Object), `content`: the media types a response may carry. A client generated from the contract parses what it was told; an HTML error page or `text/plain` where JSON was declared breaks it at the worst moment.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    let Some(Declared::Response(_, response)) = exchange.contract else {
        return None;
    };
    let (Some(content), Some(media_type)) = (&response.content, exchange.content_type) else {
        return None;
    };
    let essence = media_type.to_ascii_lowercase();
    if content.iter().any(|declared| declared.covers(&essence)) {
        return None;
    }
    let declared: Vec<&str> = content.iter().map(|m| m.range.as_str()).collect();
    Some(Verdict::new(
        Severity::Warning,
        format!(
            "{} answered `{essence}`; response {} declares {}",
            exchange.status,
            response.key.label(),
            declared.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{case, contract};

    #[test]
    fn fires_on_a_type_the_response_does_not_list() {
        let contract = contract();
        assert!(case(200)
            .header("content-type", "text/html")
            .on(&contract, "/api/users/{userId}")
            .fires(&RULE));
    }

    #[test]
    fn quiet_on_listed_types_ranges_parameters_and_responses_without_content() {
        let contract = contract();
        let on = |status, content_type: &str, route| {
            case(status)
                .header("content-type", content_type)
                .on(&contract, route)
                .fires(&RULE)
        };
        assert!(!on(
            200,
            "application/json; charset=utf-8",
            "/api/users/{userId}"
        ));
        assert!(
            !on(200, "application/vnd.user+json", "/api/users/{userId}"),
            "application/*"
        );
        assert!(!on(404, "text/plain", "/api/users/{userId}"), "*/*");
        assert!(
            !case(201)
                .method("POST")
                .header("content-type", "text/plain")
                .on(&contract, "/api/orders")
                .fires(&RULE),
            "no content declared"
        );
        assert!(
            !case(200).on(&contract, "/api/users/{userId}").fires(&RULE),
            "no type"
        );
    }
}
