//! Upstream connections of the fast engine and the per-worker pool that keeps them alive.
//!
//! Each worker thread runs one current-thread runtime, so its pool is a plain thread-local
//! stack: taking and returning a connection is a push or a pop — no lock, no channel, no task
//! spawned per release, and no system call per reuse. Whether an idle connection went stale
//! (the upstream closed it, or sent bytes nobody asked for) is read from the readiness the
//! runtime's reactor already recorded for its socket: when a response ends, the connection's
//! read readiness is cleared, so any readiness seen when it is taken again means the upstream
//! spoke or hung up while it sat idle. The reactor keeps a hang-up sticky, so even one that
//! arrived with the last bytes of a response is seen.
//!
//! Connections idle longer than `timeouts.idle` are dropped when the pool is next used (the
//! oldest first), never by a timer: an idle sidecar wakes for nothing.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, Interest};
use tokio::net::TcpStream;

use crate::classify::UpstreamErrorKind;
use crate::proxy::fast::deadline::{read_deadline, Deadline};

/// The initial size of a connection's response buffer: a response head and the first part
/// of its body arrive in it, and the body streams through it.
const RESPONSE_BUFFER: usize = 16 * 1024;

/// One connection to the upstream with its response buffer. The exchanges that use it read
/// and write its fields directly: it is their I/O, on the request path.
pub(in crate::proxy::fast) struct UpstreamConn {
    pub stream: TcpStream,
    /// Response bytes, up to `filled`: a head, then body pieces as they stream. Zeroed once
    /// when allocated, so reads need no unsafe code.
    pub buf: Vec<u8>,
    /// How much of `buf` holds bytes from the upstream.
    pub filled: usize,
    addr: SocketAddr,
    idle_since: Instant,
    /// It carried a request before: a close before any answer may be a stale connection.
    pub reused: bool,
}

/// Response buffers a worker keeps for connections taken from its pool: enough for the
/// requests usually in flight on one worker, so a busy worker allocates none, while an idle
/// pool of many connections holds a bounded amount of memory.
const SPARE_BUFFERS: usize = 64;

thread_local! {
    /// This worker's idle connections, the most recently used at the back. They hold no
    /// buffer: a connection gets one when it is taken.
    static POOL: RefCell<VecDeque<UpstreamConn>> = const { RefCell::new(VecDeque::new()) };
    /// Buffers of connections returned to the pool.
    static BUFFERS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A response buffer: a spare one, or a new one.
fn buffer() -> Vec<u8> {
    BUFFERS
        .with_borrow_mut(Vec::pop)
        .unwrap_or_else(|| vec![0; RESPONSE_BUFFER])
}

impl UpstreamConn {
    /// Connects to `addr` (the caller bounds the wait).
    pub async fn connect(addr: SocketAddr) -> Result<UpstreamConn, UpstreamErrorKind> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|_| UpstreamErrorKind::ConnectRefused)?;
        // Heads and small bodies go out in one segment each; nothing waits for more.
        let _ = stream.set_nodelay(true);
        Ok(UpstreamConn {
            stream,
            buf: buffer(),
            filled: 0,
            addr,
            idle_since: Instant::now(),
            reused: false,
        })
    }

    /// Takes this worker's most recently used idle connection to `addr` that is still good,
    /// dropping the stale and the expired on the way.
    pub fn checkout(
        addr: SocketAddr,
        idle_timeout: Duration,
        now: Instant,
    ) -> Option<UpstreamConn> {
        POOL.with_borrow_mut(|pool| {
            while let Some(mut upstream) = pool.pop_back() {
                if upstream.addr == addr
                    && now.saturating_duration_since(upstream.idle_since) < idle_timeout
                    && !upstream.spoke_while_idle()
                {
                    expire_oldest(pool, idle_timeout, now);
                    upstream.reused = true;
                    upstream.buf = buffer();
                    return Some(upstream);
                }
            }
            None
        })
    }

    /// Returns a connection whose last response ended cleanly to this worker's pool, which
    /// keeps at most `capacity`; `now` is when the response ended.
    pub fn checkin(mut self, capacity: usize, now: Instant) {
        if capacity == 0 {
            return;
        }
        self.idle_since = now;
        self.filled = 0;
        // A buffer a large head made grow is not kept.
        let buf = std::mem::take(&mut self.buf);
        if buf.len() == RESPONSE_BUFFER {
            BUFFERS.with_borrow_mut(|spare| {
                if spare.len() < SPARE_BUFFERS {
                    spare.push(buf);
                }
            });
        }
        POOL.with_borrow_mut(|pool| {
            if pool.len() >= capacity {
                pool.pop_front();
            }
            pool.push_back(self);
        });
    }

    /// Reads more of a response into the buffer after `filled`, within `read_timeout` and the
    /// response's own deadline, on the connection's `timer`: the bytes read, 0 when the
    /// upstream closed.
    pub async fn read_more(
        &mut self,
        timer: &mut Deadline,
        read_timeout: Duration,
        response_deadline: Option<Instant>,
    ) -> Result<usize, UpstreamErrorKind> {
        let deadline = || Some(read_deadline(read_timeout, response_deadline));
        let read = timer
            .run(deadline, self.stream.read(&mut self.buf[self.filled..]))
            .await;
        match read {
            None if response_deadline.is_some_and(|limit| Instant::now() >= limit) => {
                Err(UpstreamErrorKind::ResponseTimeout)
            }
            None => Err(UpstreamErrorKind::ReadTimeout),
            Some(Ok(n)) => Ok(n),
            Some(Err(_)) => Err(UpstreamErrorKind::Reset),
        }
    }

    /// Marks everything the upstream sent so far as read: called when a response has ended
    /// by its framing with no byte beyond it, so readiness seen later is news.
    pub fn mark_drained(&self) {
        // No system call: an error the closure returns as "would block" only clears the
        // readiness the reactor recorded. Hang-ups stay recorded.
        let _ = self.stream.try_io(Interest::READABLE, || {
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
    }

    /// Whether the socket became readable while idle: the upstream closed it or sent bytes.
    fn spoke_while_idle(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        self.stream.poll_read_ready(&mut cx).is_ready()
    }
}

/// Drops connections at the front (the longest idle) once they are past `idle_timeout`.
fn expire_oldest(pool: &mut VecDeque<UpstreamConn>, idle_timeout: Duration, now: Instant) {
    while pool
        .front()
        .is_some_and(|oldest| now.saturating_duration_since(oldest.idle_since) >= idle_timeout)
    {
        pool.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A current-thread runtime, as a worker has.
    fn worker() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_drained_connection_is_reused_and_one_the_upstream_closed_is_not() {
        worker().block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let idle = Duration::from_secs(60);
            let mut upstream = UpstreamConn::connect(addr).await.unwrap();
            let (mut accepted, _) = listener.accept().await.unwrap();
            accepted.write_all(b"response").await.unwrap();
            let mut buf = [0u8; 8];
            upstream.stream.read_exact(&mut buf).await.unwrap();
            upstream.mark_drained();
            upstream.checkin(4, Instant::now());
            let again = UpstreamConn::checkout(addr, idle, Instant::now()).expect("reused");
            assert!(again.reused);
            again.mark_drained();
            again.checkin(4, Instant::now());
            drop(accepted);
            // Wait until the reactor has seen the hang-up, as a worker would between requests.
            std::future::poll_fn(|cx| {
                POOL.with_borrow(|pool| pool[0].stream.poll_read_ready(cx).map(|_| ()))
            })
            .await;
            assert!(UpstreamConn::checkout(addr, idle, Instant::now()).is_none());
        });
    }

    #[test]
    fn expired_and_foreign_connections_are_dropped() {
        worker().block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let idle = Duration::from_secs(60);
            let upstream = UpstreamConn::connect(addr).await.unwrap();
            let now = Instant::now();
            upstream.checkin(4, now);
            assert!(UpstreamConn::checkout(addr, idle, now + idle).is_none());
            let upstream = UpstreamConn::connect(addr).await.unwrap();
            upstream.checkin(4, now);
            let other: SocketAddr = "127.0.0.1:1".parse().unwrap();
            assert!(UpstreamConn::checkout(other, idle, now).is_none());
            assert!(POOL.with_borrow(VecDeque::is_empty));
        });
    }
}
