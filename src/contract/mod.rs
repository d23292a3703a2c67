//! The service's contract: an OpenAPI document (3.0.x or 3.1.x, YAML or JSON) read at start
//! and on SIGHUP (`contract.openapi`), reduced to what the contract rules ask of each
//! response: is its route declared, its method, its status; which media types, which required
//! headers, which body schema.
//!
//! Its paths become route templates, matched before the configured ones: the label is the path
//! as the document writes it, prefixed with the path of the first `servers` URL. Looking a
//! response up also counts it, per declared response or per undeclared (route, method, code),
//! for `GET /contract`, the coverage metrics and `lint`'s coverage table.

pub(crate) mod coverage;
pub(crate) mod document;
pub(crate) mod drift;
pub(crate) mod schema;
pub(crate) mod tape;

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::path::Path;
use std::sync::Arc;

use http::Method;
use serde_json::Value;

use crate::classify::method_label;
use crate::classify::route::RouteTemplate;
use crate::fxhash::FxHasher;
use coverage::Coverage;
use document::{Files, LoadError, Location};
pub use schema::Formats;
use schema::{Compiler, Dialect};

/// The methods an OpenAPI path item may declare, in the order the specification lists them.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// A loaded, compiled contract.
#[derive(Debug)]
pub struct Contract {
    /// The document's own file, for messages.
    pub file: std::path::PathBuf,
    /// A digest of every file's content: a reload of the same text keeps the coverage counted.
    pub digest: u64,
    paths: Vec<DeclaredPath>,
    by_route: HashMap<String, usize, BuildHasherDefault<FxHasher>>,
    /// What has been seen of the contract since it was loaded.
    pub coverage: Coverage,
}

/// One path of the document.
#[derive(Debug)]
pub struct DeclaredPath {
    /// The route label: the servers prefix and the path as the document writes it.
    pub route: String,
    /// Its operations, each with its method in upper case.
    pub operations: Vec<Operation>,
}

/// One operation: a method on a path, and the responses it declares.
#[derive(Debug)]
pub struct Operation {
    /// The method, upper case.
    pub method: Method,
    /// The declared responses, in the document's order.
    pub responses: Vec<DeclaredResponse>,
}

/// Which statuses a declared response covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKey {
    /// One status code (`"404"`).
    Code(u16),
    /// A range of one class (`"4XX"`): the class digit.
    Range(u8),
    /// Every status no other key covers (`default`).
    Default,
}

impl ResponseKey {
    fn parse(key: &str) -> Option<ResponseKey> {
        if key == "default" {
            return Some(ResponseKey::Default);
        }
        match key.as_bytes() {
            [class @ b'1'..=b'5', b'X' | b'x', b'X' | b'x'] => {
                Some(ResponseKey::Range(class - b'0'))
            }
            [b'1'..=b'5', b'0'..=b'9', b'0'..=b'9'] => key.parse().ok().map(ResponseKey::Code),
            _ => None,
        }
    }

    /// The key as the document writes it.
    pub fn label(&self) -> String {
        match self {
            ResponseKey::Code(code) => code.to_string(),
            ResponseKey::Range(class) => format!("{class}XX"),
            ResponseKey::Default => "default".to_string(),
        }
    }
}

/// One declared response.
#[derive(Debug)]
pub struct DeclaredResponse {
    /// The statuses it covers.
    pub key: ResponseKey,
    /// Its media types (lower case, parameters dropped) and their schemas; `None` when the
    /// response declares no `content`, which says nothing about bodies.
    pub content: Option<Vec<MediaType>>,
    /// The header fields it marks `required: true`, lower case.
    pub required_headers: Vec<String>,
    /// The header fields it declares a schema for, to judge their values by.
    pub header_schemas: Vec<DeclaredHeader>,
    /// Its index among all declared responses of the contract, for coverage.
    pub index: usize,
}

/// A declared response header with a schema: its values are judged as OpenAPI's `simple`
/// style (the only one headers have) writes them.
#[derive(Debug)]
pub struct DeclaredHeader {
    /// The field name, lower case.
    pub name: String,
    /// How a value is read into the instance the schema judges.
    pub shape: HeaderShape,
    /// For an object, the type each declared property's text is read as.
    pub members: Vec<(String, ScalarType)>,
    /// The compiled schema.
    pub schema: schema::Validator,
}

/// How a header's `simple`-style value reads as a JSON instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderShape {
    /// One value of this type.
    Scalar(ScalarType),
    /// Comma-separated values of this type (`type: array`).
    Array(ScalarType),
    /// Comma-separated `name,value` pairs, or `name=value` ones with `explode: true`.
    Object {
        /// `explode: true`.
        explode: bool,
    },
}

/// The JSON type a header's (or an array element's) text is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    /// Kept as text.
    String,
    /// A whole number, when the text is one.
    Integer,
    /// A number, when the text is one.
    Number,
    /// `true` or `false`, when the text is one.
    Boolean,
}

impl ScalarType {
    /// The type a schema's `type` names (the first that is not `null`); text otherwise.
    fn of(schema: &Value) -> ScalarType {
        let named = match &schema["type"] {
            Value::String(name) => Some(name.as_str()),
            Value::Array(names) => names
                .iter()
                .filter_map(Value::as_str)
                .find(|n| *n != "null"),
            _ => None,
        };
        match named {
            Some("integer") => ScalarType::Integer,
            Some("number") => ScalarType::Number,
            Some("boolean") => ScalarType::Boolean,
            _ => ScalarType::String,
        }
    }
}

/// One media type of a declared response.
#[derive(Debug)]
pub struct MediaType {
    /// `type/subtype`, `type/*` or `*/*`, lower case.
    pub range: String,
    /// The compiled schema, when one is declared.
    pub schema: Option<schema::Validator>,
}

impl DeclaredResponse {
    /// The declared media type that governs a response of type `essence` (lower case): the
    /// most specific one covering it — `type/subtype`, then `type/*`, then `*/*`.
    pub fn media_for(&self, essence: &str) -> Option<&MediaType> {
        self.content
            .as_ref()?
            .iter()
            .filter(|media| media.covers(essence))
            .max_by_key(|media| media.specificity())
    }
}

impl MediaType {
    fn specificity(&self) -> u8 {
        match self.range.split_once('/') {
            Some(("*", _)) => 0,
            Some((_, "*")) => 1,
            _ => 2,
        }
    }

    /// Does this declared range cover `essence` (`type/subtype`, lower case)?
    pub fn covers(&self, essence: &str) -> bool {
        match self.range.split_once('/') {
            Some(("*", "*")) => true,
            Some((kind, "*")) => essence.split_once('/').is_some_and(|(k, _)| k == kind),
            _ => self.range == essence,
        }
    }
}

/// What the contract declares for one response.
#[derive(Debug, Clone, Copy)]
pub enum Declared<'a> {
    /// No path of the document matches the route.
    NoRoute,
    /// The path is declared, not for this method.
    NoOperation(&'a DeclaredPath),
    /// The operation declares no response for the status.
    NoResponse(&'a Operation),
    /// The declared response that covers the status.
    Response(&'a Operation, &'a DeclaredResponse),
}

impl Contract {
    /// Reads, checks and compiles the document at `path`, its formats annotations.
    pub fn load(path: &Path) -> Result<Contract, LoadError> {
        Contract::load_with(path, Formats::Annotate)
    }

    /// Reads, checks and compiles the document at `path`, its formats treated as `formats`.
    pub fn load_with(path: &Path, formats: Formats) -> Result<Contract, LoadError> {
        let files = Files::read(path)?;
        let root = Location {
            file: files.root.clone(),
            pointer: String::new(),
        };
        let document = files.get(&root).expect("the root file was read");
        let dialect = dialect_of(document, &root)?;
        let prefix = servers_prefix(document);
        let compiler = Compiler::new(&files, dialect, formats)?;
        let mut paths = Vec::new();
        let mut by_route = HashMap::default();
        let mut responses = 0;
        let paths_at = root.child("paths");
        if let Some(declared) = document.get("paths") {
            let declared = declared
                .as_object()
                .ok_or_else(|| paths_at.error("must be an object of paths"))?;
            for key in declared.keys() {
                if !key.starts_with('/') {
                    return Err(paths_at.child(key).error("a path must start with `/`"));
                }
                let route = format!("{prefix}{key}");
                let (item_at, item) = files.resolve(&paths_at.child(key))?;
                let mut operations = Vec::new();
                for method in METHODS {
                    let Some(_) = item.get(method) else { continue };
                    let (operation_at, operation) = files.resolve(&item_at.child(method))?;
                    let declared_responses = read_responses(
                        &files,
                        &compiler,
                        &operation_at,
                        operation,
                        &mut responses,
                    )?;
                    operations.push(Operation {
                        method: Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                            .expect("a standard method"),
                        responses: declared_responses,
                    });
                }
                paths.push(DeclaredPath { route, operations });
            }
        }
        // A concrete path matches before a templated one (`/users/me` before `/users/{id}`),
        // as OpenAPI 3.1 §4.8.8 requires, whatever order the document lists them in.
        paths.sort_by_cached_key(|path| {
            path.route
                .split('/')
                .map(|segment| u8::from(segment.contains('{')))
                .collect::<Vec<_>>()
        });
        for (index, path) in paths.iter().enumerate() {
            by_route.insert(path.route.clone(), index);
        }
        Ok(Contract {
            file: files.root.clone(),
            // The same text compiled another way is another contract.
            digest: digest(&files) ^ u64::from(formats == Formats::Assert),
            coverage: Coverage::new(responses),
            paths,
            by_route,
        })
    }

    /// The route templates of the document's paths, concrete paths first, for the route table.
    pub fn templates(&self) -> Vec<RouteTemplate> {
        self.paths
            .iter()
            .map(|path| RouteTemplate::declared(&path.route))
            .collect()
    }

    /// Every declared path.
    pub fn paths(&self) -> &[DeclaredPath] {
        &self.paths
    }

    /// What the contract declares for a response with `status` to `method` on `route` (a
    /// route label), counted in the coverage.
    pub fn lookup(&self, route: &Arc<str>, method: &Method, status: u16) -> Declared<'_> {
        let declared = self.declared(route, method, status);
        self.coverage
            .observe(&declared, route, method_label(method), status);
        declared
    }

    /// What the contract declares, without counting it (for tests and tools).
    pub fn declared(&self, route: &str, method: &Method, status: u16) -> Declared<'_> {
        let Some(&index) = self.by_route.get(route) else {
            return Declared::NoRoute;
        };
        let path = &self.paths[index];
        let find = |method: &Method| path.operations.iter().find(|op| op.method == *method);
        // RFC 9110 §9.3.2: HEAD is GET without the body, so it is declared wherever GET is.
        let operation = find(method).or_else(|| {
            (*method == Method::HEAD)
                .then(|| find(&Method::GET))
                .flatten()
        });
        let Some(operation) = operation else {
            return Declared::NoOperation(path);
        };
        let by = |wanted: ResponseKey| operation.responses.iter().find(|r| r.key == wanted);
        let response = by(ResponseKey::Code(status))
            .or_else(|| by(ResponseKey::Range((status / 100) as u8)))
            .or_else(|| by(ResponseKey::Default));
        match response {
            Some(response) => Declared::Response(operation, response),
            None => Declared::NoResponse(operation),
        }
    }
}

fn read_responses(
    files: &Files,
    compiler: &Compiler,
    operation_at: &Location,
    operation: &Value,
    count: &mut usize,
) -> Result<Vec<DeclaredResponse>, LoadError> {
    let responses_at = operation_at.child("responses");
    let Some(responses) = operation.get("responses") else {
        return Err(responses_at.error("missing: an operation declares its responses"));
    };
    let responses = responses
        .as_object()
        .ok_or_else(|| responses_at.error("must be an object of responses"))?;
    let mut declared = Vec::with_capacity(responses.len());
    for key in responses.keys() {
        if key.starts_with("x-") {
            continue;
        }
        let key_at = responses_at.child(key);
        let response_key = ResponseKey::parse(key).ok_or_else(|| {
            key_at.error("not a status code, a range such as `4XX`, or `default`")
        })?;
        let (at, response) = files.resolve(&key_at)?;
        let content = match response.get("content") {
            None => None,
            Some(content) => {
                let content_at = at.child("content");
                let content = content
                    .as_object()
                    .ok_or_else(|| content_at.error("must be an object of media types"))?;
                let mut media = Vec::with_capacity(content.len());
                for range in content.keys() {
                    let media_at = content_at.child(range);
                    let (media_at, media_object) = files.resolve(&media_at)?;
                    let schema = match media_object.get("schema") {
                        Some(_) => Some(compiler.compile(&media_at.child("schema"))?),
                        None => None,
                    };
                    let essence = crate::sample::media_type(range).to_ascii_lowercase();
                    media.push(MediaType {
                        range: essence,
                        schema,
                    });
                }
                Some(media)
            }
        };
        let (required_headers, header_schemas) = read_headers(files, compiler, &at, response)?;
        declared.push(DeclaredResponse {
            key: response_key,
            content,
            required_headers,
            header_schemas,
            index: *count,
        });
        *count += 1;
    }
    Ok(declared)
}

/// A declared response's headers: the names it requires, and those with a schema.
fn read_headers(
    files: &Files,
    compiler: &Compiler,
    at: &Location,
    response: &Value,
) -> Result<(Vec<String>, Vec<DeclaredHeader>), LoadError> {
    let mut required = Vec::new();
    let mut with_schema = Vec::new();
    let Some(headers) = response.get("headers").and_then(Value::as_object) else {
        return Ok((required, with_schema));
    };
    for name in headers.keys() {
        let (header_at, header) = files.resolve(&at.child("headers").child(name))?;
        if header.get("required") == Some(&Value::Bool(true)) {
            required.push(name.to_ascii_lowercase());
        }
        if header.get("schema").is_none() {
            continue;
        }
        let (schema_at, schema) = files.resolve(&header_at.child("schema"))?;
        let shape = match schema["type"].as_str() {
            Some("array") => {
                let items = files
                    .resolve(&schema_at.child("items"))
                    .map(|(_, items)| items);
                HeaderShape::Array(items.map_or(ScalarType::String, ScalarType::of))
            }
            Some("object") => HeaderShape::Object {
                explode: header.get("explode") == Some(&Value::Bool(true)),
            },
            _ => HeaderShape::Scalar(ScalarType::of(schema)),
        };
        let members = schema["properties"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(member, declared)| (member.clone(), ScalarType::of(declared)))
            .collect();
        with_schema.push(DeclaredHeader {
            name: name.to_ascii_lowercase(),
            shape,
            members,
            schema: compiler.compile(&schema_at)?,
        });
    }
    Ok((required, with_schema))
}

/// The path part of the first `servers` URL, without a trailing `/` (`http://h/api/` → `/api`).
fn servers_prefix(document: &Value) -> String {
    let Some(url) = document
        .get("servers")
        .and_then(|servers| servers.get(0))
        .and_then(|server| server.get("url"))
        .and_then(Value::as_str)
    else {
        return String::new();
    };
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |slash| &rest[slash..]),
        None => url,
    };
    path.trim_end_matches('/').to_string()
}

/// The schema dialect the document's `openapi` version names.
fn dialect_of(document: &Value, root: &Location) -> Result<Dialect, LoadError> {
    let version = match document.get("openapi") {
        Some(Value::String(version)) => version.clone(),
        Some(other) => other.to_string(),
        None => {
            return Err(root
                .child("openapi")
                .error("missing: an OpenAPI document names its version (`openapi: 3.1.0`)"))
        }
    };
    if version.starts_with("3.0.") {
        Ok(Dialect::OpenApi30)
    } else if version.starts_with("3.1.") {
        Ok(Dialect::OpenApi31)
    } else {
        Err(root
            .child("openapi")
            .error(format!("version `{version}` is neither 3.0.x nor 3.1.x")))
    }
}

fn digest(files: &Files) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = FxHasher::default();
    for (path, value) in &files.files {
        path.hash(&mut hasher);
        value.to_string().hash(&mut hasher);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_keys_parse_as_the_specification_writes_them() {
        assert_eq!(ResponseKey::parse("404"), Some(ResponseKey::Code(404)));
        assert_eq!(ResponseKey::parse("4XX"), Some(ResponseKey::Range(4)));
        assert_eq!(ResponseKey::parse("default"), Some(ResponseKey::Default));
        assert_eq!(ResponseKey::parse("600"), None);
        assert_eq!(ResponseKey::parse("4XY"), None);
    }

    #[test]
    fn the_servers_prefix_is_the_path_of_the_first_url() {
        let prefix = |servers: Value| servers_prefix(&serde_json::json!({ "servers": servers }));
        assert_eq!(
            prefix(serde_json::json!([{"url": "http://shop.internal/api"}])),
            "/api"
        );
        assert_eq!(
            prefix(serde_json::json!([{"url": "/v2/"}, {"url": "/v3"}])),
            "/v2"
        );
        assert_eq!(prefix(serde_json::json!([{"url": "https://h"}])), "");
        assert_eq!(servers_prefix(&serde_json::json!({})), "");
    }

    #[test]
    fn media_ranges_cover_their_types() {
        let range = |r: &str| MediaType {
            range: r.into(),
            schema: None,
        };
        assert!(range("*/*").covers("text/html"));
        assert!(range("application/*").covers("application/problem+json"));
        assert!(!range("application/*").covers("text/plain"));
        assert!(range("application/json").covers("application/json"));
        assert!(!range("application/json").covers("application/problem+json"));
    }

    #[test]
    fn formats_fail_a_body_only_when_asserted() {
        let dir = std::env::temp_dir().join(format!("statuscope-formats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("formats.yaml");
        let document = "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /t:\n    get:\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {type: object, properties: {at: {type: string, format: date-time}, id: {type: string, format: uuid}}}\n";
        std::fs::write(&file, document).unwrap();
        let verdict = |formats, body: &str| {
            let contract = Contract::load_with(&file, formats).unwrap();
            let Declared::Response(_, response) = contract.declared("/t", &Method::GET, 200) else {
                panic!("declared");
            };
            let schema = response
                .media_for("application/json")
                .unwrap()
                .schema
                .as_ref()
                .unwrap();
            schema::first_failure(schema, body.as_bytes())
        };
        let bad = r#"{"at": "yesterday", "id": "7"}"#;
        let good =
            r#"{"at": "2026-12-05T10:00:00Z", "id": "6f1c2b8e-3a5d-4c9e-8f7a-1b2c3d4e5f60"}"#;
        assert_eq!(verdict(Formats::Annotate, bad), None);
        assert_eq!(verdict(Formats::Assert, good), None);
        let failure = verdict(Formats::Assert, bad).expect("a date-time that is not one fails");
        assert!(failure.contains("format"), "{failure}");
        assert!(
            !failure.contains("yesterday"),
            "the value stays out of the evidence: {failure}"
        );
        let annotated = Contract::load_with(&file, Formats::Annotate).unwrap();
        let asserted = Contract::load_with(&file, Formats::Assert).unwrap();
        assert_ne!(
            annotated.digest, asserted.digest,
            "a reload that asserts recompiles"
        );
    }
}
