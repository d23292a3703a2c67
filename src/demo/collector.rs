//! The demo's stand-in for an OpenTelemetry Collector: the demo service also takes the OTLP
//! push on `POST /v1/metrics`, so `make demo` shows the push working (the Sidecar dashboard's
//! OTLP panel, `statuscope_otlp_exports_total`). Each export is decoded with the same
//! `opentelemetry-proto` messages statuscope encodes with, and refused (400) if it does not
//! decode; nothing is kept.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message;

/// The path OTLP/HTTP takes metrics at.
pub const METRICS_PATH: &str = "/v1/metrics";

/// Takes one export: 200 with an empty `ExportMetricsServiceResponse` when it decodes.
pub async fn take(body: Incoming) -> Result<Response<Full<Bytes>>, Infallible> {
    let decoded = match body.collect().await {
        Ok(collected) => ExportMetricsServiceRequest::decode(collected.to_bytes()).is_ok(),
        Err(_) => false,
    };
    let (status, body) = if decoded {
        (
            StatusCode::OK,
            ExportMetricsServiceResponse::default().encode_to_vec(),
        )
    } else {
        (StatusCode::BAD_REQUEST, Vec::new())
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-protobuf"),
    );
    Ok(response)
}
