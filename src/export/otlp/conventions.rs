//! OpenTelemetry's views of statuscope's tallies, named by its semantic conventions (the
//! version [`SCHEMA_URL`] names, pinned by the `opentelemetry-semantic-conventions` crate whose
//! constants spell every name here). Each view is read from a family statuscope already
//! keeps, at export time: `http.server.request.duration` from
//! `statuscope_response_duration_seconds`, `rpc.server.call.duration` from
//! `statuscope_grpc_duration_seconds`, `statuscope.findings` from `statuscope_findings_total`.

use std::collections::BTreeMap;

use opentelemetry_semantic_conventions::attribute::{
    ERROR_TYPE, HTTP_REQUEST_METHOD, HTTP_RESPONSE_STATUS_CODE, HTTP_ROUTE, NETWORK_PROTOCOL_NAME,
    NETWORK_PROTOCOL_VERSION, RPC_METHOD, RPC_RESPONSE_STATUS_CODE, RPC_SYSTEM_NAME, URL_SCHEME,
};
use opentelemetry_semantic_conventions::metric::{
    HTTP_SERVER_REQUEST_DURATION, RPC_SERVER_CALL_DURATION,
};
use prometheus::proto::MetricFamily;

use super::series::{bounds, value, AttrValue, Attributes, Instrument, Reading, Series};
use crate::classify::grpc::GrpcCode;

/// The semantic conventions' version the names follow, sent as each scope's schema URL.
pub use opentelemetry_semantic_conventions::SCHEMA_URL;

/// The findings counter's name; its attributes are [`RULE`], [`SEVERITY`] and the HTTP ones.
pub const FINDINGS: &str = "statuscope.findings";
/// The rule a finding broke (`statuscope rules` lists the ids).
pub const RULE: &str = "statuscope.rule";
/// The finding's severity: `error`, `warning` or `info`.
pub const SEVERITY: &str = "statuscope.severity";

/// `error.type` of an answer statuscope made itself (the upstream failed, the request was
/// refused, the proxy was full): the status sent stays in `http.response.status_code`.
pub const PROXY_ANSWERED: &str = "statuscope.proxy";
/// `error.type` of an exchange the client left before its answer: no status was sent, so
/// `http.response.status_code` is absent (statuscope's own tallies say 499).
pub const CLIENT_GONE: &str = "statuscope.client_gone";

/// What the conventions call a method or route statuscope does not know.
const OTHER: &str = "_OTHER";

/// The views of `families` that have points.
pub fn views(families: &[MetricFamily]) -> Vec<Series> {
    let find = |name: &str| families.iter().find(|family| family.name() == name);
    let views = [
        find("statuscope_response_duration_seconds").map(http_server_duration),
        find("statuscope_grpc_duration_seconds").map(rpc_server_duration),
        find("statuscope_findings_total").map(findings),
    ];
    views.into_iter().flatten().collect()
}

/// The labels of each point of `family`, mapped by `attributes` and added up where two map
/// to the same set.
fn view(
    family: &MetricFamily,
    (name, description, unit, shape): (&'static str, &'static str, &'static str, Instrument),
    attributes: impl Fn(&Labels<'_>) -> Attributes,
) -> Series {
    let mut points: BTreeMap<Attributes, Reading> = BTreeMap::new();
    for metric in family.get_metric() {
        let labels = Labels(
            metric
                .get_label()
                .iter()
                .map(|p| (p.name(), p.value()))
                .collect(),
        );
        let value = value(metric, family.get_field_type());
        points
            .entry(attributes(&labels))
            .and_modify(|sum| sum.add(&value))
            .or_insert(value);
    }
    Series {
        name,
        description,
        unit,
        shape,
        points,
    }
}

/// One point's Prometheus labels.
struct Labels<'a>(Vec<(&'a str, &'a str)>);

impl Labels<'_> {
    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, value)| value)
    }
}

fn text(value: &str) -> AttrValue {
    AttrValue::Str(value.to_string())
}

/// A route label that names a real route: statuscope's own (`__other__`, `__malformed__`,
/// `__probe__`) are not routes the service has.
fn real_route(route: &str) -> Option<&str> {
    (!route.starts_with("__")).then_some(route)
}

fn histogram_shape(family: &MetricFamily) -> Instrument {
    Instrument::Histogram(family.get_metric().first().map(bounds).unwrap_or_default())
}

fn http_server_duration(family: &MetricFamily) -> Series {
    let meta = (
        HTTP_SERVER_REQUEST_DURATION,
        "Duration of HTTP server requests.",
        "s",
        histogram_shape(family),
    );
    view(family, meta, |labels| {
        http_attributes(labels, labels.get("origin"))
    })
}

/// The HTTP server attributes of one tally: the route, method, status code and how it went.
fn http_attributes(labels: &Labels<'_>, origin: &str) -> Attributes {
    let mut attributes = Attributes::new();
    attributes.insert(HTTP_REQUEST_METHOD, text(labels.get("method")));
    attributes.insert(URL_SCHEME, text("http"));
    attributes.insert(NETWORK_PROTOCOL_NAME, text("http"));
    if let Some(route) = real_route(labels.get("route")) {
        attributes.insert(HTTP_ROUTE, text(route));
    }
    if let Some(version) = Some(labels.get("http_version")).filter(|v| !v.is_empty()) {
        attributes.insert(NETWORK_PROTOCOL_VERSION, text(version));
    }
    let code: i64 = labels.get("code").parse().unwrap_or(0);
    match origin {
        "client" => {
            attributes.insert(ERROR_TYPE, text(CLIENT_GONE));
        }
        "proxy" => {
            attributes.insert(HTTP_RESPONSE_STATUS_CODE, AttrValue::Int(code));
            attributes.insert(ERROR_TYPE, text(PROXY_ANSWERED));
        }
        _ => {
            attributes.insert(HTTP_RESPONSE_STATUS_CODE, AttrValue::Int(code));
            if (500..600).contains(&code) {
                attributes.insert(ERROR_TYPE, text(labels.get("code")));
            }
        }
    }
    attributes
}

fn rpc_server_duration(family: &MetricFamily) -> Series {
    let meta = (
        RPC_SERVER_CALL_DURATION,
        "Measures the duration of an incoming Remote Procedure Call (RPC).",
        "s",
        histogram_shape(family),
    );
    view(family, meta, |labels| {
        let code = labels.get("grpc_code");
        let method =
            real_route(labels.get("route")).map_or(OTHER, |route| route.trim_start_matches('/'));
        let mut attributes = Attributes::new();
        attributes.insert(RPC_SYSTEM_NAME, text("grpc"));
        attributes.insert(RPC_METHOD, text(method));
        attributes.insert(RPC_RESPONSE_STATUS_CODE, text(code));
        if GrpcCode::SERVER_ERRORS.iter().any(|c| c.as_str() == code) {
            attributes.insert(ERROR_TYPE, text(code));
        }
        attributes
    })
}

fn findings(family: &MetricFamily) -> Series {
    let meta = (
        FINDINGS,
        "Responses that broke a status-code misuse rule.",
        "{finding}",
        Instrument::Counter,
    );
    view(family, meta, |labels| {
        let mut attributes = http_attributes(labels, "upstream");
        // A finding's exchange is one the service answered; its error class is not the point.
        attributes.remove(ERROR_TYPE);
        attributes.remove(URL_SCHEME);
        attributes.remove(NETWORK_PROTOCOL_NAME);
        attributes.insert(RULE, text(labels.get("rule")));
        attributes.insert(SEVERITY, text(labels.get("severity")));
        attributes
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{HttpVersion, Origin};
    use crate::record::{Metrics, Tally};
    use std::time::Duration;

    fn tally(metrics: &Metrics, route: &str, method: &'static str, code: u16, origin: Origin) {
        metrics.record(&Tally {
            route,
            method,
            code,
            origin,
            version: HttpVersion::Http2,
            duration: Duration::from_millis(3),
        });
    }

    fn point<'a>(series: &'a Series, pairs: &[(&str, AttrValue)]) -> Option<&'a Reading> {
        series.points.iter().find_map(|(attributes, value)| {
            let matches = attributes.len() == pairs.len()
                && pairs.iter().all(|(k, v)| attributes.get(k) == Some(v));
            matches.then_some(value)
        })
    }

    #[test]
    fn http_duration_follows_the_conventions_for_each_origin() {
        let metrics = Metrics::default();
        tally(&metrics, "/users/{id}", "GET", 200, Origin::Upstream);
        tally(&metrics, "/users/{id}", "GET", 503, Origin::Upstream);
        tally(&metrics, "/users/{id}", "GET", 502, Origin::Proxy);
        tally(&metrics, "/users/{id}", "GET", 499, Origin::Client);
        tally(&metrics, "__other__", "_OTHER", 404, Origin::Upstream);
        let views = views(&metrics.registry().gather());
        let http = &views[0];
        assert_eq!(http.name, "http.server.request.duration");
        let base = |extra: &[(&'static str, AttrValue)]| {
            let mut pairs = vec![
                ("http.request.method", text("GET")),
                ("url.scheme", text("http")),
                ("network.protocol.name", text("http")),
                ("network.protocol.version", text("2")),
                ("http.route", text("/users/{id}")),
            ];
            pairs.extend_from_slice(extra);
            pairs
        };
        let code = |n| ("http.response.status_code", AttrValue::Int(n));
        assert!(point(http, &base(&[code(200)])).is_some());
        assert!(point(http, &base(&[code(503), ("error.type", text("503"))])).is_some());
        assert!(point(
            http,
            &base(&[code(502), ("error.type", text(PROXY_ANSWERED))])
        )
        .is_some());
        assert!(point(http, &base(&[("error.type", text(CLIENT_GONE))])).is_some());
        let mut other = base(&[code(404)]);
        other.retain(|(k, _)| *k != "http.route");
        other[0].1 = text("_OTHER");
        assert!(point(http, &other).is_some(), "{:?}", http.points.keys());
    }

    #[test]
    fn grpc_calls_carry_the_fully_qualified_method_and_the_string_status() {
        let metrics = Metrics::default();
        metrics.record_grpc(
            "/shop.Cart/Add",
            GrpcCode::Unavailable,
            Origin::Upstream,
            Duration::from_millis(2),
        );
        metrics.record_grpc(
            "/shop.Cart/Add",
            GrpcCode::NotFound,
            Origin::Upstream,
            Duration::from_millis(2),
        );
        let views = views(&metrics.registry().gather());
        let rpc = views
            .iter()
            .find(|s| s.name == "rpc.server.call.duration")
            .unwrap();
        let attrs = |code: &str, error: bool| {
            let mut pairs = vec![
                ("rpc.system.name", text("grpc")),
                ("rpc.method", text("shop.Cart/Add")),
                ("rpc.response.status_code", text(code)),
            ];
            if error {
                pairs.push(("error.type", text(code)));
            }
            pairs
        };
        assert!(point(rpc, &attrs("UNAVAILABLE", true)).is_some());
        assert!(point(rpc, &attrs("NOT_FOUND", false)).is_some());
    }

    /// Every metric and attribute name the views send, and each `error.type` of statuscope's
    /// own, appears in docs/otlp.md: the table there cannot fall behind the code.
    #[test]
    fn docs_otlp_names_every_metric_and_attribute_the_views_send() {
        let metrics = Metrics::default();
        for (code, origin) in [
            (200, Origin::Upstream),
            (503, Origin::Upstream),
            (502, Origin::Proxy),
            (499, Origin::Client),
        ] {
            tally(&metrics, "/a", "GET", code, origin);
        }
        metrics.record_grpc(
            "/s.S/M",
            GrpcCode::Internal,
            Origin::Upstream,
            Duration::from_millis(1),
        );
        let findings = prometheus::IntCounterVec::new(
            prometheus::Opts::new("statuscope_findings_total", "help"),
            &["rule", "severity", "route", "method", "code"],
        )
        .unwrap();
        findings
            .with_label_values(&["r", "warning", "/a", "GET", "429"])
            .inc();
        let mut families = metrics.registry().gather();
        families.extend(prometheus::core::Collector::collect(&findings));
        let views = views(&families);
        assert_eq!(views.len(), 3);
        let docs =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/otlp.md")).unwrap();
        let mut names: Vec<String> = views
            .iter()
            .flat_map(|view| {
                let keys = view
                    .points
                    .keys()
                    .flat_map(|a| a.keys().map(|k| k.to_string()));
                std::iter::once(view.name.to_string())
                    .chain(keys)
                    .collect::<Vec<_>>()
            })
            .collect();
        names.extend([PROXY_ANSWERED, CLIENT_GONE, SCHEMA_URL].map(String::from));
        for name in names {
            assert!(
                docs.contains(&format!("`{name}`")),
                "docs/otlp.md does not name `{name}`"
            );
        }
    }
}
