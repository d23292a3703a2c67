//! The proxy stage: a pingora `ProxyHttp` that forwards every request to one upstream,
//! unchanged and streamed, answers its own failures with structured errors, and tallies each
//! exchange once, in the `logging` hook, after the response has gone out.

pub mod admission;
pub mod error_response;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, Result};
use tracing::info;

use crate::classify::route::RouteTable;
use crate::classify::{
    is_client_gone, method_label, Origin, UpstreamErrorKind, CLIENT_CLOSED_REQUEST,
};
use crate::config::Config;
use crate::record::{Exchange, Metrics};
use admission::{Admission, InFlight, Permit};
use error_response::ProxyError;

/// The statuscope proxy: one upstream, route templating, admission and recording.
pub struct StatuscopeProxy {
    peer: HttpPeer,
    routes: RouteTable,
    admission: Admission,
    metrics: Arc<Metrics>,
    access_log: bool,
}

/// What statuscope knows about one request while it is proxied.
pub struct RequestCtx {
    started: Instant,
    _in_flight: InFlight,
    _permit: Option<Permit>,
    answered_by_proxy: Option<ProxyError>,
}

impl StatuscopeProxy {
    /// Builds the proxy for `config`, whose upstream must be set.
    pub fn new(
        config: &Config,
        metrics: Arc<Metrics>,
    ) -> std::result::Result<Self, crate::config::ConfigError> {
        let upstream = config.require_upstream()?;
        let mut peer = HttpPeer::new(upstream.addr, false, String::new());
        peer.options.connection_timeout = Some(config.timeouts.connect);
        peer.options.read_timeout = Some(config.timeouts.read);
        peer.options.write_timeout = Some(config.timeouts.write);
        peer.options.idle_timeout = Some(config.timeouts.idle);
        Ok(StatuscopeProxy {
            peer,
            routes: RouteTable::new(config.routes.templates.clone(), config.routes.max),
            admission: Admission::new(config.max_in_flight, metrics.in_flight().clone()),
            metrics,
            access_log: config.log.access,
        })
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
            started: Instant::now(),
            _in_flight: self.admission.arrive(),
            _permit: None,
            answered_by_proxy: None,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        if let Some(permit) = self.admission.try_admit() {
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
        _ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        Ok(Box::new(self.peer.clone()))
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
        let route = self.routes.resolve(header.uri.path());
        if route.overflow {
            self.metrics.record_route_overflow();
        }
        if let Some(kind) = error.and_then(UpstreamErrorKind::of) {
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
        if self.access_log {
            info!(
                target: "statuscope::access",
                route = exchange.route,
                method = exchange.method,
                code = exchange.code,
                origin = exchange.origin.as_str(),
                duration_ms = exchange.duration.as_secs_f64() * 1000.0,
            );
        }
    }
}
