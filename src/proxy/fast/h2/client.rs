//! One HTTP/2 client connection's task: reads the client's frames and acts on them
//! ([`relay::client_event`]), writes what statuscope and the upstream connections queued for the
//! client, runs the HTTP/1 calls of its streams, tallies each exchange once its frames are
//! written, and keeps the connection's deadlines: the preface within `downstream.header_timeout`,
//! an idle connection closed (GOAWAY) after `downstream.keepalive_timeout`, and each exchange's
//! `timeouts.read` and `timeouts.response`. At shutdown it sends GOAWAY and lets the streams in
//! flight finish.
//!
//! Frames are read into a buffer the worker shares between its connections: only a frame cut
//! by the end of a read is kept by the connection until the rest comes, so an idle connection
//! holds no read buffer.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::stream::{FuturesUnordered, StreamExt};
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use tokio::io::ReadBuf;
use tracing::debug;

use super::exchange::Link;
use super::outbox::{self, Written};
use super::relay::{self, ClientTask};
use super::{answer, lock, to_http1, ClientSide, Shared};
use crate::classify::UpstreamErrorKind;
use crate::proxy::fast::deadline::Deadline;
use crate::proxy::fast::FastEngine;
use crate::proxy::h2::conn::{Conn, Lifecycle, Role, StreamKey};
use crate::proxy::h2::frame::{self, Reason};

/// The worker's read buffer: room for what a connection kept of a cut frame and a frame more.
const READ_BUFFER: usize = 2 * (frame::MAX_FRAME_SIZE + frame::HEADER_LEN);

thread_local! {
    static READ: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

type Call = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Serves one HTTP/2 client connection (its preface may be in the stream's rewind buffer).
pub(in crate::proxy::fast) async fn serve(
    engine: &FastEngine,
    stream: Stream,
    shutdown: &ShutdownWatch,
) {
    let settings = engine.settings.current();
    let side = Arc::new(Mutex::new(ClientSide {
        conn: Conn::new(Role::Server, settings.h2_client),
        stream,
        failed: false,
        ended: Vec::new(),
        recorder: engine.recorder.clone(),
    }));
    let opened = Instant::now();
    let mut task = Task {
        engine,
        shared: &side,
        partial: Vec::new(),
        timer: Deadline::default(),
        shutdown: Box::pin(shutting_down(shutdown.clone())),
        draining: false,
        calls: FuturesUnordered::new(),
        new_calls: Vec::new(),
        opened: Vec::new(),
        preface_by: Some(opened + settings.downstream.header_timeout),
        idle_since: Some(opened),
        closed: false,
    };
    poll_fn(|cx| task.poll(cx)).await;
    task.calls.clear();
    let mut side = lock(&side);
    abandon(&mut side, Instant::now());
    side.tally();
}

/// Ends once shutdown has begun (or the server is gone).
async fn shutting_down(mut shutdown: ShutdownWatch) {
    let _ = shutdown.wait_for(|down| *down).await;
}

/// Ends every exchange still open as the client's: it is gone.
fn abandon(side: &mut ClientSide, now: Instant) {
    let keys: Vec<StreamKey> = side.conn.streams.keys().collect();
    for key in keys {
        answer::client_gone(side, key, now);
    }
}

struct Task<'a> {
    engine: &'a FastEngine,
    shared: &'a Shared<ClientSide>,
    /// The start of a frame the last read cut.
    partial: Vec<u8>,
    timer: Deadline,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    draining: bool,
    /// Streams carried to an HTTP/1 upstream.
    calls: FuturesUnordered<Call>,
    new_calls: Vec<StreamKey>,
    /// Streams opened in the read being handled (kept for its capacity).
    opened: Vec<StreamKey>,
    /// The client preface and SETTINGS are due by then.
    preface_by: Option<Instant>,
    /// Since when the connection has had no stream.
    idle_since: Option<Instant>,
    /// The socket is gone.
    closed: bool,
}

impl Task<'_> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let progressed = {
                let shared = self.shared;
                let mut side = lock(shared);
                side.conn.register(cx.waker());
                match self.poll_connection(cx, &mut side) {
                    Poll::Ready(()) => return Poll::Ready(()),
                    Poll::Pending => {}
                }
                let started = !self.new_calls.is_empty();
                for key in self.new_calls.drain(..) {
                    let capacity = self.engine.pool_capacity;
                    self.calls
                        .push(Box::pin(to_http1::carry(shared.clone(), key, capacity)));
                }
                started
            };
            // The calls lock the connection themselves.
            let mut ran = false;
            while let Poll::Ready(Some(())) = self.calls.poll_next_unpin(cx) {
                ran = true;
            }
            outbox::send_marked();
            if !progressed && !ran {
                return Poll::Pending;
            }
        }
    }

    /// Reads, writes, tallies and keeps the deadlines; `Ready` once the connection is over.
    fn poll_connection(&mut self, cx: &mut Context<'_>, side: &mut ClientSide) -> Poll<()> {
        loop {
            if !self.draining && self.shutdown.as_mut().poll(cx).is_ready() {
                self.draining = true;
                side.conn.go_away(Reason::NO_ERROR);
            }
            let read = !self.closed && self.read(cx, side);
            let wrote = !self.closed && self.write(cx, side);
            if self.closed || side.failed {
                return Poll::Ready(());
            }
            if side.conn.wbuf.is_empty() && !side.ended.is_empty() {
                side.tally();
                continue;
            }
            if side.conn.is_finished() && side.conn.wbuf.is_empty() {
                let _ = Pin::new(&mut *side.stream).poll_shutdown(cx);
                return Poll::Ready(());
            }
            if !read && !wrote {
                break;
            }
        }
        match self.poll_deadlines(cx, side) {
            true => Poll::Ready(()),
            false => Poll::Pending,
        }
    }

    /// Reads what the client sent and acts on its frames; `true` when something came.
    fn read(&mut self, cx: &mut Context<'_>, side: &mut ClientSide) -> bool {
        if side.conn.lifecycle() == Lifecycle::Failed {
            return false;
        }
        READ.with_borrow_mut(|buf| {
            if buf.len() < READ_BUFFER {
                buf.resize(READ_BUFFER, 0);
            }
            let kept = self.partial.len();
            buf[..kept].copy_from_slice(&self.partial);
            let mut read = ReadBuf::new(&mut buf[kept..]);
            let filled = match Pin::new(&mut *side.stream).poll_read(cx, &mut read) {
                Poll::Pending => return false,
                Poll::Ready(Ok(())) if !read.filled().is_empty() => kept + read.filled().len(),
                Poll::Ready(_) => {
                    self.closed = true;
                    return true;
                }
            };
            let at = self.frames(side, &buf[..filled]);
            self.partial.clear();
            self.partial.extend_from_slice(&buf[at..filled]);
            if self.partial.capacity() > READ_BUFFER && self.partial.is_empty() {
                self.partial = Vec::new();
            }
            true
        })
    }

    /// Acts on the complete frames of `bytes`; returns how many bytes they took.
    fn frames(&mut self, side: &mut ClientSide, bytes: &[u8]) -> usize {
        let now = Instant::now();
        let mut relay = ClientTask {
            engine: self.engine,
            me: self.shared,
            now,
            opened: &mut self.opened,
            http1: &mut self.new_calls,
        };
        let mut at = 0;
        while at < bytes.len() {
            match side.conn.receive(&bytes[at..], now) {
                Ok((0, _)) => break,
                Ok((taken, event)) => {
                    at += taken;
                    if let Some(event) = event {
                        relay::client_event(side, event, &mut relay);
                    }
                }
                Err(error) => {
                    debug!(reason = error.detail, "HTTP/2 client connection error");
                    abandon(side, now);
                    return bytes.len();
                }
            }
        }
        relay::dispatch_opened(side, &mut relay);
        if side.conn.established() {
            self.preface_by = None;
        }
        if side.conn.streams.is_empty() {
            self.idle_since.get_or_insert(now);
        } else {
            self.idle_since = None;
        }
        at
    }

    /// Writes what is queued for the client; `true` when something went out.
    fn write(&mut self, cx: &mut Context<'_>, side: &mut ClientSide) -> bool {
        let queued = side.conn.wbuf.len();
        if queued == 0 {
            return false;
        }
        if let Written::Failed = outbox::write(&mut *side.stream, &mut side.conn.wbuf, cx) {
            self.closed = true;
            return true;
        }
        let wrote = side.conn.wbuf.len() < queued;
        side.resume_if_drained(queued);
        if side.conn.wbuf.is_empty() && side.conn.wbuf.capacity() > 4 * READ_BUFFER {
            side.conn.wbuf = Vec::new();
        }
        wrote
    }

    /// Keeps the connection's deadlines; `true` when the connection is to close now.
    fn poll_deadlines(&mut self, cx: &mut Context<'_>, side: &mut ClientSide) -> bool {
        let now = Instant::now();
        let settings = self.engine.settings.current();
        let mut next = self.preface_by;
        if self.preface_by.is_some_and(|by| now >= by) {
            return true;
        }
        if let Some(since) = self.idle_since {
            let idle_until = since + settings.downstream.keepalive_timeout;
            if now >= idle_until {
                side.conn.go_away(Reason::NO_ERROR);
                let _ = self.write(cx, side);
                return true;
            }
            next = Some(next.map_or(idle_until, |n| n.min(idle_until)));
        }
        let mut expired = Vec::new();
        for key in side.conn.streams.keys() {
            let Some(exchange) = side.exchange(key) else {
                continue;
            };
            if exchange.ending.is_some() || !matches!(exchange.upstream, Link::H2 { .. }) {
                continue;
            }
            let timeouts = &exchange.settings.timeouts;
            let response = timeouts.response.map(|limit| exchange.started + limit);
            let read = exchange
                .request_ended
                .then(|| exchange.upstream_active + timeouts.read);
            for (deadline, kind) in [
                (response, UpstreamErrorKind::ResponseTimeout),
                (read, UpstreamErrorKind::ReadTimeout),
            ] {
                let Some(deadline) = deadline else { continue };
                if now >= deadline {
                    expired.push((key, kind));
                    break;
                }
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
        }
        for (key, kind) in expired {
            answer::fail(side, key, kind, now);
            if let Some(exchange) = side.exchange_mut(key) {
                exchange.unlink();
            }
            side.conn.wake();
        }
        if let Some(next) = next {
            if self.timer.poll_passed(cx, next) {
                side.conn.wake();
            }
        }
        false
    }
}
