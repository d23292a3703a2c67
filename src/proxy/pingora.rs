//! The pingora engine (`proxy.engine: pingora`): a pingora-proxy `ProxyHttp` that forwards
//! every request to one upstream, unchanged and streamed, answers its own failures with
//! structured errors, and finishes each exchange once, in the `logging` hook, after the
//! response has gone out. The fast engine hands it what it does not carry itself (h2c,
//! protocol upgrades).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::protocols::http::HttpTask;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, Result};

use super::error_response::ProxyError;
use super::finish::{finish, response_sampler, Finished, GrpcCall, Judged, Outcome};
use super::in_flight::{InFlight, InFlightLimit, Permit};
use super::request_head::split_absolute;
use super::settings::{LiveSettings, Settings};
use crate::classify::route::is_probe_user_agent;
use crate::classify::{is_client_gone, method_label, HttpVersion, UpstreamErrorKind};
use crate::record::Recorder;
use crate::rules::{Field, Headers, RequestFacts};
use crate::sample::Sampler;

/// The statuscope proxy: one upstream, route templating, the in-flight limit, recording and the rules.
pub struct StatuscopeProxy {
    settings: Arc<Settings>,
    in_flight: InFlightLimit,
    recorder: Recorder,
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
    /// Set when the request is a gRPC call.
    grpc: Option<GrpcCall>,
    /// A gRPC call's trailers from the upstream, once they have passed.
    trailers: Option<http::HeaderMap>,
}

impl StatuscopeProxy {
    /// Builds the proxy on shared, reloadable `settings`, counting requests in `in_flight`
    /// (shared with the fast engine when that hands requests over).
    pub fn new(settings: Arc<Settings>, recorder: &Recorder, in_flight: InFlightLimit) -> Self {
        StatuscopeProxy {
            settings,
            in_flight,
            recorder: recorder.clone(),
        }
    }

    /// Sends a response of the proxy's own making — to a gRPC call, the trailers-only answer
    /// its client library reads; `false` if the client could not be written to.
    async fn answer(session: &mut Session, answer: ProxyError, grpc: bool) -> bool {
        if grpc {
            let Ok(header) = answer.grpc_header() else {
                return false;
            };
            // The head with END_STREAM, in one HEADERS frame (`write_response_header` would
            // leave the stream open).
            let head = HttpTask::Header(Box::new(header), true);
            return session.write_response_tasks(vec![head]).await.is_ok();
        }
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

    /// Who ended the exchange.
    fn outcome(session: &Session, error: Option<&Error>, ctx: &RequestCtx) -> Outcome {
        if error.is_some_and(is_client_gone) {
            return Outcome::ClientGone;
        }
        if let Some(answer) = ctx.answered_by_proxy {
            return Outcome::Proxy(answer);
        }
        match session.response_written() {
            Some(header) => Outcome::Upstream(header.status.as_u16()),
            // Nothing reached the client and nothing could be sent: it hung up first.
            None => Outcome::ClientGone,
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
            settings: self.settings.current(),
            started: Instant::now(),
            _in_flight: self.in_flight.arrive(),
            _permit: None,
            answered_by_proxy: None,
            sampler: None,
            sent_continue: false,
            grpc: None,
            trailers: None,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let headers = &session.req_header().headers;
        let field = |name| headers.get(name).map(http::HeaderValue::as_bytes);
        ctx.grpc = GrpcCall::of(
            session.is_http2(),
            field(http::header::CONTENT_TYPE.as_str()),
            field("grpc-timeout"),
            ctx.started,
        );
        if let Some(permit) = self.in_flight.try_admit(ctx.settings.max_in_flight) {
            ctx._permit = Some(permit);
            return Ok(false);
        }
        // An unread request body would corrupt the next request on this connection.
        if has_request_body(session.req_header()) {
            session.set_keepalive(None);
        }
        if Self::answer(session, ProxyError::OVERLOADED, ctx.grpc.is_some()).await {
            ctx.answered_by_proxy = Some(ProxyError::OVERLOADED);
        }
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        Ok(Box::new(ctx.settings.peer_for(session.is_http2()).clone()))
    }

    /// What the fast engine's forwarding normalises (`fast/h1/forward.rs`), done to pingora's
    /// request: an absolute-form target goes on in origin form (its authority was checked
    /// equal to `Host` by the head guard), a `Content-Length` as the number alone.
    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        request: &mut RequestHeader,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        // pingora keeps the target as read (`raw_path`) and writes that to the upstream.
        let origin = split_absolute(request.raw_path()).map(|(_, rest)| match rest.first() {
            Some(b'/') => rest.to_vec(),
            _ => [&b"/"[..], rest].concat(),
        });
        if let Some(origin) = origin {
            request.set_raw_path(&origin)?;
        }
        let length = request
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .filter(|value| value.len() > 1 && value.starts_with('0'))
            .and_then(|value| value.parse::<u64>().ok());
        if let Some(length) = length {
            request.insert_header(http::header::CONTENT_LENGTH, length.to_string())?;
        }
        Ok(())
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
        let fields: Vec<Field<'_>> = response.headers.iter().map(field).collect();
        ctx.sampler = response_sampler(
            &ctx.settings,
            session.req_header().method == http::Method::HEAD,
            Headers::List(&fields),
        );
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
        if let Some(limit) = ctx.settings.timeouts.response {
            if ctx.started.elapsed() > limit && !session.was_upgraded() {
                return Err(UpstreamErrorKind::response_timeout_error());
            }
        }
        if let (Some(sampler), Some(chunk)) = (ctx.sampler.as_mut(), body.as_ref()) {
            sampler.feed(chunk);
        }
        Ok(None)
    }

    async fn response_trailer_filter(
        &self,
        _session: &mut Session,
        trailers: &mut http::HeaderMap,
        ctx: &mut RequestCtx,
    ) -> Result<Option<bytes::Bytes>> {
        // Passed on unchanged; a gRPC call's outcome is in them.
        if ctx.grpc.is_some() {
            ctx.trailers = Some(trailers.clone());
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
                if Self::answer(session, answer, ctx.grpc.is_some()).await {
                    ctx.answered_by_proxy = Some(answer);
                    error_code = answer.status_sent(ctx.grpc.is_some());
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
        let outcome = Self::outcome(session, error, ctx);
        let request = session.req_header();
        let from_upstream = matches!(outcome, Outcome::Upstream(_));
        let fields: Vec<Field<'_>>;
        let trailer_fields: Vec<Field<'_>>;
        let response = match session.response_written() {
            Some(response) if from_upstream => {
                fields = response.headers.iter().map(field).collect();
                trailer_fields = ctx
                    .trailers
                    .as_ref()
                    .map_or_else(Vec::new, |t| t.iter().map(field).collect());
                Some(Judged {
                    method: &request.method,
                    request: RequestFacts::from_fields(
                        request
                            .uri
                            .path_and_query()
                            .map_or(b"", |p| p.as_str().as_bytes()),
                        |name| request.headers.get(name).map(|v| v.as_bytes()),
                    ),
                    headers: Headers::List(&fields),
                    sent_continue: ctx.sent_continue,
                    sample: ctx.sampler.take(),
                    grpc_trailers: ctx.grpc.is_some().then_some(Headers::List(&trailer_fields)),
                })
            }
            _ => None,
        };
        let finished = Finished {
            method: method_label(&request.method),
            path: Some(request.uri.path()),
            outcome,
            started: ctx.started,
            ended: Instant::now(),
            upstream_error: error.and_then(|e| UpstreamErrorKind::of(e, from_upstream)),
            response,
            grpc: ctx.grpc,
            probe: request
                .headers
                .get(http::header::USER_AGENT)
                .is_some_and(|agent| is_probe_user_agent(agent.as_bytes())),
            version: HttpVersion::of(request.version),
        };
        finish(&self.recorder, &ctx.settings, finished);
    }
}

/// A header field as the rules read it.
fn field<'a>((name, value): (&'a http::HeaderName, &'a http::HeaderValue)) -> Field<'a> {
    Field {
        name: name.as_str().as_bytes(),
        value: value.as_bytes(),
    }
}
