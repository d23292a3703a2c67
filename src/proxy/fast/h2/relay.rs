//! HTTP/2 to HTTP/2, frame by frame: what each side's events do to the other side.
//!
//! The client's task calls [`client_event`] for what a client sends (a request head opens an
//! upstream stream, body bytes and trailers follow it, a reset cancels it); an upstream
//! connection's task calls [`upstream_event`] for what the upstream sends (interim and final
//! heads, body bytes, trailers, resets, GOAWAY). Each re-encodes or copies straight into the
//! other connection's write buffer and wakes that connection's task to write it. Bytes go on
//! only as far as the receiving side's windows allow; the rest waits in its stream, and the
//! sender's window is given back only for what went on ([`client_window`],
//! [`upstream_window`]): backpressure both ways, with a stream's buffer bounded by the window
//! statuscope announced for it.

use std::time::Instant;

use super::answer::{self, write_answer};
use super::exchange::{Carried, Link};
use super::to_http1::Http1Call;
use super::{lock, outbox, ClientSide, Peer, Shared};
use crate::classify::UpstreamErrorKind;
use crate::config::UpstreamProtocol;
use crate::proxy::error_response::ProxyError;
use crate::proxy::fast::h1::is_idempotent;
use crate::proxy::fast::upstream::h2::{self as pool, Inbox, InboxEnd, OnUpstream, UpstreamSide};
use crate::proxy::fast::FastEngine;
use crate::proxy::finish::{response_sampler, Outcome};
use crate::proxy::h2::conn::{Event, HeadKind, StreamKey};
use crate::proxy::h2::fields::FieldBlock;
use crate::proxy::h2::frame::Reason;

/// What the client's task lends its event handling.
pub(super) struct ClientTask<'a> {
    pub engine: &'a FastEngine,
    /// The client connection, for the upstream streams to link back to.
    pub me: &'a Shared<ClientSide>,
    pub now: Instant,
    /// Streams whose request head came in this batch, sent on at its end.
    pub opened: &'a mut Vec<StreamKey>,
    /// Streams that go to an HTTP/1 upstream: the task starts their futures.
    pub http1: &'a mut Vec<StreamKey>,
}

/// Acts on one event of a client connection.
pub(super) fn client_event(side: &mut ClientSide, event: Event<'_>, task: &mut ClientTask<'_>) {
    match event {
        Event::Headers {
            key,
            kind: HeadKind::Request,
            end_stream,
        } => request_head(side, key, end_stream, task),
        Event::Headers { key, .. } => request_trailers(side, key, task.now),
        Event::Data {
            key,
            data,
            end_stream,
        } => request_data(side, key, data, end_stream, task.now),
        Event::Reset { key, .. } => {
            answer::client_gone(side, key, task.now);
            unlink(side, key);
            remove_if_closed(side, key);
        }
        Event::WindowOpened(key) => client_window(side, key),
        Event::GoAway { .. } => {}
    }
}

/// A request head: refused, shed, or sent on to the upstream.
fn request_head(
    side: &mut ClientSide,
    key: StreamKey,
    end_stream: bool,
    task: &mut ClientTask<'_>,
) {
    let engine = task.engine;
    let settings = engine.settings.current();
    let in_flight = engine.in_flight.arrive();
    let block = side.conn.block();
    let refusal = refusal_of(block);
    let permit = match refusal {
        None => engine.in_flight.try_admit(settings.max_in_flight),
        Some(_) => None,
    };
    let mut exchange = Carried::new(settings, task.now, in_flight, None, block);
    exchange.request_ended = end_stream;
    let refusal = refusal
        .or((permit.is_none()).then_some((ProxyError::OVERLOADED, ProxyError::OVERLOADED.detail)));
    if let Some((answer, detail)) = refusal {
        write_answer(&mut side.conn, key, answer, detail, exchange.grpc.is_some());
        return answer::end(side, key, exchange, Outcome::Proxy(answer), None, task.now);
    }
    exchange.set_permit(permit);
    if let Some(stream) = side.conn.streams.get_mut(key) {
        stream.user.exchange = Some(exchange);
        task.opened.push(key);
    }
}

/// Sends on the requests whose heads came in the batch just read, once the whole batch has
/// been read: a stream the client reset in the same batch (a rapid reset) never reaches the
/// upstream. Body bytes that came with them were kept, and go with them.
pub(super) fn dispatch_opened(side: &mut ClientSide, task: &mut ClientTask<'_>) {
    let mut opened = std::mem::take(task.opened);
    for key in opened.drain(..) {
        let Some(exchange) = side.exchange_mut(key).filter(|e| e.ending.is_none()) else {
            continue;
        };
        if matches!(exchange.settings.protocol, UpstreamProtocol::Http1) {
            let mut call = Http1Call::default();
            // Nothing is sent twice to an HTTP/1 upstream: the body is not kept.
            let body = std::mem::take(&mut exchange.retained.body);
            match exchange.request_trailers.take() {
                Some(trailers) => {
                    call.deliver(&body, false);
                    call.deliver_trailers(&trailers);
                }
                None => call.deliver(&body, exchange.request_ended),
            }
            exchange.retained.whole = false;
            exchange.upstream = Link::Http1(call);
            task.http1.push(key);
            continue;
        }
        let peer = Peer {
            client: task.me.clone(),
            key,
        };
        let taken = dispatch(exchange, peer, false);
        side.conn.consumed(key, taken);
    }
    // The vector goes back, its capacity with it.
    *task.opened = opened;
}

/// The answer a request head gets instead of being forwarded, if any.
fn refusal_of(block: &FieldBlock) -> Option<(ProxyError, &'static str)> {
    if block.too_large {
        return Some((
            ProxyError::HEADERS_TOO_LARGE,
            "the request head is too large",
        ));
    }
    if let Some(reason) = block.malformed {
        return Some((ProxyError::BAD_REQUEST, reason));
    }
    (block.pseudo(block.pseudo.method) == Some(b"CONNECT"))
        .then_some((ProxyError::METHOD_NOT_ALLOWED, "CONNECT is not proxied"))
}

/// Opens the exchange's stream on an upstream connection (a new one when `fresh`) and sends
/// its head, and any body already kept for it; returns how much of that body went out.
pub(super) fn dispatch(exchange: &mut Carried, peer: Peer, fresh: bool) -> usize {
    let settings = &exchange.settings;
    let dial = pool::Dial {
        addr: settings.upstream,
        connect_timeout: settings.timeouts.connect,
        idle_timeout: settings.timeouts.idle,
        limits: settings.h2_upstream,
    };
    let mut upstream = pool::connection(&dial, fresh);
    let mut side = lock(&upstream);
    let key = match side.conn.open(OnUpstream::Relay(peer.clone())) {
        Some(key) => key,
        None => {
            // Full after all (the pool's check and the open are not apart on one worker, but a
            // GOAWAY may have come): a connection of its own.
            drop(side);
            upstream = pool::connection(&dial, true);
            side = lock(&upstream);
            side.conn
                .open(OnUpstream::Relay(peer))
                .expect("a new connection has room")
        }
    };
    let body = &exchange.retained.body;
    let trailers = exchange.request_trailers.take();
    let headers_end = exchange.request_ended && body.is_empty() && trailers.is_none();
    side.conn
        .send_headers(key, headers_end, |out| exchange.request.encode(out));
    let data_end = exchange.request_ended && trailers.is_none();
    let taken = if headers_end {
        0
    } else {
        side.conn.send_data(key, body, data_end)
    };
    if let Some(trailers) = trailers {
        side.conn
            .send_headers(key, true, |out| trailers.encode(out));
    }
    drop(side);
    outbox::upstream(&upstream);
    exchange.upstream = Link::H2 { upstream, key };
    taken
}

/// Request body bytes: on to the upstream as far as its windows allow.
fn request_data(
    side: &mut ClientSide,
    key: StreamKey,
    data: &[u8],
    end_stream: bool,
    now: Instant,
) {
    let Some(exchange) = side.exchange_mut(key) else {
        // The exchange is over: what is left of the request is read and dropped.
        side.conn.consumed(key, data.len());
        remove_if_closed(side, key);
        return;
    };
    if end_stream {
        exchange.request_end(now);
    }
    exchange.retain(data);
    let taken = match &mut exchange.upstream {
        Link::H2 { upstream, key: up } => {
            let mut up_side = lock(upstream);
            let sending = up_side
                .conn
                .streams
                .get(*up)
                .is_some_and(|s| s.is_sending());
            let taken = if sending {
                up_side.conn.send_data(*up, data, end_stream)
            } else {
                data.len()
            };
            outbox::upstream(upstream);
            taken
        }
        Link::Http1(call) => return call.deliver(data, end_stream),
        // Not sent on yet: kept, and counted when it is.
        Link::None if exchange.ending.is_none() => return,
        Link::None => data.len(),
    };
    side.conn.consumed(key, taken);
}

/// Request trailers: on to the upstream, behind the body.
fn request_trailers(side: &mut ClientSide, key: StreamKey, now: Instant) {
    let (stream, block) = side.conn.stream_and_block(key);
    let Some(exchange) = stream.and_then(|s| s.user.exchange.as_mut()) else {
        remove_if_closed(side, key);
        return;
    };
    exchange.request_end(now);
    // A request with trailers is not sent again: they are not kept.
    exchange.retained.whole = false;
    match &mut exchange.upstream {
        Link::H2 { upstream, key: up } => {
            lock(upstream)
                .conn
                .send_headers(*up, true, |out| block.encode(out));
            outbox::upstream(upstream);
        }
        Link::Http1(call) => call.deliver_trailers(block),
        Link::None => {
            let mut kept = FieldBlock::default();
            kept.copy_from(block);
            exchange.request_trailers = Some(kept);
        }
    }
}

/// Takes out a stream whose exchange was tallied once the client has ended its half too.
pub(super) fn remove_if_closed(side: &mut ClientSide, key: StreamKey) {
    let over = side
        .conn
        .streams
        .get(key)
        .is_some_and(|s| s.is_closed() && s.user.exchange.is_none());
    if over {
        side.conn.remove(key);
    }
}

/// Unlinks a client stream from its upstream stream, which is reset if still open.
fn unlink(side: &mut ClientSide, key: StreamKey) {
    if let Some(exchange) = side.exchange_mut(key) {
        exchange.unlink();
    }
}

/// A client window opened: what waited for it goes out, and the upstream streams it came from
/// get their windows back.
pub(super) fn client_window(side: &mut ClientSide, key: Option<StreamKey>) {
    let mut keys = Vec::new();
    match key {
        Some(key) => keys.push(key),
        None => side.conn.blocked(&mut keys),
    }
    for key in keys {
        let sent = side.conn.drain(key);
        complete_if_sent(side, key, Instant::now());
        let Some(exchange) = side.exchange(key) else {
            continue;
        };
        match &exchange.upstream {
            Link::H2 { upstream, key: up } if sent > 0 => {
                let mut up_side = lock(upstream);
                up_side.conn.consumed(*up, sent);
                outbox::upstream(upstream);
            }
            Link::Http1(call) => call.wake(),
            _ => {}
        }
    }
}

/// Ends an exchange whose response went out whole: the END_STREAM is in the write buffer.
fn complete_if_sent(side: &mut ClientSide, key: StreamKey, now: Instant) {
    let Some(stream) = side.conn.streams.get_mut(key) else {
        return;
    };
    let sent = !stream.is_sending();
    let Some(exchange) = stream.user.exchange.take() else {
        return;
    };
    match (sent, exchange.status, exchange.ending) {
        (true, Some(status), None) => {
            answer::end(side, key, exchange, Outcome::Upstream(status), None, now)
        }
        _ => stream.user.exchange = Some(exchange),
    }
}

/// Acts on one event of an upstream connection.
pub(in crate::proxy::fast) fn upstream_event(
    up: &mut UpstreamSide,
    event: Event<'_>,
    now: Instant,
) {
    if let Some(key) = event.key() {
        if matches!(
            up.conn.streams.get(key).map(|s| &s.user),
            Some(OnUpstream::Local(_))
        ) {
            return local_event(up, key, event);
        }
    }
    match event {
        Event::Headers {
            key,
            kind,
            end_stream,
        } => response_head(up, key, kind, end_stream, now),
        Event::Data {
            key,
            data,
            end_stream,
        } => response_data(up, key, data, end_stream, now),
        Event::Reset {
            key,
            reason,
            by_peer,
        } => upstream_reset(up, key, reason, by_peer, now),
        Event::WindowOpened(key) => upstream_window(up, key),
        Event::GoAway { last_stream, .. } => {
            let unprocessed: Vec<StreamKey> = up
                .conn
                .streams
                .keys()
                .filter(|k| k.id() > last_stream)
                .collect();
            for key in unprocessed {
                up.conn.reset(key, Reason::CANCEL);
                if let Some(inbox) = inbox_of(up, key) {
                    end_inbox(inbox, InboxEnd::Refused);
                    continue;
                }
                refused(up, key, false, UpstreamErrorKind::Reset, now);
            }
        }
    }
}

/// The client stream an upstream stream answers.
fn peer_of(up: &UpstreamSide, key: StreamKey) -> Option<Peer> {
    match &up.conn.streams.get(key)?.user {
        OnUpstream::Relay(peer) => Some(peer.clone()),
        OnUpstream::Unlinked | OnUpstream::Local(_) => None,
    }
}

/// The inbox of an upstream stream an HTTP/1 client's task reads.
fn inbox_of(up: &mut UpstreamSide, key: StreamKey) -> Option<&mut Inbox> {
    match &mut up.conn.streams.get_mut(key)?.user {
        OnUpstream::Local(inbox) => Some(inbox),
        _ => None,
    }
}

/// Ends what an inbox will get (the first end counts) and wakes its reader.
fn end_inbox(inbox: &mut Inbox, end: InboxEnd) {
    inbox.end.get_or_insert(end);
    inbox.wake();
}

/// Keeps an upstream stream's event in its inbox for the HTTP/1 client's task reading it.
fn local_event(up: &mut UpstreamSide, key: StreamKey, event: Event<'_>) {
    let malformed = {
        let block = up.conn.block();
        block.malformed.is_some() || block.too_large
    };
    if matches!(event, Event::Headers { .. }) && malformed {
        up.conn.reset(key, Reason::PROTOCOL_ERROR);
        if let Some(inbox) = inbox_of(up, key) {
            end_inbox(inbox, InboxEnd::Failed(UpstreamErrorKind::Other));
        }
        return;
    }
    let mut block = FieldBlock::default();
    if matches!(event, Event::Headers { .. }) {
        block.copy_from(up.conn.block());
    }
    let Some(inbox) = inbox_of(up, key) else {
        return;
    };
    match event {
        Event::Headers {
            kind: HeadKind::Interim,
            ..
        } => inbox.interim.push(block),
        Event::Headers {
            kind: HeadKind::Response,
            end_stream,
            ..
        } => {
            inbox.head = Some(block);
            if end_stream {
                inbox.end.get_or_insert(InboxEnd::Complete);
            }
        }
        Event::Headers { .. } => {
            inbox.end.get_or_insert(InboxEnd::Trailers(block));
        }
        Event::Data {
            data, end_stream, ..
        } => {
            inbox.data.extend_from_slice(data);
            if end_stream {
                inbox.end.get_or_insert(InboxEnd::Complete);
            }
        }
        Event::Reset {
            reason, by_peer, ..
        } => {
            let end = if by_peer && reason == Reason::REFUSED_STREAM && inbox.head.is_none() {
                InboxEnd::Refused
            } else if reason == Reason::NO_ERROR && inbox.end.is_some() {
                InboxEnd::Complete
            } else {
                InboxEnd::Failed(UpstreamErrorKind::Reset)
            };
            inbox.end.get_or_insert(end);
        }
        Event::WindowOpened(_) => {
            up.conn.drain(key);
            if let Some(inbox) = inbox_of(up, key) {
                inbox.window = true;
                inbox.wake();
            }
            return;
        }
        Event::GoAway { .. } => {}
    }
    inbox.wake();
}

/// Runs `act` on the exchange an upstream stream answers, with its client connection locked;
/// an upstream stream whose client stream is gone is reset.
fn with_exchange(
    up: &mut UpstreamSide,
    key: StreamKey,
    act: impl FnOnce(&mut UpstreamSide, &mut ClientSide, &Peer),
) {
    let Some(peer) = peer_of(up, key) else {
        up.conn.remove(key);
        return;
    };
    let mut client = lock(&peer.client);
    let alive = client
        .conn
        .streams
        .get(peer.key)
        .is_some_and(|s| s.user.exchange.as_ref().is_some_and(|e| e.ending.is_none()));
    if !alive {
        drop(client);
        up.conn.remove(key);
        return;
    }
    act(up, &mut client, &peer);
    drop(client);
    outbox::client(&peer.client);
    if up.conn.streams.get(key).is_some_and(|s| s.is_closed()) {
        up.conn.remove(key);
    }
}

fn exchange_of(client: &mut ClientSide, key: StreamKey) -> &mut Carried {
    client.exchange_mut(key).expect("checked alive")
}

/// A response head (interim or final) or trailers: on to the client.
fn response_head(
    up: &mut UpstreamSide,
    key: StreamKey,
    kind: HeadKind,
    end_stream: bool,
    now: Instant,
) {
    with_exchange(up, key, |up, client, peer| {
        let peer = peer.key;
        let block = up.conn.block();
        if block.malformed.is_some() || block.too_large {
            up.conn.reset(key, Reason::PROTOCOL_ERROR);
            answer::fail(client, peer, UpstreamErrorKind::Other, now);
            return;
        }
        let exchange = exchange_of(client, peer);
        exchange.upstream_active = now;
        match kind {
            HeadKind::Interim => {
                exchange.sent_continue |= block.status() == Some(100);
            }
            HeadKind::Response => {
                exchange.status = block.status();
                exchange.response.copy_from(block);
                exchange.retained.body.clear();
                let head_request = exchange.method == http::Method::HEAD;
                exchange.sampler =
                    response_sampler(&exchange.settings, head_request, block.headers());
            }
            HeadKind::Trailers | HeadKind::Request => {
                exchange.trailers.copy_from(block);
                exchange.has_trailers = true;
            }
        }
        client
            .conn
            .send_headers(peer, end_stream, |out| block.encode(out));
        complete_if_sent(client, peer, now);
    });
}

/// Response body bytes: on to the client as far as its windows allow, sampled on the way.
fn response_data(
    up: &mut UpstreamSide,
    key: StreamKey,
    data: &[u8],
    end_stream: bool,
    now: Instant,
) {
    with_exchange(up, key, |up, client, peer| {
        let peer = peer.key;
        let exchange = exchange_of(client, peer);
        exchange.upstream_active = now;
        if let Some(sampler) = exchange.sampler.as_mut() {
            sampler.feed(data);
        }
        let taken = client.conn.send_data(peer, data, end_stream);
        up.conn.consumed(key, taken);
        complete_if_sent(client, peer, now);
    });
}

/// The upstream reset a stream, or broke the protocol on it.
fn upstream_reset(
    up: &mut UpstreamSide,
    key: StreamKey,
    reason: Reason,
    by_peer: bool,
    now: Instant,
) {
    if by_peer && reason == Reason::REFUSED_STREAM {
        return refused(up, key, false, UpstreamErrorKind::Reset, now);
    }
    with_exchange(up, key, |_, client, peer| {
        let peer = peer.key;
        let exchange = exchange_of(client, peer);
        let complete = exchange.status.is_some()
            && !client
                .conn
                .streams
                .get(peer)
                .is_some_and(|s| s.is_sending());
        if complete && reason == Reason::NO_ERROR {
            // RFC 9113 §8.1: the response is whole and the upstream wants no more of the
            // request. The client is not reset in turn (see docs/engines.md): the exchange
            // ends as answered, and the rest of its body is dropped as it comes.
            complete_if_sent(client, peer, now);
            return;
        }
        answer::fail(client, peer, UpstreamErrorKind::Reset, now);
    });
}

/// A stream the upstream did not process (refused, or above a GOAWAY's last stream): sent
/// again, once, on a new connection, if it can be sent whole; otherwise answered as a failure
/// of `kind`. With `idempotent_only`, only an idempotent request is sent again (the upstream
/// may have processed it).
fn refused(
    up: &mut UpstreamSide,
    key: StreamKey,
    idempotent_only: bool,
    kind: UpstreamErrorKind,
    now: Instant,
) {
    with_exchange(up, key, |up, client, peer| {
        up.conn.remove(key);
        let exchange = exchange_of(client, peer.key);
        exchange.upstream = Link::None;
        let retry = !exchange.retried
            && exchange.status.is_none()
            && exchange.retained.whole
            && (!idempotent_only || (exchange.request_ended && is_idempotent(&exchange.method)));
        if retry {
            exchange.retried = true;
            // The client's window for this body was given back when it first went out.
            dispatch(exchange, peer.clone(), true);
        } else {
            answer::fail(client, peer.key, kind, now);
        }
    });
}

/// An upstream window opened (or its write buffer emptied): what waited goes out, and the
/// client streams it came from get their windows back.
pub(in crate::proxy::fast) fn upstream_window(up: &mut UpstreamSide, key: Option<StreamKey>) {
    let mut keys = Vec::new();
    match key {
        Some(key) => keys.push(key),
        None => up.conn.blocked(&mut keys),
    }
    for key in keys {
        let sent = up.conn.drain(key);
        if let Some(inbox) = inbox_of(up, key) {
            inbox.window = true;
            inbox.wake();
            continue;
        }
        if sent == 0 {
            continue;
        }
        if let Some(peer) = peer_of(up, key) {
            let mut client = lock(&peer.client);
            client.conn.consumed(peer.key, sent);
            drop(client);
            outbox::client(&peer.client);
        }
    }
}

/// The upstream connection is gone: each of its streams is sent again where that is safe (an
/// idempotent request never answered), or answered by statuscope.
pub(in crate::proxy::fast) fn upstream_lost(
    up: &mut UpstreamSide,
    kind: UpstreamErrorKind,
    now: Instant,
) {
    let keys: Vec<StreamKey> = up.conn.streams.keys().collect();
    let retry = !matches!(
        kind,
        UpstreamErrorKind::ConnectRefused | UpstreamErrorKind::ConnectTimeout
    );
    for key in keys {
        if let Some(inbox) = inbox_of(up, key) {
            end_inbox(inbox, InboxEnd::Failed(kind));
        } else if retry {
            refused(up, key, true, kind, now);
        } else {
            with_exchange(up, key, |up, client, peer| {
                up.conn.remove(key);
                answer::fail(client, peer.key, kind, now);
            });
        }
    }
}
