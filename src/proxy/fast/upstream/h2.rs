//! HTTP/2 connections to the upstream (`upstream_protocol: h2c`, or `downstream` for HTTP/2
//! clients), pooled per worker, each driven by a task of its own.
//!
//! A request takes a stream on the worker's first connection to the upstream that has room
//! (below the upstream's SETTINGS_MAX_CONCURRENT_STREAMS, and not going away), or opens a new
//! one: several connections exist only while one cannot carry all the streams in flight. A
//! connection's task connects (within `timeouts.connect`), then reads its frames and relays
//! them to the client streams they answer (see [`relay`](crate::proxy::fast::h2::relay)), writes
//! what the relays queued for it, and closes it once it has been idle for `timeouts.idle` or the
//! upstream sent GOAWAY and its last stream ended. A connection that fails takes its streams
//! with it: each is answered by statuscope, or sent again where RFC 9113 §8.7 allows.

use std::cell::RefCell;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;

use crate::classify::UpstreamErrorKind;
use crate::proxy::fast::deadline::Deadline;
use crate::proxy::fast::h2::outbox::{self, Written};
use crate::proxy::fast::h2::{lock, relay, Peer, Shared};
use crate::proxy::h2::conn::{Conn, Lifecycle, Limits, Role, WBUF_SOFT_CAP};
use crate::proxy::h2::fields::FieldBlock;
use crate::proxy::h2::frame::{self, Reason};

/// What an upstream connection keeps per stream: who reads its response.
#[derive(Debug, Default)]
pub(in crate::proxy::fast) enum OnUpstream {
    /// Nobody (a stream is linked as it opens).
    #[default]
    Unlinked,
    /// Relayed frame by frame to this HTTP/2 client stream.
    Relay(Peer),
    /// Read by an HTTP/1 client's task out of this inbox.
    Local(Box<Inbox>),
}

/// A response kept for an HTTP/1 client's task, which takes it as its client takes it (the
/// stream's window is given back only then).
#[derive(Debug, Default)]
pub(in crate::proxy::fast) struct Inbox {
    /// Interim response heads not yet passed on.
    pub interim: Vec<FieldBlock>,
    /// The final response head, once it came.
    pub head: Option<FieldBlock>,
    /// Body bytes not yet taken.
    pub data: Vec<u8>,
    /// How the response ended, once it did.
    pub end: Option<InboxEnd>,
    /// The window for the request body opened (or the stream ended): the task may send more.
    pub window: bool,
    /// The task waiting on the inbox.
    pub waker: Option<Waker>,
}

/// How a response kept in an [`Inbox`] ended.
#[derive(Debug)]
pub(in crate::proxy::fast) enum InboxEnd {
    /// With its last body bytes.
    Complete,
    /// With trailers.
    Trailers(FieldBlock),
    /// Cut: the stream was reset, or its connection failed.
    Failed(UpstreamErrorKind),
    /// The upstream did not process the request (REFUSED_STREAM, or above a GOAWAY's last
    /// stream): it may be sent again.
    Refused,
}

impl Inbox {
    /// Wakes the task waiting on the inbox.
    pub(in crate::proxy::fast) fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

/// An upstream connection as its task and the client tasks share it.
#[derive(Debug)]
pub(in crate::proxy::fast) struct UpstreamSide {
    /// The protocol state.
    pub conn: Conn<OnUpstream>,
    addr: SocketAddr,
    /// The socket, once connected: read by the connection's task, written by whichever task
    /// has frames for it ([`outbox`]).
    stream: Option<TcpStream>,
    /// A write by another task found the socket gone.
    failed: bool,
}

impl UpstreamSide {
    /// Writes what is queued as far as the socket takes it now (see [`outbox`]); the
    /// connection's task is woken for the rest.
    pub(in crate::proxy::fast) fn send_now(&mut self) {
        let Some(stream) = self.stream.as_mut() else {
            // Not connected yet: the task writes it all once it is.
            return;
        };
        let queued = self.conn.wbuf.len();
        if queued == 0 {
            return;
        }
        match outbox::write_now(stream, &mut self.conn.wbuf) {
            Written::All => {}
            Written::Partly => self.conn.wake(),
            Written::Failed => {
                self.failed = true;
                self.conn.wake();
            }
        }
        if queued >= WBUF_SOFT_CAP && self.conn.wbuf.len() < queued {
            // Room in the write buffer again: streams waiting for it go on.
            relay::upstream_window(self, None);
        }
    }
}

thread_local! {
    /// This worker's connections to the upstream.
    static POOL: RefCell<Vec<Shared<UpstreamSide>>> = const { RefCell::new(Vec::new()) };
}

/// How upstream connections are opened and kept.
#[derive(Debug, Clone, Copy)]
pub(in crate::proxy::fast) struct Dial {
    /// The upstream.
    pub addr: SocketAddr,
    /// `timeouts.connect`
    pub connect_timeout: Duration,
    /// `timeouts.idle`: an upstream connection without streams this long is closed.
    pub idle_timeout: Duration,
    /// The limits statuscope announces on them.
    pub limits: Limits,
}

/// A connection of this worker to `dial.addr` with room for another stream, or a new one;
/// with `fresh`, always a new one.
pub(in crate::proxy::fast) fn connection(dial: &Dial, fresh: bool) -> Shared<UpstreamSide> {
    if !fresh {
        let found = POOL.with_borrow(|pool| {
            pool.iter()
                .find(|shared| {
                    let side = lock(shared);
                    side.addr == dial.addr && side.conn.has_room()
                })
                .cloned()
        });
        if let Some(shared) = found {
            return shared;
        }
    }
    let shared = Arc::new(Mutex::new(UpstreamSide {
        conn: Conn::new(Role::Client, dial.limits),
        addr: dial.addr,
        stream: None,
        failed: false,
    }));
    POOL.with_borrow_mut(|pool| pool.push(shared.clone()));
    tokio::spawn(run(shared.clone(), *dial));
    shared
}

fn forget(shared: &Shared<UpstreamSide>) {
    let _ = POOL.try_with(|pool| {
        if let Ok(mut pool) = pool.try_borrow_mut() {
            pool.retain(|other| !Arc::ptr_eq(other, shared));
        }
    });
}

/// Drives one upstream connection to its end.
async fn run(shared: Shared<UpstreamSide>, dial: Dial) {
    let connected = tokio::time::timeout(dial.connect_timeout, TcpStream::connect(dial.addr)).await;
    let stream = match connected {
        Ok(Ok(stream)) => stream,
        Ok(Err(_)) => return fail(&shared, UpstreamErrorKind::ConnectRefused),
        Err(_) => return fail(&shared, UpstreamErrorKind::ConnectTimeout),
    };
    let _ = stream.set_nodelay(true);
    lock(&shared).stream = Some(stream);
    let mut task = Task {
        shared: &shared,
        rbuf: vec![0; READ_BUFFER],
        filled: 0,
        timer: Deadline::default(),
        idle_since: None,
        dial,
    };
    let lost = poll_fn(|cx| task.poll(cx)).await;
    forget(&shared);
    if let Some(kind) = lost {
        relay::upstream_lost(&mut lock(&shared), kind, Instant::now());
        outbox::send_marked();
    }
}

/// Fails a connection that never connected: its streams are answered by statuscope.
fn fail(shared: &Shared<UpstreamSide>, kind: UpstreamErrorKind) {
    forget(shared);
    {
        let mut side = lock(shared);
        side.conn.lost();
        relay::upstream_lost(&mut side, kind, Instant::now());
    }
    outbox::send_marked();
}

/// A frame of the largest size statuscope announces, with its header.
const READ_BUFFER: usize = frame::MAX_FRAME_SIZE + frame::HEADER_LEN;

/// What one step of an upstream connection's task came to.
enum Step {
    /// Nothing to write, nothing came: wait.
    Idle,
    /// Something went out or came in: step again.
    Progressed,
    /// The connection is over (`Some`: lost with its streams).
    Ended(Option<UpstreamErrorKind>),
}

/// One upstream connection's task.
struct Task<'a> {
    shared: &'a Shared<UpstreamSide>,
    rbuf: Vec<u8>,
    filled: usize,
    timer: Deadline,
    /// Since when the connection has had no stream.
    idle_since: Option<Instant>,
    dial: Dial,
}

impl Task<'_> {
    /// Runs until the connection ends: `Some(kind)` when it was lost with streams on it.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<UpstreamErrorKind>> {
        loop {
            let step = {
                let mut side = lock(self.shared);
                side.conn.register(cx.waker());
                self.step(cx, &mut side)
            };
            // The client connections the read relayed to, written with no lock held.
            outbox::send_marked();
            match step {
                Step::Ended(lost) => return Poll::Ready(lost),
                Step::Progressed => {}
                Step::Idle => break,
            }
        }
        let mut side = lock(self.shared);
        if side.conn.streams.is_empty() {
            let now = Instant::now();
            let since = *self.idle_since.get_or_insert(now);
            if self.timer.poll_passed(cx, since + self.dial.idle_timeout) {
                // Idle past its time: gone from the pool, and told so.
                side.conn.go_away(Reason::NO_ERROR);
                forget(self.shared);
                let _ = self.write(cx, &mut side);
                return Poll::Ready(None);
            }
        } else {
            self.idle_since = None;
        }
        Poll::Pending
    }

    /// Writes what is queued and reads what came once.
    fn step(&mut self, cx: &mut Context<'_>, side: &mut UpstreamSide) -> Step {
        let wrote = match self.write(cx, side) {
            Ok(wrote) => wrote,
            Err(()) => return Step::Ended(Some(UpstreamErrorKind::Reset)),
        };
        let read = match self.read(cx, side) {
            Ok(read) => read,
            Err(kind) => return Step::Ended(Some(kind)),
        };
        if side.conn.is_finished() && side.conn.wbuf.is_empty() {
            Step::Ended(None)
        } else if wrote || read {
            Step::Progressed
        } else {
            Step::Idle
        }
    }

    /// Writes what is queued; `Ok(true)` when something went out.
    fn write(&mut self, cx: &mut Context<'_>, side: &mut UpstreamSide) -> Result<bool, ()> {
        let queued = side.conn.wbuf.len();
        let Some(stream) = side.stream.as_mut() else {
            return Ok(false);
        };
        if side.failed {
            return Err(());
        }
        if let Written::Failed = outbox::write(stream, &mut side.conn.wbuf, cx) {
            return Err(());
        }
        let wrote = side.conn.wbuf.len() < queued;
        if wrote && queued >= WBUF_SOFT_CAP {
            // Room in the write buffer again: streams waiting for it go on.
            relay::upstream_window(side, None);
        }
        Ok(wrote)
    }

    /// Reads and relays what the upstream sent; `Ok(true)` when something came.
    fn read(
        &mut self,
        cx: &mut Context<'_>,
        side: &mut UpstreamSide,
    ) -> Result<bool, UpstreamErrorKind> {
        if side.conn.lifecycle() == Lifecycle::Failed {
            return Ok(false);
        }
        let Some(stream) = side.stream.as_mut() else {
            return Ok(false);
        };
        let mut buf = ReadBuf::new(&mut self.rbuf[self.filled..]);
        match Pin::new(stream).poll_read(cx, &mut buf) {
            Poll::Pending => return Ok(false),
            Poll::Ready(Err(_)) => return Err(UpstreamErrorKind::Reset),
            Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                return Err(UpstreamErrorKind::Reset);
            }
            Poll::Ready(Ok(())) => self.filled += buf.filled().len(),
        }
        let now = Instant::now();
        let mut at = 0;
        while at < self.filled {
            match side.conn.receive(&self.rbuf[at..self.filled], now) {
                Ok((0, _)) => break,
                Ok((taken, event)) => {
                    at += taken;
                    if let Some(event) = event {
                        relay::upstream_event(side, event, now);
                    }
                }
                Err(_) => return Err(UpstreamErrorKind::Other),
            }
        }
        self.rbuf.copy_within(at..self.filled, 0);
        self.filled -= at;
        Ok(true)
    }
}
