//! The layout's promise, checked: imports between the top-level modules of `src/` run one way.
//! No two modules import each other (nor through a longer cycle), and the stages the pipeline
//! runs through last — sampling, classification, the rules, recording — import nothing from
//! the modules that drive them (proxy, configuration, admin server, lint, lifecycle, demo).
//! No file under `src/` grows past 700 lines: a longer one holds more than one concern. A
//! configuration key's path is written only in the key table, and no public type name is
//! defined twice (a word names one thing), and no function outside tests is over 80 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The lower stages and the leaves they share; each may import only from this set.
const LOWER: &[&str] = &[
    "sample", "classify", "rules", "record", "fxhash", "families", "contract",
];

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// For each top-level module, the other top-level modules its files name as `crate::<name>`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let module = first.to_str().unwrap().trim_end_matches(".rs").to_string();
        if module == "main" || module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let named = graph.entry(module.clone()).or_default();
        for (at, _) in text.match_indices("crate::") {
            let preceded = text[..at].chars().next_back();
            if preceded.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // `statuscope_crate::` and the like
            }
            let rest = &text[at + "crate::".len()..];
            // `crate::{a, b::c}` names each of its items' first segment.
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(list) => list[..list.find('}').unwrap_or(0)]
                    .split(',')
                    .map(|item| item.trim().split("::").next().unwrap())
                    .collect(),
                None => vec![rest],
            };
            for name in names {
                let name: String = name
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if is_module(&src, &name) && name != module {
                    named.insert(name);
                }
            }
        }
    }
    graph
}

/// Is `name` a top-level module of `src/` (not a macro such as `crate::default_proxy_port!`)?
fn is_module(src: &Path, name: &str) -> bool {
    !name.is_empty() && (src.join(format!("{name}.rs")).exists() || src.join(name).is_dir())
}

#[test]
fn the_architecture_doc_lists_the_real_imports() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md"))
            .unwrap();
    let section = doc
        .split("## Imports\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/architecture.md has an Imports section");
    let mut drawn: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in section.lines().filter(|line| line.starts_with("- `")) {
        let (module, imports) = line[2..].split_once(" → ").expect("- `module` → imports");
        let names = imports.split('`').skip(1).step_by(2).map(str::to_string);
        drawn.insert(module.trim_matches('`').to_string(), names.collect());
    }
    assert_eq!(
        drawn,
        imports(),
        "docs/architecture.md's Imports differ from the code's"
    );
}

#[test]
fn the_module_graph_is_found() {
    let graph = imports();
    for module in ["proxy", "config", "record", "rules", "lifecycle"] {
        assert!(graph.contains_key(module), "{module} missing: {graph:?}");
    }
    assert!(graph["proxy"].contains("record"), "{graph:?}");
}

#[test]
fn no_two_top_level_modules_import_each_other() {
    let graph = imports();
    // Depth-first search for a cycle, reporting the path that closes it.
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(module) {
            return;
        }
        if let Some(start) = path.iter().position(|m| m == module) {
            panic!("import cycle: {} -> {module}", path[start..].join(" -> "));
        }
        path.push(module.to_string());
        for next in graph.get(module).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(module.to_string());
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_lower_stages_import_nothing_from_the_stages_above_them() {
    let graph = imports();
    for module in LOWER {
        let above: Vec<_> = graph[*module]
            .iter()
            .filter(|named| !LOWER.contains(&named.as_str()))
            .collect();
        assert!(above.is_empty(), "{module} imports {above:?}");
    }
}

/// The most lines a file under `src/` may have (the style guide's limit).
const MAX_FILE_LINES: usize = 700;

#[test]
fn no_source_file_is_over_700_lines() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let long: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let lines = std::fs::read_to_string(path).unwrap().lines().count();
            (lines > MAX_FILE_LINES).then(|| format!("{} ({lines} lines)", path.display()))
        })
        .collect();
    assert!(long.is_empty(), "over {MAX_FILE_LINES} lines: {long:?}");
}

/// The string literals of Rust source `text`, comments skipped.
fn string_literals(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut literals = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'/' if bytes.get(at + 1) == Some(&b'/') => {
                at = text[at..].find('\n').map_or(bytes.len(), |end| at + end);
            }
            // A char literal ('"', '\'', '\n'), not a lifetime.
            b'\'' if bytes.get(at + 2) == Some(&b'\'') => at += 3,
            b'\'' if bytes.get(at + 1) == Some(&b'\\') => {
                at = text[at + 2..]
                    .find('\'')
                    .map_or(bytes.len(), |end| at + end + 3);
            }
            b'"' => {
                let mut end = at + 1;
                while end < bytes.len() && bytes[end] != b'"' {
                    end += if bytes[end] == b'\\' { 2 } else { 1 };
                }
                literals.push(text[at + 1..end.min(bytes.len())].to_string());
                at = end + 1;
            }
            _ => at += 1,
        }
    }
    literals
}

#[test]
fn key_paths_are_written_only_in_the_key_table() {
    use statuscope::config::keys::{KeyKind, KEYS};
    // A value a key accepts (`h2c` is a protocol and a key) is not the key.
    let values: BTreeSet<&str> = KEYS
        .iter()
        .filter_map(|key| match key.kind {
            KeyKind::Choice { options, .. } => Some(options),
            _ => None,
        })
        .flatten()
        .copied()
        .collect();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut written = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap().display().to_string();
        if relative == "config/keys.rs" || relative.ends_with("tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for literal in string_literals(code) {
            let is_key = KEYS.iter().any(|key| key.path == literal);
            // An undotted path ("upstream", "listen") is also an ordinary word elsewhere; in
            // the configuration's own files it can only be the key.
            let in_config = relative.starts_with("config/");
            if is_key && !values.contains(literal.as_str()) && (literal.contains('.') || in_config)
            {
                written.push(format!("{relative}: \"{literal}\""));
            }
        }
    }
    assert!(
        written.is_empty(),
        "key paths written outside src/config/keys.rs (read them through keys::<NAME>): {written:?}"
    );
}

#[test]
fn no_public_type_name_is_defined_twice() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut defined: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().take(3).collect();
            if let ["pub", "struct" | "enum" | "type" | "trait", name] = words[..] {
                let name = name.split(['<', '(', ';', '{', ':']).next().unwrap();
                let place = file.strip_prefix(&src).unwrap().display().to_string();
                defined.entry(name.to_string()).or_default().push(place);
            }
        }
    }
    assert!(
        defined.len() > 50,
        "only {} public types found",
        defined.len()
    );
    let twice: Vec<_> = defined
        .iter()
        .filter(|(_, places)| places.len() > 1)
        .collect();
    assert!(
        twice.is_empty(),
        "public type names defined more than once: {twice:?}"
    );
}

/// The most lines a function under `src/` may have (the style guide's limit; tests aside).
const MAX_FUNCTION_LINES: usize = 80;

#[test]
fn no_function_is_over_80_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut long = Vec::new();
    for file in files.iter().filter(|f| !f.ends_with("tests.rs")) {
        let text = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = text.split("#[cfg(test)]").next().unwrap().lines().collect();
        for (at, line) in lines.iter().enumerate() {
            let code = line.trim_start();
            let indent = line.len() - code.len();
            let is_fn = [
                "fn ",
                "pub fn ",
                "pub(super) fn ",
                "pub(crate) fn ",
                "async fn ",
                "pub async fn ",
                "const fn ",
            ]
            .iter()
            .any(|start| code.starts_with(start));
            if !is_fn || code.ends_with(';') {
                continue;
            }
            // rustfmt closes a function's body at the indentation it opened at.
            let closing = format!("{}}}", " ".repeat(indent));
            let end = lines[at..]
                .iter()
                .position(|l| l.starts_with(&closing) && l.len() - l.trim_start().len() == indent)
                .unwrap_or(0);
            if end + 1 > MAX_FUNCTION_LINES {
                let name = code.split('(').next().unwrap();
                long.push(format!(
                    "{}:{} {name} ({} lines)",
                    file.display(),
                    at + 1,
                    end + 1
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines: {long:?}"
    );
}
