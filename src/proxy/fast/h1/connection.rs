//! One client connection of the fast engine: the keep-alive loop that reads each head into the
//! connection's buffer, checks it, and carries its exchange; pipelined requests wait in the
//! same buffer. The buffer is allocated at the first read and given back to its small size
//! after a request that needed a large one, so an idle connection holds little.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::Instant;

use pingora::apps::ServerApp;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use tokio::io::AsyncReadExt;

use crate::config::Downstream;
use crate::proxy::fast::deadline::Deadline;
use crate::proxy::fast::FastEngine;
use crate::proxy::guard::{linger, refuse, HeadGuard};
use crate::proxy::h2::frame::Opening;
use crate::proxy::request_head::{HeadRead, HeadReader, Progress, Refusal};
use crate::rules::FieldSpan;

/// A client connection's buffer, to begin with and after a large head: room for a head and the
/// start of a body.
const CLIENT_BUFFER: usize = 8 * 1024;

/// What an exchange leaves the client connection in.
pub(super) enum After {
    /// Ready for the next request.
    KeepAlive,
    /// Closed after the answer.
    Close,
    /// Closed after the answer, once what the client still sends has been read for a while
    /// (it may still be sending a body nobody read): a reset could destroy the answer.
    Linger,
    /// Nothing more can be sent: the client left, or a response was cut short.
    Gone,
}

/// Client connections' parts a worker keeps for the next ones: a connection per request then
/// costs no allocation, no zeroing of a new buffer, no new timer.
const SPARE_PARTS: usize = 64;

thread_local! {
    static SPARE: RefCell<Vec<Parts>> = const { RefCell::new(Vec::new()) };
}

/// What a client connection reuses from one request to the next, given back to the worker
/// when the connection ends: its buffers and its timer. (A timer still armed for the old
/// connection is harmless: each wait polls it afresh, re-arming it for its own deadline.)
pub(super) struct Parts {
    /// Bytes from the client: the current head from index 0, then body bytes or the next
    /// requests, up to the connection's `end`. Zeroed once when allocated, so reads need no
    /// unsafe code.
    pub(super) inbuf: Vec<u8>,
    /// Scratch for a head statuscope writes: an edited request head or a response head.
    pub(super) out: Vec<u8>,
    /// Where the fields of the current response head are in the upstream's buffer.
    pub(super) spans: Vec<FieldSpan>,
    /// The connection's one timer.
    pub(super) deadline: Deadline,
}

impl Parts {
    /// A spare set from this worker, or a new one.
    fn take() -> Parts {
        SPARE.with_borrow_mut(Vec::pop).unwrap_or_else(|| Parts {
            inbuf: Vec::new(),
            out: Vec::with_capacity(1024),
            spans: Vec::with_capacity(32),
            deadline: Deadline::default(),
        })
    }
}

impl Drop for Parts {
    fn drop(&mut self) {
        // A buffer a large head made grow is not kept.
        if self.inbuf.len() > CLIENT_BUFFER || self.out.capacity() > 2 * CLIENT_BUFFER {
            return;
        }
        // Not at all while the thread's own spare list is being torn down.
        let _ = SPARE.try_with(|spare| {
            let Ok(mut spare) = spare.try_borrow_mut() else {
                return;
            };
            if spare.len() < SPARE_PARTS {
                spare.push(Parts {
                    inbuf: std::mem::take(&mut self.inbuf),
                    out: std::mem::take(&mut self.out),
                    spans: std::mem::take(&mut self.spans),
                    deadline: std::mem::take(&mut self.deadline),
                });
            }
        });
    }
}

/// One client connection and its reusable buffers.
pub(in crate::proxy::fast) struct Client<'e> {
    pub(super) engine: &'e FastEngine,
    pub(super) stream: Stream,
    pub(super) shutdown: ShutdownWatch,
    pub(super) parts: Parts,
    /// How much of `bufs.inbuf` holds bytes from the client.
    pub(super) end: usize,
    /// Ends when shutdown begins. Made at the first wait for a request that does not end at
    /// once, then kept, so later waits register nothing new.
    shutting_down: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    /// Requests served on this connection so far.
    served: u64,
    /// When the last of them ended: the next one's wait is timed from there.
    pub(super) last_ended: Option<Instant>,
}

impl<'e> Client<'e> {
    pub(in crate::proxy::fast) fn new(
        engine: &'e FastEngine,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Self {
        Client {
            engine,
            stream,
            shutdown: shutdown.clone(),
            parts: Parts::take(),
            end: 0,
            shutting_down: None,
            served: 0,
            last_ended: None,
        }
    }

    /// Serves requests until the connection ends.
    pub(in crate::proxy::fast) async fn serve(mut self) {
        let engine = self.engine;
        loop {
            let limits = self.engine.settings.current();
            match self.read_head(&limits.downstream).await {
                HeadRead::Closed => return,
                HeadRead::H2c => return self.serve_h2().await,
                HeadRead::Refused(refusal, started) => {
                    let head = &self.parts.inbuf[..self.end];
                    refuse(
                        &self.engine.recorder,
                        &mut self.stream,
                        head,
                        refusal,
                        &limits,
                        started,
                    )
                    .await;
                    return;
                }
                HeadRead::Accepted(head, started) => {
                    if head.upgrade {
                        return self.hand_over(&engine.upgrades).await;
                    }
                    // The settings in force once the head is accepted, kept to the end.
                    let settings = self.engine.settings.current();
                    match self.exchange(&head, started, &settings).await {
                        After::KeepAlive => self.served += 1,
                        After::Close | After::Gone => return,
                        After::Linger => return linger(&mut self.stream).await,
                    }
                }
            }
        }
    }

    /// Serves the connection as HTTP/2 from here on, the bytes read so far first.
    async fn serve_h2(self) {
        let Ok(mut stream) = self.stream.into_any().downcast::<L4Stream>() else {
            return;
        };
        stream.rewind(&self.parts.inbuf[..self.end]);
        crate::proxy::fast::h2::serve(self.engine, stream as Stream, &self.shutdown).await;
    }

    /// Hands the connection, with the bytes read from it so far, to the pingora engine.
    async fn hand_over(self, guard: &std::sync::Arc<HeadGuard>) {
        let Ok(mut stream) = self.stream.into_any().downcast::<L4Stream>() else {
            return;
        };
        stream.rewind(&self.parts.inbuf[..self.end]);
        ServerApp::process_new(guard, stream as Stream, &self.shutdown).await;
    }

    /// Keeps the bytes from `at` on (the next requests) at the start of the buffer, and gives
    /// a buffer a large head made grow back its usual size.
    pub(super) fn consume(&mut self, at: usize) {
        self.parts.inbuf.copy_within(at..self.end, 0);
        self.end -= at;
        if self.parts.inbuf.len() > CLIENT_BUFFER && self.end <= CLIENT_BUFFER {
            self.parts.inbuf.truncate(CLIENT_BUFFER);
            self.parts.inbuf.shrink_to_fit();
        }
    }

    /// Makes room at the end of the buffer for a head of up to `limit` bytes (the reader
    /// refuses a head once it holds that many, so one more byte of room is never needed).
    fn make_room(&mut self, limit: usize) {
        if self.end == self.parts.inbuf.len() {
            let size = (self.parts.inbuf.len() * 2).clamp(CLIENT_BUFFER, limit.max(CLIENT_BUFFER));
            self.parts.inbuf.resize(size, 0);
        }
    }

    /// Reads one request head to the start of the buffer: waits up to `header_timeout` for the
    /// first bytes of a new connection or `keepalive_timeout` for the next request's, then
    /// `header_timeout` from its first byte for the rest, checking each line as it arrives.
    async fn read_head(&mut self, limits: &Downstream) -> HeadRead {
        let mut reader = HeadReader::default();
        // Bytes already here (pipelined) arrived with the previous request.
        let mut first_bytes_at = (self.end > 0).then(Instant::now);
        let mut sniffing = self.served == 0 && self.engine.h2c;
        let idle_timeout = if self.served == 0 {
            limits.header_timeout
        } else {
            limits.keepalive_timeout
        };
        let idle_until = self.last_ended.unwrap_or_else(Instant::now) + idle_timeout;
        loop {
            if self.end > 0 {
                let buffered = &self.parts.inbuf[..self.end];
                if sniffing {
                    match Opening::of(buffered) {
                        Opening::Preface => return HeadRead::H2c,
                        Opening::Undecided => {}
                        Opening::Other => sniffing = false,
                    }
                }
                if !sniffing {
                    let started = *first_bytes_at.get_or_insert_with(Instant::now);
                    match reader.advance(buffered, &limits.head) {
                        Progress::NeedMore => {}
                        Progress::Refused(refusal) => return HeadRead::Refused(refusal, started),
                        Progress::Complete(head) => return HeadRead::Accepted(head, started),
                    }
                }
            }
            self.make_room(limits.head.max_header_bytes);
            let deadline = first_bytes_at.map_or(idle_until, |at| at + limits.header_timeout);
            let read = self.stream.read(&mut self.parts.inbuf[self.end..]);
            let (shutdown, signal) = (&self.shutdown, &mut self.shutting_down);
            // A new connection waiting for its first bytes is bounded by the header timeout; a
            // kept-alive one waiting for its next request is closed at once when shutdown begins.
            let idle = first_bytes_at.is_none() && self.served > 0;
            let read = self.parts.deadline.run(|| Some(deadline), async {
                let mut read = pin!(read);
                poll_fn(|cx| {
                    if let Poll::Ready(read) = read.as_mut().poll(cx) {
                        return Poll::Ready(Some(read));
                    }
                    // Waiting for a request: shutdown ends the wait, and the connection.
                    let ends = idle
                        && signal
                            .get_or_insert_with(|| Box::pin(shutting_down(shutdown.clone())))
                            .as_mut()
                            .poll(cx)
                            .is_ready();
                    if ends {
                        Poll::Ready(None)
                    } else {
                        Poll::Pending
                    }
                })
                .await
            });
            match read.await {
                Some(None | Some(Ok(0) | Err(_))) => return HeadRead::Closed,
                Some(Some(Ok(n))) => {
                    self.end += n;
                    first_bytes_at.get_or_insert_with(Instant::now);
                }
                // An idle keep-alive connection is simply closed.
                None => match first_bytes_at {
                    None => return HeadRead::Closed,
                    Some(at) => return HeadRead::Refused(Refusal::TIMED_OUT, at),
                },
            }
        }
    }
}

/// Ends once shutdown has begun (or the server is gone).
async fn shutting_down(mut shutdown: ShutdownWatch) {
    let _ = shutdown.wait_for(|down| *down).await;
}
