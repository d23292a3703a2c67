//! The proxy stage: a pingora `ProxyHttp` that forwards every request to one upstream,
//! unchanged and streamed, answers its own failures with structured errors, and tallies each
//! exchange once, in the `logging` hook, after the response has gone out.

pub mod admission;
pub mod error_response;
pub mod guard;
pub mod request_head;
pub mod settings;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use pingora::http::ResponseHeader;
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, Result};
use tracing::info;

use crate::classify::{
    is_client_gone, method_label, Origin, UpstreamErrorKind, CLIENT_CLOSED_REQUEST,
};
use crate::export::report::Report;
use crate::record::findings::{FindingsStore, Place};
use crate::record::{Exchange, Metrics, Recorder};
use crate::rules::engine::Outcome;
use crate::rules::{self, RequestFacts};
use crate::sample::Sampler;
use admission::{Admission, InFlight, Permit};
use error_response::ProxyError;
use settings::{LiveSettings, Settings};

/// The statuscope proxy: one upstream, route templating, admission, recording and the rules.
pub struct StatuscopeProxy {
    settings: Arc<Settings>,
    admission: Admission,
    metrics: Arc<Metrics>,
    findings: Arc<FindingsStore>,
    report: Option<Arc<std::sync::Mutex<Report>>>,
}

/// What statuscope knows about one request while it is proxied.
pub struct RequestCtx {
    /// The settings in force when the request arrived, kept to its end across any reload.
    settings: Arc<LiveSettings>,
    started: Instant,
    _in_flight: InFlight,
    _permit: Option<Permit>,
    answered_by_proxy: Option<ProxyError>,
    sampler: Option<Sampler>,
    sent_continue: bool,
}

impl StatuscopeProxy {
    /// Builds the proxy on shared, reloadable `settings`.
    pub fn new(settings: Arc<Settings>, recorder: &Recorder) -> Self {
        StatuscopeProxy {
            settings,
            admission: Admission::new(recorder.metrics.in_flight().clone()),
            metrics: recorder.metrics.clone(),
            findings: recorder.findings.clone(),
            report: recorder.report.clone(),
        }
    }

    /// Sends a response of the proxy's own making; `false` if the client could not be written to.
    async fn answer(session: &mut Session, answer: ProxyError) -> bool {
        let body = answer.body();
        let Ok(header) = answer.header(body.len()) else {
            return false;
        };
        session
            .write_response_header(Box::new(header), false)
            .await
            .is_ok()
            && session.write_response_body(Some(body), true).await.is_ok()
    }

    /// The status the client saw and who produced it.
    fn outcome(session: &Session, error: Option<&Error>, ctx: &RequestCtx) -> (u16, Origin) {
        if error.is_some_and(is_client_gone) {
            return (CLIENT_CLOSED_REQUEST, Origin::Client);
        }
        if let Some(answer) = ctx.answered_by_proxy {
            return (answer.status, Origin::Proxy);
        }
        match session.response_written() {
            Some(header) => (header.status.as_u16(), Origin::Upstream),
            // Nothing reached the client and nothing could be sent: it hung up first.
            None => (CLIENT_CLOSED_REQUEST, Origin::Client),
        }
    }
}

impl StatuscopeProxy {
    /// Runs the rule catalogue over an exchange the upstream answered (after the response).
    fn judge(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
        route: &Arc<str>,
        method: &'static str,
        code: u16,
    ) {
        let sample = ctx.sampler.take().map(|sampler| {
            self.metrics.record_sample(sampler.sampled());
            sampler.finish()
        });
        let (Some(engine), Some(response)) = (&ctx.settings.engine, session.response_written())
        else {
            return;
        };
        let request = session.req_header();
        let header = |name| request.headers.get(name).and_then(|v| v.to_str().ok());
        let exchange = rules::Exchange {
            method: &request.method,
            route,
            path: request.uri.path(),
            request: RequestFacts {
                has_authorization: request.headers.contains_key(http::header::AUTHORIZATION),
                has_cookie: request.headers.contains_key(http::header::COOKIE),
                expects_continue: header(http::header::EXPECT)
                    .is_some_and(|v| v.eq_ignore_ascii_case("100-continue")),
                accept: header(http::header::ACCEPT),
            },
            status: code,
            headers: &response.headers,
            sent_continue: ctx.sent_continue,
            body: sample.as_ref(),
            error_fields: &[],
        };
        let mut flagged = false;
        // Only in CI-gate mode (`run --report`); uncontended there.
        let mut report = self
            .report
            .as_ref()
            .map(|report| report.lock().unwrap_or_else(|e| e.into_inner()));
        engine.evaluate(&exchange, |outcome| match outcome {
            Outcome::Finding(finding) => {
                flagged = true;
                self.metrics.record_finding(&finding, route, method, code);
                let place = Place {
                    route,
                    method,
                    path: exchange.path,
                    status: code,
                };
                if let Some(report) = report.as_mut() {
                    report.add(&finding, place, || None);
                }
                self.findings.add(&finding, place);
            }
            Outcome::Panicked { index } => self.metrics.record_rule_panic(index),
        });
        if let Some(report) = report.as_mut() {
            report.exchanges += 1;
            report.judged += 1;
        }
        self.metrics.record_judged(route, method, flagged);
    }
}

fn has_request_body(header: &pingora::http::RequestHeader) -> bool {
    let headers = &header.headers;
    headers.contains_key(http::header::TRANSFER_ENCODING)
        || headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

#[async_trait]
impl ProxyHttp for StatuscopeProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            settings: self.settings.current(),
            started: Instant::now(),
            _in_flight: self.admission.arrive(),
            _permit: None,
            answered_by_proxy: None,
            sampler: None,
            sent_continue: false,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        if let Some(permit) = self.admission.try_admit(ctx.settings.max_in_flight) {
            ctx._permit = Some(permit);
            return Ok(false);
        }
        // An unread request body would corrupt the next request on this connection.
        if has_request_body(session.req_header()) {
            session.set_keepalive(None);
        }
        if Self::answer(session, ProxyError::OVERLOADED).await {
            ctx.answered_by_proxy = Some(ProxyError::OVERLOADED);
        }
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        Ok(Box::new(ctx.settings.peer.clone()))
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if response.status.is_informational() {
            ctx.sent_continue |= response.status == http::StatusCode::CONTINUE;
            return Ok(());
        }
        if ctx.settings.engine.is_some() && session.req_header().method != http::Method::HEAD {
            let header = |name| response.headers.get(name).and_then(|v| v.to_str().ok());
            ctx.sampler = Sampler::start(
                ctx.settings.body_sample_bytes,
                header(http::header::CONTENT_TYPE),
                header(http::header::CONTENT_ENCODING),
            );
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        // Per-read timeouts cannot stop an upstream that sends a byte just often enough. An
        // upgraded connection (WebSocket) is a session, not a response: it may last.
        if let Some(limit) = ctx.settings.response_timeout {
            if ctx.started.elapsed() > limit && !session.was_upgraded() {
                return Err(UpstreamErrorKind::response_timeout_error());
            }
        }
        if let (Some(sampler), Some(chunk)) = (ctx.sampler.as_mut(), body.as_ref()) {
            sampler.feed(chunk);
        }
        Ok(None)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        error: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let mut error_code = session.response_written().map_or(0, |h| h.status.as_u16());
        if error_code == 0 {
            if let Some(answer) = ProxyError::for_error(error) {
                session.set_keepalive(None);
                if Self::answer(session, answer).await {
                    ctx.answered_by_proxy = Some(answer);
                    error_code = answer.status;
                }
            }
        }
        FailToProxy {
            error_code,
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, error: &Error) -> bool {
        // A client hanging up is tallied as 499; logging each one at error level is noise.
        is_client_gone(error)
    }

    fn request_summary(&self, session: &Session, _ctx: &RequestCtx) -> String {
        // pingora's default includes the query string, which may carry credentials.
        let header = session.req_header();
        format!("{} {}", header.method, header.uri.path())
    }

    async fn logging(&self, session: &mut Session, error: Option<&Error>, ctx: &mut RequestCtx) {
        let (code, origin) = Self::outcome(session, error, ctx);
        let header = session.req_header();
        let route = ctx.settings.routes.resolve(header.uri.path());
        if route.overflow {
            self.metrics.record_route_overflow();
        }
        let mid_body = origin == Origin::Upstream;
        if let Some(kind) = error.and_then(|e| UpstreamErrorKind::of(e, mid_body)) {
            self.metrics.record_upstream_error(kind);
        }
        let exchange = Exchange {
            route: &route.label,
            method: method_label(&header.method),
            code,
            origin,
            duration: ctx.started.elapsed(),
        };
        self.metrics.record(&exchange);
        if origin == Origin::Upstream {
            self.judge(session, ctx, &route.label, exchange.method, code);
        }
        if ctx.settings.access_log {
            log_access(&exchange);
        }
    }
}

/// The access log line of one tallied exchange (`log.access`).
fn log_access(exchange: &Exchange<'_>) {
    info!(
        target: "statuscope::access",
        route = exchange.route,
        method = exchange.method,
        code = exchange.code,
        origin = exchange.origin.as_str(),
        duration_ms = exchange.duration.as_secs_f64() * 1000.0,
    );
}
