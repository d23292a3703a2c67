//! One client connection of the fast engine: the keep-alive loop that reads each head into the
//! connection's buffer, checks it, and carries its exchange; pipelined requests wait in the
//! same buffer. The buffer is allocated at the first read and given back to its small size
//! after a request that needed a large one, so an idle connection holds little.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use pingora::apps::ServerApp;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use tokio::io::AsyncReadExt;

use super::super::error_response::ProxyError;
use super::super::guard::{linger, refuse, HeadGuard, H2_PREFACE};
use super::super::request_head::{Head, HeadReader, Progress, Refusal};
use super::deadline::Deadline;
use super::FastEngine;
use crate::config::Downstream;
use crate::rules::FieldSpan;

/// A client connection's buffer, to begin with and after a large head: room for a head and the
/// start of a body.
const CLIENT_BUFFER: usize = 8 * 1024;

/// How a head read ended.
enum HeadRead {
    /// A complete, acceptable head is at the start of the buffer; its first bytes arrived then.
    Accepted(Head, Instant),
    /// The head, whose first bytes arrived then, is refused.
    Refused(Refusal, Instant),
    /// The connection opened with the HTTP/2 preface.
    H2c,
    /// The client closed, went idle past its timeout, or shutdown began.
    Closed,
}

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

/// One client connection and its reusable buffers.
pub(super) struct Client<'e> {
    pub(super) engine: &'e FastEngine,
    pub(super) stream: Stream,
    pub(super) shutdown: ShutdownWatch,
    /// Bytes from the client: the current head from index 0, then body bytes or the next
    /// requests, up to `end`. Zeroed once when allocated, so reads need no unsafe code.
    pub(super) inbuf: Vec<u8>,
    pub(super) end: usize,
    /// Scratch for a head statuscope writes: an edited request head or a response head.
    pub(super) out: Vec<u8>,
    /// Where the fields of the current response head are in the upstream's buffer.
    pub(super) spans: Vec<FieldSpan>,
    /// The connection's one timer.
    pub(super) deadline: Deadline,
    /// Ends when shutdown begins; made once, so waiting for a request registers nothing new.
    shutting_down: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Requests served on this connection so far.
    served: u64,
}

impl<'e> Client<'e> {
    pub(super) fn new(engine: &'e FastEngine, stream: Stream, shutdown: &ShutdownWatch) -> Self {
        Client {
            engine,
            stream,
            shutdown: shutdown.clone(),
            inbuf: Vec::new(),
            end: 0,
            out: Vec::new(),
            spans: Vec::new(),
            deadline: Deadline::default(),
            shutting_down: Box::pin(shutting_down(shutdown.clone())),
            served: 0,
        }
    }

    /// Serves requests until the connection ends.
    pub(super) async fn serve(mut self) {
        let engine = self.engine;
        loop {
            let limits = self.engine.settings.current();
            match self.read_head(&limits.downstream).await {
                HeadRead::Closed => return,
                HeadRead::H2c => return self.hand_over(engine.h2c.as_ref()).await,
                HeadRead::Refused(refusal, started) => {
                    let head = &self.inbuf[..self.end];
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
                        return self.hand_over(Some(&engine.upgrades)).await;
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

    /// Hands the connection, with the bytes read from it so far, to the pingora engine.
    async fn hand_over(self, guard: Option<&std::sync::Arc<HeadGuard>>) {
        let (Some(guard), Ok(mut stream)) = (guard, self.stream.into_any().downcast::<L4Stream>())
        else {
            return;
        };
        stream.rewind(&self.inbuf[..self.end]);
        ServerApp::process_new(guard, stream as Stream, &self.shutdown).await;
    }

    /// Keeps the bytes from `at` on (the next requests) at the start of the buffer, and gives
    /// a buffer a large head made grow back its usual size.
    pub(super) fn consume(&mut self, at: usize) {
        self.inbuf.copy_within(at..self.end, 0);
        self.end -= at;
        if self.inbuf.len() > CLIENT_BUFFER && self.end <= CLIENT_BUFFER {
            self.inbuf.truncate(CLIENT_BUFFER);
            self.inbuf.shrink_to_fit();
        }
    }

    /// Makes room at the end of the buffer for a head of up to `limit` bytes (the reader
    /// refuses a head once it holds that many, so one more byte of room is never needed).
    fn make_room(&mut self, limit: usize) {
        if self.end == self.inbuf.len() {
            let size = (self.inbuf.len() * 2).clamp(CLIENT_BUFFER, limit.max(CLIENT_BUFFER));
            self.inbuf.resize(size, 0);
        }
    }

    /// Reads one request head to the start of the buffer: waits up to `header_timeout` for the
    /// first bytes of a new connection or `keepalive_timeout` for the next request's, then
    /// `header_timeout` from its first byte for the rest, checking each line as it arrives.
    async fn read_head(&mut self, limits: &Downstream) -> HeadRead {
        let mut reader = HeadReader::default();
        // Bytes already here (pipelined) arrived with the previous request.
        let mut first_bytes_at = (self.end > 0).then(Instant::now);
        let mut sniffing = self.served == 0 && self.engine.h2c.is_some();
        let idle_timeout = if self.served == 0 {
            limits.header_timeout
        } else {
            limits.keepalive_timeout
        };
        let idle_until = Instant::now() + idle_timeout;
        loop {
            if self.end > 0 {
                let buffered = &self.inbuf[..self.end];
                if sniffing {
                    if !H2_PREFACE.starts_with(&buffered[..buffered.len().min(H2_PREFACE.len())]) {
                        sniffing = false;
                    } else if buffered.len() >= H2_PREFACE.len() {
                        return HeadRead::H2c;
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
            let read = self.stream.read(&mut self.inbuf[self.end..]);
            let shutting_down = self.shutting_down.as_mut();
            let idle = first_bytes_at.is_none();
            let read = self.deadline.run(Some(deadline), async {
                if !idle {
                    return Some(read.await);
                }
                // Waiting for a request: shutdown ends the wait, and the connection.
                tokio::select! {
                    biased;
                    read = read => Some(read),
                    _ = shutting_down => None,
                }
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
                    // RFC 9110 §15.5.9: 408 for a request that did not arrive in time.
                    Some(at) => {
                        let refusal = Refusal {
                            error: ProxyError::REQUEST_TIMEOUT,
                            reason: "the request head did not arrive within the header timeout",
                        };
                        return HeadRead::Refused(refusal, at);
                    }
                },
            }
        }
    }
}

/// Ends once shutdown has begun (or the server is gone).
async fn shutting_down(mut shutdown: ShutdownWatch) {
    let _ = shutdown.wait_for(|down| *down).await;
}
