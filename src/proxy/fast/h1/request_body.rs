//! The request body on its way to an HTTP/1 upstream while the upstream's answer is awaited.
//!
//! An upstream may answer before it has read the whole body (a 413, a 401), so the wait for
//! the response head also sends what is left of the body, reads more of it from the client,
//! and, once the body is sent, watches the client for a hang-up (tallied as 499 at once) or
//! the next pipelined request. Every source is polled in one loop; when all are pending, the
//! earliest deadline that applies is armed on the connection's one timer.

use std::future::poll_fn;
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::body::BodyLeft;
use super::connection::{Client, Parts};
use crate::classify::UpstreamErrorKind;
use crate::config::Timeouts;
use crate::proxy::fast::upstream::http1::UpstreamConn;
use crate::proxy::fast::upstream::response_head::{self, Asked, Parsed, ResponseHead};
use crate::rules::FieldSpan;

/// The earlier of two optional instants.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Why an exchange could not be carried to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// Talking to the upstream failed; `nothing_back` when not a byte of an answer had come.
    Upstream {
        kind: UpstreamErrorKind,
        nothing_back: bool,
    },
    /// The client hung up.
    ClientGone,
    /// The client's chunked body is malformed, as said.
    BadChunk(&'static str),
}

pub(super) fn upstream_failure(kind: UpstreamErrorKind, nothing_back: bool) -> Failure {
    Failure::Upstream { kind, nothing_back }
}

/// The request body on its way from the client to the upstream.
pub(super) struct Pump {
    pub(super) left: BodyLeft,
    /// Body bytes in the client buffer not yet written to the upstream.
    pub(super) pending: Range<usize>,
    /// Where the body begins in the client buffer; later body bytes are read there too.
    pub(super) area: usize,
    /// Where the next request begins in the client buffer, once known.
    pub(super) next_request: Option<usize>,
    /// Body bytes came after those read with the head: the request cannot be sent again.
    pub(super) streamed: bool,
    /// The upstream stopped taking the body (it answered early, or failed).
    pub(super) abandoned: bool,
    /// Since when a write to the upstream has been waiting.
    pub(super) writing_since: Option<Instant>,
    /// Since when the upstream has owed an answer without sending a byte; `None` for "the
    /// last progress was just now", read from the clock only if a wait follows.
    pub(super) quiet_since: Option<Instant>,
}

impl Pump {
    /// A request body of which `with_head` bytes came with its head, which ends at `head_len`.
    pub(super) fn new(left: BodyLeft, head_len: usize, with_head: usize, started: Instant) -> Pump {
        let body_end = head_len + with_head;
        Pump {
            pending: body_end..body_end,
            area: head_len,
            next_request: left.is_done().then_some(body_end),
            left,
            streamed: false,
            abandoned: false,
            writing_since: None,
            quiet_since: Some(started),
        }
    }

    /// The whole body has been read and sent.
    pub(super) fn complete(&self) -> bool {
        self.left.is_done() && self.pending.is_empty()
    }

    /// Writes pending body bytes to the upstream; `true` when something happened.
    fn poll_send<W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        upstream: &mut W,
        inbuf: &[u8],
    ) -> bool {
        match Pin::new(upstream).poll_write(cx, &inbuf[self.pending.clone()]) {
            Poll::Ready(Ok(n)) if n > 0 => {
                self.pending.start += n;
                self.writing_since = None;
                if self.complete() {
                    self.quiet_since = None;
                }
                true
            }
            // It stopped reading: its answer, or its failure, is on the way.
            Poll::Ready(_) => {
                self.abandoned = true;
                true
            }
            Poll::Pending => {
                self.writing_since.get_or_insert_with(Instant::now);
                false
            }
        }
    }

    /// Reads from the client: more of the body, read where the body began, or, once the body
    /// is sent, whatever comes (a hang-up, or the next pipelined request, kept in the buffer).
    /// `Ok(true)` when something happened.
    fn poll_client<R: AsyncRead + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        client: &mut R,
        inbuf: &mut [u8],
        end: &mut usize,
    ) -> Poll<Result<bool, Failure>> {
        let body = !self.left.is_done();
        if body {
            self.streamed = true;
            *end = self.area;
        } else if *end == inbuf.len() {
            return Poll::Ready(Ok(false));
        }
        let mut read = ReadBuf::new(&mut inbuf[*end..]);
        match Pin::new(client).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Ready(Ok(false)),
            Poll::Ready(Err(_)) => Poll::Ready(Err(Failure::ClientGone)),
            Poll::Ready(Ok(())) if read.filled().is_empty() => {
                Poll::Ready(Err(Failure::ClientGone))
            }
            Poll::Ready(Ok(())) => {
                let n = read.filled().len();
                *end += n;
                if body {
                    let taken = self
                        .left
                        .advance(&inbuf[self.area..*end], |_| {})
                        .map_err(Failure::BadChunk)?;
                    self.pending = self.area..self.area + taken;
                    if self.left.is_done() {
                        self.next_request = Some(self.area + taken);
                    }
                }
                Poll::Ready(Ok(true))
            }
        }
    }

    /// With every source pending: whether the earliest deadline that applies has passed (and
    /// the failure it is), else the timer is armed for it.
    #[inline]
    fn poll_deadline(
        &mut self,
        cx: &mut Context<'_>,
        timer: &mut crate::proxy::fast::deadline::Deadline,
        timeouts: &Timeouts,
        response_deadline: Option<Instant>,
        nothing_back: bool,
    ) -> Option<Failure> {
        let writing = self.writing_since.map(|since| since + timeouts.write);
        let reading = (self.complete() || self.abandoned)
            .then(|| *self.quiet_since.get_or_insert_with(Instant::now) + timeouts.read);
        let deadline = earliest(response_deadline, earliest(writing, reading))?;
        if !timer.poll_passed(cx, deadline) {
            return None;
        }
        let kind = if response_deadline == Some(deadline) {
            UpstreamErrorKind::ResponseTimeout
        } else if writing == Some(deadline) {
            UpstreamErrorKind::WriteTimeout
        } else {
            UpstreamErrorKind::ReadTimeout
        };
        Some(upstream_failure(kind, nothing_back))
    }
}

/// Reads from the upstream what is there of its response head; `Ready(Ok(None))` when bytes
/// came but the head is not complete, `Pending` when none came.
#[inline]
fn poll_head(
    cx: &mut Context<'_>,
    upstream: &mut UpstreamConn,
    asked: Asked,
    spans: &mut Vec<FieldSpan>,
) -> Poll<Result<Option<ResponseHead>, Failure>> {
    if upstream.filled == upstream.buf.len() {
        if upstream.buf.len() >= response_head::MAX_RESPONSE_HEAD_BYTES {
            return Poll::Ready(Err(upstream_failure(UpstreamErrorKind::Other, false)));
        }
        let grown = upstream.buf.len() * 2;
        upstream.buf.resize(grown, 0);
    }
    let mut read = ReadBuf::new(&mut upstream.buf[upstream.filled..]);
    let reset = upstream_failure(UpstreamErrorKind::Reset, upstream.filled == 0);
    match Pin::new(&mut upstream.stream).poll_read(cx, &mut read) {
        Poll::Pending => Poll::Pending,
        Poll::Ready(Err(_)) => Poll::Ready(Err(reset)),
        Poll::Ready(Ok(())) if read.filled().is_empty() => Poll::Ready(Err(reset)),
        Poll::Ready(Ok(())) => {
            upstream.filled += read.filled().len();
            Poll::Ready(parsed_head(upstream, asked, spans))
        }
    }
}

/// The response head in the upstream's buffer, if it is complete.
#[inline]
fn parsed_head(
    upstream: &UpstreamConn,
    asked: Asked,
    spans: &mut Vec<FieldSpan>,
) -> Result<Option<ResponseHead>, Failure> {
    match response_head::parse(&upstream.buf[..upstream.filled], asked, spans) {
        Parsed::Complete(head) => Ok(Some(head)),
        Parsed::Invalid(_) => Err(upstream_failure(UpstreamErrorKind::Other, false)),
        Parsed::Partial => Ok(None),
    }
}

impl Client<'_> {
    /// Sends what is left of the request body while waiting for the upstream's next response
    /// head, watching the client for a hang-up once the body is sent.
    pub(super) async fn await_head(
        &mut self,
        upstream: &mut UpstreamConn,
        pump: &mut Pump,
        asked: Asked,
        timeouts: &Timeouts,
        response_deadline: Option<Instant>,
    ) -> Result<ResponseHead, Failure> {
        // The head may have come with an interim response's bytes.
        if upstream.filled > 0 {
            if let Some(head) = parsed_head(upstream, asked, &mut self.parts.spans)? {
                return Ok(head);
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
        poll_fn(|cx| loop {
            let mut progressed = false;
            match poll_head(cx, upstream, asked, spans) {
                Poll::Ready(Ok(Some(head))) => {
                    // A final answer before the whole body: the upstream wants no more.
                    pump.abandoned |= head.status >= 200 && !pump.complete();
                    return Poll::Ready(Ok(head));
                }
                Poll::Ready(Ok(None)) => {
                    pump.quiet_since = None;
                    progressed = true;
                }
                Poll::Ready(Err(failure)) => return Poll::Ready(Err(failure)),
                Poll::Pending => {}
            }
            // Nothing more goes up once it is abandoned; the client is not read until the
            // answer is in.
            if !pump.abandoned {
                progressed |= if pump.pending.is_empty() {
                    match pump.poll_client(cx, client, inbuf, end) {
                        Poll::Ready(Ok(read)) => read,
                        Poll::Ready(Err(failure)) => return Poll::Ready(Err(failure)),
                        Poll::Pending => false,
                    }
                } else {
                    pump.poll_send(cx, &mut upstream.stream, inbuf)
                };
            }
            if progressed {
                continue;
            }
            let nothing_back = upstream.filled == 0;
            return match pump.poll_deadline(cx, timer, timeouts, response_deadline, nothing_back) {
                Some(failure) => Poll::Ready(Err(failure)),
                None => Poll::Pending,
            };
        })
        .await
    }
}
