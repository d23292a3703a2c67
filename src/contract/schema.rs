//! Response body schemas, compiled once per document load by the `jsonschema` crate.
//!
//! Every file of the document goes into one registry under its `file://` URI, so a schema's
//! `$ref`s resolve exactly as the document writes them — inside the file, chained, or into a
//! file beside it — and recursive schemas need no inlining. OpenAPI 3.1 schemas are JSON Schema
//! 2020-12. OpenAPI 3.0 schemas are a dialect of draft 4 (whose boolean `exclusiveMinimum` and
//! `exclusiveMaximum` they keep); its one extension that changes validation, `nullable: true`,
//! is rewritten as the draft-4 equivalent (`"type": [T, "null"]`) before compiling. `format`
//! is an annotation, as OpenAPI 3.1 and JSON Schema 2020-12 define it, in both dialects.

use jsonschema::{Draft, Registry};
use serde_json::Value;

use super::document::{file_uri, Files, LoadError, Location};
use super::tape::{self, TapeJson};

/// A compiled body schema; it validates bodies on the tape, without building a `Value`.
pub type Validator = jsonschema::Validator<TapeJson>;

/// The schema dialect of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAPI 3.0.x: draft 4 with `nullable`.
    OpenApi30,
    /// OpenAPI 3.1.x: JSON Schema 2020-12.
    OpenApi31,
}

impl Dialect {
    fn draft(self) -> Draft {
        match self {
            Dialect::OpenApi30 => Draft::Draft4,
            Dialect::OpenApi31 => Draft::Draft202012,
        }
    }
}

/// Compiles schemas that live in `files`.
pub struct Compiler {
    dialect: Dialect,
    registry: Registry<'static>,
    formats: Formats,
}

/// What a schema's `format` does (`contract.formats`): JSON Schema 2020-12 makes it an
/// annotation by default; asserted, a value that does not match its format fails the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Formats {
    /// `format` is an annotation, as 2020-12 says by default (`annotate`).
    Annotate,
    /// `format` is checked (`assert`): `date-time`, `date`, `time`, `email`, `uuid`, `uri`,
    /// `ipv4`, `ipv6` and every other format the validator knows.
    Assert,
}

impl Formats {
    /// Each choice by its `contract.formats` name.
    pub const NAMED: [(&'static str, Formats); 2] =
        [("annotate", Formats::Annotate), ("assert", Formats::Assert)];
}

impl Compiler {
    /// Registers every file of the document, in `dialect`, its formats treated as `formats`.
    pub fn new(files: &Files, dialect: Dialect, formats: Formats) -> Result<Compiler, LoadError> {
        let whole = |problem: String| LoadError {
            file: files.root.clone(),
            pointer: String::new(),
            problem,
        };
        let mut builder = Registry::new();
        for (path, value) in &files.files {
            let mut value = value.clone();
            if dialect == Dialect::OpenApi30 {
                rewrite_nullable(&mut value);
            }
            builder = builder
                .add(file_uri(path), dialect.draft().create_resource(value))
                .map_err(|e| whole(format!("cannot register {}: {e}", path.display())))?;
        }
        let registry = builder
            .prepare()
            .map_err(|e| whole(format!("cannot resolve the document's references: {e}")))?;
        Ok(Compiler {
            dialect,
            registry,
            formats,
        })
    }

    /// A validator for the schema at `at`.
    pub fn compile(&self, at: &Location) -> Result<Validator, LoadError> {
        jsonschema::options_for::<TapeJson>()
            .with_draft(self.dialect.draft())
            .offline()
            .should_validate_formats(self.formats == Formats::Assert)
            .with_registry(&self.registry)
            .build(&serde_json::json!({ "$ref": at.uri() }))
            .map_err(|e| at.error(format!("not a valid schema: {e}")))
    }
}

/// OpenAPI 3.0's `nullable: true` as draft 4 says it: `null` added to the schema's `type`.
fn rewrite_nullable(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("nullable") == Some(&Value::Bool(true)) {
                if let Some(Value::String(kind)) = map.get("type") {
                    let kind = kind.clone();
                    map.insert("type".into(), serde_json::json!([kind, "null"]));
                }
            }
            for child in map.values_mut() {
                rewrite_nullable(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_nullable),
        _ => {}
    }
}

/// Why a JSON body does not validate, without quoting it: the JSON pointer of the failing
/// value and the schema keyword that failed; `None` when it validates.
pub fn first_failure(validator: &Validator, body: &[u8]) -> Option<String> {
    match failure(validator, body) {
        Some(Some((at, keyword))) => {
            Some(format!("the body at `{at}` fails the schema's `{keyword}`"))
        }
        Some(None) => None,
        None => Some("the body is not JSON".to_string()),
    }
}

/// Every place `json` fails `validator`, each a JSON pointer and the keyword that failed;
/// empty when it validates or is not JSON.
pub fn failures(validator: &Validator, json: &[u8]) -> Vec<(String, String)> {
    tape::with_root(json, |root| {
        validator
            .iter_errors(root)
            .map(|error| {
                let at = error.instance_path().to_string();
                let keyword = error.schema_path().to_string();
                let keyword = keyword.rsplit('/').next().unwrap_or_default().to_string();
                (if at.is_empty() { "/".to_string() } else { at }, keyword)
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Where `json` fails `validator` — the JSON pointer of the failing value (`/` for the whole)
/// and the keyword that failed — `Some(None)` when it validates, `None` when it is not JSON.
pub fn failure(validator: &Validator, json: &[u8]) -> Option<Option<(String, String)>> {
    tape::with_root(json, |root| {
        // The fast path answers yes or no without building errors; only a failure needs them.
        if validator.is_valid(root) {
            return None;
        }
        let error = validator.iter_errors(root).next()?;
        let at = error.instance_path().to_string();
        let keyword = error.schema_path().to_string();
        let keyword = keyword.rsplit('/').next().unwrap_or_default().to_string();
        Some((if at.is_empty() { "/".to_string() } else { at }, keyword))
    })
}
