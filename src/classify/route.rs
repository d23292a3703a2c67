//! Route templating: a request path becomes a bounded `route` label.
//!
//! Order: the configured templates (first match wins), then automatic normalisation of
//! segments that look like identifiers, then a cap on distinct normalised routes past which
//! everything is `__other__`. Query strings never get here: only the path is templated.

use std::collections::HashSet;
use std::hash::BuildHasherDefault;
use std::sync::{Arc, RwLock};

use prometheus::IntCounter;

use crate::families::Families;
use crate::fxhash::FxHasher;

/// The route table's family: how often the cap on distinct routes was hit.
pub struct RouteMetrics {
    overflow: IntCounter,
}

impl RouteMetrics {
    /// Registers `statuscope_route_overflow_total`.
    pub fn register(families: &Families) -> Self {
        RouteMetrics {
            overflow: families.counter(
                "statuscope_route_overflow_total",
                "Requests tallied under route=\"__other__\" because the cap on distinct routes (routes.max) was reached.",
            ),
        }
    }

    /// Counts one request spilled into `route="__other__"`.
    pub fn record_overflow(&self) {
        self.overflow.inc();
    }
}

/// The route label requests spill into once the cap on distinct routes is reached.
pub const OVERFLOW_ROUTE: &str = "__other__";

/// The route label of the kubelet's probes, with `routes.probes: separate` (the default): a
/// few requests a second to a health path that would dilute every route's error ratio and
/// latency.
pub const PROBE_ROUTE: &str = "__probe__";

/// Whether a `User-Agent` value is the kubelet's (`kube-probe/<version>`), which sends the
/// liveness, readiness and startup probes.
pub fn is_probe_user_agent(value: &[u8]) -> bool {
    value.starts_with(b"kube-probe/")
}

/// The placeholder automatic normalisation puts in place of an identifier segment.
const ID_PLACEHOLDER: &str = "{id}";

/// One configured template such as `/users/{id}/orders/{order}` or `/static/{path*}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTemplate {
    text: Arc<str>,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}`: exactly one non-empty segment.
    Param,
    /// `{name*}` as the last segment: the rest of the path, possibly empty.
    Rest,
    /// A segment mixing text and a parameter (`{name}.json`, in an OpenAPI path): one segment
    /// with this prefix and suffix and something between them.
    Affixed {
        prefix: String,
        suffix: String,
    },
}

impl RouteTemplate {
    /// Parses a template, explaining what is wrong with a malformed one.
    pub fn parse(text: &str) -> Result<Self, String> {
        if !text.starts_with('/') {
            return Err(format!("route template `{text}` must start with `/`"));
        }
        let parts: Vec<&str> = text[1..].split('/').collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (index, part) in parts.iter().enumerate() {
            let segment = if let Some(inner) = part.strip_prefix('{') {
                let name = inner.strip_suffix('}').ok_or_else(|| {
                    format!("route template `{text}`: segment `{part}` has no closing `}}`")
                })?;
                let (name, rest) = match name.strip_suffix('*') {
                    Some(name) => (name, true),
                    None => (name, false),
                };
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!(
                        "route template `{text}`: parameter `{part}` needs a name of letters, digits or `_`"
                    ));
                }
                if rest && index + 1 != parts.len() {
                    return Err(format!(
                        "route template `{text}`: `{part}` matches the rest of the path and must come last"
                    ));
                }
                if rest {
                    Segment::Rest
                } else {
                    Segment::Param
                }
            } else {
                if part.contains(['{', '}']) {
                    return Err(format!(
                        "route template `{text}`: segment `{part}` mixes text and a parameter"
                    ));
                }
                Segment::Literal((*part).to_string())
            };
            segments.push(segment);
        }
        Ok(RouteTemplate {
            text: Arc::from(text),
            segments,
        })
    }

    /// A path as an OpenAPI document declares it: every `{…}` is a parameter matching one
    /// segment, or the part of one segment between the text around it. Never fails: any
    /// name is allowed, as the specification allows.
    pub fn declared(text: &str) -> Self {
        let segments = text
            .strip_prefix('/')
            .unwrap_or(text)
            .split('/')
            .map(|part| match (part.find('{'), part.rfind('}')) {
                (Some(0), Some(end)) if end + 1 == part.len() => Segment::Param,
                (Some(open), Some(close)) if open < close => Segment::Affixed {
                    prefix: part[..open].to_string(),
                    suffix: part[close + 1..].to_string(),
                },
                _ => Segment::Literal(part.to_string()),
            })
            .collect();
        RouteTemplate {
            text: Arc::from(text),
            segments,
        }
    }

    /// The template as written; this is the `route` label of every path it matches.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn matches(&self, path: &str) -> bool {
        let mut parts = path.strip_prefix('/').unwrap_or(path).split('/');
        for segment in &self.segments {
            match segment {
                Segment::Rest => return true,
                Segment::Literal(literal) => {
                    if parts.next() != Some(literal.as_str()) {
                        return false;
                    }
                }
                Segment::Param => {
                    if parts.next().is_none_or(str::is_empty) {
                        return false;
                    }
                }
                Segment::Affixed { prefix, suffix } => {
                    let fits = parts.next().is_some_and(|part| {
                        part.len() > prefix.len() + suffix.len()
                            && part.starts_with(prefix.as_str())
                            && part.ends_with(suffix.as_str())
                    });
                    if !fits {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }
}

/// Maps request paths to route labels, holding the set of normalised routes seen so far.
#[derive(Debug)]
pub struct RouteTable {
    templates: Vec<RouteTemplate>,
    max_routes: usize,
    seen: RwLock<HashSet<Arc<str>, BuildHasherDefault<FxHasher>>>,
    overflow: Arc<str>,
}

/// The route a path resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The `route` label value.
    pub label: Arc<str>,
    /// True when the cap on distinct routes sent this path to `__other__`.
    pub overflow: bool,
}

impl RouteTable {
    /// A table with the configured templates and a cap on distinct normalised routes.
    pub fn new(templates: Vec<RouteTemplate>, max_routes: usize) -> Self {
        RouteTable {
            templates,
            max_routes,
            seen: RwLock::new(HashSet::default()),
            overflow: Arc::from(OVERFLOW_ROUTE),
        }
    }

    /// Resolves a path (without query) to its route. A label, once given out, lives as long as
    /// the table, so callers may key caches by its address.
    pub fn resolve(&self, path: &str) -> Route {
        if let Some(template) = self.templates.iter().find(|t| t.matches(path)) {
            return Route {
                label: template.text.clone(),
                overflow: false,
            };
        }
        // Most paths have no identifier to replace: look them up as they are, without a copy.
        let normalised = needs_normalising(path).then(|| normalise(path));
        let key = normalised
            .as_deref()
            .unwrap_or(if path.is_empty() { "/" } else { path });
        if let Some(label) = self.seen.read().unwrap_or_else(|e| e.into_inner()).get(key) {
            return Route {
                label: label.clone(),
                overflow: false,
            };
        }
        let mut seen = self.seen.write().unwrap_or_else(|e| e.into_inner());
        if let Some(label) = seen.get(key) {
            return Route {
                label: label.clone(),
                overflow: false,
            };
        }
        if seen.len() >= self.max_routes {
            return Route {
                label: self.overflow.clone(),
                overflow: true,
            };
        }
        let label: Arc<str> = Arc::from(key);
        seen.insert(label.clone());
        Route {
            label,
            overflow: false,
        }
    }
}

/// True when some segment of `path` would be replaced by [`normalise`].
fn needs_normalising(path: &str) -> bool {
    path.as_bytes().split(|b| *b == b'/').any(looks_like_id)
}

/// Replaces identifier-like segments with `{id}`: `/users/42/orders` → `/users/{id}/orders`.
pub fn normalise(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    let mut out = String::with_capacity(path.len());
    for (index, segment) in path.split('/').enumerate() {
        if index > 0 {
            out.push('/');
        }
        if looks_like_id(segment.as_bytes()) {
            out.push_str(ID_PLACEHOLDER);
        } else {
            out.push_str(segment);
        }
    }
    out
}

/// Decimal numbers, UUIDs, hex strings of 16+ digits, opaque tokens of 20+ characters mixing
/// letters and digits (base64url ids, hashes, session tokens), and anything with an `@` or
/// `%40` (e-mail addresses are personal data and must not become labels).
fn looks_like_id(bytes: &[u8]) -> bool {
    // Each test gives up at its first mismatch: most segments are short words, rejected at once.
    if bytes.is_empty() {
        return false;
    }
    if bytes.contains(&b'@') || bytes.windows(3).any(|w| w.eq_ignore_ascii_case(b"%40")) {
        return true;
    }
    if bytes.iter().all(u8::is_ascii_digit) || is_uuid(bytes) {
        return true;
    }
    if bytes.len() >= 16 && bytes.iter().all(u8::is_ascii_hexdigit) {
        return true;
    }
    bytes.len() >= 20
        && bytes.iter().any(u8::is_ascii_digit)
        && bytes.iter().any(u8::is_ascii_alphabetic)
        && bytes.iter().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'%' | b'=')
        })
}

fn is_uuid(bytes: &[u8]) -> bool {
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(templates: &[&str], max: usize) -> RouteTable {
        RouteTable::new(
            templates
                .iter()
                .map(|t| RouteTemplate::parse(t).unwrap())
                .collect(),
            max,
        )
    }

    #[test]
    fn configured_templates_match_in_order() {
        let routes = table(&["/users/me", "/users/{id}", "/static/{path*}"], 10);
        assert_eq!(&*routes.resolve("/users/me").label, "/users/me");
        assert_eq!(&*routes.resolve("/users/alice").label, "/users/{id}");
        assert_eq!(
            &*routes.resolve("/static/css/site.css").label,
            "/static/{path*}"
        );
        assert_eq!(&*routes.resolve("/static/").label, "/static/{path*}");
        // One segment only: a deeper path falls through to normalisation.
        assert_eq!(
            &*routes.resolve("/users/alice/orders").label,
            "/users/alice/orders"
        );
    }

    #[test]
    fn identifier_segments_are_normalised() {
        assert_eq!(normalise("/users/42"), "/users/{id}");
        assert_eq!(
            normalise("/orders/3f2c1a9e-4b7d-4e8a-9c1b-2d3e4f5a6b7c/items"),
            "/orders/{id}/items"
        );
        assert_eq!(normalise("/blobs/deadbeefdeadbeef"), "/blobs/{id}");
        assert_eq!(normalise("/s/aB3dE5gH7jK9mN1pQ3sT"), "/s/{id}");
        assert_eq!(
            normalise("/users/bob@example.com/orders"),
            "/users/{id}/orders"
        );
        assert_eq!(normalise("/users/bob%40example.com"), "/users/{id}");
        assert_eq!(normalise("/api/v1/health"), "/api/v1/health");
        assert_eq!(
            normalise("/articles/how-to-write-a-proxy"),
            "/articles/how-to-write-a-proxy"
        );
        assert_eq!(normalise(""), "/");
        assert_eq!(normalise("/"), "/");
    }

    #[test]
    fn labels_are_shared_not_copied() {
        let routes = table(&[], 1);
        let a = routes.resolve("/users/1").label;
        let b = routes.resolve("/users/2").label;
        assert!(Arc::ptr_eq(&a, &b));
        let over = routes.resolve("/other").label;
        assert!(Arc::ptr_eq(&over, &routes.resolve("/another").label));
    }

    #[test]
    fn cap_spills_new_routes_into_other() {
        let routes = table(&["/fixed"], 2);
        assert!(!routes.resolve("/a").overflow);
        assert!(!routes.resolve("/b").overflow);
        let spilled = routes.resolve("/c");
        assert!(spilled.overflow);
        assert_eq!(&*spilled.label, OVERFLOW_ROUTE);
        // Routes already admitted and configured templates keep their labels.
        assert_eq!(&*routes.resolve("/a").label, "/a");
        assert_eq!(&*routes.resolve("/fixed").label, "/fixed");
    }

    #[test]
    fn malformed_templates_are_explained() {
        assert!(RouteTemplate::parse("users/{id}")
            .unwrap_err()
            .contains("start with"));
        assert!(RouteTemplate::parse("/users/{id")
            .unwrap_err()
            .contains("closing"));
        assert!(RouteTemplate::parse("/users/{}")
            .unwrap_err()
            .contains("name"));
        assert!(RouteTemplate::parse("/a/{rest*}/b")
            .unwrap_err()
            .contains("last"));
        assert!(RouteTemplate::parse("/a/x{id}")
            .unwrap_err()
            .contains("mixes"));
    }
}
