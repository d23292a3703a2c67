//! One exchange on a client connection of the fast engine: admission; the request to the
//! upstream, its head as read and its body streamed by its framing; the response back, its
//! head parsed once and its body streamed through the upstream connection's buffer, sampled
//! on the way; then [`finish`], which tallies and judges it after the response has gone out.
//!
//! While the upstream has not answered, the loop also sends the rest of the request body and
//! watches the client: an upstream may answer before it has read the body, and a client that
//! hangs up is tallied as 499 at once, with the upstream request abandoned. A request that
//! failed on a reused upstream connection before any answer came back is sent once more on a
//! new connection if its method is idempotent and it was read whole — never otherwise.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::ops::Range;
use std::pin::Pin;
use std::task::Poll;
use std::time::Instant;

use http::Method;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::connection::{After, Client, Parts};
use super::forward;
use super::response_head::{self, Asked, Framing, Parsed, Persistence, ResponseHead};
use super::upstream::Upstream;
use crate::classify::{method_label, Origin, UpstreamErrorKind, CLIENT_CLOSED_REQUEST};
use crate::proxy::chunked::{ChunkedReader, Fed};
use crate::proxy::error_response::ProxyError;
use crate::proxy::finish::{finish, Finished, Judged};
use crate::proxy::guard::refuse;
use crate::proxy::request_head::{Head, Refusal};
use crate::proxy::settings::LiveSettings;
use crate::rules::{visible_ascii, Headers, RequestFacts};
use crate::sample::Sampler;

/// How much of a body is still to come, by its framing.
enum BodyLeft {
    /// This many bytes.
    Length(u64),
    /// Chunks, up to the last chunk and the trailer section.
    Chunked(ChunkedReader),
    /// Everything until the connection closes (a response only).
    UntilClose,
    /// Nothing: the body is complete, or there is none.
    Done,
}

impl BodyLeft {
    /// The request body a head announces.
    fn of_request(head: &Head) -> BodyLeft {
        match head.content_length {
            _ if head.chunked => BodyLeft::Chunked(ChunkedReader::default()),
            Some(n) if n > 0 => BodyLeft::Length(n),
            _ => BodyLeft::Done,
        }
    }

    /// The response body a head announces.
    fn of_response(framing: Framing) -> BodyLeft {
        match framing {
            Framing::None | Framing::Length(0) => BodyLeft::Done,
            Framing::Length(n) => BodyLeft::Length(n),
            Framing::Chunked => BodyLeft::Chunked(ChunkedReader::default()),
            Framing::UntilClose => BodyLeft::UntilClose,
        }
    }

    fn is_done(&self) -> bool {
        matches!(self, BodyLeft::Done)
    }

    /// Of `bytes`, the next bytes of the message, how many belong to the body; each piece of
    /// body data (chunk framing left out) goes to `data`.
    fn advance(
        &mut self,
        bytes: &[u8],
        mut data: impl FnMut(&[u8]),
    ) -> Result<usize, &'static str> {
        match self {
            BodyLeft::Done => Ok(0),
            BodyLeft::UntilClose => {
                data(bytes);
                Ok(bytes.len())
            }
            BodyLeft::Length(left) => {
                let take = bytes
                    .len()
                    .min(usize::try_from(*left).unwrap_or(usize::MAX));
                data(&bytes[..take]);
                *left -= take as u64;
                if *left == 0 {
                    *self = BodyLeft::Done;
                }
                Ok(take)
            }
            BodyLeft::Chunked(reader) => match reader.feed(bytes, data)? {
                Fed::More => Ok(bytes.len()),
                Fed::End(n) => {
                    *self = BodyLeft::Done;
                    Ok(n)
                }
            },
        }
    }
}

/// Why an exchange could not be carried to its end.
enum Failure {
    /// Talking to the upstream failed; `nothing_back` when not a byte of an answer had come.
    Upstream {
        kind: UpstreamErrorKind,
        nothing_back: bool,
    },
    /// The client hung up.
    ClientGone,
    /// The client's chunked body is malformed.
    BadChunk(&'static str),
}

fn upstream_failure(kind: UpstreamErrorKind, nothing_back: bool) -> Failure {
    Failure::Upstream { kind, nothing_back }
}

/// The request body on its way from the client to the upstream.
struct Pump {
    left: BodyLeft,
    /// Body bytes in the client buffer not yet written to the upstream.
    pending: Range<usize>,
    /// Where the body begins in the client buffer; later body bytes are read there too.
    area: usize,
    /// Where the next request begins in the client buffer, once known.
    next_request: Option<usize>,
    /// Body bytes came after those read with the head: the request cannot be sent again.
    streamed: bool,
    /// The upstream stopped taking the body (it answered early, or failed).
    abandoned: bool,
    /// Since when a write to the upstream has been waiting.
    writing_since: Option<Instant>,
    /// Since when the upstream has owed an answer without sending a byte; `None` for "the
    /// last progress was just now", read from the clock only if a wait follows.
    quiet_since: Option<Instant>,
}

impl Pump {
    fn complete(&self) -> bool {
        self.left.is_done() && self.pending.is_empty()
    }
}

/// Whether resending the request cannot change anything on the server (RFC 9110 §9.2.2).
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// The path of a request target without its query: origin form as it is, the path part of an
/// absolute form, `*` for the asterisk form.
fn path_of(target: &[u8]) -> &str {
    let path = match target.iter().position(|&b| b == b'/') {
        Some(slash) if target[..slash].ends_with(b":") => {
            // `http://authority/path`: the path begins at the first slash after the authority.
            let authority = slash + 2;
            target[authority..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(&b"/"[..], |at| &target[authority + at..])
        }
        _ => target,
    };
    let path = &path[..memchr::memchr(b'?', path).unwrap_or(path.len())];
    // The head reader admits only visible ASCII in targets.
    std::str::from_utf8(path).unwrap_or("/")
}

/// Writes every byte of `bufs`.
async fn write_all_vectored<W: AsyncWrite + Unpin>(
    writer: &mut W,
    mut bufs: &mut [IoSlice<'_>],
) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match writer.write_vectored(bufs).await? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => IoSlice::advance_slices(&mut bufs, n),
        }
    }
    Ok(())
}

/// The earlier of two optional instants.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Client<'_> {
    /// Carries one exchange whose head is at the start of the buffer.
    pub(super) async fn exchange(
        &mut self,
        head: &Head,
        started: Instant,
        settings: &LiveSettings,
    ) -> After {
        let engine = self.engine;
        let recorder = &engine.recorder;
        let mut left = BodyLeft::of_request(head);
        let with_head = left.advance(&self.parts.inbuf[head.head_len..self.end], |_| {});
        let method = Method::from_bytes(head.method.of(&self.parts.inbuf));
        let (Ok(with_head), Ok(method)) = (with_head, method) else {
            let refusal = Refusal {
                error: ProxyError::BAD_REQUEST,
                reason: "the chunked body is malformed",
            };
            let buffered = &self.parts.inbuf[..self.end];
            refuse(
                recorder,
                &mut self.stream,
                buffered,
                refusal,
                settings,
                started,
            )
            .await;
            return After::Gone;
        };
        let _in_flight = engine.admission.arrive();
        let Some(_permit) = engine.admission.try_admit(settings.max_in_flight) else {
            return self.overloaded(head, &method, started, settings).await;
        };
        let body_end = head.head_len + with_head;
        let mut pump = Pump {
            pending: body_end..body_end,
            area: head.head_len,
            next_request: left.is_done().then_some(body_end),
            left,
            streamed: false,
            abandoned: false,
            writing_since: None,
            quiet_since: Some(started),
        };
        let edited = forward::upstream_head(
            &self.parts.inbuf[..head.head_len],
            head,
            &mut self.parts.out,
        )
        .is_none();
        let asked = Asked {
            head_method: method == Method::HEAD,
        };
        let response_deadline = settings.response_timeout.map(|limit| started + limit);
        let mut retried = false;
        let (mut upstream, mut response) = loop {
            let reused = if retried {
                None
            } else {
                Upstream::checkout(settings.upstream, settings.timeouts.idle, started)
            };
            let mut upstream = match reused {
                Some(upstream) => upstream,
                None => match self
                    .parts
                    .deadline
                    .run(
                        || Some(Instant::now() + settings.timeouts.connect),
                        Upstream::connect(settings.upstream),
                    )
                    .await
                    .unwrap_or(Err(UpstreamErrorKind::ConnectTimeout))
                {
                    Ok(upstream) => upstream,
                    Err(kind) => {
                        let failure = upstream_failure(kind, true);
                        return self
                            .fail(head, &method, started, settings, &pump, failure)
                            .await;
                    }
                },
            };
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
                    self.await_head(&mut upstream, &mut pump, asked, settings, response_deadline)
                        .await
                }
            };
            match result {
                Ok(response) => break (upstream, response),
                Err(Failure::Upstream {
                    nothing_back: true, ..
                }) if upstream.reused && !retried && !pump.streamed && is_idempotent(&method) => {
                    // A pooled connection the upstream had closed as the request went out.
                    retried = true;
                }
                Err(failure) => {
                    return self
                        .fail(head, &method, started, settings, &pump, failure)
                        .await
                }
            }
        };
        let mut sent_continue = false;
        // Interim responses go to the client as they come; the final one follows.
        while (100..200).contains(&response.status) {
            if response.status == 101 {
                let failure = upstream_failure(UpstreamErrorKind::Other, false);
                return self
                    .fail(head, &method, started, settings, &pump, failure)
                    .await;
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
            if self
                .parts
                .deadline
                .run(|| response_deadline, self.stream.write_all(&self.parts.out))
                .await
                .is_none_or(|written| written.is_err())
            {
                return self
                    .fail(head, &method, started, settings, &pump, Failure::ClientGone)
                    .await;
            }
            upstream.buf.copy_within(response.len..upstream.filled, 0);
            upstream.filled -= response.len;
            response = match self
                .await_head(&mut upstream, &mut pump, asked, settings, response_deadline)
                .await
            {
                Ok(response) => response,
                Err(failure) => {
                    return self
                        .fail(head, &method, started, settings, &pump, failure)
                        .await
                }
            };
        }
        // Cheap while nothing changed: a version compare before the value's lock.
        let draining = self.shutdown.has_changed().unwrap_or(true) && *self.shutdown.borrow();
        // An HTTP/1.0 client cannot read chunks: it gets the data, and the end of the
        // connection marks the end of the body.
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
        let headers = Headers::InHead {
            head: &upstream.buf[..response.len],
            spans: &self.parts.spans,
        };
        let mut sampler = match settings.engine {
            Some(_) if !asked.head_method => Sampler::start(
                settings.body_sample_bytes,
                headers.get_str("content-type"),
                headers.get_str("content-encoding"),
            ),
            _ => None,
        };
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
                settings,
                response_deadline,
            )
            .await;
        let (code, origin, upstream_error, clean) = match relayed {
            Ok(clean) => (response.status, Origin::Upstream, None, clean),
            Err(Failure::Upstream { kind, .. }) => {
                (response.status, Origin::Upstream, Some(kind), false)
            }
            Err(_) => (CLIENT_CLOSED_REQUEST, Origin::Client, None, false),
        };
        let facts = RequestFacts {
            has_authorization: head.has_authorization,
            has_cookie: head.has_cookie,
            expects_continue: head.expects_continue,
            accept: head
                .accept
                .and_then(|span| visible_ascii(span.of(&self.parts.inbuf))),
        };
        // One clock read for the tally, the pool and the next request's wait.
        let ended = Instant::now();
        self.last_ended = Some(ended);
        let exchange = Finished {
            method: method_label(&method),
            path: Some(path_of(head.target.of(&self.parts.inbuf))),
            code,
            origin,
            started,
            ended,
            upstream_error,
            response: (origin == Origin::Upstream).then_some(Judged {
                method: &method,
                request: facts,
                headers: Headers::InHead {
                    head: &upstream.buf[..response.len],
                    spans: &self.parts.spans,
                },
                sent_continue,
                sample: sampler,
                // gRPC calls are HTTP/2: the pingora engine carries them.
                grpc_trailers: None,
            }),
            grpc: None,
            probe: head.probe,
        };
        finish(recorder, settings, exchange);
        if clean && response.persistent && pump.complete() {
            upstream.mark_drained();
            upstream.checkin(engine.pool_capacity, ended);
        }
        match (origin, upstream_error, pump.next_request) {
            (Origin::Upstream, None, Some(next)) if keep_client => {
                self.consume(next);
                After::KeepAlive
            }
            (Origin::Upstream, None, _) if !pump.complete() => After::Linger,
            (Origin::Upstream, None, _) => After::Close,
            _ => After::Gone,
        }
    }

    /// Sends what is left of the request body while waiting for the upstream's next response
    /// head, watching the client for a hang-up once the body is sent.
    async fn await_head(
        &mut self,
        upstream: &mut Upstream,
        pump: &mut Pump,
        asked: Asked,
        settings: &LiveSettings,
        response_deadline: Option<Instant>,
    ) -> Result<ResponseHead, Failure> {
        // The head may have come with an interim response's bytes.
        if upstream.filled > 0 {
            match response_head::parse(
                &upstream.buf[..upstream.filled],
                asked,
                &mut self.parts.spans,
            ) {
                Parsed::Complete(head) => return Ok(head),
                Parsed::Invalid(_) => {
                    return Err(upstream_failure(UpstreamErrorKind::Other, false))
                }
                Parsed::Partial => {}
            }
        }
        let Client {
            stream: client,
            parts,
            end,
            ..
        } = self;
        let Parts {
            inbuf,
            spans,
            deadline: timer,
            ..
        } = parts;
        let timeouts = &settings.timeouts;
        poll_fn(|cx| loop {
            let mut progressed = false;
            // The upstream's answer.
            if upstream.filled == upstream.buf.len() {
                if upstream.buf.len() >= response_head::MAX_RESPONSE_HEAD_BYTES {
                    return Poll::Ready(Err(upstream_failure(UpstreamErrorKind::Other, false)));
                }
                let grown = upstream.buf.len() * 2;
                upstream.buf.resize(grown, 0);
            }
            let mut read = ReadBuf::new(&mut upstream.buf[upstream.filled..]);
            match Pin::new(&mut upstream.stream).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    let nothing_back = upstream.filled == 0;
                    return Poll::Ready(Err(upstream_failure(
                        UpstreamErrorKind::Reset,
                        nothing_back,
                    )));
                }
                Poll::Ready(Ok(())) => {
                    upstream.filled += read.filled().len();
                    pump.quiet_since = None;
                    match response_head::parse(&upstream.buf[..upstream.filled], asked, spans) {
                        Parsed::Complete(head) => {
                            // A final answer before the whole body: the upstream wants no more.
                            pump.abandoned |= head.status >= 200 && !pump.complete();
                            return Poll::Ready(Ok(head));
                        }
                        Parsed::Invalid(_) => {
                            return Poll::Ready(Err(upstream_failure(
                                UpstreamErrorKind::Other,
                                false,
                            )))
                        }
                        Parsed::Partial => progressed = true,
                    }
                }
                Poll::Ready(Err(_)) => {
                    let nothing_back = upstream.filled == 0;
                    return Poll::Ready(Err(upstream_failure(
                        UpstreamErrorKind::Reset,
                        nothing_back,
                    )));
                }
                Poll::Pending => {}
            }
            if pump.abandoned {
                // Nothing more goes up; the client is not read until the answer is in.
            } else if !pump.pending.is_empty() {
                // Body bytes to the upstream.
                match Pin::new(&mut upstream.stream).poll_write(cx, &inbuf[pump.pending.clone()]) {
                    Poll::Ready(Ok(n)) if n > 0 => {
                        pump.pending.start += n;
                        pump.writing_since = None;
                        if pump.complete() {
                            pump.quiet_since = None;
                        }
                        progressed = true;
                    }
                    // It stopped reading: its answer, or its failure, is on the way.
                    Poll::Ready(_) => {
                        pump.abandoned = true;
                        progressed = true;
                    }
                    Poll::Pending => {
                        pump.writing_since.get_or_insert_with(Instant::now);
                    }
                }
            } else if !pump.left.is_done() {
                // More body from the client, read where the body began.
                pump.streamed = true;
                *end = pump.area;
                let mut read = ReadBuf::new(&mut inbuf[pump.area..]);
                match Pin::new(&mut *client).poll_read(cx, &mut read) {
                    Poll::Ready(Ok(())) if read.filled().is_empty() => {
                        return Poll::Ready(Err(Failure::ClientGone))
                    }
                    Poll::Ready(Ok(())) => {
                        let n = read.filled().len();
                        *end = pump.area + n;
                        match pump.left.advance(&inbuf[pump.area..*end], |_| {}) {
                            Ok(body) => {
                                pump.pending = pump.area..pump.area + body;
                                if pump.left.is_done() {
                                    pump.next_request = Some(pump.area + body);
                                }
                            }
                            Err(reason) => return Poll::Ready(Err(Failure::BadChunk(reason))),
                        }
                        progressed = true;
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(Err(Failure::ClientGone)),
                    Poll::Pending => {}
                }
            } else if *end < inbuf.len() {
                // The request is sent: a client read now ends only at a hang-up or at the next
                // (pipelined) request, which waits in the buffer.
                let mut read = ReadBuf::new(&mut inbuf[*end..]);
                match Pin::new(&mut *client).poll_read(cx, &mut read) {
                    Poll::Ready(Ok(())) if read.filled().is_empty() => {
                        return Poll::Ready(Err(Failure::ClientGone))
                    }
                    Poll::Ready(Ok(())) => {
                        *end += read.filled().len();
                        progressed = true;
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(Err(Failure::ClientGone)),
                    Poll::Pending => {}
                }
            }
            if progressed {
                continue;
            }
            // Every source is pending: arm the earliest deadline that applies.
            let writing = pump.writing_since.map(|since| since + timeouts.write);
            let reading = (pump.complete() || pump.abandoned)
                .then(|| *pump.quiet_since.get_or_insert_with(Instant::now) + timeouts.read);
            let deadline = earliest(response_deadline, earliest(writing, reading));
            if let Some(deadline) = deadline {
                if timer.poll_passed(cx, deadline) {
                    let kind = if response_deadline == Some(deadline) {
                        UpstreamErrorKind::ResponseTimeout
                    } else if writing == Some(deadline) {
                        UpstreamErrorKind::WriteTimeout
                    } else {
                        UpstreamErrorKind::ReadTimeout
                    };
                    return Poll::Ready(Err(upstream_failure(kind, upstream.filled == 0)));
                }
            }
            return Poll::Pending;
        })
        .await
    }

    /// Streams the response body by its framing to the client, after the head in `self.parts.out`,
    /// feeding the sampler; `Ok(true)` when it ended exactly where its framing said. With
    /// `dechunked`, only the chunks' data goes to the client.
    async fn relay_body(
        &mut self,
        upstream: &mut Upstream,
        response: &ResponseHead,
        dechunked: bool,
        sampler: &mut Option<Sampler>,
        settings: &LiveSettings,
        response_deadline: Option<Instant>,
    ) -> Result<bool, Failure> {
        let mut left = BodyLeft::of_response(response.framing);
        let mut head_sent = false;
        // The head stays at the front for the rules; the body streams through the rest.
        let body_room = response.len + 8 * 1024;
        if upstream.buf.len() < body_room {
            upstream.buf.resize(body_room, 0);
        }
        loop {
            let arrived = &upstream.buf[response.len..upstream.filled];
            if head_sent {
                self.parts.out.clear();
            }
            let out = &mut self.parts.out;
            let taken = left
                .advance(arrived, |data| {
                    if let Some(sampler) = sampler.as_mut() {
                        sampler.feed(data);
                    }
                    if dechunked {
                        out.extend_from_slice(data);
                    }
                })
                .map_err(|_| upstream_failure(UpstreamErrorKind::Other, false))?;
            let raw = if dechunked {
                &[][..]
            } else {
                &arrived[..taken]
            };
            let written = self
                .parts
                .deadline
                .run(
                    || response_deadline,
                    write_all_vectored(
                        &mut self.stream,
                        &mut [IoSlice::new(&self.parts.out), IoSlice::new(raw)],
                    ),
                )
                .await;
            head_sent = true;
            match written {
                None => return Err(upstream_failure(UpstreamErrorKind::ResponseTimeout, false)),
                Some(Err(_)) => return Err(Failure::ClientGone),
                Some(Ok(())) => {}
            }
            if left.is_done() {
                return Ok(taken == arrived.len());
            }
            upstream.filled = response.len;
            let read_deadline = || {
                earliest(
                    Some(Instant::now() + settings.timeouts.read),
                    response_deadline,
                )
            };
            let read = self
                .parts
                .deadline
                .run(
                    read_deadline,
                    upstream.stream.read(&mut upstream.buf[response.len..]),
                )
                .await;
            match read {
                None if response_deadline.is_some_and(|limit| Instant::now() >= limit) => {
                    return Err(upstream_failure(UpstreamErrorKind::ResponseTimeout, false))
                }
                None => return Err(upstream_failure(UpstreamErrorKind::ReadTimeout, false)),
                Some(Ok(0)) if matches!(left, BodyLeft::UntilClose) => return Ok(true),
                Some(Ok(0)) => return Err(upstream_failure(UpstreamErrorKind::Truncated, false)),
                Some(Ok(n)) => upstream.filled += n,
                Some(Err(_)) => return Err(upstream_failure(UpstreamErrorKind::Reset, false)),
            }
        }
    }

    /// Answers a request statuscope cannot carry to its end, and finishes it.
    async fn fail(
        &mut self,
        head: &Head,
        method: &Method,
        started: Instant,
        settings: &LiveSettings,
        pump: &Pump,
        failure: Failure,
    ) -> After {
        let (answer, upstream_error) = match failure {
            Failure::Upstream { kind, .. } => (Some(ProxyError::upstream(kind)), Some(kind)),
            Failure::BadChunk(_) => (Some(ProxyError::BAD_REQUEST), None),
            Failure::ClientGone => (None, None),
        };
        let detail = match failure {
            Failure::BadChunk(reason) => reason,
            _ => answer.map_or("", |answer| answer.detail),
        };
        let answered = match answer {
            Some(answer) => self.answer(answer, detail, false, settings).await,
            None => false,
        };
        let (code, origin) = match answer {
            Some(answer) if answered => (answer.status, Origin::Proxy),
            _ => (CLIENT_CLOSED_REQUEST, Origin::Client),
        };
        self.finish_unanswered(
            head,
            method,
            started,
            settings,
            code,
            origin,
            upstream_error,
        );
        match (answered, pump.complete()) {
            (false, _) => After::Gone,
            (true, true) => After::Close,
            (true, false) => After::Linger,
        }
    }

    /// Sheds a request past `max_in_flight` with a 503; a connection without a request body
    /// to skip stays open.
    async fn overloaded(
        &mut self,
        head: &Head,
        method: &Method,
        started: Instant,
        settings: &LiveSettings,
    ) -> After {
        let answer = ProxyError::OVERLOADED;
        let no_body = head.content_length.unwrap_or(0) == 0 && !head.chunked;
        let keep = no_body && !head.http10 && !head.connection.close;
        let answered = self.answer(answer, answer.detail, keep, settings).await;
        let (code, origin) = if answered {
            (answer.status, Origin::Proxy)
        } else {
            (CLIENT_CLOSED_REQUEST, Origin::Client)
        };
        self.finish_unanswered(head, method, started, settings, code, origin, None);
        match (answered, keep) {
            (true, true) => {
                self.consume(head.head_len);
                After::KeepAlive
            }
            (true, false) if no_body => After::Close,
            (true, false) => After::Linger,
            (false, _) => After::Gone,
        }
    }

    /// Finishes a request the upstream did not answer.
    #[allow(clippy::too_many_arguments)]
    fn finish_unanswered(
        &mut self,
        head: &Head,
        method: &Method,
        started: Instant,
        settings: &LiveSettings,
        code: u16,
        origin: Origin,
        upstream_error: Option<UpstreamErrorKind>,
    ) {
        let ended = Instant::now();
        let exchange = Finished {
            method: method_label(method),
            path: Some(path_of(head.target.of(&self.parts.inbuf))),
            code,
            origin,
            started,
            ended,
            upstream_error,
            response: None,
            grpc: None,
            probe: head.probe,
        };
        finish(&self.engine.recorder, settings, exchange);
        self.last_ended = Some(ended);
    }

    /// Sends one of statuscope's own answers; `false` when the client could not be written to.
    async fn answer(
        &mut self,
        answer: ProxyError,
        detail: &str,
        keep_alive: bool,
        settings: &LiveSettings,
    ) -> bool {
        let Ok(wire) = answer.to_http1_keeping(detail, keep_alive) else {
            return false;
        };
        let written = self
            .parts
            .deadline
            .run(
                || Some(Instant::now() + settings.downstream.header_timeout),
                self.stream.write_all(&wire),
            )
            .await;
        matches!(written, Some(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_is_the_target_without_authority_or_query() {
        assert_eq!(path_of(b"/users/7?token=x"), "/users/7");
        assert_eq!(path_of(b"http://api.test/users/7?x"), "/users/7");
        assert_eq!(path_of(b"https://api.test"), "/");
        assert_eq!(path_of(b"*"), "*");
    }

    #[test]
    fn bodies_end_where_their_framing_says() {
        let mut length = BodyLeft::Length(5);
        assert_eq!(length.advance(b"hel", |_| {}), Ok(3));
        assert_eq!(length.advance(b"loGET /", |_| {}), Ok(2));
        assert!(length.is_done());
        let mut chunked = BodyLeft::Chunked(ChunkedReader::default());
        let mut data = Vec::new();
        assert_eq!(
            chunked.advance(b"2\r\nhi\r\n0\r\n\r\nnext", |d| data.extend_from_slice(d)),
            Ok(12)
        );
        assert!(chunked.is_done());
        assert_eq!(data, b"hi");
        let mut rest = BodyLeft::UntilClose;
        assert_eq!(rest.advance(b"all of it", |_| {}), Ok(9));
        assert!(!rest.is_done());
    }
}
