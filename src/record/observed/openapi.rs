//! The learnt API as an OpenAPI 3.1 document: paths from the route templates with their
//! parameters, per operation the responses seen, each with its media types' learnt schemas
//! and its headers (required when every response of the code had it). `x-statuscope-`
//! extensions carry the counts.

use serde_json::{json, Map, Value};

use super::{Learnt, Media, Operation, Response};

/// The OpenAPI version written.
const OPENAPI: &str = "3.1.0";

/// How the document is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentFormat {
    /// YAML, as specs are usually committed.
    Yaml,
    /// JSON.
    Json,
}

impl DocumentFormat {
    /// The format by its name, `yaml` or `json`.
    pub fn named(name: &str) -> Option<DocumentFormat> {
        match name {
            "yaml" => Some(DocumentFormat::Yaml),
            "json" => Some(DocumentFormat::Json),
            _ => None,
        }
    }

    /// The format a file's name asks for: `.json` is JSON, anything else YAML.
    pub fn for_path(path: &std::path::Path) -> DocumentFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => DocumentFormat::Json,
            _ => DocumentFormat::Yaml,
        }
    }
}

impl Learnt {
    /// The document, titled `title`, written as `format`, with its media type.
    pub fn render(&self, title: &str, format: DocumentFormat) -> (Vec<u8>, &'static str) {
        let document = self.to_openapi(title);
        match format {
            DocumentFormat::Json => {
                let mut body = serde_json::to_vec_pretty(&document).expect("serialisable");
                body.push(b'\n');
                (body, "application/json")
            }
            DocumentFormat::Yaml => (
                serde_yaml::to_string(&document)
                    .expect("serialisable")
                    .into_bytes(),
                "application/yaml",
            ),
        }
    }

    /// The document, titled `title`.
    pub fn to_openapi(&self, title: &str) -> Value {
        let mut routes: Vec<_> = self.routes.iter().collect();
        routes.sort_by(|a, b| a.0.cmp(b.0));
        let mut paths = Map::new();
        for (route, operations) in routes {
            let (path, parameters) = path_and_parameters(route);
            let mut item = Map::new();
            let mut operations: Vec<&Operation> = operations.iter().collect();
            operations.sort_by_key(|op| op.method);
            for operation in operations {
                let Some(method) = openapi_method(operation.method) else {
                    continue;
                };
                item.insert(method.into(), operation.to_openapi(&parameters));
            }
            if !item.is_empty() {
                paths.insert(path, Value::Object(item));
            }
        }
        json!({
            "openapi": OPENAPI,
            "info": {
                "title": title,
                "version": "observed",
                "description": "What the service answered, as statuscope observed it: learnt from live traffic (or recordings), not declared.",
            },
            "paths": paths,
        })
    }
}

/// The lower-case method names OpenAPI has a field for.
fn openapi_method(label: &str) -> Option<&'static str> {
    Some(match label {
        "GET" => "get",
        "PUT" => "put",
        "POST" => "post",
        "DELETE" => "delete",
        "OPTIONS" => "options",
        "HEAD" => "head",
        "PATCH" => "patch",
        "TRACE" => "trace",
        _ => return None,
    })
}

/// An OpenAPI path for a route template, each `{name}` a path parameter: a repeated name
/// (`/users/{id}/orders/{id}`, as automatic normalisation writes it) is numbered, since
/// OpenAPI wants them unique, and `{name*}` becomes `{name}`.
fn path_and_parameters(route: &str) -> (String, Vec<Value>) {
    let mut names: Vec<String> = Vec::new();
    let mut path = String::with_capacity(route.len());
    let mut rest = route;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        path.push_str(&rest[..open]);
        let base = rest[open + 1..open + close].trim_end_matches('*');
        let mut name = base.to_string();
        let mut n = 2;
        while names.contains(&name) {
            name = format!("{base}{n}");
            n += 1;
        }
        path.push('{');
        path.push_str(&name);
        path.push('}');
        names.push(name);
        rest = &rest[open + close + 1..];
    }
    path.push_str(rest);
    let parameters = names
        .into_iter()
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    (path, parameters)
}

impl Operation {
    fn to_openapi(&self, parameters: &[Value]) -> Value {
        let mut responses: Vec<&Response> = self.responses.iter().collect();
        responses.sort_by_key(|r| r.status);
        let described: Map<String, Value> = responses
            .iter()
            .map(|r| (r.status.to_string(), r.to_openapi()))
            .collect();
        let mut operation = Map::new();
        let mut parameters = parameters.to_vec();
        let mut query: Vec<&(Box<str>, u64)> = self.query.iter().collect();
        query.sort();
        parameters.extend(query.iter().map(|(name, count)| {
            json!({
                "name": name,
                "in": "query",
                "required": *count == self.requests_learnt,
                "schema": {"type": "string"},
                "x-statuscope-seen": count,
            })
        }));
        if !parameters.is_empty() {
            operation.insert("parameters".into(), json!(parameters));
        }
        if !self.request_media.is_empty() {
            let mut media: Vec<&(Box<str>, u64)> = self.request_media.iter().collect();
            media.sort();
            let with_body: u64 = media.iter().map(|(_, count)| count).sum();
            let content: Map<String, Value> = media
                .iter()
                .map(|(name, count)| (name.to_string(), json!({"x-statuscope-seen": count})))
                .collect();
            let body = json!({"required": with_body == self.requests_learnt, "content": content});
            operation.insert("requestBody".into(), body);
        }
        if self.request_truncated {
            operation.insert("x-statuscope-request-limit".into(), json!("names"));
        }
        operation.insert("responses".into(), Value::Object(described));
        operation.insert("x-statuscope-seen".into(), json!(self.seen));
        operation.insert(
            "x-statuscope-requests-learnt".into(),
            json!(self.requests_learnt),
        );
        if self.truncated {
            operation.insert("x-statuscope-limit".into(), json!("responses"));
        }
        Value::Object(operation)
    }
}

impl Response {
    fn to_openapi(&self) -> Value {
        let mut response = Map::new();
        response.insert(
            "description".into(),
            json!(format!(
                "Seen {}, last at {}.",
                match self.count {
                    1 => "once".to_string(),
                    n => format!("{n} times"),
                },
                rfc3339(self.last_seen)
            )),
        );
        let mut headers: Vec<&(Box<str>, u64)> = self.headers.iter().collect();
        headers.sort();
        if !headers.is_empty() {
            let described: Map<String, Value> = headers
                .iter()
                .map(|(name, count)| {
                    let header = json!({
                        "required": *count == self.headers_learnt,
                        "schema": {"type": "string"},
                        "x-statuscope-seen": count,
                    });
                    (name.to_string(), header)
                })
                .collect();
            response.insert("headers".into(), Value::Object(described));
        }
        let mut media: Vec<&Media> = self.media.iter().collect();
        media.sort_by(|a, b| a.essence.cmp(&b.essence));
        if !media.is_empty() {
            let content: Map<String, Value> = media
                .iter()
                .map(|m| (m.essence.to_string(), m.to_openapi()))
                .collect();
            response.insert("content".into(), Value::Object(content));
        }
        response.insert("x-statuscope-seen".into(), json!(self.count));
        response.insert(
            "x-statuscope-headers-learnt".into(),
            json!(self.headers_learnt),
        );
        response.insert(
            "x-statuscope-last-seen".into(),
            json!(rfc3339(self.last_seen)),
        );
        if self.headers_truncated {
            response.insert("x-statuscope-limit".into(), json!("headers"));
        }
        Value::Object(response)
    }
}

impl Media {
    fn to_openapi(&self) -> Value {
        let mut media = Map::new();
        if let Some(schema) = &self.schema {
            media.insert("schema".into(), schema.to_schema());
        }
        media.insert("x-statuscope-seen".into(), json!(self.count));
        media.insert("x-statuscope-bodies-learnt".into(), json!(self.bodies));
        Value::Object(media)
    }
}

/// `seconds` since the Unix epoch as an RFC 3339 UTC time.
fn rfc3339(seconds: u64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds),
    )
    .to_string()
}
