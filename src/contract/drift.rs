//! Drift: what production does that the declared contract does not say, and what the contract
//! declares that production never showed — the declared contract against an observed one
//! (the OpenAPI document `/contract/observed` and `statuscope lint --observed` write).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use http::Method;
use serde::Serialize;
use serde_json::Value;

use super::schema::{failures, Validator};
use super::{Contract, Declared, DeclaredResponse, ResponseKey};

/// How much a difference matters: `error` for what production does undeclared, `warning` for
/// an undeclared media type, `info` for what was declared and never seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DriftLevel {
    /// Declared, never seen in the observed window.
    Info,
    /// Seen with a media type the response does not declare.
    Warning,
    /// Seen, and not declared: a route, an operation, a status code.
    Error,
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Difference {
    /// How much it matters.
    pub level: DriftLevel,
    /// What differs: `undeclared-route`, `undeclared-operation`, `undeclared-status`,
    /// `undeclared-content-type`, `undeclared-property`, `unseen-operation`, `unseen-status`.
    pub kind: &'static str,
    /// The route, as the declared contract writes it where it has it.
    pub route: String,
    /// The method.
    pub method: String,
    /// The status code or declared response key, where it is about one.
    pub response: Option<String>,
    /// The media type, where it is about one.
    pub media: Option<String>,
    /// Where in the body, for a property the declared schema forbids (a JSON pointer).
    pub at: Option<String>,
}

/// One response of the observed document: its route, method, code and media types.
struct Seen {
    route: String,
    method: Method,
    code: u16,
    /// Each media type, with the schema learnt for it.
    media: Vec<(String, Option<Value>)>,
}

/// A route with its parameters' names dropped, so `/users/{id}` and `/users/{userId}` match.
fn shape(route: &str) -> String {
    let mut out = String::with_capacity(route.len());
    let mut in_name = false;
    for c in route.chars() {
        match c {
            '{' => {
                in_name = true;
                out.push('{');
            }
            '}' => {
                in_name = false;
                out.push('}');
            }
            _ if in_name => {}
            c => out.push(c),
        }
    }
    out
}

/// Every response the observed document lists.
fn seen(observed: &Value) -> Vec<Seen> {
    let mut seen = Vec::new();
    let Some(paths) = observed["paths"].as_object() else {
        return seen;
    };
    for (route, item) in paths {
        for (method, operation) in item.as_object().into_iter().flatten() {
            let Ok(method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
                continue;
            };
            for (code, response) in operation["responses"].as_object().into_iter().flatten() {
                let Ok(code) = code.parse() else { continue };
                let media = response["content"]
                    .as_object()
                    .map(|content| {
                        let schema = |media: &Value| media.get("schema").cloned();
                        content
                            .iter()
                            .map(|(m, c)| (m.clone(), schema(c)))
                            .collect()
                    })
                    .unwrap_or_default();
                seen.push(Seen {
                    route: route.clone(),
                    method: method.clone(),
                    code,
                    media,
                });
            }
        }
    }
    seen
}

/// What differs for one observed media type of a declared response: a type the response does
/// not declare, or a property its schema forbids; `found` makes a difference of a level and
/// kind.
fn media_differences(
    declared: &DeclaredResponse,
    media: &str,
    learnt: Option<&Value>,
    found: impl Fn(DriftLevel, &'static str) -> Difference,
) -> Vec<Difference> {
    let mut differences = Vec::new();
    let declared_media = declared.media_for(media);
    let forbidden = declared_media
        .and_then(|declared| declared.schema.as_ref())
        .zip(learnt)
        .and_then(|(validator, learnt)| forbidden_property(validator, learnt));
    if let Some(at) = forbidden {
        let mut difference = found(DriftLevel::Warning, "undeclared-property");
        difference.at = Some(at);
        differences.push(difference);
    }
    if declared.content.is_some() && declared_media.is_none() {
        differences.push(found(DriftLevel::Warning, "undeclared-content-type"));
    }
    differences
}

/// Where a body the learnt schema describes has a property the declared schema forbids
/// (`additionalProperties`, `unevaluatedProperties`): an instance with every learnt property,
/// each value of its first learnt type (a string in its learnt format), is judged by the
/// declared schema, and only those keywords count — the made-up values prove nothing else.
fn forbidden_property(declared: &Validator, learnt: &Value) -> Option<String> {
    let instance = serde_json::to_vec(&example(learnt)).ok()?;
    failures(declared, &instance)
        .into_iter()
        .find(|(_, keyword)| {
            keyword == "additionalProperties" || keyword == "unevaluatedProperties"
        })
        .map(|(at, _)| at)
}

/// A value a learnt schema describes: every property, each of its first type.
fn example(schema: &Value) -> Value {
    let first = match &schema["type"] {
        Value::String(name) => name.as_str(),
        Value::Array(names) => names.first().and_then(Value::as_str).unwrap_or("null"),
        _ => "null",
    };
    match first {
        "object" => Value::Object(
            schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, property)| (name.clone(), example(property)))
                .collect(),
        ),
        "array" => Value::Array(schema.get("items").map(example).into_iter().collect()),
        "integer" => Value::from(1),
        "number" => Value::from(1.5),
        "boolean" => Value::Bool(true),
        "string" => Value::from(match schema["format"].as_str() {
            Some("date-time") => "2026-01-01T00:00:00Z",
            Some("date") => "2026-01-01",
            Some("uuid") => "00000000-0000-4000-8000-000000000000",
            Some("email") => "someone@example.com",
            Some("uri") => "https://example.com/",
            _ => "text",
        }),
        _ => Value::Null,
    }
}

/// Every difference between `declared` and the `observed` document, most serious first.
pub fn diff(declared: &Contract, observed: &Value) -> Vec<Difference> {
    let seen = seen(observed);
    let routes: Vec<(String, &str)> = declared
        .paths()
        .iter()
        .map(|path| (shape(&path.route), path.route.as_str()))
        .collect();
    let mut differences = BTreeSet::new();
    let mut exercised = BTreeSet::new();
    for response in &seen {
        let declared_route = routes
            .iter()
            .find(|(shape_of, _)| *shape_of == shape(&response.route))
            .map(|(_, route)| *route);
        let route = declared_route.unwrap_or(&response.route);
        let difference = |level, kind, code: Option<u16>, media: Option<&str>| Difference {
            level,
            kind,
            route: route.to_string(),
            method: response.method.to_string(),
            response: code.map(|c| c.to_string()),
            media: media.map(str::to_string),
            at: None,
        };
        match declared.declared(route, &response.method, response.code) {
            Declared::NoRoute => {
                differences.insert(difference(
                    DriftLevel::Error,
                    "undeclared-route",
                    None,
                    None,
                ));
            }
            Declared::NoOperation(_) => {
                let kind = "undeclared-operation";
                differences.insert(difference(DriftLevel::Error, kind, None, None));
            }
            Declared::NoResponse(_) => {
                let code = Some(response.code);
                differences.insert(difference(
                    DriftLevel::Error,
                    "undeclared-status",
                    code,
                    None,
                ));
                exercised.insert((route.to_string(), response.method.to_string(), None));
            }
            Declared::Response(_, declared_response) => {
                let key = declared_response.key.label();
                exercised.insert((route.to_string(), response.method.to_string(), Some(key)));
                for (media, learnt) in &response.media {
                    let found =
                        |level, kind| difference(level, kind, Some(response.code), Some(media));
                    media_differences(declared_response, media, learnt.as_ref(), found)
                        .into_iter()
                        .for_each(|d| {
                            differences.insert(d);
                        });
                }
            }
        }
    }
    unseen(declared, &exercised, &mut differences);
    let mut differences: Vec<Difference> = differences.into_iter().collect();
    differences.sort_by(|a, b| b.level.cmp(&a.level).then_with(|| a.cmp(b)));
    differences
}

/// Adds what `declared` declares that no observed response `exercised`: operations, and
/// responses of one code.
fn unseen(
    declared: &Contract,
    exercised: &BTreeSet<(String, String, Option<String>)>,
    differences: &mut BTreeSet<Difference>,
) {
    for path in declared.paths() {
        for operation in &path.operations {
            let method = operation.method.to_string();
            let any = exercised
                .iter()
                .any(|(route, m, _)| *route == path.route && *m == method);
            let unseen = |kind, response: Option<String>| Difference {
                level: DriftLevel::Info,
                kind,
                route: path.route.clone(),
                method: method.clone(),
                response,
                media: None,
                at: None,
            };
            if !any {
                differences.insert(unseen("unseen-operation", None));
                continue;
            }
            for response in &operation.responses {
                let key = response.key.label();
                let seen =
                    exercised.contains(&(path.route.clone(), method.clone(), Some(key.clone())));
                if !seen && matches!(response.key, ResponseKey::Code(_)) {
                    differences.insert(unseen("unseen-status", Some(key)));
                }
            }
        }
    }
}

/// How a drift report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DriftFormat {
    /// Aligned lines, for a terminal.
    Table,
    /// One JSON document.
    Json,
    /// A Markdown table, for a pull-request comment.
    Markdown,
}

/// `differences` written as `format`.
pub fn render(differences: &[Difference], format: DriftFormat) -> String {
    let at = |d: &Difference| {
        let response = d
            .response
            .as_deref()
            .map(|r| format!(" {r}"))
            .unwrap_or_default();
        let media = d
            .media
            .as_deref()
            .map(|m| format!(" {m}"))
            .unwrap_or_default();
        let at =
            d.at.as_deref()
                .map(|at| format!(" at {at}"))
                .unwrap_or_default();
        format!("{} {}{response}{media}{at}", d.method, d.route)
    };
    let mut out = String::new();
    match format {
        DriftFormat::Json => {
            out = serde_json::to_string_pretty(&serde_json::json!({ "differences": differences }))
                .expect("serialisable");
            out.push('\n');
        }
        DriftFormat::Table => {
            for d in differences {
                let level = serde_json::to_value(d.level).expect("serialisable");
                let _ = writeln!(
                    out,
                    "{:<7} {:<23} {}",
                    level.as_str().unwrap_or(""),
                    d.kind,
                    at(d)
                );
            }
            let _ = writeln!(out, "{} differences", differences.len());
        }
        DriftFormat::Markdown => {
            out.push_str("| level | difference | where |\n|---|---|---|\n");
            for d in differences {
                let level = serde_json::to_value(d.level).expect("serialisable");
                let _ = writeln!(
                    out,
                    "| {} | `{}` | `{}` |",
                    level.as_str().unwrap_or(""),
                    d.kind,
                    at(d)
                );
            }
            if differences.is_empty() {
                out.push_str("| – | no difference | – |\n");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const DECLARED: &str = r#"
openapi: 3.1.0
info: {title: shop, version: "1"}
paths:
  /users/{userId}:
    get:
      responses:
        "200": {description: ok, content: {application/json: {}}}
        "404": {description: missing}
        4XX: {description: refused}
    delete:
      responses:
        "204": {description: gone}
  /orders:
    get:
      responses:
        "200": {description: ok}
"#;

    fn declared() -> Contract {
        declared_from(DECLARED)
    }

    fn declared_from(document: &str) -> Contract {
        // A file per call: the tests run at once, and one must not read another's half-written.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("statuscope-drift-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("declared-{call}.yaml"));
        std::fs::write(&file, document).unwrap();
        Contract::load(&file).unwrap()
    }

    fn kinds(differences: &[Difference]) -> Vec<(DriftLevel, &str, String)> {
        differences
            .iter()
            .map(|d| {
                let response = d.response.clone().unwrap_or_default();
                let media = d.media.clone().unwrap_or_default();
                (
                    d.level,
                    d.kind,
                    format!("{} {} {response} {media}", d.method, d.route)
                        .trim()
                        .to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn names_what_production_does_undeclared_and_what_it_never_showed() {
        let observed = json!({"paths": {
            "/users/{id}": {
                "get": {"responses": {
                    "200": {"content": {"application/json": {}, "text/html": {}}},
                    "403": {},
                    "500": {"content": {"application/json": {}}}
                }},
                "patch": {"responses": {"200": {}}}
            },
            "/health": {"get": {"responses": {"200": {}}}}
        }});
        let differences = diff(&declared(), &observed);
        assert_eq!(
            kinds(&differences),
            [
                (
                    DriftLevel::Error,
                    "undeclared-operation",
                    "PATCH /users/{userId}".to_string()
                ),
                (
                    DriftLevel::Error,
                    "undeclared-route",
                    "GET /health".to_string()
                ),
                (
                    DriftLevel::Error,
                    "undeclared-status",
                    "GET /users/{userId} 500".to_string()
                ),
                (
                    DriftLevel::Warning,
                    "undeclared-content-type",
                    "GET /users/{userId} 200 text/html".to_string()
                ),
                (
                    DriftLevel::Info,
                    "unseen-operation",
                    "GET /orders".to_string()
                ),
                (
                    DriftLevel::Info,
                    "unseen-operation",
                    "DELETE /users/{userId}".to_string()
                ),
                (
                    DriftLevel::Info,
                    "unseen-status",
                    "GET /users/{userId} 404".to_string()
                ),
            ]
        );
        let markdown = render(&differences, DriftFormat::Markdown);
        assert!(
            markdown.starts_with("| level | difference | where |"),
            "{markdown}"
        );
        assert_eq!(markdown.lines().count(), 2 + differences.len());
    }

    #[test]
    fn a_property_the_declared_schema_forbids_is_named_by_where_it_is() {
        let observed = json!({"paths": {"/users/{id}": {"get": {"responses": {
            "200": {"content": {"application/json": {"schema": {
                "type": "object",
                "properties": {"id": {"type": "integer"}, "nickname": {"type": ["string", "null"]}}
            }}}}
        }}}}});
        let strict = DECLARED.replace(
            "\"200\": {description: ok, content: {application/json: {}}}",
            "\"200\": {description: ok, content: {application/json: {schema: {type: object, additionalProperties: false, properties: {id: {type: string}}}}}}",
        );
        let differences = diff(&declared_from(&strict), &observed);
        let forbidden: Vec<_> = differences
            .iter()
            .filter(|d| d.kind == "undeclared-property")
            .collect();
        assert_eq!(forbidden.len(), 1, "{differences:?}");
        assert_eq!(forbidden[0].at.as_deref(), Some("/"));
        assert_eq!(forbidden[0].level, DriftLevel::Warning);
        // The made-up values break `type` too (an integer where a string is declared): that
        // proves nothing, and is no difference.
        let warnings = differences
            .iter()
            .filter(|d| d.level == DriftLevel::Warning)
            .count();
        assert_eq!(warnings, 1, "{differences:?}");
        assert!(diff(&declared(), &observed)
            .iter()
            .all(|d| d.kind != "undeclared-property"));
    }

    #[test]
    fn an_observed_contract_that_matches_has_no_difference_but_the_unseen() {
        let observed = json!({"paths": {
            "/users/{userId}": {
                "get": {"responses": {"200": {"content": {"application/json": {}}}, "404": {}}},
                "delete": {"responses": {"204": {}}}
            },
            "/orders": {"get": {"responses": {"200": {"content": {"application/json": {}}}}}}
        }});
        assert_eq!(diff(&declared(), &observed), []);
        assert!(render(&[], DriftFormat::Markdown).contains("no difference"));
    }
}
