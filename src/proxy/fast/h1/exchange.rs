//! One exchange on an HTTP/1 client connection, to an HTTP/1 upstream: the in-flight limit; the request
//! to the upstream, its head as read and its body streamed by its framing ([`request_body`]);
//! interim responses passed on; the response back, its head parsed once and its body streamed
//! through the upstream connection's buffer ([`response_body`]); then [`finish`], which
//! tallies and judges it after the response has gone out.
//!
//! A request that failed on a reused upstream connection before any answer came back is sent
//! once more on a new connection if its method is idempotent and it was read whole — never
//! otherwise.
//!
//! [`request_body`]: super::request_body
//! [`response_body`]: super::response_body

use std::io::IoSlice;
use std::time::Instant;

use http::Method;
use tokio::io::AsyncWriteExt;

use super::body::{write_all_vectored, BodyLeft};
use super::connection::{After, Client};
use super::forward;
use super::request_body::{upstream_failure, Failure, Pump};
use crate::classify::{method_label, HttpVersion, UpstreamErrorKind};
use crate::config::UpstreamProtocol;
use crate::proxy::error_response::ProxyError;
use crate::proxy::fast::upstream::http1::UpstreamConn;
use crate::proxy::fast::upstream::response_head::{Asked, Framing, Persistence, ResponseHead};
use crate::proxy::finish::{finish, response_sampler, Finished, Judged, Outcome};
use crate::proxy::guard::refuse;
use crate::proxy::request_head::{checked_target_path, Head, Refusal};
use crate::proxy::settings::LiveSettings;
use crate::record::Recorder;
use crate::rules::{visible_ascii, Headers, RequestFacts};

/// What an exchange keeps fixed from its head to its end.
pub(super) struct Request<'a> {
    pub(super) head: &'a Head,
    pub(super) method: Method,
    pub(super) started: Instant,
    pub(super) settings: &'a LiveSettings,
    pub(super) response_deadline: Option<Instant>,
    pub(super) asked: Asked,
}

/// Whether resending the request cannot change anything on the server (RFC 9110 §9.2.2).
pub(in crate::proxy::fast) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

impl Client<'_> {
    /// Carries one exchange whose head is at the start of the buffer.
    pub(super) async fn exchange(
        &mut self,
        head: &Head,
        started: Instant,
        settings: &LiveSettings,
    ) -> After {
        let mut left = BodyLeft::of_request(head);
        let with_head = left.advance(&self.parts.inbuf[head.head_len..self.end], |_| {});
        // The head reader admits only token methods, which `Method` takes; checked anyway.
        let method = Method::from_bytes(head.method.of(&self.parts.inbuf))
            .map_err(|_| "the method is not a token");
        let (with_head, method) = match (with_head, method) {
            (Ok(with_head), Ok(method)) => (with_head, method),
            (Err(reason), _) | (_, Err(reason)) => {
                let refusal = Refusal {
                    error: ProxyError::BAD_REQUEST,
                    reason,
                };
                let buffered = &self.parts.inbuf[..self.end];
                refuse(
                    &self.engine.recorder,
                    &mut self.stream,
                    buffered,
                    refusal,
                    settings,
                    started,
                )
                .await;
                return After::Gone;
            }
        };
        let in_flight = &self.engine.in_flight;
        let _in_flight = in_flight.arrive();
        let Some(_permit) = in_flight.try_admit(settings.max_in_flight) else {
            return self.overloaded(head, &method, started, settings).await;
        };
        let request = Request {
            head,
            asked: Asked {
                head_method: method == Method::HEAD,
            },
            method,
            started,
            settings,
            response_deadline: settings.timeouts.response.map(|limit| started + limit),
        };
        if settings.protocol == UpstreamProtocol::H2c {
            return self.exchange_over_h2(&request).await;
        }
        let mut pump = Pump::new(left, head.head_len, with_head, started);
        // The upstream connection and its response head are passed by reference until the
        // answer is sent: moving them between the stages' futures cost a copy each.
        let (mut upstream, mut response) = match self.send_request(&request, &mut pump).await {
            Ok(sent) => sent,
            Err(failure) => return self.fail(&request, pump.complete(), failure).await,
        };
        match self
            .pass_interim(&request, &mut pump, &mut upstream, &mut response)
            .await
        {
            Ok(sent_continue) => {
                self.respond(&request, &pump, upstream, response, sent_continue)
                    .await
            }
            Err(failure) => self.fail(&request, pump.complete(), failure).await,
        }
    }

    /// Sends the request head and what came of the body with it, on a pooled connection or a
    /// new one, and waits for the first response head (sending the rest of the body meanwhile).
    async fn send_request(
        &mut self,
        request: &Request<'_>,
        pump: &mut Pump,
    ) -> Result<(UpstreamConn, ResponseHead), Failure> {
        let (head, settings) = (request.head, request.settings);
        let edited = forward::upstream_head(
            &self.parts.inbuf[..head.head_len],
            head,
            &mut self.parts.out,
        )
        .is_none();
        let body_end = pump.pending.end;
        let mut retried = false;
        loop {
            let mut upstream = self.upstream_for(request, !retried).await?;
            let head_bytes = if edited {
                &self.parts.out[..]
            } else {
                &self.parts.inbuf[head.method.start..head.head_len]
            };
            let sent = self
                .parts
                .deadline
                .run(
                    || Some(Instant::now() + settings.timeouts.write),
                    write_all_vectored(
                        &mut upstream.stream,
                        &mut [
                            IoSlice::new(head_bytes),
                            IoSlice::new(&self.parts.inbuf[head.head_len..body_end]),
                        ],
                    ),
                )
                .await;
            let result = match sent {
                None => Err(upstream_failure(UpstreamErrorKind::WriteTimeout, true)),
                Some(Err(_)) => Err(upstream_failure(UpstreamErrorKind::Reset, true)),
                Some(Ok(())) => {
                    let deadline = request.response_deadline;
                    self.await_head(
                        &mut upstream,
                        pump,
                        request.asked,
                        &settings.timeouts,
                        deadline,
                    )
                    .await
                }
            };
            match result {
                Ok(response) => return Ok((upstream, response)),
                Err(Failure::Upstream {
                    nothing_back: true, ..
                }) if upstream.reused
                    && !retried
                    && !pump.streamed
                    && is_idempotent(&request.method) =>
                {
                    // A pooled connection the upstream had closed as the request went out.
                    retried = true;
                }
                Err(failure) => return Err(failure),
            }
        }
    }

    /// An upstream connection for `request`: a pooled one if `pooled` and the pool has one,
    /// else a new one.
    async fn upstream_for(
        &mut self,
        request: &Request<'_>,
        pooled: bool,
    ) -> Result<UpstreamConn, Failure> {
        let settings = request.settings;
        let reused = pooled
            .then(|| {
                UpstreamConn::checkout(settings.upstream, settings.timeouts.idle, request.started)
            })
            .flatten();
        match reused {
            Some(upstream) => Ok(upstream),
            None => self
                .parts
                .deadline
                .run(
                    || Some(Instant::now() + settings.timeouts.connect),
                    UpstreamConn::connect(settings.upstream),
                )
                .await
                .unwrap_or(Err(UpstreamErrorKind::ConnectTimeout))
                .map_err(|kind| upstream_failure(kind, true)),
        }
    }

    /// Passes interim responses (100 Continue, 103 Early Hints) to the client as they come,
    /// until the final response head; says whether a 100 Continue was among them.
    async fn pass_interim(
        &mut self,
        request: &Request<'_>,
        pump: &mut Pump,
        upstream: &mut UpstreamConn,
        response: &mut ResponseHead,
    ) -> Result<bool, Failure> {
        let mut sent_continue = false;
        while (100..200).contains(&response.status) {
            if response.status == 101 {
                return Err(upstream_failure(UpstreamErrorKind::Other, false));
            }
            sent_continue |= response.status == 100;
            let interim = &upstream.buf[..upstream.filled];
            response.write_for_client(
                interim,
                &self.parts.spans,
                Persistence::Default,
                false,
                &mut self.parts.out,
            );
            let deadline = request.response_deadline;
            let written = self
                .parts
                .deadline
                .run(|| deadline, self.stream.write_all(&self.parts.out))
                .await;
            if written.is_none_or(|written| written.is_err()) {
                return Err(Failure::ClientGone);
            }
            upstream.buf.copy_within(response.len..upstream.filled, 0);
            upstream.filled -= response.len;
            let timeouts = &request.settings.timeouts;
            *response = self
                .await_head(upstream, pump, request.asked, timeouts, deadline)
                .await?;
        }
        Ok(sent_continue)
    }

    /// Sends the final response to the client, then finishes the exchange and returns the
    /// upstream connection to the pool when it can carry another request.
    async fn respond(
        &mut self,
        request: &Request<'_>,
        pump: &Pump,
        mut upstream: UpstreamConn,
        response: ResponseHead,
        sent_continue: bool,
    ) -> After {
        let (keep_client, persistence, dechunked) =
            self.client_persistence(request, pump, &response);
        let headers = Headers::InHead {
            head: &upstream.buf[..response.len],
            spans: &self.parts.spans,
        };
        let mut sampler = response_sampler(request.settings, request.asked.head_method, headers);
        let written = &upstream.buf[..response.len];
        response.write_for_client(
            written,
            &self.parts.spans,
            persistence,
            dechunked,
            &mut self.parts.out,
        );
        let relayed = self
            .relay_body(
                &mut upstream,
                &response,
                dechunked,
                &mut sampler,
                request.settings,
                request.response_deadline,
            )
            .await;
        let headers = Headers::InHead {
            head: &upstream.buf[..response.len],
            spans: &self.parts.spans,
        };
        let answered = Answered::new(headers, sent_continue, sampler, response.status, &relayed);
        let (outcome, upstream_error) = (answered.outcome, answered.upstream_error);
        let ended = finish_answered(&self.engine.recorder, &self.parts.inbuf, request, answered);
        self.last_ended = Some(ended);
        let clean = relayed.unwrap_or(false);
        if clean && response.persistent && pump.complete() {
            upstream.mark_drained();
            upstream.checkin(self.engine.pool_capacity, ended);
        }
        match (outcome, upstream_error, pump.next_request) {
            (Outcome::Upstream(_), None, Some(next)) if keep_client => {
                self.consume(next);
                After::KeepAlive
            }
            (Outcome::Upstream(_), None, _) if !pump.complete() => After::Linger,
            (Outcome::Upstream(_), None, _) => After::Close,
            _ => After::Gone,
        }
    }

    /// Whether the client's connection can carry another request after this response, how
    /// the response says so, and whether its chunked body is sent unchunked (to an HTTP/1.0
    /// client, which cannot read chunks: the end of the connection ends its body).
    #[inline]
    fn client_persistence(
        &self,
        request: &Request<'_>,
        pump: &Pump,
        response: &ResponseHead,
    ) -> (bool, Persistence, bool) {
        let head = request.head;
        // Cheap while nothing changed: a version compare before the value's lock.
        let draining = self.shutdown.has_changed().unwrap_or(true) && *self.shutdown.borrow();
        let dechunked = head.http10 && response.framing == Framing::Chunked;
        let keep_client = pump.complete()
            && !draining
            && !dechunked
            && !head.connection.close
            && (!head.http10 || head.connection.keep_alive)
            && response.framing != Framing::UntilClose;
        let persistence = match (keep_client, head.http10) {
            (false, _) => Persistence::Close,
            (true, true) => Persistence::KeepAlive,
            (true, false) => Persistence::Default,
        };
        (keep_client, persistence, dechunked)
    }
}

/// What the upstream's answer came to, for the tally.
pub(super) struct Answered<'a> {
    /// The response head's fields.
    pub(super) headers: Headers<'a>,
    /// A 100 Continue came first.
    pub(super) sent_continue: bool,
    /// The body sample.
    pub(super) sample: Option<crate::sample::Sampler>,
    /// How the relay of the response ended (its status, the upstream's failure or the
    /// client's).
    pub(super) outcome: Outcome,
    /// A failure of the upstream's after the head went out.
    pub(super) upstream_error: Option<UpstreamErrorKind>,
}

impl<'a> Answered<'a> {
    /// What came of a response of `status` with `headers`, relayed as `relayed` says: whole,
    /// cut by the upstream, or cut by the client.
    #[inline]
    pub(super) fn new<T>(
        headers: Headers<'a>,
        sent_continue: bool,
        sample: Option<crate::sample::Sampler>,
        status: u16,
        relayed: &Result<T, Failure>,
    ) -> Self {
        let (outcome, upstream_error) = match relayed {
            Ok(_) => (Outcome::Upstream(status), None),
            Err(Failure::Upstream { kind, .. }) => (Outcome::Upstream(status), Some(*kind)),
            Err(_) => (Outcome::ClientGone, None),
        };
        Answered {
            headers,
            sent_continue,
            sample,
            outcome,
            upstream_error,
        }
    }
}

/// Tallies and judges an exchange whose response head reached the client, now; `inbuf` holds
/// its request head. Returns when it ended: one clock read for the tally, the pool and the
/// next request's wait.
#[inline(always)]
pub(super) fn finish_answered(
    recorder: &Recorder,
    inbuf: &[u8],
    request: &Request<'_>,
    answered: Answered<'_>,
) -> Instant {
    let ended = Instant::now();
    let head = request.head;
    let facts = RequestFacts {
        has_authorization: head.has_authorization,
        has_cookie: head.has_cookie,
        expects_continue: head.expects_continue,
        accept: head.accept.and_then(|span| visible_ascii(span.of(inbuf))),
        // Found in the head only when learnt (the observed contract), off the request path.
        content_type: None,
        head: &inbuf[..head.head_len],
        target: head.target.of(inbuf),
    };
    let judged = matches!(answered.outcome, Outcome::Upstream(_)).then_some(Judged {
        method: &request.method,
        request: facts,
        headers: answered.headers,
        sent_continue: answered.sent_continue,
        sample: answered.sample,
        // gRPC calls are HTTP/2.
        grpc_trailers: None,
    });
    let path = checked_target_path(head.target.of(inbuf));
    let mut finished = Finished::new(
        method_label(&request.method),
        path,
        answered.outcome,
        request.started,
        ended,
    );
    finished.upstream_error = answered.upstream_error;
    finished.response = judged;
    finished.probe = head.probe;
    finished.version = HttpVersion::of_http1(head.http10);
    finish(recorder, request.settings, finished);
    ended
}
