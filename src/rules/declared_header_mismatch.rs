//! `declared-header-mismatch`: a response header whose value does not match the schema its declaration gives it. Judged only when `contract.openapi` names a document.

use serde_json::{Map, Value};

use super::{Exchange, Rule, RuleKind, Severity, Verdict};
use crate::contract::schema::failure;
use crate::contract::{Declared, DeclaredHeader, HeaderShape, ScalarType};

/// Flags a response header whose value does not match its declared schema.
pub static RULE: Rule = Rule {
    id: "declared-header-mismatch",
    kind: RuleKind::Contract,
    title: "Header does not match its declared schema",
    severity: Severity::Warning,
    fires_when: "a response header the declared response gives a `schema` is present and its value, read as OpenAPI's `simple` style writes it (a number, a boolean, comma-separated array items, `name,value` or, with `explode`, `name=value` object members), fails that schema",
    rationale: "OpenAPI 3.1 §4.8.21 (Header Object) and §4.8.12.4 (style values): the declared schema is what clients parse the header as — an `X-RateLimit-Remaining: unlimited` where an integer was declared breaks the client that paces itself by it. The evidence names the header and the keyword that failed, never the value.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    let Some(Declared::Response(_, response)) = exchange.contract else {
        return None;
    };
    response.header_schemas.iter().find_map(|header| {
        let value = exchange.headers.get_str(&header.name)?;
        let instance = serde_json::to_vec(&instance(header, value)).ok()?;
        let (at, keyword) = failure(&header.schema, &instance)??;
        let place = if at == "/" {
            String::new()
        } else {
            format!(" at `{at}`")
        };
        Some(Verdict::new(
            Severity::Warning,
            format!(
                "`{}`{place} fails its declared schema's `{keyword}` (response {})",
                header.name,
                response.key.label()
            ),
        ))
    })
}

/// The JSON instance a `simple`-style value of `header` stands for.
fn instance(header: &DeclaredHeader, value: &str) -> Value {
    let items = || value.split(',').map(str::trim);
    let member = |name: &str, text: &str| {
        let kind = header
            .members
            .iter()
            .find(|(declared, _)| declared == name)
            .map_or(ScalarType::String, |(_, kind)| *kind);
        (name.to_string(), scalar(kind, text))
    };
    match header.shape {
        HeaderShape::Scalar(kind) => scalar(kind, value.trim()),
        HeaderShape::Array(kind) => Value::Array(items().map(|item| scalar(kind, item)).collect()),
        HeaderShape::Object { explode: true } => Value::Object(
            items()
                .filter_map(|pair| pair.split_once('='))
                .map(|(name, text)| member(name, text))
                .collect(),
        ),
        HeaderShape::Object { explode: false } => {
            let parts: Vec<&str> = items().collect();
            let members: Map<String, Value> = parts
                .chunks(2)
                .filter_map(|pair| match pair {
                    [name, text] => Some(member(name, text)),
                    _ => None,
                })
                .collect();
            Value::Object(members)
        }
    }
}

/// `text` as `kind` when it is one, else as text (which the schema's `type` then refuses).
fn scalar(kind: ScalarType, text: &str) -> Value {
    let parsed = match kind {
        ScalarType::Integer => text.parse::<i64>().ok().map(Value::from),
        ScalarType::Number => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        ScalarType::Boolean => match text {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        ScalarType::String => None,
    };
    parsed.unwrap_or_else(|| Value::String(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{case, contract};

    fn judged(header: &'static str, value: &str) -> bool {
        case(200)
            .header("content-type", "application/json")
            .header(header, value)
            .on(&contract(), "/api/users/{userId}")
            .fires(&RULE)
    }

    #[test]
    fn fires_on_values_that_break_their_declared_schema() {
        assert!(judged("x-ratelimit-remaining", "unlimited"), "type");
        assert!(judged("x-ratelimit-remaining", "-1"), "minimum");
        assert!(judged("x-flags", "true,maybe"), "an array item");
        assert!(judged("x-window", "from=soon"), "an exploded object member");
    }

    #[test]
    fn quiet_on_values_that_match_and_on_absent_or_undeclared_headers() {
        assert!(!judged("x-ratelimit-remaining", "42"));
        assert!(!judged("x-flags", "true, false"));
        assert!(!judged("x-window", "from=7"));
        assert!(!judged("x-other", "anything"));
        assert!(!case(200)
            .on(&contract(), "/api/users/{userId}")
            .fires(&RULE));
    }

    #[test]
    fn the_evidence_names_the_header_and_keyword_never_the_value() {
        let verdict = case(200)
            .header("x-ratelimit-remaining", "unlimited")
            .on(&contract(), "/api/users/{userId}")
            .check(&RULE)
            .unwrap();
        assert!(
            verdict.evidence.contains("x-ratelimit-remaining"),
            "{}",
            verdict.evidence
        );
        assert!(verdict.evidence.contains("`type`"), "{}", verdict.evidence);
        assert!(
            !verdict.evidence.contains("unlimited"),
            "{}",
            verdict.evidence
        );
    }
}
