//! Statuscope's own answers on an HTTP/2 client stream, and the ends of exchanges they come
//! with: a request refused for its head (400, 431, 405) or shed (503), an upstream that failed
//! before its response head (502, 504; a gRPC call's trailers-only UNAVAILABLE or
//! DEADLINE_EXCEEDED), or one that failed after it (the stream is reset).

use std::time::Instant;

use super::exchange::Carried;
use super::{ClientSide, OnClient};
use crate::classify::UpstreamErrorKind;
use crate::proxy::error_response::ProxyError;
use crate::proxy::finish::Outcome;
use crate::proxy::h2::conn::{Conn, StreamKey};
use crate::proxy::h2::frame::Reason;
use crate::proxy::h2::hpack::encode_field;

/// Writes `answer` on a stream whose response head has not gone out, and ends the stream: a
/// gRPC call (`grpc`) gets the trailers-only answer its client library reads, anything else the
/// JSON body. What is left of a request still arriving is read and dropped.
pub(super) fn write_answer(
    conn: &mut Conn<OnClient>,
    key: StreamKey,
    answer: ProxyError,
    detail: &str,
    grpc: bool,
) {
    let body = (!grpc).then(|| answer.body_with_detail(detail));
    let status = answer.status_sent(grpc);
    let fields = answer.fields(grpc, body.as_ref().map_or(0, |b| b.len()));
    conn.send_headers(key, body.is_none(), |out| {
        encode_field(
            out,
            b":status",
            itoa::Buffer::new().format(status).as_bytes(),
        );
        for (name, value) in &fields {
            encode_field(out, name.as_bytes(), value.as_bytes());
        }
    });
    if let Some(body) = body {
        conn.send_data(key, &body, true);
    }
}

/// Ends an exchange whose upstream failed with `kind`: answered when nothing of the
/// response went out yet, else its stream is reset. The exchange is unlinked from the
/// upstream by the caller, who may hold the upstream connection.
pub(in crate::proxy::fast) fn fail(
    side: &mut ClientSide,
    key: StreamKey,
    kind: UpstreamErrorKind,
    now: Instant,
) {
    let Some(exchange) = take_open_exchange(side, key) else {
        return;
    };
    let head_sent = side.conn.streams.get(key).is_some_and(|s| s.head_sent());
    let outcome = if head_sent {
        side.conn.reset(key, Reason::INTERNAL_ERROR);
        Outcome::Upstream(exchange.status.unwrap_or(0))
    } else {
        let answer = ProxyError::upstream(kind);
        write_answer(
            &mut side.conn,
            key,
            answer,
            answer.detail,
            exchange.grpc.is_some(),
        );
        Outcome::Proxy(answer)
    };
    end(side, key, exchange, outcome, Some(kind), now);
}

/// Ends an exchange whose client reset its stream or left: tallied as 499 (a gRPC call as
/// CANCELLED, or DEADLINE_EXCEEDED past its deadline). A response that was complete already
/// keeps its status.
pub(in crate::proxy::fast) fn client_gone(side: &mut ClientSide, key: StreamKey, now: Instant) {
    let Some(exchange) = take_open_exchange(side, key) else {
        return;
    };
    end(side, key, exchange, Outcome::ClientGone, None, now);
}

/// The exchange of a stream if it has not ended yet.
fn take_open_exchange(side: &mut ClientSide, key: StreamKey) -> Option<Box<Carried>> {
    let stream = side.conn.streams.get_mut(key)?;
    let exchange = stream.user.exchange.take()?;
    if exchange.ending.is_some() {
        stream.user.exchange = Some(exchange);
        return None;
    }
    Some(exchange)
}

/// Records an exchange's end and queues it for the tally: by the client's task, or by the
/// task that writes the frames that ended it (see [`outbox`](super::outbox)).
pub(in crate::proxy::fast) fn end(
    side: &mut ClientSide,
    key: StreamKey,
    mut exchange: Box<Carried>,
    outcome: Outcome,
    upstream_error: Option<UpstreamErrorKind>,
    now: Instant,
) {
    exchange.end(outcome, upstream_error, now);
    if let Some(stream) = side.conn.streams.get_mut(key) {
        stream.user.exchange = Some(exchange);
        side.ended.push(key);
    }
}
