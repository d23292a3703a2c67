//! Reading an OpenAPI document: the file and every file its `$ref`s name, YAML or JSON, as
//! JSON values; and following `$ref`s (inside a file, chained, and into another file, resolved
//! relative to the file that refers). A problem names the file and the JSON pointer where it
//! is.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// What is wrong with a document, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// The JSON pointer of the problem inside the file (`""` for the whole file).
    pub pointer: String,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at `{}`: {}",
            self.file.display(),
            if self.pointer.is_empty() {
                "/"
            } else {
                &self.pointer
            },
            self.problem
        )
    }
}

/// A place in one of the document's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, as an absolute path.
    pub file: PathBuf,
    /// The JSON pointer inside it.
    pub pointer: String,
}

impl Location {
    /// The place of `key` inside this one.
    pub fn child(&self, key: &str) -> Location {
        Location {
            file: self.file.clone(),
            pointer: format!("{}/{}", self.pointer, escape(key)),
        }
    }

    /// An error at this place.
    pub fn error(&self, problem: impl fmt::Display) -> LoadError {
        LoadError {
            file: self.file.clone(),
            pointer: self.pointer.clone(),
            problem: problem.to_string(),
        }
    }

    /// The place as a URI a JSON Schema validator resolves: `file:///…#pointer`.
    pub fn uri(&self) -> String {
        format!(
            "{}#{}",
            file_uri(&self.file),
            encode_fragment(&self.pointer)
        )
    }
}

/// `file:///abs/path`, percent-encoding what a URI path cannot hold.
pub fn file_uri(file: &Path) -> String {
    let mut uri = String::from("file://");
    for byte in file.to_string_lossy().bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            uri.push(byte as char);
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

fn encode_fragment(pointer: &str) -> String {
    let mut out = String::with_capacity(pointer.len());
    for byte in pointer.bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A key as a JSON pointer segment (`/` → `~1`, `~` → `~0`).
pub fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The document's files, read once.
#[derive(Debug)]
pub struct Files {
    /// The document itself.
    pub root: PathBuf,
    /// Every file read, by absolute path, the root included.
    pub files: BTreeMap<PathBuf, Value>,
}

/// Links followed before a chain of `$ref`s counts as a loop.
const MAX_REF_CHAIN: usize = 32;

impl Files {
    /// Reads `path` and, transitively, every file a `$ref` in it names.
    pub fn read(path: &Path) -> Result<Files, LoadError> {
        let root = std::path::absolute(path).map_err(|e| LoadError {
            file: path.to_path_buf(),
            pointer: String::new(),
            problem: e.to_string(),
        })?;
        let mut files = Files {
            root: root.clone(),
            files: BTreeMap::new(),
        };
        let mut pending = vec![root];
        while let Some(file) = pending.pop() {
            if files.files.contains_key(&file) {
                continue;
            }
            let value = read_one(&file)?;
            let mut refs = Vec::new();
            collect_refs(
                &value,
                &Location {
                    file: file.clone(),
                    pointer: String::new(),
                },
                &mut refs,
            );
            for (at, reference) in refs {
                let (target, _) = split_ref(&at, &reference)?;
                if !files.files.contains_key(&target) {
                    pending.push(target);
                }
            }
            files.files.insert(file, value);
        }
        Ok(files)
    }

    /// The value at `at`.
    pub fn get(&self, at: &Location) -> Option<&Value> {
        self.files.get(&at.file)?.pointer(&at.pointer)
    }

    /// The value at `at` with its `$ref` chain followed: the object it ends at and where.
    pub fn resolve(&self, at: &Location) -> Result<(Location, &Value), LoadError> {
        let mut at = at.clone();
        for _ in 0..MAX_REF_CHAIN {
            let value = self
                .get(&at)
                .ok_or_else(|| at.error("the reference points at nothing"))?;
            let Some(reference) = value.get("$ref") else {
                return Ok((at, value));
            };
            let reference = reference
                .as_str()
                .ok_or_else(|| at.child("$ref").error("`$ref` must be a string"))?;
            let (file, pointer) = split_ref(&at, reference)?;
            let next = Location { file, pointer };
            if self.get(&next).is_none() {
                return Err(at
                    .child("$ref")
                    .error(format!("`{reference}` points at nothing")));
            }
            at = next;
        }
        Err(at.error(format!("more than {MAX_REF_CHAIN} chained `$ref`s: a loop")))
    }
}

/// Splits `reference` (found at `at`) into the file it names (absolute) and the pointer.
fn split_ref(at: &Location, reference: &str) -> Result<(PathBuf, String), LoadError> {
    let (file, fragment) = match reference.split_once('#') {
        Some((file, fragment)) => (file, fragment),
        None => (reference, ""),
    };
    if file.contains("://") {
        return Err(at.child("$ref").error(format!(
            "`{reference}`: only references inside the document or to files beside it are followed"
        )));
    }
    let target = if file.is_empty() {
        at.file.clone()
    } else {
        let base = at.file.parent().unwrap_or(Path::new("/"));
        normalise(&base.join(file))
    };
    let pointer = percent_decode(fragment);
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(at.child("$ref").error(format!(
            "`{reference}`: the fragment must be a JSON pointer"
        )));
    }
    Ok((target, pointer))
}

fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Undoes `%XX` escapes (RFC 3986's percent-encoding, which JSON pointers in URI fragments
/// and OpenTelemetry's `OTEL_*` lists use); a `%` not followed by two hex digits stays as it is.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap() * 16 + hex(l).unwrap()) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn collect_refs(value: &Value, at: &Location, found: &mut Vec<(Location, String)>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                found.push((at.clone(), reference.clone()));
            }
            for (key, child) in map {
                collect_refs(child, &at.child(key), found);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_refs(child, &at.child(&i.to_string()), found);
            }
        }
        _ => {}
    }
}

/// Reads one file: JSON when it parses as JSON, YAML otherwise.
fn read_one(file: &Path) -> Result<Value, LoadError> {
    let whole = |problem: String| LoadError {
        file: file.to_path_buf(),
        pointer: String::new(),
        problem,
    };
    let text = std::fs::read_to_string(file).map_err(|e| whole(format!("cannot read it: {e}")))?;
    if let Ok(value) = serde_json::from_str::<Value>(&text) {
        return Ok(value);
    }
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&text).map_err(|e| whole(format!("neither JSON nor YAML: {e}")))?;
    from_yaml(yaml).map_err(whole)
}

/// YAML as JSON. Keys become strings (YAML reads `200:` as a number; OpenAPI means "200").
fn from_yaml(yaml: serde_yaml::Value) -> Result<Value, String> {
    Ok(match yaml {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(b) => Value::Bool(b),
        serde_yaml::Value::Number(n) => serde_json::to_value(&n).map_err(|e| e.to_string())?,
        serde_yaml::Value::String(s) => Value::String(s),
        serde_yaml::Value::Sequence(items) => {
            Value::Array(items.into_iter().map(from_yaml).collect::<Result<_, _>>()?)
        }
        serde_yaml::Value::Mapping(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                let key = match key {
                    serde_yaml::Value::String(s) => s,
                    serde_yaml::Value::Number(n) => n.to_string(),
                    serde_yaml::Value::Bool(b) => b.to_string(),
                    other => return Err(format!("a key of unsupported type: {other:?}")),
                };
                out.insert(key, from_yaml(value)?);
            }
            Value::Object(out)
        }
        serde_yaml::Value::Tagged(tagged) => from_yaml(tagged.value)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_and_uris_escape_what_they_must() {
        let at = Location {
            file: PathBuf::from("/docs/a b.yaml"),
            pointer: String::new(),
        };
        let schema = at.child("paths").child("/users/{id}");
        assert_eq!(schema.pointer, "/paths/~1users~1{id}");
        assert_eq!(
            schema.uri(),
            "file:///docs/a%20b.yaml#/paths/~1users~1%7Bid%7D"
        );
        assert_eq!(percent_decode("/a%7Bb%7D"), "/a{b}");
    }

    #[test]
    fn yaml_keys_become_strings() {
        let yaml: serde_yaml::Value = serde_yaml::from_str("200:\n  a: 1\ntrue: x\n").unwrap();
        let json = from_yaml(yaml).unwrap();
        assert_eq!(json["200"]["a"], 1);
        assert_eq!(json["true"], "x");
    }
}
