//! What the OTLP push is configured with (`otlp.*`, or OpenTelemetry's `OTEL_*` variables):
//! the typed values configuration validation builds, and the parsers of the forms both write.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::uri::{PathAndQuery, Scheme};
use http::Uri;

use crate::contract::document::percent_decode;

/// OpenTelemetry's variables that name the endpoint, the metrics-specific one (a full URL)
/// first, then the general one (a base URL).
pub const ENDPOINT_VARIABLES: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// The path OTLP/HTTP serves metrics at, appended to a base endpoint.
const METRICS_PATH: &str = "v1/metrics";

/// How the OTLP push is configured; `None` in the configuration when `otlp.endpoint` is unset.
#[derive(Clone, PartialEq)]
pub struct OtlpSettings {
    /// Where each export is POSTed (`otlp.endpoint` with `/v1/metrics` appended, or
    /// `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` as written).
    pub endpoint: Uri,
    /// The wire protocol (`otlp.protocol`).
    pub protocol: Protocol,
    /// Time between exports (`otlp.interval`).
    pub interval: Duration,
    /// How long one export may take, connection included (`otlp.timeout`).
    pub timeout: Duration,
    /// Header fields sent with each export (`otlp.headers`); values never logged.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Header fields whose values are files' contents, read again at each export so a rotated
    /// token is picked up (`otlp.header_files`).
    pub header_files: Vec<(HeaderName, PathBuf)>,
    /// The resource's attributes (`otlp.resource`, `OTEL_RESOURCE_ATTRIBUTES`,
    /// `OTEL_SERVICE_NAME`), `service.name` always among them.
    pub resource: Vec<(String, String)>,
    /// Cumulative or delta sums and histograms (`otlp.temporality`).
    pub temporality: Temporality,
    /// The request body's encoding (`otlp.compression`).
    pub compression: Compression,
    /// Exports kept while the collector cannot take them (`otlp.queue`).
    pub queue: usize,
}

impl fmt::Debug for OtlpSettings {
    /// Everything but the header values, which may be credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |pairs: &[(HeaderName, HeaderValue)]| {
            pairs.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>()
        };
        f.debug_struct("OtlpSettings")
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("headers", &names(&self.headers))
            .field("header_files", &self.header_files)
            .field("resource", &self.resource)
            .field("temporality", &self.temporality)
            .field("compression", &self.compression)
            .field("queue", &self.queue)
            .finish()
    }
}

/// OTLP's wire protocols statuscope speaks (`otlp.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Protobuf over HTTP POST, a collector's port 4318. OTLP/gRPC (4317) is left out: the
    /// collector takes both, and this one needs no gRPC stack in the sidecar.
    HttpProtobuf,
}

impl Protocol {
    /// Each protocol by its `otlp.protocol` name (`OTEL_EXPORTER_OTLP_PROTOCOL`'s spelling).
    pub const NAMED: [(&'static str, Protocol); 1] = [("http/protobuf", Protocol::HttpProtobuf)];
}

/// How sums and histograms carry their values over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporality {
    /// Totals since the process started, as Prometheus keeps them: an export lost is made
    /// good by the next.
    Cumulative,
    /// What changed since the previous export, for backends that want deltas: an export
    /// dropped is lost.
    Delta,
}

impl Temporality {
    /// Each temporality by its `otlp.temporality` name.
    pub const NAMED: [(&'static str, Temporality); 2] = [
        ("cumulative", Temporality::Cumulative),
        ("delta", Temporality::Delta),
    ];

    /// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`, case-insensitive; `lowmemory` is
    /// delta for counters and histograms, which is every sum statuscope pushes.
    pub fn of_preference(text: &str) -> Option<Temporality> {
        match text.to_ascii_lowercase().as_str() {
            "cumulative" => Some(Temporality::Cumulative),
            "delta" | "lowmemory" => Some(Temporality::Delta),
            _ => None,
        }
    }
}

/// The request body's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// As is.
    None,
    /// gzip, with `Content-Encoding: gzip`.
    Gzip,
}

impl Compression {
    /// Each encoding by its `otlp.compression` name (`OTEL_EXPORTER_OTLP_COMPRESSION`'s).
    pub const NAMED: [(&'static str, Compression); 2] =
        [("gzip", Compression::Gzip), ("none", Compression::None)];
}

/// The metrics URL for a base endpoint such as `http://collector:4318` (`otlp.endpoint`,
/// `OTEL_EXPORTER_OTLP_ENDPOINT`): `v1/metrics` appended to its path.
pub fn metrics_url_of_base(text: &str) -> Result<Uri, String> {
    let base = checked_url(text)?;
    let path = base.path().trim_end_matches('/');
    let joined = format!("{path}/{METRICS_PATH}");
    let mut parts = base.into_parts();
    parts.path_and_query =
        Some(PathAndQuery::try_from(joined.as_str()).map_err(|e| format!("`{text}`: {e}"))?);
    Uri::from_parts(parts).map_err(|e| format!("`{text}`: {e}"))
}

/// A metrics URL used as written (`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`).
pub fn metrics_url(text: &str) -> Result<Uri, String> {
    checked_url(text)
}

fn checked_url(text: &str) -> Result<Uri, String> {
    let uri: Uri = text
        .parse()
        .map_err(|e| format!("`{text}` is not a URL such as `http://collector:4318`: {e}"))?;
    if uri.scheme() == Some(&Scheme::HTTPS) {
        return Err(format!(
            "`{text}`: https is not offered (statuscope is built without TLS); push to a collector in the pod or on the node over http"
        ));
    }
    if uri.scheme() != Some(&Scheme::HTTP) || uri.host().is_none() {
        return Err(format!(
            "`{text}` is not an http URL such as `http://collector:4318`"
        ));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(
            "the URL holds credentials; send them as a header (`otlp.header_files`)".to_string(),
        );
    }
    Ok(uri)
}

/// `name=value` pairs as OpenTelemetry's variables write them (`k1=v1,k2=v2`, values
/// percent-encoded) and `otlp.headers`/`otlp.resource` list them, one per entry.
pub fn pairs<'a>(
    entries: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for entry in entries.into_iter().flat_map(|e| e.split(',')) {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let Some((name, value)) = entry.split_once('=') else {
            // The entry itself is not shown: it may be a credential.
            return Err(format!("entry {} is not `name=value`", out.len() + 1));
        };
        out.push((name.trim().to_string(), percent_decode(value.trim())));
    }
    Ok(out)
}

/// Header fields from `name=value` pairs; a problem names the field, never its value.
pub fn header_fields(
    pairs: Vec<(String, String)>,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    pairs
        .into_iter()
        .map(|(name, value)| {
            let field = header_name(&name)?;
            let value = HeaderValue::try_from(value)
                .map_err(|_| format!("the value of `{name}` is not a valid header value"))?;
            Ok((field, value))
        })
        .collect()
}

/// A header field's name, refusing those the transport sets itself.
pub fn header_name(name: &str) -> Result<HeaderName, String> {
    let field = HeaderName::try_from(name).map_err(|_| format!("`{name}` is not a header name"))?;
    let own = [
        http::header::HOST,
        http::header::CONTENT_TYPE,
        http::header::CONTENT_LENGTH,
        http::header::CONTENT_ENCODING,
        http::header::TRANSFER_ENCODING,
        http::header::CONNECTION,
    ];
    if own.contains(&field) {
        return Err(format!("`{name}` is set by statuscope itself"));
    }
    Ok(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_endpoint_gets_the_metrics_path_and_a_signal_endpoint_is_kept() {
        let url = metrics_url_of_base("http://collector:4318").unwrap();
        assert_eq!(url.to_string(), "http://collector:4318/v1/metrics");
        let url = metrics_url_of_base("http://collector:4318/prefix/").unwrap();
        assert_eq!(url.to_string(), "http://collector:4318/prefix/v1/metrics");
        let url = metrics_url("http://collector:4318/custom").unwrap();
        assert_eq!(url.to_string(), "http://collector:4318/custom");
    }

    #[test]
    fn tls_credentials_in_urls_and_other_schemes_are_refused_by_name() {
        assert!(metrics_url("https://c:4318").unwrap_err().contains("https"));
        assert!(metrics_url("grpc://c:4317").is_err());
        assert!(metrics_url("collector:4318").is_err());
        let problem = metrics_url("http://user:secret@c:4318").unwrap_err();
        assert!(!problem.contains("secret"), "{problem}");
    }

    #[test]
    fn pairs_read_the_variables_form_and_never_show_a_value_in_a_problem() {
        let read = pairs(["a=1, b = x%20y", "c=%2C"]).unwrap();
        assert_eq!(
            read,
            [("a", "1"), ("b", "x y"), ("c", ",")].map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let problem = pairs(["token"]).unwrap_err();
        assert!(!problem.contains("token"), "{problem}");
        let problem = header_fields(vec![("authorization".into(), "bad\nvalue".into())]);
        assert!(!problem.unwrap_err().contains("bad"));
        assert!(header_name("Content-Type").is_err());
    }

    #[test]
    fn temporality_preferences_read_case_insensitively() {
        assert_eq!(
            Temporality::of_preference("Delta"),
            Some(Temporality::Delta)
        );
        assert_eq!(
            Temporality::of_preference("LOWMEMORY"),
            Some(Temporality::Delta)
        );
        assert_eq!(
            Temporality::of_preference("cumulative"),
            Some(Temporality::Cumulative)
        );
        assert_eq!(Temporality::of_preference("spread"), None);
    }
}
