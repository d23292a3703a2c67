//! The admin server: the listener that exports the metrics (`/metrics`) and serves
//! `/findings`, `/healthz` and `/readyz`.
//!
//! It runs on a thread and runtime of its own, apart from pingora's services, so it keeps
//! answering (and `/readyz` keeps saying 503) while the proxy drains on SIGTERM.

pub mod health;
pub mod reference;

use std::convert::Infallible;
use std::net::TcpListener;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use prometheus::{Encoder, TextEncoder};
use tracing::warn;

pub use health::Health;

use crate::config::Secret;
use crate::contract::coverage::Current;
use crate::contract::drift::{self, DriftFormat};
use crate::contract::Contract;
use crate::record::findings::FindingsStore;
use crate::record::observed::{DocumentFormat, Observed};
use crate::record::Metrics;

/// What the admin endpoints read.
struct Admin {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    /// `None` when `findings.endpoint` is off.
    findings: Option<Arc<FindingsStore>>,
    /// The bearer token `/findings` and `/contract` require, if any (`findings.token_file`).
    findings_token: Option<Secret>,
    /// The contract in force (it changes on SIGHUP), for `/contract`.
    contract: Current,
    /// The observed contract's learner, for `/contract/observed`; `None` when
    /// `observed.enabled` is off.
    observed: Option<Arc<Observed>>,
}

/// What the admin endpoints serve beside the metrics and the probes.
pub struct Served {
    /// `None` when `findings.endpoint` is off.
    pub findings: Option<Arc<FindingsStore>>,
    /// The bearer token `/findings` and `/contract…` require, if any.
    pub findings_token: Option<Secret>,
    /// The contract in force.
    pub contract: Current,
    /// The observed contract's learner.
    pub observed: Option<Arc<Observed>>,
}

/// Serves the admin endpoints on `listener` from a new thread until the process exits.
pub fn spawn(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    served: Served,
) -> std::io::Result<()> {
    let admin = Admin {
        metrics,
        health,
        findings: served.findings,
        findings_token: served.findings_token,
        contract: served.contract,
        observed: served.observed,
    };
    spawn_server(listener, "statuscope-admin", move |request| {
        admin.respond(request)
    })
}

/// Serves HTTP/1.1 on `listener` from a thread and runtime of its own, answering each request
/// with `respond`: the sidecar's admin server, and the injector's.
pub fn spawn_server(
    listener: TcpListener,
    thread: &str,
    respond: impl Fn(&Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync + 'static,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let respond = Arc::new(respond);
    std::thread::Builder::new()
        .name(thread.into())
        .spawn(move || runtime.block_on(serve(listener, respond)))?;
    Ok(())
}

async fn serve<R>(listener: TcpListener, respond: Arc<R>)
where
    R: Fn(&Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync + 'static,
{
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            warn!("admin listener unusable: {e}");
            return;
        }
    };
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!("admin accept failed: {e}");
                continue;
            }
        };
        let respond = respond.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = respond(&request);
                async move { Ok::<_, Infallible>(response) }
            });
            // Errors here are a scraper hanging up; nothing to report.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// `/metrics`: everything in `registry`, in the Prometheus text format.
pub fn metrics_response(registry: &prometheus::Registry) -> Response<Full<Bytes>> {
    let encoder = TextEncoder::new();
    let mut body = Vec::with_capacity(16 * 1024);
    if let Err(e) = encoder.encode(&registry.gather(), &mut body) {
        warn!("encoding metrics failed: {e}");
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics encoding failed\n",
        );
    }
    with_type(body, prometheus::TEXT_FORMAT)
}

/// `/readyz`: 200, or 503 with the reason.
pub fn readiness_response(health: &Health) -> Response<Full<Bytes>> {
    match health.readiness() {
        Ok(()) => plain(StatusCode::OK, "ready\n"),
        Err(reason) => plain(StatusCode::SERVICE_UNAVAILABLE, reason),
    }
}

impl Admin {
    fn respond(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path();
        let known = match path {
            "/metrics" | "/healthz" | "/readyz" | "/contract" => true,
            "/findings" => self.findings.is_some(),
            "/contract/observed" | "/contract/drift" => self.observed.is_some(),
            _ => false,
        };
        if !known {
            return plain(
                StatusCode::NOT_FOUND,
                "not found: try /metrics, /findings, /contract, /contract/observed, /contract/drift, /healthz or /readyz\n",
            );
        }
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        match path {
            "/metrics" => metrics_response(self.metrics.registry()),
            "/findings" | "/contract" | "/contract/observed" | "/contract/drift"
                if !self.authorised(request) =>
            {
                let mut response = plain(StatusCode::UNAUTHORIZED, "a bearer token is required\n");
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer realm=\"statuscope\""),
                );
                response
            }
            "/findings" => {
                let json = self
                    .findings
                    .as_ref()
                    .map(|f| f.to_json())
                    .unwrap_or_default();
                with_type(json.into_bytes(), "application/json")
            }
            "/contract" => match (self.contract)() {
                Some(contract) => {
                    let json = serde_json::to_vec(&contract.snapshot()).unwrap_or_default();
                    with_type(json, "application/json")
                }
                None => plain(
                    StatusCode::NOT_FOUND,
                    "no contract: set contract.openapi to the service's OpenAPI document\n",
                ),
            },
            "/contract/drift" => match (self.observed.as_ref(), (self.contract)()) {
                (Some(observed), Some(contract)) => {
                    drift_response(&contract, observed, request.uri().query())
                }
                _ => plain(
                    StatusCode::NOT_FOUND,
                    "no contract: set contract.openapi to the service's OpenAPI document\n",
                ),
            },
            "/contract/observed" => match self.observed.as_ref() {
                Some(observed) => observed_response(observed, request.uri().query()),
                None => plain(StatusCode::NOT_FOUND, "observed.enabled is off\n"),
            },
            "/healthz" => plain(StatusCode::OK, "ok\n"),
            _ => readiness_response(&self.health),
        }
    }
}

/// `/contract/drift`: the declared contract against what was observed, as JSON (the default),
/// a table (`?format=table`) or Markdown (`?format=markdown`).
fn drift_response(
    contract: &Contract,
    observed: &Observed,
    query: Option<&str>,
) -> Response<Full<Bytes>> {
    let (format, content_type) = match query_format(query).unwrap_or("json") {
        "json" => (DriftFormat::Json, "application/json"),
        "table" => (DriftFormat::Table, "text/plain; charset=utf-8"),
        "markdown" => (DriftFormat::Markdown, "text/markdown; charset=utf-8"),
        _ => {
            return plain(
                StatusCode::BAD_REQUEST,
                "format is json, table or markdown\n",
            )
        }
    };
    let differences = drift::diff(contract, &observed.learnt().to_openapi("observed"));
    with_type(
        drift::render(&differences, format).into_bytes(),
        content_type,
    )
}

/// The `format` a query asks for.
fn query_format(query: Option<&str>) -> Option<&str> {
    query
        .into_iter()
        .flat_map(|query| query.split('&'))
        .find_map(|pair| pair.strip_prefix("format="))
}

/// `/contract/observed`: the learnt document, as YAML (the default) or JSON (`?format=json`).
fn observed_response(observed: &Observed, query: Option<&str>) -> Response<Full<Bytes>> {
    let format = query_format(query).unwrap_or("yaml");
    let Some(format) = DocumentFormat::named(format) else {
        return plain(StatusCode::BAD_REQUEST, "format is yaml or json\n");
    };
    let (body, content_type) = observed.learnt().render("observed", format);
    with_type(body, content_type)
}

impl Admin {
    /// Does the request carry the `/findings` (and `/contract`) token (or is none required)?
    fn authorised(&self, request: &Request<Incoming>) -> bool {
        let Some(token) = &self.findings_token else {
            return true;
        };
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
            .unwrap_or_default();
        constant_time_eq(presented, token.expose().as_bytes())
    }
}

/// Compares without an early exit, so response timing does not reveal a matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A 200 with `body` of `content_type`.
pub fn with_type(body: Vec<u8>, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

/// A plain-text answer.
pub fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
