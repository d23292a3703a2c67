//! The end of every request, whichever path carried it: the fast engine's loop, pingora's
//! `ProxyHttp` hooks, or the guard refusing a head. Each builds a [`Finished`] and calls
//! [`finish`], the one place that resolves the route, tallies, runs the rule catalogue, keeps
//! findings and writes the access log — so the two engines cannot count or judge differently.
//!
//! It runs after the response has gone out in full: judging never delays an answer.

use std::sync::Arc;
use std::time::Instant;

use http::Method;
use tracing::info;

use super::settings::LiveSettings;
use crate::classify::grpc::GrpcCode;
use crate::classify::route::PROBE_ROUTE;
use crate::classify::{Origin, UpstreamErrorKind};
use crate::config::Probes;
use crate::record::findings::Place;
use crate::record::verdict::{self, LiveVerdicts};
use crate::record::{Recorder, Tally};
use crate::rules::{self, Headers, RequestFacts};
use crate::sample::Sampler;

/// The route label of a refused request whose request line has no readable path.
pub const MALFORMED_ROUTE: &str = "__malformed__";

/// One request at its end, as every path reports it.
pub struct Finished<'a> {
    /// The method label (`_OTHER` for a method outside the standard set or unreadable).
    pub method: &'static str,
    /// The request path without its query; `None` when the request line was unreadable.
    pub path: Option<&'a str>,
    /// The status the client saw (499 when it went away first).
    pub code: u16,
    /// Who produced that status.
    pub origin: Origin,
    /// When the request's first bytes arrived.
    pub started: Instant,
    /// When it ended: its response sent in full, or given up.
    pub ended: Instant,
    /// A failure talking to the upstream, if one happened (before or after the head went out).
    pub upstream_error: Option<UpstreamErrorKind>,
    /// What the rules read, for a response the upstream produced; `None` otherwise.
    pub response: Option<Judged<'a>>,
    /// How the request ended as a gRPC call; `None` when it was not one.
    pub grpc: Option<GrpcEnd>,
    /// The request is one of the kubelet's probes (`User-Agent: kube-probe/…`).
    pub probe: bool,
}

/// How a gRPC call ended, beside the HTTP status of its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcEnd {
    /// Its `grpc-status` (`UNKNOWN` when missing or invalid); `CANCELLED` or
    /// `DEADLINE_EXCEEDED` when the client hung up, at will or at its deadline; the code of
    /// statuscope's own answer when the proxy ended it.
    pub code: GrpcCode,
    /// Who produced that code.
    pub origin: Origin,
}

/// The parts of an exchange the upstream answered that the rule catalogue reads.
pub struct Judged<'a> {
    /// The request method.
    pub method: &'a Method,
    /// Facts about the request.
    pub request: RequestFacts<'a>,
    /// The response's header fields.
    pub headers: Headers<'a>,
    /// The upstream sent `100 Continue` before its final response.
    pub sent_continue: bool,
    /// The body sample, when one was taken.
    pub sample: Option<Sampler>,
    /// A gRPC call's trailers (empty for a trailers-only response); `None` for any other
    /// exchange.
    pub grpc_trailers: Option<Headers<'a>>,
}

/// Tallies, judges and logs one finished request under `settings` (those it started with).
pub fn finish(recorder: &Recorder, settings: &LiveSettings, exchange: Finished<'_>) {
    let metrics = &recorder.metrics;
    let probe_apart = exchange.probe && settings.probes == Probes::Separate;
    let route = exchange
        .path
        .filter(|_| !probe_apart)
        .map(|path| settings.routes.resolve(path));
    if route.as_ref().is_some_and(|route| route.overflow) {
        metrics.routes.record_overflow();
    }
    if let Some(kind) = exchange.upstream_error {
        metrics.record_upstream_error(kind);
    }
    let own_label: Arc<str>;
    let label = match &route {
        Some(route) => &route.label,
        None => {
            own_label = Arc::from(if probe_apart {
                PROBE_ROUTE
            } else {
                MALFORMED_ROUTE
            });
            &own_label
        }
    };
    let tally = Tally {
        route: label,
        method: exchange.method,
        code: exchange.code,
        origin: exchange.origin,
        duration: exchange.ended.saturating_duration_since(exchange.started),
    };
    metrics.record(&tally);
    if let Some(grpc) = exchange.grpc {
        metrics
            .grpc
            .record(label, grpc.code, grpc.origin, tally.duration);
    }
    if let (Some(response), Some(path), Origin::Upstream) =
        (exchange.response, exchange.path, exchange.origin)
    {
        judge(recorder, settings, label, path, &tally, response);
    }
    if settings.access_log {
        log_access(&tally);
    }
}

/// Runs the rule catalogue over a response the upstream produced.
fn judge(
    recorder: &Recorder,
    settings: &LiveSettings,
    route: &Arc<str>,
    path: &str,
    tally: &Tally<'_>,
    response: Judged<'_>,
) {
    let metrics = &recorder.metrics;
    let sample = response.sample.map(|sampler| {
        metrics.samples.record(sampler.sampled());
        sampler.finish()
    });
    let Some(engine) = &settings.engine else {
        return;
    };
    let exchange = rules::Exchange {
        method: response.method,
        route,
        path,
        request: response.request,
        status: tally.code,
        headers: response.headers,
        content_type: response.headers.media_type(),
        sent_continue: response.sent_continue,
        body: sample.as_ref(),
        error_fields: &[],
        contract: None,
        grpc_trailers: response.grpc_trailers,
    };
    let place = Place {
        route,
        method: tally.method,
        path,
        status: tally.code,
    };
    verdict::judge(engine, &exchange, place, &mut LiveVerdicts::new(recorder));
}

/// The access log line of one tallied exchange (`log.access`).
fn log_access(exchange: &Tally<'_>) {
    info!(
        target: "statuscope::access",
        route = exchange.route,
        method = exchange.method,
        code = exchange.code,
        origin = exchange.origin.as_str(),
        duration_ms = exchange.duration.as_secs_f64() * 1000.0,
    );
}
