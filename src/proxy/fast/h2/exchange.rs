//! One HTTP/2 client stream's exchange: what statuscope keeps from the request head to the
//! tally — the settings it started under, its in-flight permit, the request and response heads the
//! rules read, the body sample, how it is linked to the upstream, and how it ended — and the
//! tally itself ([`Carried::finish`]), run by the client's task once its frames are written.
//!
//! Exchanges and their header buffers are recycled per worker: a call costs no allocation once
//! the worker has carried a few.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use http::Method;

use super::{lock, outbox, Shared};
use crate::classify::route::is_probe_user_agent;
use crate::classify::{method_label, HttpVersion, UpstreamErrorKind};
use crate::proxy::fast::upstream::h2::UpstreamSide;
use crate::proxy::finish::{finish, Finished, GrpcCall, Judged, Outcome};
use crate::proxy::h2::conn::StreamKey;
use crate::proxy::h2::fields::FieldBlock;
use crate::proxy::in_flight::{InFlight, Permit};
use crate::proxy::request_head::target_path;
use crate::proxy::settings::LiveSettings;
use crate::record::Recorder;
use crate::rules::RequestFacts;
use crate::sample::Sampler;

use super::to_http1::Http1Call;

/// Where an exchange's request went.
#[derive(Debug, Default)]
pub(in crate::proxy::fast) enum Link {
    /// Nowhere (yet, or any more).
    #[default]
    None,
    /// A stream of a pooled HTTP/2 upstream connection, relayed frame by frame.
    H2 {
        /// The upstream connection.
        upstream: Shared<UpstreamSide>,
        /// The stream on it.
        key: StreamKey,
    },
    /// An HTTP/1 upstream connection, driven by a future in the client's task.
    Http1(Http1Call),
}

/// How an exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::proxy::fast) struct Ending {
    /// Who ended it.
    pub outcome: Outcome,
    /// A failure talking to the upstream, if one happened.
    pub upstream_error: Option<UpstreamErrorKind>,
    /// When.
    pub at: Instant,
}

/// The request body kept while the upstream has not answered, to send it again if the upstream
/// refuses the stream unprocessed (RFC 9113 §8.7).
#[derive(Debug, Default)]
pub(in crate::proxy::fast) struct Retained {
    /// The body so far.
    pub body: Vec<u8>,
    /// It is all of the body so far (nothing was dropped for size).
    pub whole: bool,
}

/// Request bodies kept for a retry up to this size; a larger one is not retried.
pub(in crate::proxy::fast) const RETAIN_LIMIT: usize = 64 * 1024;

/// One client stream's exchange while statuscope carries it (see the module docs).
pub(in crate::proxy::fast) struct Carried {
    /// The settings in force when the request head arrived, kept to its end.
    pub settings: Arc<LiveSettings>,
    /// When the request head arrived.
    pub started: Instant,
    _in_flight: InFlight,
    _permit: Option<Permit>,
    /// The request head.
    pub request: FieldBlock,
    /// Its method.
    pub method: Method,
    /// The gRPC call it is, if one.
    pub grpc: Option<GrpcCall>,
    /// Where the request went.
    pub upstream: Link,
    /// The final response head, once it came (a copy: the rules read it at the end).
    pub response: FieldBlock,
    /// The final response's status, once it came.
    pub status: Option<u16>,
    /// The response's trailers, when it had some.
    pub trailers: FieldBlock,
    /// Whether `trailers` holds the response's trailers.
    pub has_trailers: bool,
    /// The upstream sent 100 Continue.
    pub sent_continue: bool,
    /// The body sample for the rules.
    pub sampler: Option<Sampler>,
    /// The request body, kept until the upstream answers (for a retry).
    pub retained: Retained,
    /// The request was sent again once already.
    pub retried: bool,
    /// The request's half ended (END_STREAM seen) and can be sent again whole.
    pub request_ended: bool,
    /// Request trailers that came before the request was sent on, which go with it.
    pub request_trailers: Option<FieldBlock>,
    /// When the upstream last sent something for this exchange, or the request ended if that
    /// was later: the read timeout counts from here, so a long upload does not use it up.
    pub upstream_active: Instant,
    /// Set when the exchange ended; the tally follows once its frames are written.
    pub ending: Option<Ending>,
}

/// The buffers of finished exchanges kept for the next ones on this worker: as many as a
/// worker commonly has in flight (eight connections of 100 streams), a few hundred KiB.
const SPARE_BUFFERS: usize = 1024;

/// What an exchange reuses: its three header blocks and its buffer for a request body.
#[derive(Default)]
struct Buffers {
    blocks: [FieldBlock; 3],
    body: Vec<u8>,
}

thread_local! {
    static SPARE: RefCell<Vec<Buffers>> = const { RefCell::new(Vec::new()) };
}

impl Carried {
    /// An exchange for a request whose head is `request`, begun at `started`.
    pub(in crate::proxy::fast) fn new(
        settings: Arc<LiveSettings>,
        started: Instant,
        in_flight: InFlight,
        permit: Option<Permit>,
        request_head: &FieldBlock,
    ) -> Box<Carried> {
        let Buffers {
            blocks: [mut request, response, trailers],
            body,
        } = SPARE.with_borrow_mut(Vec::pop).unwrap_or_default();
        request.copy_from(request_head);
        let method = request
            .pseudo(request.pseudo.method)
            .and_then(|m| Method::from_bytes(m).ok())
            .unwrap_or(Method::GET);
        let grpc = GrpcCall::of(
            true,
            request.get("content-type"),
            request.get("grpc-timeout"),
            started,
        );
        Box::new(Carried {
            settings,
            started,
            _in_flight: in_flight,
            _permit: permit,
            request,
            method,
            grpc,
            upstream: Link::None,
            response,
            status: None,
            trailers,
            has_trailers: false,
            sent_continue: false,
            sampler: None,
            retained: Retained { body, whole: true },
            retried: false,
            request_ended: false,
            request_trailers: None,
            upstream_active: started,
            ending: None,
        })
    }

    /// Holds the request's place among those admitted to the upstream.
    pub(in crate::proxy::fast) fn set_permit(&mut self, permit: Option<Permit>) {
        self._permit = permit;
    }

    /// The request path, without its query.
    pub(in crate::proxy::fast) fn path(&self) -> Option<&str> {
        self.request
            .pseudo(self.request.pseudo.path)
            .and_then(target_path)
    }

    /// Records how the exchange ended (the first ending counts).
    pub(in crate::proxy::fast) fn end(
        &mut self,
        outcome: Outcome,
        upstream_error: Option<UpstreamErrorKind>,
        at: Instant,
    ) {
        self.ending.get_or_insert(Ending {
            outcome,
            upstream_error,
            at,
        });
    }

    /// The client ended its request at `now`: the wait for the answer starts.
    pub(in crate::proxy::fast) fn request_end(&mut self, now: Instant) {
        if !self.request_ended {
            self.request_ended = true;
            self.upstream_active = self.upstream_active.max(now);
        }
    }

    /// Keeps request body bytes for a retry while the upstream has not answered (and all of
    /// them until the request is sent on).
    pub(in crate::proxy::fast) fn retain(&mut self, data: &[u8]) {
        if self.status.is_some() || !self.retained.whole {
            return;
        }
        let sent_on = !matches!(self.upstream, Link::None);
        if sent_on && self.retained.body.len() + data.len() > RETAIN_LIMIT {
            self.retained.whole = false;
            self.retained.body = Vec::new();
            return;
        }
        self.retained.body.extend_from_slice(data);
    }

    /// Unlinks the exchange from its upstream stream, which is reset if still open.
    pub(in crate::proxy::fast) fn unlink(&mut self) {
        if let Link::H2 { upstream, key } = std::mem::take(&mut self.upstream) {
            lock(&upstream).conn.remove(key);
            outbox::upstream(&upstream);
        }
    }

    /// Tallies and judges the exchange; it must have ended.
    pub(in crate::proxy::fast) fn finish(mut self: Box<Self>, recorder: &Recorder) {
        let Some(ending) = self.ending else {
            return;
        };
        let request = &self.request;
        let target = request.pseudo(request.pseudo.path).unwrap_or_default();
        let facts = RequestFacts::from_fields(target, |name| request.get(name));
        let grpc_trailers = self.has_trailers.then(|| self.trailers.headers());
        let judged = match ending.outcome {
            Outcome::Upstream(_) => Some(Judged {
                method: &self.method,
                request: facts,
                headers: self.response.headers(),
                sent_continue: self.sent_continue,
                sample: self.sampler.take(),
                grpc_trailers: self.grpc.map(|_| grpc_trailers.unwrap_or_default()),
            }),
            _ => None,
        };
        let mut finished = Finished::new(
            method_label(&self.method),
            self.path(),
            ending.outcome,
            self.started,
            ending.at,
        );
        finished.upstream_error = ending.upstream_error;
        finished.response = judged;
        finished.grpc = self.grpc;
        finished.probe = request.get("user-agent").is_some_and(is_probe_user_agent);
        finished.version = HttpVersion::Http2;
        finish(recorder, &self.settings, finished);
    }
}

impl std::fmt::Debug for Carried {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Carried")
            .field("method", &self.method)
            .field("status", &self.status)
            .field("ending", &self.ending)
            .finish_non_exhaustive()
    }
}

impl Drop for Carried {
    fn drop(&mut self) {
        // Not at all while the thread's own spare list is being torn down.
        let mut body = std::mem::take(&mut self.retained.body);
        if body.capacity() > RETAIN_LIMIT {
            return;
        }
        body.clear();
        let buffers = Buffers {
            blocks: [
                std::mem::take(&mut self.request),
                std::mem::take(&mut self.response),
                std::mem::take(&mut self.trailers),
            ],
            body,
        };
        let _ = SPARE.try_with(|spare| {
            if let Ok(mut spare) = spare.try_borrow_mut() {
                if spare.len() < SPARE_BUFFERS {
                    spare.push(buffers);
                }
            }
        });
    }
}
