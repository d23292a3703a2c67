//! A strict parser for the Prometheus text exposition format (version 0.0.4): any line that is
//! not a well-formed HELP, TYPE or sample fails the test, and so does a sample whose metric
//! family has no TYPE line before it, or a repeated series.

use std::collections::{BTreeMap, HashMap, HashSet};

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name (with `_bucket`, `_sum`, `_count` suffixes where present).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(text: &str) -> bool {
    is_name(text) && !text.contains(':')
}

fn family_of<'a>(name: &'a str, types: &HashMap<String, String>) -> Option<&'a str> {
    if types.contains_key(name) {
        return Some(name);
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let base = name.strip_suffix(suffix)?;
        matches!(
            types.get(base).map(String::as_str),
            Some("histogram" | "summary")
        )
        .then_some(base)
    })
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

/// Parses labels from just after `{`; returns them and the rest of the line after `}`.
fn parse_labels(mut rest: &str, line: &str) -> (BTreeMap<String, String>, String) {
    let mut labels = BTreeMap::new();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return (labels, after.to_string());
        }
        let (name, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("bad label in: {line}"));
        assert!(is_label_name(name), "bad label name `{name}` in: {line}");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => panic!("bad escape {other:?} in: {line}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in: {line}"),
            }
        };
        assert!(
            labels.insert(name.to_string(), value).is_none(),
            "repeated label in: {line}"
        );
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// Parses a whole exposition, panicking on the first malformed line.
pub fn parse(text: &str) -> Vec<Sample> {
    assert!(text.ends_with('\n'), "exposition must end with a newline");
    let mut types: HashMap<String, String> = HashMap::new();
    let mut seen = HashSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("HELP"), Some(name), Some(_)) => assert!(is_name(name), "bad HELP: {line}"),
                (Some("TYPE"), Some(name), Some(kind)) => {
                    assert!(is_name(name), "bad TYPE: {line}");
                    assert!(
                        matches!(
                            kind,
                            "counter" | "gauge" | "histogram" | "summary" | "untyped"
                        ),
                        "bad TYPE: {line}"
                    );
                    assert!(
                        types.insert(name.to_string(), kind.to_string()).is_none(),
                        "repeated TYPE: {line}"
                    );
                }
                _ => panic!("bad comment line: {line}"),
            }
            continue;
        }
        assert!(!line.is_empty(), "empty line in exposition");
        let name_end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("bad sample: {line}"));
        let name = &line[..name_end];
        assert!(is_name(name), "bad metric name in: {line}");
        assert!(
            family_of(name, &types).is_some(),
            "sample before its TYPE: {line}"
        );
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end + 1..], line)
        } else {
            (BTreeMap::new(), line[name_end..].to_string())
        };
        let rest = rest
            .strip_prefix(' ')
            .unwrap_or_else(|| panic!("no space before value: {line}"));
        let mut fields = rest.split(' ');
        let value = fields
            .next()
            .and_then(parse_value)
            .unwrap_or_else(|| panic!("bad value: {line}"));
        if let Some(timestamp) = fields.next() {
            assert!(timestamp.parse::<i64>().is_ok(), "bad timestamp: {line}");
        }
        assert!(fields.next().is_none(), "trailing fields: {line}");
        assert!(
            seen.insert((name.to_string(), labels.clone())),
            "repeated series: {line}"
        );
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    samples
}

/// The sum of the samples of `name` whose labels include all of `labels`.
pub fn total(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}
