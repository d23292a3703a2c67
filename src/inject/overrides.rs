//! The per-pod annotations that change how one pod is injected (`statuscope.io/*`), defined
//! once here with their documentation (`ANNOTATIONS` feeds docs/deploy.md, and a test fails when
//! the table there is stale). Each is validated: an invalid value, or an unknown
//! `statuscope.io/` annotation (a typo would otherwise be ignored), leaves the pod unchanged
//! with a message naming the annotation.

use serde_yaml::{Mapping, Value};

/// Prefix of statuscope's labels and annotations.
pub const PREFIX: &str = "statuscope.io/";
/// The label (namespace or pod) and annotation (pod) that opts in (`enabled`) or out
/// (`disabled`).
pub const INJECT: &str = "statuscope.io/inject";
const APP_PORT: &str = "statuscope.io/app-port";
const CONFIG_MAP: &str = "statuscope.io/config-map";
const CPU_REQUEST: &str = "statuscope.io/proxy-cpu-request";
const CPU_LIMIT: &str = "statuscope.io/proxy-cpu-limit";
const MEMORY_REQUEST: &str = "statuscope.io/proxy-memory-request";
const MEMORY_LIMIT: &str = "statuscope.io/proxy-memory-limit";

/// Every annotation statuscope reads on a pod (template), with what it does.
pub const ANNOTATIONS: &[(&str, &str)] = &[
    (INJECT, "`disabled` leaves the pod alone, even in a namespace labelled `enabled` (also honoured as a pod label)"),
    (APP_PORT, "the application's port, by number or container port name, when the pod declares several (overrides `--app-port`)"),
    (CONFIG_MAP, "the ConfigMap holding this service's `statuscope.yaml` (its route templates, contract, rules), mounted at `/etc/statuscope` (overrides `--config-map`)"),
    (CPU_REQUEST, "the sidecar's CPU request, a Kubernetes quantity"),
    (CPU_LIMIT, "the sidecar's CPU limit; not below the request"),
    (MEMORY_REQUEST, "the sidecar's memory request"),
    (MEMORY_LIMIT, "the sidecar's memory limit; not below the request"),
];

/// `docs/annotations.md`: the labels and annotations statuscope reads, from [`ANNOTATIONS`]
/// (`statuscope reference annotations`; a test fails when the file is stale).
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Pod annotations\n\n\
Generated from the annotation table in `src/inject/overrides.rs` by `statuscope reference \
annotations` (`make docs`); a test fails when this file is stale.\n\n\
Set on a pod (a workload's `spec.template.metadata.annotations`), these change how that pod \
is injected, by `statuscope inject` and by the `statuscope injector` webhook alike. Each is \
validated: an invalid value, or an unknown `statuscope.io/` annotation, leaves the pod \
unchanged (the webhook allows it with a warning naming the annotation; `statuscope inject` \
stops with that message). The label `statuscope.io/inject: enabled` on a namespace or a pod \
is what sends pods to the webhook; see [deploy.md](deploy.md).\n\n\
| annotation | default | meaning |\n|---|---|---|\n",
    );
    for (name, meaning) in ANNOTATIONS {
        let default = match DEFAULT_RESOURCES.iter().find(|(key, _)| key == name) {
            Some((_, value)) => format!("`{value}`"),
            None if *name == INJECT => "`enabled`".to_string(),
            None => "the flag's".to_string(),
        };
        out.push_str(&format!("| `{name}` | {default} | {meaning} |\n"));
    }
    out
}

/// The sidecar's resources unless a pod's annotations say otherwise.
const DEFAULT_RESOURCES: [(&str, &str); 4] = [
    (CPU_REQUEST, "50m"),
    (CPU_LIMIT, "1"),
    (MEMORY_REQUEST, "32Mi"),
    (MEMORY_LIMIT, "128Mi"),
];

/// What one pod's annotations ask for; `None` where they say nothing.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Overrides {
    /// Set when the pod opts out.
    pub opted_out: bool,
    /// The application port, by number or name.
    pub app_port: Option<String>,
    /// The ConfigMap with `statuscope.yaml`.
    pub config_map: Option<String>,
    /// The sidecar's `resources` (requests and limits), always complete.
    pub resources: Value,
}

/// An annotation whose value cannot be used, by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid(pub String);

/// Reads and validates a pod template's `statuscope.io/` annotations and its opt-out label.
pub fn read(metadata: &Value) -> Result<Overrides, Invalid> {
    let mut overrides = Overrides {
        opted_out: metadata["labels"][INJECT].as_str() == Some("disabled"),
        ..Overrides::default()
    };
    let mut resources = DEFAULT_RESOURCES.map(|(name, value)| (name, value.to_string()));
    let annotations = metadata["annotations"]
        .as_mapping()
        .cloned()
        .unwrap_or_default();
    for (name, value) in &annotations {
        let Some(name) = name.as_str().filter(|n| n.starts_with(PREFIX)) else {
            continue;
        };
        let text = value.as_str().unwrap_or_default();
        let invalid = |why: &str| Invalid(format!("annotation `{name}`: `{text}` {why}"));
        match name {
            INJECT => match text {
                "disabled" => overrides.opted_out = true,
                "enabled" => {}
                _ => return Err(invalid("is neither `enabled` nor `disabled`")),
            },
            APP_PORT => {
                if !(is_port_number(text) || is_port_name(text)) {
                    return Err(invalid(
                        "is neither a port number (1–65535) nor a port name",
                    ));
                }
                overrides.app_port = Some(text.to_string());
            }
            CONFIG_MAP => {
                if !is_dns_subdomain(text) {
                    return Err(invalid("is not a ConfigMap name (lower-case letters, digits, `-` and `.`, at most 253)"));
                }
                overrides.config_map = Some(text.to_string());
            }
            _ => match resources.iter_mut().find(|(key, _)| *key == name) {
                Some((_, slot)) => {
                    if quantity(text).is_none() {
                        return Err(invalid(
                            "is not a Kubernetes quantity such as `100m`, `1` or `64Mi`",
                        ));
                    }
                    *slot = text.to_string();
                }
                None => {
                    return Err(Invalid(format!(
                        "annotation `{name}` is not one statuscope knows (see docs/deploy.md)"
                    )))
                }
            },
        }
    }
    overrides.resources = resources_of(resources.map(|(_, v)| v))?;
    Ok(overrides)
}

/// The sidecar's `resources` from its CPU and memory requests and limits, in
/// [`DEFAULT_RESOURCES`]' order; a request above its limit is refused.
fn resources_of(quantities: [String; 4]) -> Result<Value, Invalid> {
    let [cpu_request, cpu_limit, memory_request, memory_limit] = quantities;
    for (request, limit, names) in [
        (&cpu_request, &cpu_limit, (CPU_REQUEST, CPU_LIMIT)),
        (
            &memory_request,
            &memory_limit,
            (MEMORY_REQUEST, MEMORY_LIMIT),
        ),
    ] {
        if quantity(request) > quantity(limit) {
            return Err(Invalid(format!(
                "annotation `{}`: the request `{request}` exceeds the limit `{limit}` (`{}`)",
                names.0, names.1
            )));
        }
    }
    let mut requests = Mapping::new();
    requests.insert("cpu".into(), cpu_request.into());
    requests.insert("memory".into(), memory_request.into());
    let mut limits = Mapping::new();
    limits.insert("cpu".into(), cpu_limit.into());
    limits.insert("memory".into(), memory_limit.into());
    let mut resources = Mapping::new();
    resources.insert("requests".into(), requests.into());
    resources.insert("limits".into(), limits.into());
    Ok(resources.into())
}

/// A port number as Kubernetes writes one: 1–65535, no leading zero.
pub fn is_port_number(text: &str) -> bool {
    text.parse::<u16>().is_ok_and(|n| n > 0) && !text.starts_with('0')
}

/// A Kubernetes port name (IANA service name): 1–15 of `a-z0-9-`, at least one letter, no
/// leading, trailing or doubled `-`.
pub fn is_port_name(text: &str) -> bool {
    (1..=15).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && text.bytes().any(|b| b.is_ascii_lowercase())
        && !text.starts_with('-')
        && !text.ends_with('-')
        && !text.contains("--")
}

/// An RFC 1123 subdomain, as Kubernetes object names are.
pub fn is_dns_subdomain(text: &str) -> bool {
    text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A Kubernetes quantity's value (`100m` = 0.1, `64Mi` = 67108864), for comparing a request
/// with its limit; `None` when it is not one. Negative quantities are refused: no resource is.
fn quantity(text: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 15] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let (number, scale) = SUFFIXES
        .iter()
        .find_map(|(suffix, scale)| Some((text.strip_suffix(suffix)?, *scale)))
        .unwrap_or((text, 1.0));
    let digits = number.strip_prefix('+').unwrap_or(number);
    let plain = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|&b| b == b'.').count() <= 1
        && digits != ".";
    // A decimal exponent (`1e3`) is a quantity too, without a suffix.
    let value = if plain {
        digits.parse::<f64>().ok()?
    } else if scale == 1.0 && digits.contains(['e', 'E']) && !digits.starts_with(['e', 'E']) {
        let value = digits.parse::<f64>().ok()?;
        if value.is_finite() && value >= 0.0 {
            value
        } else {
            return None;
        }
    } else {
        return None;
    };
    Some(value * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(annotations: &[(&str, &str)]) -> Value {
        let mut map = Mapping::new();
        for (k, v) in annotations {
            map.insert((*k).into(), (*v).into());
        }
        let mut metadata = Mapping::new();
        metadata.insert("annotations".into(), map.into());
        metadata.into()
    }

    #[test]
    fn quantities_are_read_as_kubernetes_writes_them() {
        for (text, value) in [
            ("50m", 0.05),
            ("1", 1.0),
            ("1.5", 1.5),
            ("64Mi", 67108864.0),
            ("1G", 1e9),
            ("1e3", 1000.0),
            ("+2", 2.0),
        ] {
            assert_eq!(quantity(text), Some(value), "{text}");
        }
        for bad in [
            "", "m", "-1", "1.2.3", "12 Mi", "1mi", "one", ".", "1e", "Mi",
        ] {
            assert_eq!(quantity(bad), None, "{bad}");
        }
    }

    #[test]
    fn port_names_follow_the_kubernetes_rules() {
        for good in ["http", "app-http", "h2c", "a1234567890bcde"] {
            assert!(is_port_name(good), "{good}");
        }
        for bad in [
            "",
            "8080",
            "HTTP",
            "-http",
            "http-",
            "a--b",
            "a1234567890bcdef",
            "h_t",
        ] {
            assert!(!is_port_name(bad), "{bad}");
        }
    }

    #[test]
    fn every_invalid_annotation_is_named() {
        for (name, value) in [
            (INJECT, "yes"),
            (APP_PORT, "0"),
            (APP_PORT, "Web Port"),
            (CONFIG_MAP, "Shop_Config"),
            (CPU_REQUEST, "lots"),
            (MEMORY_LIMIT, "-5Mi"),
            ("statuscope.io/app-prot", "8080"),
        ] {
            let Err(Invalid(message)) = read(&metadata(&[(name, value)])) else {
                panic!("{name}: {value} accepted");
            };
            assert!(message.contains(name), "{message}");
        }
        let Err(Invalid(message)) = read(&metadata(&[(CPU_REQUEST, "2")])) else {
            panic!("a request above the default limit accepted");
        };
        assert!(message.contains("exceeds the limit `1`"), "{message}");
    }

    #[test]
    fn valid_annotations_override_the_defaults() {
        let overrides = read(&metadata(&[
            (APP_PORT, "web"),
            (CONFIG_MAP, "shop.config"),
            (CPU_LIMIT, "2"),
            (CPU_REQUEST, "1500m"),
            ("example.com/other", "ignored"),
        ]))
        .unwrap();
        assert_eq!(overrides.app_port.as_deref(), Some("web"));
        assert_eq!(overrides.config_map.as_deref(), Some("shop.config"));
        assert_eq!(overrides.resources["requests"]["cpu"], "1500m");
        assert_eq!(overrides.resources["limits"]["cpu"], "2");
        assert_eq!(overrides.resources["limits"]["memory"], "128Mi");
        assert!(!overrides.opted_out);
        let mut labelled = metadata(&[]);
        labelled["labels"] = metadata(&[(INJECT, "disabled")])["annotations"].clone();
        assert!(read(&labelled).unwrap().opted_out);
    }
}
