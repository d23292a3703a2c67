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

use super::error_response::ProxyError;
use super::settings::LiveSettings;
use crate::classify::grpc::{self, GrpcCode};
use crate::classify::route::PROBE_ROUTE;
use crate::classify::{HttpVersion, Origin, UpstreamErrorKind, CLIENT_CLOSED_REQUEST};
use crate::config::Probes;
use crate::record::findings::Place;
use crate::record::verdict::{self, LiveVerdicts};
use crate::record::{Recorder, Tally};
use crate::rules::{self, grpc_field, Headers, RequestFacts};
use crate::sample::Sampler;

/// The route label of a refused request whose request line has no readable path.
pub const MALFORMED_ROUTE: &str = "__malformed__";

/// Who ended an exchange, and so what status the client saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream's response, with its status, reached the client (perhaps cut short).
    Upstream(u16),
    /// Statuscope answered instead of the upstream.
    Proxy(ProxyError),
    /// The client left before an answer could reach it: tallied as 499.
    ClientGone,
}

impl Outcome {
    /// The client left, or statuscope's `answer` reached it (`answered`).
    pub fn answered(answer: ProxyError, answered: bool) -> Outcome {
        if answered {
            Outcome::Proxy(answer)
        } else {
            Outcome::ClientGone
        }
    }

    /// The status the client saw and who produced it; a gRPC call's own answers go out as 200.
    pub fn code_and_origin(self, grpc: bool) -> (u16, Origin) {
        match self {
            Outcome::Upstream(status) => (status, Origin::Upstream),
            Outcome::Proxy(answer) => (answer.status_sent(grpc), Origin::Proxy),
            Outcome::ClientGone => (CLIENT_CLOSED_REQUEST, Origin::Client),
        }
    }
}

/// What statuscope keeps of a gRPC call while it is carried: an HTTP/2 request whose
/// `content-type` is `application/grpc…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcCall {
    /// When the client's `grpc-timeout` runs out: a client that hangs up after it gave up at
    /// its deadline, not at will.
    pub deadline: Option<Instant>,
}

impl GrpcCall {
    /// The call, if a request with these `content-type` and `grpc-timeout` values, begun at
    /// `started`, over HTTP/2 (`http2`), is one.
    pub fn of(
        http2: bool,
        content_type: Option<&[u8]>,
        timeout: Option<&[u8]>,
        started: Instant,
    ) -> Option<GrpcCall> {
        let is_call = http2 && content_type.is_some_and(grpc::is_grpc_content_type);
        is_call.then(|| GrpcCall {
            deadline: timeout
                .and_then(grpc::parse_timeout)
                .and_then(|timeout| started.checked_add(grpc::deadline_after(timeout))),
        })
    }

    /// How the call ended, given the exchange's outcome and what the client saw.
    fn end(self, outcome: Outcome, response: Option<&Judged<'_>>, ended: Instant) -> GrpcEnd {
        let code = match outcome {
            Outcome::Proxy(answer) => answer.grpc_code(),
            Outcome::ClientGone if self.deadline.is_some_and(|at| ended >= at) => {
                GrpcCode::DeadlineExceeded
            }
            Outcome::ClientGone => GrpcCode::Cancelled,
            Outcome::Upstream(_) => GrpcCode::of_status(response.and_then(|judged| {
                grpc_field(judged.grpc_trailers?, judged.headers, "grpc-status")
            })),
        };
        GrpcEnd {
            code,
            origin: outcome.code_and_origin(true).1,
        }
    }
}

/// One request at its end, as every path reports it.
pub struct Finished<'a> {
    /// The method label (`_OTHER` for a method outside the standard set or unreadable).
    pub method: &'static str,
    /// The request path without its query; `None` when the request line was unreadable.
    pub path: Option<&'a str>,
    /// Who ended it.
    pub outcome: Outcome,
    /// When the request's first bytes arrived.
    pub started: Instant,
    /// When it ended: its response sent in full, or given up.
    pub ended: Instant,
    /// A failure talking to the upstream, if one happened (before or after the head went out).
    pub upstream_error: Option<UpstreamErrorKind>,
    /// What the rules read, for a response the upstream produced; `None` otherwise.
    pub response: Option<Judged<'a>>,
    /// The gRPC call the request was; `None` when it was not one.
    pub grpc: Option<GrpcCall>,
    /// The request is one of the kubelet's probes (`User-Agent: kube-probe/…`).
    pub probe: bool,
    /// The HTTP version the client spoke.
    pub version: HttpVersion,
}

impl<'a> Finished<'a> {
    /// A request that ended at `ended`, with nothing more known yet: no upstream error, no
    /// response to judge, not a gRPC call, not a probe, spoken in HTTP/1.1.
    pub fn new(
        method: &'static str,
        path: Option<&'a str>,
        outcome: Outcome,
        started: Instant,
        ended: Instant,
    ) -> Self {
        Finished {
            method,
            path,
            outcome,
            started,
            ended,
            upstream_error: None,
            response: None,
            grpc: None,
            probe: false,
            version: HttpVersion::Http11,
        }
    }
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
pub fn finish(recorder: &Recorder, settings: &LiveSettings, finished: Finished<'_>) {
    let metrics = &recorder.metrics;
    let probe_apart = finished.probe && settings.probes == Probes::Separate;
    let route = finished
        .path
        .filter(|_| !probe_apart)
        .map(|path| settings.routes.resolve(path));
    if route.as_ref().is_some_and(|route| route.overflow) {
        metrics.routes.record_overflow();
    }
    if let Some(kind) = finished.upstream_error {
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
    let (code, origin) = finished.outcome.code_and_origin(finished.grpc.is_some());
    let tally = Tally {
        route: label,
        method: finished.method,
        code,
        origin,
        version: finished.version,
        duration: finished.ended.saturating_duration_since(finished.started),
    };
    metrics.record(&tally);
    if let Some(call) = finished.grpc {
        let grpc = call.end(finished.outcome, finished.response.as_ref(), finished.ended);
        metrics.record_grpc(label, grpc.code, grpc.origin, tally.duration);
    }
    if let (Some(response), Some(path), Origin::Upstream) =
        (finished.response, finished.path, origin)
    {
        let learn = (!finished.probe).then_some(finished.ended);
        judge(recorder, settings, (label, path, learn), &tally, response);
    }
    if settings.access_log {
        log_access(&tally);
    }
}

/// The body sampler for a response with these `headers`, when the rules are on and the
/// response can have a body (`head_request`: it answers a HEAD).
#[inline]
pub fn response_sampler(
    settings: &LiveSettings,
    head_request: bool,
    headers: Headers<'_>,
) -> Option<Sampler> {
    if settings.rules.is_none() || head_request {
        return None;
    }
    Sampler::start(
        settings.body_sample_bytes,
        headers.get_str("content-type"),
        headers.get_str("content-encoding"),
    )
}

/// Runs the rule catalogue over a response the upstream produced at `route` and `path`, and
/// learns it into the observed contract, as ended at `learn`, unless it answered a probe.
fn judge(
    recorder: &Recorder,
    settings: &LiveSettings,
    (route, path, learn): (&Arc<str>, &str, Option<Instant>),
    tally: &Tally<'_>,
    response: Judged<'_>,
) {
    let metrics = &recorder.metrics;
    let sample = response.sample.map(|sampler| {
        metrics.samples.record(sampler.sampled());
        sampler.finish()
    });
    let Some(rules) = &settings.rules else {
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
    if let (Some(observed), Some(ended)) = (&recorder.observed, learn) {
        observed.learn(&exchange, ended);
    }
    let place = Place {
        route,
        method: tally.method,
        path,
        status: tally.code,
    };
    verdict::judge(rules, &exchange, place, &mut LiveVerdicts::new(recorder));
}

/// The access log line of one tallied exchange (`log.access`).
fn log_access(tally: &Tally<'_>) {
    info!(
        target: "statuscope::access",
        route = tally.route,
        method = tally.method,
        code = tally.code,
        origin = tally.origin.as_str(),
        duration_ms = tally.duration.as_secs_f64() * 1000.0,
    );
}
