//! An HTTP/2 client stream carried to an HTTP/1 upstream (`upstream_protocol: http1`, the
//! default): a future in the client connection's task, one per stream, on a connection from
//! the worker's HTTP/1 pool.
//!
//! The request goes out as HTTP/1.1: `:authority` becomes `Host`, cookie crumbs are joined
//! (RFC 9113 §8.2.3), the body is framed by its `content-length` or chunked, and request
//! trailers end the chunked body. The response comes back as HTTP/2: the status, the fields
//! but the hop-by-hop ones with their names lowercased, the body by its framing, and the
//! trailers of a chunked body as an HTTP/2 trailer block. The body is read from the upstream
//! only while the client's stream has window: backpressure both ways.

use std::future::poll_fn;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWriteExt};

use super::answer;
use super::exchange::{Carried, Link};
use super::{lock, ClientSide, Shared};
use crate::classify::UpstreamErrorKind;
use crate::proxy::chunked::{write_chunk_size, write_last_chunk};
use crate::proxy::fast::deadline::{read_deadline, Deadline};
use crate::proxy::fast::h1::BodyLeft;
use crate::proxy::fast::upstream::http1::UpstreamConn;
use crate::proxy::fast::upstream::response_head::{self, Asked, Framing, Parsed, ResponseHead};
use crate::proxy::finish::{response_sampler, Outcome};
use crate::proxy::h2::conn::StreamKey;
use crate::proxy::h2::fields::{field_problem, FieldBlock};
use crate::proxy::h2::hpack::encode_field;
use crate::rules::FieldSpan;

/// What the client's task hands an HTTP/1 call: the request body as it arrives.
#[derive(Debug, Default)]
pub(in crate::proxy::fast) struct Http1Call {
    /// Body bytes received and not yet taken by the call.
    body: Vec<u8>,
    /// The request's half ended; `trailers` holds its trailer block if it had one.
    ended: bool,
    /// Boxed: trailers are rare, and unboxed they would make every exchange's `Link` as large
    /// as a field block.
    trailers: Option<Box<FieldBlock>>,
    waker: Option<Waker>,
}

impl Http1Call {
    /// Hands the call more of the request body (and its end).
    pub(in crate::proxy::fast) fn deliver(&mut self, data: &[u8], end_stream: bool) {
        self.body.extend_from_slice(data);
        self.ended |= end_stream;
        self.wake();
    }

    /// Hands the call the request's trailers, which end it.
    pub(in crate::proxy::fast) fn deliver_trailers(&mut self, trailers: &FieldBlock) {
        let mut kept = FieldBlock::default();
        kept.copy_from(trailers);
        self.trailers = Some(Box::new(kept));
        self.deliver(&[], true);
    }

    /// Wakes the call: its client stream has window again, or body came.
    pub(in crate::proxy::fast) fn wake(&self) {
        if let Some(waker) = &self.waker {
            waker.wake_by_ref();
        }
    }
}

/// How a request body is framed for an HTTP/1 upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpstreamFraming {
    /// As its `content-length` says, or it has none.
    AsIs,
    /// A `content-length` statuscope adds: the whole body arrived with the head.
    Length(usize),
    /// Chunked: its length is not known, or trailers end it.
    Chunked,
}

/// Writes the HTTP/1.1 request head for an HTTP/2 request, its body framed as `framed`.
fn request_head(request: &FieldBlock, framed: UpstreamFraming, out: &mut Vec<u8>) {
    let pseudo = |span| request.pseudo(span).unwrap_or_default();
    out.clear();
    out.extend_from_slice(pseudo(request.pseudo.method));
    out.push(b' ');
    out.extend_from_slice(pseudo(request.pseudo.path));
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if request.get("host").is_none() {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(pseudo(request.pseudo.authority));
        out.extend_from_slice(b"\r\n");
    }
    let mut cookies = request.headers().all("cookie").peekable();
    if cookies.peek().is_some() {
        out.extend_from_slice(b"cookie: ");
        for (i, crumb) in cookies.enumerate() {
            if i > 0 {
                out.extend_from_slice(b"; ");
            }
            out.extend_from_slice(crumb);
        }
        out.extend_from_slice(b"\r\n");
    }
    // `te: trailers` is for this hop (HTTP/2 allows no other hop-by-hop field): statuscope
    // asks for trailers itself, as it passes them on.
    request.write_lines(|name| name == b"cookie" || name == b"te", out);
    if request.get("te").is_some() {
        out.extend_from_slice(b"te: trailers\r\nconnection: te\r\n");
    }
    match framed {
        UpstreamFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        // Writing to a `Vec` cannot fail.
        UpstreamFraming::Length(n) => drop(write!(out, "content-length: {n}\r\n")),
        UpstreamFraming::AsIs => {}
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes a piece of a chunked body (`data` empty for none), and its end when `last`.
fn chunk(data: &[u8], last: Option<Option<&FieldBlock>>, out: &mut Vec<u8>) {
    if !data.is_empty() {
        write_chunk_size(data.len(), out);
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(trailers) = last {
        write_last_chunk(trailers, out);
    }
}

/// How a call failed.
enum Failed {
    Upstream(UpstreamErrorKind),
    ClientGone,
}

/// Carries the exchange of client stream `key` to an HTTP/1 upstream, to its end.
pub(super) async fn carry(client: Shared<ClientSide>, key: StreamKey, pool_capacity: usize) {
    let mut timer = Deadline::default();
    let mut call = Call {
        client: &client,
        key,
        out: Vec::with_capacity(1024),
        spans: Vec::new(),
    };
    let result = call.run(&mut timer, pool_capacity).await;
    let mut side = lock(&client);
    let now = Instant::now();
    match result {
        Ok(()) => {}
        Err(Failed::Upstream(kind)) => answer::fail(&mut side, key, kind, now),
        Err(Failed::ClientGone) => answer::client_gone(&mut side, key, now),
    }
}

/// One call's state.
struct Call<'a> {
    client: &'a Shared<ClientSide>,
    key: StreamKey,
    /// A head or body piece for the upstream.
    out: Vec<u8>,
    spans: Vec<FieldSpan>,
}

/// Runs `act` on the exchange of client stream `key`, if it is still there and has not ended.
fn with<T>(
    client: &Shared<ClientSide>,
    key: StreamKey,
    act: impl FnOnce(&mut ClientSide, &mut Carried) -> T,
) -> Result<T, Failed> {
    let mut side = lock(client);
    let mut exchange = side
        .conn
        .streams
        .get_mut(key)
        .and_then(|s| s.user.exchange.take())
        .filter(|e| e.ending.is_none())
        .ok_or(Failed::ClientGone)?;
    let result = act(&mut side, &mut exchange);
    if let Some(stream) = side.conn.streams.get_mut(key) {
        stream.user.exchange = Some(exchange);
    }
    Ok(result)
}

impl Call<'_> {
    async fn run(&mut self, timer: &mut Deadline, pool_capacity: usize) -> Result<(), Failed> {
        let mut out = std::mem::take(&mut self.out);
        let (settings, started, asked, chunked) = with(self.client, self.key, |_, exchange| {
            let framed = match &exchange.upstream {
                _ if exchange.request.content_length.is_some() => UpstreamFraming::AsIs,
                Link::Http1(call) if call.ended && call.trailers.is_none() => match call.body.len()
                {
                    0 => UpstreamFraming::AsIs,
                    n => UpstreamFraming::Length(n),
                },
                _ => UpstreamFraming::Chunked,
            };
            request_head(&exchange.request, framed, &mut out);
            let asked = Asked {
                head_method: exchange.method == http::Method::HEAD,
            };
            let chunked = framed == UpstreamFraming::Chunked;
            (exchange.settings.clone(), exchange.started, asked, chunked)
        })?;
        self.out = out;
        let mut upstream =
            match UpstreamConn::checkout(settings.upstream, settings.timeouts.idle, started) {
                Some(upstream) => upstream,
                None => timer
                    .run(
                        || Some(Instant::now() + settings.timeouts.connect),
                        UpstreamConn::connect(settings.upstream),
                    )
                    .await
                    .unwrap_or(Err(UpstreamErrorKind::ConnectTimeout))
                    .map_err(Failed::Upstream)?,
            };
        let response_deadline = settings.timeouts.response.map(|limit| started + limit);
        let (response, body_sent) = self
            .send(
                &mut upstream,
                timer,
                chunked,
                asked,
                &settings.timeouts,
                response_deadline,
            )
            .await?;
        let clean = self
            .respond(
                &mut upstream,
                timer,
                response.clone(),
                &settings,
                response_deadline,
            )
            .await?;
        // An upstream that answered before the whole body was sent would read what is left of
        // it as the next request: the connection is not kept.
        if clean && body_sent && response.persistent {
            upstream.mark_drained();
            upstream.checkin(pool_capacity, Instant::now());
        }
        Ok(())
    }

    /// Sends the head and the body as it arrives, and waits for the final response head,
    /// passing interim ones on; says whether the whole body went out.
    async fn send(
        &mut self,
        upstream: &mut UpstreamConn,
        timer: &mut Deadline,
        chunked: bool,
        asked: Asked,
        timeouts: &crate::config::Timeouts,
        response_deadline: Option<Instant>,
    ) -> Result<(ResponseHead, bool), Failed> {
        let write_deadline = || Some(Instant::now() + timeouts.write);
        let mut body_done = false;
        let mut answered = None;
        while !body_done && answered.is_none() {
            let written = timer
                .run(write_deadline, upstream.stream.write_all(&self.out))
                .await;
            match written {
                None => return Err(Failed::Upstream(UpstreamErrorKind::WriteTimeout)),
                Some(Err(_)) => return Err(Failed::Upstream(UpstreamErrorKind::Reset)),
                Some(Ok(())) => {}
            }
            self.out.clear();
            // More body, or the upstream's early answer, whichever comes.
            let next = poll_fn(|cx| self.poll_body(cx, upstream, chunked, asked)).await?;
            match next {
                Next::Body(done) => body_done = done,
                Next::Answer(head) => answered = Some(head),
            }
        }
        if !self.out.is_empty() {
            let written = timer
                .run(write_deadline, upstream.stream.write_all(&self.out))
                .await;
            if !matches!(written, Some(Ok(()))) {
                return Err(Failed::Upstream(UpstreamErrorKind::Reset));
            }
        }
        loop {
            let head = match answered.take() {
                Some(head) => head,
                None => {
                    self.await_head(upstream, timer, asked, timeouts, response_deadline)
                        .await?
                }
            };
            if !(100..200).contains(&head.status) {
                return Ok((head, body_done));
            }
            if head.status == 101 {
                return Err(Failed::Upstream(UpstreamErrorKind::Other));
            }
            self.pass_interim(upstream, &head)?;
        }
    }

    /// Waits for request body bytes (taken into `out`, framed) or the upstream's answer.
    fn poll_body(
        &mut self,
        cx: &mut Context<'_>,
        upstream: &mut UpstreamConn,
        chunked: bool,
        asked: Asked,
    ) -> Poll<Result<Next, Failed>> {
        if let Poll::Ready(head) = self.poll_head(cx, upstream, asked)? {
            return Poll::Ready(Ok(Next::Answer(head)));
        }
        let (client, key, out) = (self.client, self.key, &mut self.out);
        let taken = with(client, key, |side, exchange| {
            let Some(Link::Http1(call)) = Some(&mut exchange.upstream) else {
                return None;
            };
            if call.body.is_empty() && !call.ended {
                call.waker = Some(cx.waker().clone());
                return None;
            }
            let n = call.body.len();
            let end = call.ended.then_some(call.trailers.as_deref());
            if chunked {
                chunk(&call.body, end, out);
            } else {
                out.extend_from_slice(&call.body);
            }
            call.body.clear();
            side.conn.consumed(key, n);
            side.conn.wake();
            Some(call.ended)
        })?;
        match taken {
            Some(done) => Poll::Ready(Ok(Next::Body(done))),
            None => Poll::Pending,
        }
    }

    /// Reads what the upstream sent of a response head, if anything.
    fn poll_head(
        &mut self,
        cx: &mut Context<'_>,
        upstream: &mut UpstreamConn,
        asked: Asked,
    ) -> Poll<Result<ResponseHead, Failed>> {
        loop {
            if upstream.filled > 0 {
                match response_head::parse(&upstream.buf[..upstream.filled], asked, &mut self.spans)
                {
                    Parsed::Complete(head) => return Poll::Ready(Ok(head)),
                    Parsed::Invalid(_) => {
                        return Poll::Ready(Err(Failed::Upstream(UpstreamErrorKind::Other)))
                    }
                    Parsed::Partial => {}
                }
            }
            if upstream.filled == upstream.buf.len() {
                let grown = upstream.buf.len() * 2;
                upstream.buf.resize(grown, 0);
            }
            let mut buf = tokio::io::ReadBuf::new(&mut upstream.buf[upstream.filled..]);
            match Pin::new(&mut upstream.stream).poll_read(cx, &mut buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    upstream.filled += buf.filled().len()
                }
                Poll::Ready(_) => {
                    return Poll::Ready(Err(Failed::Upstream(UpstreamErrorKind::Reset)))
                }
            }
        }
    }

    /// Waits for the next response head, within the read timeout and the response deadline.
    async fn await_head(
        &mut self,
        upstream: &mut UpstreamConn,
        timer: &mut Deadline,
        asked: Asked,
        timeouts: &crate::config::Timeouts,
        response_deadline: Option<Instant>,
    ) -> Result<ResponseHead, Failed> {
        let deadline = || Some(read_deadline(timeouts.read, response_deadline));
        match timer
            .run(deadline, poll_fn(|cx| self.poll_head(cx, upstream, asked)))
            .await
        {
            Some(head) => head,
            None if response_deadline.is_some_and(|limit| Instant::now() >= limit) => {
                Err(Failed::Upstream(UpstreamErrorKind::ResponseTimeout))
            }
            None => Err(Failed::Upstream(UpstreamErrorKind::ReadTimeout)),
        }
    }

    /// Passes an interim response on to the client.
    fn pass_interim(
        &mut self,
        upstream: &mut UpstreamConn,
        head: &ResponseHead,
    ) -> Result<(), Failed> {
        let (spans, key) = (&self.spans, self.key);
        with(self.client, key, |side, exchange| {
            exchange.sent_continue |= head.status == 100;
            side.conn.send_headers(key, false, |out| {
                encode_head(out, head, &upstream.buf, spans)
            });
            side.conn.wake();
        })?;
        upstream.buf.copy_within(head.len..upstream.filled, 0);
        upstream.filled -= head.len;
        Ok(())
    }
}

/// What waiting for more request body found.
enum Next {
    /// Body bytes were taken (into `out`); `true` when they were the last.
    Body(bool),
    /// The upstream answered before the body was all sent.
    Answer(ResponseHead),
}

/// Encodes an HTTP/1 response head as an HTTP/2 header block: the status, then the fields the
/// next hop may see, names lowercased.
fn encode_head(out: &mut Vec<u8>, head: &ResponseHead, buf: &[u8], spans: &[FieldSpan]) {
    encode_field(
        out,
        b":status",
        itoa::Buffer::new().format(head.status).as_bytes(),
    );
    let mut name = Vec::new();
    for span in spans {
        let field = span.of(buf);
        if forwarded(head, buf, spans, field.name) {
            name.clear();
            name.extend(field.name.iter().map(u8::to_ascii_lowercase));
            encode_field(out, &name, field.value);
        }
    }
}

/// Whether a field of an HTTP/1 response goes on to an HTTP/2 client.
fn forwarded(head: &ResponseHead, buf: &[u8], spans: &[FieldSpan], name: &[u8]) -> bool {
    !head.is_dropped(buf, spans, name) && !name.eq_ignore_ascii_case(b"transfer-encoding")
}

impl Call<'_> {
    /// Sends the final response head and streams the body to the client as its window allows;
    /// `Ok(true)` when the body ended where its framing said.
    async fn respond(
        &mut self,
        upstream: &mut UpstreamConn,
        timer: &mut Deadline,
        head: ResponseHead,
        settings: &crate::proxy::settings::LiveSettings,
        response_deadline: Option<Instant>,
    ) -> Result<bool, Failed> {
        let (spans, key) = (&self.spans, self.key);
        let no_body = head.framing == Framing::None || head.framing == Framing::Length(0);
        with(self.client, key, |side, exchange| {
            let mut block = std::mem::take(&mut exchange.response);
            block.reset(response_head::MAX_RESPONSE_HEAD_BYTES);
            block.push(
                b":status",
                itoa::Buffer::new().format(head.status).as_bytes(),
            );
            let mut name = Vec::new();
            for span in spans {
                let field = span.of(&upstream.buf);
                if forwarded(&head, &upstream.buf, spans, field.name) {
                    name.clear();
                    name.extend(field.name.iter().map(u8::to_ascii_lowercase));
                    block.push(&name, field.value);
                }
            }
            exchange.status = Some(head.status);
            exchange.sampler = response_sampler(
                settings,
                exchange.method == http::Method::HEAD,
                block.headers(),
            );
            side.conn
                .send_headers(key, no_body, |out| block.encode(out));
            exchange.response = block;
            side.conn.wake();
        })?;
        let mut body = BodyLeft::of_response(head.framing).keeping_trailers();
        upstream.buf.copy_within(head.len..upstream.filled, 0);
        upstream.filled -= head.len;
        let clean = loop {
            let arrived = upstream.filled;
            let taken = self.relay_piece(&mut body, &upstream.buf[..arrived])?;
            let clean = taken == arrived;
            upstream.filled = 0;
            if body.is_done() {
                break clean;
            }
            poll_fn(|cx| self.poll_window(cx)).await?;
            match upstream
                .read_more(timer, settings.timeouts.read, response_deadline)
                .await
            {
                Ok(0) if matches!(body, BodyLeft::UntilClose) => break true,
                Ok(0) => return Err(Failed::Upstream(UpstreamErrorKind::Truncated)),
                Ok(n) => upstream.filled = n,
                Err(kind) => return Err(Failed::Upstream(kind)),
            }
        };
        self.finish_body(&body)?;
        Ok(clean && !matches!(body, BodyLeft::UntilClose))
    }

    /// Sends the body data among `bytes` to the client; returns how many bytes were the body's.
    fn relay_piece(&mut self, body: &mut BodyLeft, bytes: &[u8]) -> Result<usize, Failed> {
        with(self.client, self.key, |side, exchange| {
            let key = self.key;
            let sampler = &mut exchange.sampler;
            body.advance(bytes, |data| {
                if let Some(sampler) = sampler.as_mut() {
                    sampler.feed(data);
                }
                side.conn.send_data(key, data, false);
            })
            .map_err(|_| Failed::Upstream(UpstreamErrorKind::Other))
        })?
    }

    /// Waits until the client's stream has sent what it queued.
    fn poll_window(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Failed>> {
        let ready = with(self.client, self.key, |side, exchange| {
            let blocked = side
                .conn
                .streams
                .get(self.key)
                .is_some_and(|s| s.is_blocked());
            if blocked {
                if let Link::Http1(call) = &mut exchange.upstream {
                    call.waker = Some(cx.waker().clone());
                }
            }
            !blocked
        })?;
        if ready {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    /// Ends the client's stream, with the chunked body's trailers if it had some, and the
    /// exchange.
    fn finish_body(&mut self, body: &BodyLeft) -> Result<(), Failed> {
        let now = Instant::now();
        let mut lines = body.trailers().unwrap_or_default().to_vec();
        lines.extend_from_slice(b"\r\n");
        let mut fields = [httparse::EMPTY_HEADER; 64];
        let trailers =
            (lines.len() > 2).then_some(()).and_then(|()| {
                match httparse::parse_headers(&lines, &mut fields) {
                    Ok(httparse::Status::Complete((_, parsed))) => Some(trailer_block(parsed)),
                    _ => None,
                }
            });
        let mut side = lock(self.client);
        let Some(mut exchange) = side
            .conn
            .streams
            .get_mut(self.key)
            .and_then(|s| s.user.exchange.take())
        else {
            return Err(Failed::ClientGone);
        };
        match trailers {
            Some(block) => {
                side.conn
                    .send_headers(self.key, true, |out| block.encode(out));
                exchange.trailers = block;
                exchange.has_trailers = true;
            }
            None if side
                .conn
                .streams
                .get(self.key)
                .is_some_and(|s| s.is_sending()) =>
            {
                side.conn.send_data(self.key, &[], true);
            }
            None => {}
        }
        let status = exchange.status.unwrap_or(0);
        answer::end(
            &mut side,
            self.key,
            exchange,
            Outcome::Upstream(status),
            None,
            now,
        );
        Ok(())
    }
}

/// HTTP/1 trailer fields as an HTTP/2 trailer block: names lowercased, fields HTTP/2 forbids
/// left out.
fn trailer_block(fields: &[httparse::Header<'_>]) -> FieldBlock {
    let mut block = FieldBlock::default();
    block.reset(response_head::MAX_RESPONSE_HEAD_BYTES);
    let mut name = Vec::new();
    for field in fields {
        name.clear();
        name.extend(field.name.bytes().map(|b| b.to_ascii_lowercase()));
        if field_problem(&name, field.value).is_none() {
            block.push(&name, field.value);
        }
    }
    block
}
