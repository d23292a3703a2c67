//! Drift: what production does that the declared contract does not say, and what the contract
//! declares that production never showed — the declared contract against an observed one
//! (the OpenAPI document `/contract/observed` and `statuscope lint --observed` write).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use http::Method;
use serde::Serialize;
use serde_json::Value;

use super::{Contract, Declared, ResponseKey};

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
    /// `undeclared-content-type`, `unseen-operation`, `unseen-status`.
    pub kind: &'static str,
    /// The route, as the declared contract writes it where it has it.
    pub route: String,
    /// The method.
    pub method: String,
    /// The status code or declared response key, where it is about one.
    pub response: Option<String>,
    /// The media type, where it is about one.
    pub media: Option<String>,
}

/// One response of the observed document: its route, method, code and media types.
struct Seen {
    route: String,
    method: Method,
    code: u16,
    media: Vec<String>,
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
                    .map(|content| content.keys().cloned().collect())
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
                for media in &response.media {
                    if declared_response.content.is_some()
                        && declared_response.media_for(media).is_none()
                    {
                        let kind = "undeclared-content-type";
                        let code = Some(response.code);
                        differences.insert(difference(
                            DriftLevel::Warning,
                            kind,
                            code,
                            Some(media),
                        ));
                    }
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
        format!("{} {}{response}{media}", d.method, d.route)
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
        // A file per call: the tests run at once, and one must not read another's half-written.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("statuscope-drift-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("declared-{call}.yaml"));
        std::fs::write(&file, DECLARED).unwrap();
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
