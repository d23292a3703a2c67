//! `otlp.*`: the OTLP push. A key no source set falls back to OpenTelemetry's own variable
//! (the metrics-specific one first, then the general one), as the OTLP exporter
//! specification orders them; a problem with such a value names the variable.

use std::path::PathBuf;
use std::time::Duration;

use super::Checker;
use crate::config::error::ConfigError;
use crate::config::keys::{self, Key};
use crate::export::otlp::settings::{self as otlp, OtlpSettings};
use crate::export::otlp::{Compression, Protocol, Temporality};

/// `service.name` when neither `otlp.resource` nor `OTEL_SERVICE_NAME` gives one, as the
/// resource conventions spell an unnamed service.
const UNKNOWN_SERVICE: &str = "unknown_service:statuscope";

/// The push's settings; `None` when no endpoint is configured. Every key is read either way.
pub(super) fn otlp(check: &mut Checker<'_>) -> Option<OtlpSettings> {
    let endpoint = endpoint(check);
    let protocol = protocol(check);
    let interval = millis_or(
        check,
        &keys::OTLP_INTERVAL,
        &["OTEL_METRIC_EXPORT_INTERVAL"],
    );
    let timeout = millis_or(
        check,
        &keys::OTLP_TIMEOUT,
        &[
            "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ],
    );
    let headers = headers(check);
    let header_files = header_files(check);
    let resource = resource(check);
    let temporality = temporality(check);
    let compression = compression(check);
    let queue = check.count(&keys::OTLP_QUEUE);
    Some(OtlpSettings {
        endpoint: endpoint?,
        protocol,
        interval,
        timeout,
        headers,
        header_files,
        resource,
        temporality,
        compression,
        queue,
    })
}

/// The variable `names` would give `key`, when no source set the key.
fn variable(
    check: &Checker<'_>,
    key: &Key,
    names: &[&'static str],
) -> Option<(&'static str, String)> {
    if check.sources.is_set(key.path) {
        return None;
    }
    check
        .sources
        .otel(names)
        .map(|(name, value)| (name, value.to_string()))
}

/// Records a problem with `key`'s value, naming the variable it came from, if one did.
fn fail_from(
    check: &mut Checker<'_>,
    key: &Key,
    variable: Option<&str>,
    problem: impl std::fmt::Display,
) {
    match variable {
        Some(name) => check.errors.push(ConfigError::at(
            key.path,
            format!("the environment variable {name}"),
            problem,
        )),
        None => check.fail(key, problem),
    }
}

/// A choice key, or its variable read by `parse`; the first option stands in for a bad value.
fn choice_or<T: Copy>(
    check: &mut Checker<'_>,
    key: &Key,
    names: &[&'static str],
    named: &[(&str, T)],
    parse: impl Fn(&str) -> Result<T, String>,
) -> T {
    match variable(check, key, names) {
        Some((name, text)) => parse(&text).unwrap_or_else(|problem| {
            fail_from(check, key, Some(name), problem);
            named[0].1
        }),
        None => check.choice(key, named),
    }
}

fn endpoint(check: &mut Checker<'_>) -> Option<http::Uri> {
    const KEY: &Key = &keys::OTLP_ENDPOINT;
    if let Some(text) = check.value::<String>(KEY) {
        return otlp::metrics_url_of_base(&text)
            .map_err(|problem| check.fail(KEY, problem))
            .ok();
    }
    if switched_off(check) {
        return None;
    }
    let (name, text) = check
        .sources
        .otel(&otlp::ENDPOINT_VARIABLES)
        .map(|(name, text)| (name, text.to_string()))?;
    let url = if name == otlp::ENDPOINT_VARIABLES[0] {
        otlp::metrics_url(&text)
    } else {
        otlp::metrics_url_of_base(&text)
    };
    url.map_err(|problem| fail_from(check, KEY, Some(name), problem))
        .ok()
}

/// OpenTelemetry's own switches say no metrics are pushed: `OTEL_SDK_DISABLED=true`, or
/// `OTEL_METRICS_EXPORTER` without `otlp` in its list (`none`, `prometheus`). They stop an
/// endpoint taken from the variables, never `otlp.endpoint`: a key outranks the variables.
fn switched_off(check: &Checker<'_>) -> bool {
    let disabled = check
        .sources
        .otel(&["OTEL_SDK_DISABLED"])
        .is_some_and(|(_, text)| text.trim().eq_ignore_ascii_case("true"));
    let exporters = check.sources.otel(&["OTEL_METRICS_EXPORTER"]);
    let no_otlp = exporters.is_some_and(|(_, list)| {
        !list
            .split(',')
            .any(|exporter| exporter.trim().eq_ignore_ascii_case("otlp"))
    });
    disabled || no_otlp
}

fn protocol(check: &mut Checker<'_>) -> Protocol {
    let names = [
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ];
    choice_or(
        check,
        &keys::OTLP_PROTOCOL,
        &names,
        &Protocol::NAMED,
        |text| {
            super::choose(&Protocol::NAMED, text).map_err(|problem| {
            format!("{problem}: OTLP/gRPC is not offered, push OTLP/HTTP to the collector's port 4318")
        })
        },
    )
}

/// A duration key, or its variable's whole milliseconds.
fn millis_or(check: &mut Checker<'_>, key: &Key, names: &[&'static str]) -> Duration {
    let Some((name, text)) = variable(check, key, names) else {
        return check.duration(key);
    };
    match text.trim().parse::<u64>() {
        Ok(ms) if ms > 0 => Duration::from_millis(ms),
        _ => {
            let problem = format!("`{text}` is not a positive number of milliseconds");
            fail_from(check, key, Some(name), problem);
            Duration::ZERO
        }
    }
}

/// A list key's `name=value` pairs, or the variable's, and where they came from.
fn pairs_or(
    check: &mut Checker<'_>,
    key: &Key,
    names: &[&'static str],
) -> (Vec<(String, String)>, Option<&'static str>) {
    let (entries, name) = match variable(check, key, names) {
        Some((name, text)) => (vec![text], Some(name)),
        None => (check.value::<Vec<String>>(key).unwrap_or_default(), None),
    };
    match otlp::pairs(entries.iter().map(String::as_str)) {
        Ok(pairs) => (pairs, name),
        Err(problem) => {
            fail_from(check, key, name, problem);
            (Vec::new(), name)
        }
    }
}

fn headers(check: &mut Checker<'_>) -> Vec<(http::HeaderName, http::HeaderValue)> {
    const KEY: &Key = &keys::OTLP_HEADERS;
    let (pairs, name) = pairs_or(
        check,
        KEY,
        &[
            "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
            "OTEL_EXPORTER_OTLP_HEADERS",
        ],
    );
    otlp::header_fields(pairs).unwrap_or_else(|problem| {
        fail_from(check, KEY, name, problem);
        Vec::new()
    })
}

/// `name=/path` entries, each file read once now so a missing one stops the load.
fn header_files(check: &mut Checker<'_>) -> Vec<(http::HeaderName, PathBuf)> {
    const KEY: &Key = &keys::OTLP_HEADER_FILES;
    let (pairs, _) = pairs_or(check, KEY, &[]);
    let mut files = Vec::with_capacity(pairs.len());
    for (name, path) in pairs {
        let path = PathBuf::from(path);
        let checked = otlp::header_name(&name).and_then(|field| {
            crate::export::otlp::read_header_file(&path)?;
            Ok(field)
        });
        match checked {
            Ok(field) => files.push((field, path)),
            Err(problem) => check.fail(KEY, problem),
        }
    }
    files
}

/// `OTEL_RESOURCE_ATTRIBUTES`, then `OTEL_SERVICE_NAME`, then `otlp.resource`: later wins.
fn resource(check: &mut Checker<'_>) -> Vec<(String, String)> {
    const KEY: &Key = &keys::OTLP_RESOURCE;
    let mut attributes: Vec<(String, String)> = Vec::new();
    let mut put = |key: String, value: String| {
        attributes.retain(|(k, _)| *k != key);
        attributes.push((key, value));
    };
    if let Some((name, text)) = check
        .sources
        .otel(&["OTEL_RESOURCE_ATTRIBUTES"])
        .map(|(n, t)| (n, t.to_string()))
    {
        match otlp::pairs([text.as_str()]) {
            Ok(pairs) => pairs.into_iter().for_each(|(k, v)| put(k, v)),
            Err(problem) => fail_from(check, KEY, Some(name), problem),
        }
    }
    if let Some((_, name)) = check.sources.otel(&["OTEL_SERVICE_NAME"]) {
        put("service.name".to_string(), name.trim().to_string());
    }
    let entries: Vec<String> = check.value(KEY).unwrap_or_default();
    match otlp::pairs(entries.iter().map(String::as_str)) {
        Ok(pairs) => pairs.into_iter().for_each(|(k, v)| put(k, v)),
        Err(problem) => check.fail(KEY, problem),
    }
    attributes.retain(|(key, value)| !key.is_empty() && !value.is_empty());
    if !attributes.iter().any(|(key, _)| key == "service.name") {
        attributes.insert(0, ("service.name".to_string(), UNKNOWN_SERVICE.to_string()));
    }
    attributes
}

fn temporality(check: &mut Checker<'_>) -> Temporality {
    let names = ["OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"];
    choice_or(
        check,
        &keys::OTLP_TEMPORALITY,
        &names,
        &Temporality::NAMED,
        |text| {
            Temporality::of_preference(text)
                .ok_or_else(|| format!("`{text}` is not one of `cumulative`, `delta`, `lowmemory`"))
        },
    )
}

fn compression(check: &mut Checker<'_>) -> Compression {
    let names = [
        "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
        "OTEL_EXPORTER_OTLP_COMPRESSION",
    ];
    choice_or(
        check,
        &keys::OTLP_COMPRESSION,
        &names,
        &Compression::NAMED,
        |text| super::choose(&Compression::NAMED, text),
    )
}
