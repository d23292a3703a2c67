//! `body-schema-mismatch`: a JSON body that does not validate against its declared schema. Judged only when `contract.openapi` names a document.

use super::{Exchange, Rule, RuleKind, Severity, Verdict};
use crate::contract::schema::first_failure;
use crate::contract::Declared;
use crate::sample::BodyKind;

/// Flags a JSON body that does not validate against its declared schema.
pub static RULE: Rule = Rule {
    id: "body-schema-mismatch",
    kind: RuleKind::Contract,
    title: "Body does not match the declared schema",
    severity: Severity::Error,
    fires_when: "the body is JSON (`application/json`, `+json`), the sample holds all of it (a truncated body is never judged), and it does not validate against the schema declared for its media type (OpenAPI 3.0's dialect or 3.1's JSON Schema 2020-12); compressed bodies are decoded first",
    rationale: "OpenAPI 3.1 §4.8.14 (Media Type Object), `schema`: the shape clients are generated from and tested against. A missing required field, a string where a number was declared, a `null` where none is allowed: each a client crash the contract said could not happen. The evidence names the JSON pointer that failed, never the value.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    let Some(Declared::Response(_, response)) = exchange.contract else {
        return None;
    };
    let body = exchange.body?;
    if body.kind != BodyKind::Json || body.truncated {
        return None;
    }
    let essence = exchange.content_type?.to_ascii_lowercase();
    let schema = response.media_for(&essence)?.schema.as_ref()?;
    let failure = first_failure(schema, &body.bytes)?;
    Some(Verdict::new(
        Severity::Error,
        format!("{} ({essence}): {failure}", exchange.status),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{case, contract};

    #[test]
    fn fires_on_a_body_that_breaks_its_schema() {
        let contract = contract();
        let judged = |body: &str| {
            case(200)
                .body("application/json", body)
                .on(&contract, "/api/users/{userId}")
                .check(&RULE)
                .map(|v| v.evidence)
        };
        let evidence = judged(r#"{"id": "seven", "name": "Ada"}"#).unwrap();
        assert!(
            evidence.contains("`/id`") && evidence.contains("`type`"),
            "{evidence}"
        );
        assert!(!evidence.contains("seven"), "never the value: {evidence}");
        assert!(judged(r#"{"name": "Ada"}"#).unwrap().contains("`required`"));
        assert!(judged("not json").unwrap().contains("not JSON"));
    }

    #[test]
    fn quiet_on_valid_nullable_truncated_and_undeclared_bodies() {
        let contract = contract();
        let fires = |body: &str| {
            case(200)
                .body("application/json", body)
                .on(&contract, "/api/users/{userId}")
                .fires(&RULE)
        };
        assert!(!fires(r#"{"id": 7, "name": "Ada", "nickname": null}"#));
        let mut truncated = case(200)
            .body("application/json", r#"{"id": "seven""#)
            .on(&contract, "/api/users/{userId}");
        truncated.body.as_mut().unwrap().truncated = true;
        assert!(!truncated.fires(&RULE));
        assert!(
            !case(404)
                .body("application/json", r#"{"anything": 1}"#)
                .on(&contract, "/api/users/{userId}")
                .fires(&RULE),
            "no schema declared"
        );
    }
}
