//! An HTTP/1 exchange carried to an HTTP/2 upstream (`upstream_protocol: h2c`): a stream on a
//! pooled upstream connection whose response waits in an [`Inbox`] for this task.
//!
//! The request goes out as HTTP/2: `:authority` from `Host` (or an absolute-form target),
//! `:path` the target's path and query, the fields but the hop-by-hop ones with their names
//! lowercased (`te: trailers` passed on when the client asked for trailers), the body without
//! its chunk framing, and a chunked body's trailers as an HTTP/2 trailer block. The response
//! comes back as HTTP/1.1: its `content-length` kept, or else chunked (to an HTTP/1.0 client,
//! ended by the close), with trailers in the chunked body's trailer section. Body bytes go to
//! the upstream as its windows allow, and the upstream's window is given back only as the
//! client takes the response: backpressure both ways.

use std::future::poll_fn;
use std::io::{IoSlice, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, ReadBuf};

use super::body::{write_all_vectored, BodyLeft};
use super::connection::{After, Client};
use super::exchange::{finish_answered, Answered, Request};
use super::request_body::{upstream_failure, Failure};
use crate::classify::UpstreamErrorKind;
use crate::proxy::chunked::{write_chunk_size, write_last_chunk};
use crate::proxy::fast::deadline::read_deadline;
use crate::proxy::fast::h2::{lock, Shared};
use crate::proxy::fast::upstream::h2::{self as pool, Inbox, InboxEnd, OnUpstream, UpstreamSide};
use crate::proxy::finish::{response_sampler, Outcome};
use crate::proxy::h2::conn::StreamKey;
use crate::proxy::h2::fields::{field_problem, FieldBlock};
use crate::proxy::h2::hpack::encode_field;
use crate::proxy::request_head::{is_hop_by_hop, Head};
use crate::sample::Sampler;

/// The upstream stream an exchange took.
struct Stream {
    upstream: Shared<UpstreamSide>,
    key: StreamKey,
}

impl Drop for Stream {
    fn drop(&mut self) {
        let mut side = lock(&self.upstream);
        side.conn.remove(self.key);
        side.send_now();
    }
}

/// Encodes the HTTP/2 header block of an HTTP/1 request head (`head` over `buf`).
fn encode_request(buf: &[u8], head: &Head, out: &mut Vec<u8>) {
    let target = head.target.of(buf);
    let (authority, path) = split_target(target);
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut parsed = httparse::Request::new(&mut fields);
    let _ = parsed.parse(&buf[..head.head_len]);
    let host = parsed
        .headers
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case("host"))
        .map(|f| f.value);
    encode_field(out, b":method", head.method.of(buf));
    encode_field(out, b":scheme", b"http");
    if let Some(authority) = authority.or(host).filter(|a| !a.is_empty()) {
        encode_field(out, b":authority", authority);
    }
    encode_field(out, b":path", path);
    let mut name = Vec::new();
    let mut trailers = false;
    for field in parsed.headers.iter() {
        let raw = field.name.as_bytes();
        if raw.eq_ignore_ascii_case(b"te") {
            trailers |= field
                .value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"trailers"));
            continue;
        }
        if is_hop_by_hop(raw)
            || raw.eq_ignore_ascii_case(b"host")
            || raw.eq_ignore_ascii_case(b"transfer-encoding")
            || (head.connection.names_fields && named_by_connection(parsed.headers, raw))
        {
            continue;
        }
        name.clear();
        name.extend(raw.iter().map(u8::to_ascii_lowercase));
        encode_field(out, &name, field.value.trim_ascii());
    }
    if trailers {
        encode_field(out, b"te", b"trailers");
    }
}

/// Whether a `Connection` field names `name`.
fn named_by_connection(fields: &[httparse::Header<'_>], name: &[u8]) -> bool {
    fields
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case("connection"))
        .flat_map(|f| f.value.split(|&b| b == b','))
        .any(|option| option.trim_ascii().eq_ignore_ascii_case(name))
}

/// The authority (of an absolute-form target) and the `:path` of a request target.
fn split_target(target: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let Some(scheme_end) = memchr::memmem::find(target, b"://") else {
        return (None, target);
    };
    let rest = &target[scheme_end + 3..];
    let end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let path = &rest[end..];
    (
        Some(&rest[..end]),
        if path.is_empty() || path[0] == b'?' {
            b"/"
        } else {
            path
        },
    )
}

/// HTTP/1 trailer field lines as an HTTP/2 trailer block.
fn trailer_block(lines: &[u8]) -> Option<FieldBlock> {
    let mut raw = lines.to_vec();
    raw.extend_from_slice(b"\r\n");
    let mut fields = [httparse::EMPTY_HEADER; 64];
    let Ok(httparse::Status::Complete((_, parsed))) = httparse::parse_headers(&raw, &mut fields)
    else {
        return None;
    };
    let mut block = FieldBlock::default();
    block.reset(crate::proxy::chunked::MAX_TRAILER_BYTES * 2);
    let mut name = Vec::new();
    for field in parsed {
        name.clear();
        name.extend(field.name.bytes().map(|b| b.to_ascii_lowercase()));
        if field_problem(&name, field.value).is_none() {
            block.push(&name, field.value);
        }
    }
    Some(block)
}

/// Runs `act` on the inbox of the exchange's stream; `Err` when the stream is gone.
fn with_inbox<T>(
    stream: &Stream,
    act: impl FnOnce(&mut crate::proxy::h2::conn::Conn<OnUpstream>, &mut Inbox) -> T,
) -> T {
    let mut side = lock(&stream.upstream);
    let conn = &mut side.conn;
    let mut inbox = match conn
        .streams
        .get_mut(stream.key)
        .map(|s| std::mem::take(&mut s.user))
    {
        Some(OnUpstream::Local(inbox)) => inbox,
        _ => Box::new(Inbox {
            end: Some(InboxEnd::Failed(UpstreamErrorKind::Reset)),
            ..Inbox::default()
        }),
    };
    let result = act(conn, &mut inbox);
    if let Some(s) = conn.streams.get_mut(stream.key) {
        s.user = OnUpstream::Local(inbox);
    }
    result
}

impl Client<'_> {
    /// Carries one exchange to the HTTP/2 upstream.
    pub(super) async fn exchange_over_h2(&mut self, request: &Request<'_>) -> After {
        let head = request.head;
        let settings = request.settings;
        let dial = pool::Dial {
            addr: settings.upstream,
            connect_timeout: settings.timeouts.connect,
            idle_timeout: settings.timeouts.idle,
            limits: settings.h2_upstream,
        };
        let mut left = BodyLeft::of_request(head).keeping_trailers();
        let upstream = pool::connection(&dial, false);
        let opened = {
            let mut side = lock(&upstream);
            let key = side.conn.open(OnUpstream::Local(Box::default()));
            if let Some(key) = key {
                let inbuf = &self.parts.inbuf;
                side.conn
                    .send_headers(key, left.is_done(), |out| encode_request(inbuf, head, out));
                side.send_now();
            }
            key
        };
        let Some(key) = opened else {
            // A new connection always has room: this one failed as it opened.
            return self
                .fail(
                    request,
                    false,
                    upstream_failure(UpstreamErrorKind::Reset, true),
                )
                .await;
        };
        let stream = Stream { upstream, key };
        let body_end = match self.send_body(request, &stream, &mut left).await {
            Ok(end) => end,
            Err(failure) => return self.fail(request, false, failure).await,
        };
        let inbox_head = match self.await_inbox_head(request, &stream).await {
            Ok(block) => block,
            Err(failure) => return self.fail(request, body_end.is_some(), failure).await,
        };
        self.respond_from_h2(request, &stream, inbox_head, body_end)
            .await
    }

    /// Sends the request body as it arrives, decoded, as far as the stream's window allows,
    /// then its end; stops early if the upstream answers first. Returns where the next request
    /// starts in the buffer, when the body was read whole.
    async fn send_body(
        &mut self,
        request: &Request<'_>,
        stream: &Stream,
        left: &mut BodyLeft,
    ) -> Result<Option<usize>, Failure> {
        let head_len = request.head.head_len;
        // A request without a body ended with its head.
        let ended_with_head = left.is_done();
        let mut at = head_len;
        loop {
            let taken = {
                let inbuf = &self.parts.inbuf[at..self.end];
                let mut side = lock(&stream.upstream);
                let key = stream.key;
                let taken = left
                    .advance(inbuf, |data| {
                        side.conn.send_data(key, data, false);
                    })
                    .map_err(Failure::BadChunk)?;
                if left.is_done() && !ended_with_head {
                    match left.trailers().and_then(trailer_block) {
                        Some(block) => side.conn.send_headers(key, true, |out| block.encode(out)),
                        None => {
                            side.conn.send_data(key, &[], true);
                        }
                    }
                }
                side.send_now();
                taken
            };
            at += taken;
            if left.is_done() {
                return Ok(Some(at));
            }
            // All that came is sent on: read more where the body began.
            self.end = head_len;
            at = head_len;
            let more = poll_fn(|cx| self.poll_body_or_answer(cx, stream)).await?;
            if !more {
                // The upstream answered (or failed) before the whole body: no more is read.
                return Ok(None);
            }
        }
    }

    /// Waits for more request body from the client (`true`, read into the buffer after the
    /// head), or for the upstream's answer or end (`false`), whichever comes first; the body is
    /// read only while the stream has window.
    fn poll_body_or_answer(
        &mut self,
        cx: &mut Context<'_>,
        stream: &Stream,
    ) -> Poll<Result<bool, Failure>> {
        let blocked = with_inbox(stream, |conn, inbox| {
            if inbox.head.is_some() || inbox.end.is_some() {
                return None;
            }
            let blocked = conn.streams.get(stream.key).is_some_and(|s| s.is_blocked());
            inbox.window = false;
            inbox.waker = Some(cx.waker().clone());
            Some(blocked)
        });
        let Some(blocked) = blocked else {
            return Poll::Ready(Ok(false));
        };
        if blocked {
            return Poll::Pending;
        }
        let start = self.end;
        let mut read = ReadBuf::new(&mut self.parts.inbuf[start..]);
        match Pin::new(&mut self.stream).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) if !read.filled().is_empty() => {
                self.end += read.filled().len();
                Poll::Ready(Ok(true))
            }
            Poll::Ready(_) => Poll::Ready(Err(Failure::ClientGone)),
        }
    }

    /// Waits for the final response head, passing interim ones on to the client.
    async fn await_inbox_head(
        &mut self,
        request: &Request<'_>,
        stream: &Stream,
    ) -> Result<FieldBlock, Failure> {
        let timeouts = &request.settings.timeouts;
        loop {
            let deadline = || Some(read_deadline(timeouts.read, request.response_deadline));
            let news = self
                .parts
                .deadline
                .run(deadline, poll_fn(|cx| poll_head(cx, stream)))
                .await;
            let interim = match news {
                None if request
                    .response_deadline
                    .is_some_and(|d| Instant::now() >= d) =>
                {
                    return Err(upstream_failure(UpstreamErrorKind::ResponseTimeout, false))
                }
                None => return Err(upstream_failure(UpstreamErrorKind::ReadTimeout, true)),
                Some(Answer::Final(block)) => return Ok(block),
                Some(Answer::Failed(kind)) => return Err(upstream_failure(kind, true)),
                Some(Answer::Interim(block)) => block,
            };
            self.parts.out.clear();
            write_head(&interim, false, None, &mut self.parts.out);
            let written =
                write_all_vectored(&mut self.stream, &mut [IoSlice::new(&self.parts.out)]).await;
            if written.is_err() {
                return Err(Failure::ClientGone);
            }
        }
    }
}

/// What waiting for the response head found.
enum Answer {
    Interim(FieldBlock),
    Final(FieldBlock),
    Failed(UpstreamErrorKind),
}

fn poll_head(cx: &mut Context<'_>, stream: &Stream) -> Poll<Answer> {
    with_inbox(stream, |_, inbox| {
        if !inbox.interim.is_empty() {
            return Poll::Ready(Answer::Interim(inbox.interim.remove(0)));
        }
        if let Some(head) = inbox.head.take() {
            return Poll::Ready(Answer::Final(head));
        }
        match &inbox.end {
            Some(InboxEnd::Failed(kind)) => Poll::Ready(Answer::Failed(*kind)),
            Some(_) => Poll::Ready(Answer::Failed(UpstreamErrorKind::Reset)),
            None => {
                inbox.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
}

/// How the response body is framed for the HTTP/1 client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientFraming {
    /// As the upstream's `content-length` says (or there is no body).
    AsIs,
    /// Chunked, trailers in the trailer section.
    Chunked,
    /// Ended by the close (an HTTP/1.0 client).
    Close,
}

/// Writes an HTTP/1.1 response head for an HTTP/2 one: the status line, the fields, and the
/// framing and `Connection` statuscope chose.
fn write_head(block: &FieldBlock, close: bool, framed: Option<ClientFraming>, out: &mut Vec<u8>) {
    let status = block.status().unwrap_or(502);
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    // Writing to a `Vec` cannot fail.
    let _ = write!(out, "HTTP/1.1 {status} {reason}\r\n");
    block.write_lines(|_| false, out);
    if framed == Some(ClientFraming::Chunked) {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

impl Client<'_> {
    /// Sends the response to the client and finishes the exchange.
    async fn respond_from_h2(
        &mut self,
        request: &Request<'_>,
        stream: &Stream,
        block: FieldBlock,
        body_end: Option<usize>,
    ) -> After {
        let head = request.head;
        let status = block.status().unwrap_or(502);
        let bodiless = request.asked.head_method || status == 204 || status == 304;
        let framed = if bodiless || block.content_length.is_some() {
            ClientFraming::AsIs
        } else if head.http10 {
            ClientFraming::Close
        } else {
            ClientFraming::Chunked
        };
        let draining = self.shutdown.has_changed().unwrap_or(true) && *self.shutdown.borrow();
        let keep_client = body_end.is_some()
            && !draining
            && framed != ClientFraming::Close
            && !head.connection.close
            && (!head.http10 || head.connection.keep_alive);
        self.parts.out.clear();
        write_head(&block, !keep_client, Some(framed), &mut self.parts.out);
        let mut sampler =
            response_sampler(request.settings, request.asked.head_method, block.headers());
        let relayed = self
            .relay_h2_body(request, stream, framed, &mut sampler)
            .await;
        let answered = Answered::new(block.headers(), false, sampler, status, &relayed);
        let (outcome, upstream_error) = (answered.outcome, answered.upstream_error);
        let ended = finish_answered(&self.engine.recorder, &self.parts.inbuf, request, answered);
        self.last_ended = Some(ended);
        match (outcome, upstream_error, body_end) {
            (Outcome::Upstream(_), None, Some(next)) if keep_client => {
                self.consume(next);
                After::KeepAlive
            }
            (Outcome::Upstream(_), None, None) => After::Linger,
            (Outcome::Upstream(_), None, _) => After::Close,
            _ => After::Gone,
        }
    }

    /// Streams the response body from the inbox to the client (after the head in `out`),
    /// giving the upstream its window back as the client takes the bytes.
    async fn relay_h2_body(
        &mut self,
        request: &Request<'_>,
        stream: &Stream,
        framed: ClientFraming,
        sampler: &mut Option<Sampler>,
    ) -> Result<(), Failure> {
        let mut data = Vec::new();
        // What follows the data: the chunk's CRLF, the last chunk and trailers.
        let mut tail = Vec::new();
        let timeouts = &request.settings.timeouts;
        loop {
            let deadline = || Some(read_deadline(timeouts.read, request.response_deadline));
            let end = self
                .parts
                .deadline
                .run(deadline, poll_fn(|cx| poll_body(cx, stream, &mut data)))
                .await
                .ok_or(upstream_failure(UpstreamErrorKind::ReadTimeout, false))?;
            if let Some(sampler) = sampler.as_mut() {
                sampler.feed(&data);
            }
            let chunked = framed == ClientFraming::Chunked;
            if chunked && !data.is_empty() {
                write_chunk_size(data.len(), &mut self.parts.out);
                tail.extend_from_slice(b"\r\n");
            }
            match &end {
                Some(InboxEnd::Failed(kind)) => return Err(upstream_failure(*kind, false)),
                Some(InboxEnd::Refused) => {
                    return Err(upstream_failure(UpstreamErrorKind::Reset, false))
                }
                Some(InboxEnd::Trailers(block)) if chunked => {
                    write_last_chunk(Some(block), &mut tail)
                }
                Some(_) if chunked => write_last_chunk(None, &mut tail),
                _ => {}
            }
            let written = self
                .parts
                .deadline
                .run(
                    || request.response_deadline,
                    write_all_vectored(
                        &mut self.stream,
                        &mut [
                            IoSlice::new(&self.parts.out),
                            IoSlice::new(&data),
                            IoSlice::new(&tail),
                        ],
                    ),
                )
                .await;
            match written {
                None => return Err(upstream_failure(UpstreamErrorKind::ResponseTimeout, false)),
                Some(Err(_)) => return Err(Failure::ClientGone),
                Some(Ok(())) => {}
            }
            self.parts.out.clear();
            tail.clear();
            let taken = data.len();
            data.clear();
            let mut side = lock(&stream.upstream);
            side.conn.consumed(stream.key, taken);
            side.send_now();
            if end.is_some() {
                return Ok(());
            }
        }
    }
}

/// Takes what the inbox holds of the body into `data`; `Ready(Some(end))` with the end once it
/// came, `Ready(None)` with bytes only.
fn poll_body(cx: &mut Context<'_>, stream: &Stream, data: &mut Vec<u8>) -> Poll<Option<InboxEnd>> {
    with_inbox(stream, |_, inbox| {
        std::mem::swap(data, &mut inbox.data);
        if inbox.end.is_some() {
            return Poll::Ready(inbox.end.take());
        }
        if !data.is_empty() {
            return Poll::Ready(None);
        }
        inbox.waker = Some(cx.waker().clone());
        Poll::Pending
    })
}
