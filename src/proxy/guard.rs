//! The guard in front of pingora-proxy: with the pingora engine every client connection and
//! every HTTP/1 request head passes here first; the fast engine hands it the connections it
//! does not carry itself (h2c, protocol upgrades).
//!
//! - [`ConnectionGuard`] caps open client connections, closes a connection that sends nothing
//!   within `downstream.header_timeout`, and tells h2c connections (by their preface) from
//!   HTTP/1 ones.
//! - [`HeadGuard`] reads each request head itself, with a deadline and size limits, checks it
//!   with the strict [`request_head`](super::request_head) reader, and only then hands the
//!   connection to pingora with the head already buffered.
//!
//! Both engines share the rest: the cap on connections ([`ConnectionLimit`]) and the answer to
//! a refused head ([`refuse`]: its 4xx, or 501/505, tallied with `origin="proxy"`, never
//! forwarded), closed with a lingering read ([`linger`]).
//!
//! HTTP/2 (h2c) streams arrive already framed and validated by the `h2` crate; they go
//! straight to pingora.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::BytesMut;
use pingora::apps::{
    HttpPersistentSettings, HttpServerApp, HttpServerOptions, ReusedHttpStream, ServerApp,
};
use pingora::prelude::fast_timeout::fast_timeout;
use pingora::protocols::http::v2::server::{default_h2_options, H2Options};
use pingora::protocols::http::ServerSession;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::Stream;
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;
use prometheus::{IntCounter, IntGauge};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::debug;

use super::finish::{finish, Finished, Outcome};
use super::frame_guard::FrameGuard;
use super::h2::frame::{self, Opening};
use super::in_flight::{Permit, Slots};
use super::pingora::StatuscopeProxy;
use super::request_head::{self, HeadRead, HeadReader, Progress, Refusal};
use super::settings::{LiveSettings, Settings};
use crate::classify::method_label;
use crate::config::Downstream;
use crate::families::Families;
use crate::record::Recorder;

/// pingora's own initial header buffer size; the head is handed over in a buffer like it.
const HEAD_BUFFER: usize = 4096;

/// Reads and checks request heads before pingora sees them (see the module docs).
pub struct HeadGuard {
    proxy: Arc<HttpProxy<StatuscopeProxy>>,
    settings: Arc<Settings>,
    recorder: Recorder,
    options: HttpServerOptions,
}

/// Answers a refused head with its 4xx (or 501/505), closes the connection and finishes the
/// request with `origin="proxy"`; `head` is what arrived of it, `started` when it began.
pub async fn refuse(
    recorder: &Recorder,
    stream: &mut Stream,
    head: &[u8],
    refusal: Refusal,
    settings: &LiveSettings,
    started: Instant,
) {
    let line = request_head::request_line(head);
    let method = line
        .method
        .and_then(|m| http::Method::from_bytes(m).ok())
        .map_or("_OTHER", |m| method_label(&m));
    debug!(
        status = refusal.error.status,
        reason = refusal.reason,
        "refused a request head"
    );
    // Finished before the answer goes out, so whoever has read the answer finds the tally.
    // A refused head is tallied as the request it failed to be, probe or not.
    let outcome = Outcome::Proxy(refusal.error);
    let finished = Finished::new(method, line.path, outcome, started, Instant::now());
    finish(recorder, settings, finished);
    if let Ok(wire) = refusal.error.to_http1(refusal.reason) {
        // A client that does not read its answer is not waited for.
        let write = async {
            stream.write_all(&wire).await?;
            stream.shutdown().await
        };
        if let Ok(Ok(())) = tokio::time::timeout(settings.downstream.header_timeout, write).await {
            linger(stream).await;
        }
    }
}

#[async_trait]
impl HttpServerApp for HeadGuard {
    async fn process_new_http(
        self: &Arc<Self>,
        session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let persistent = HttpPersistentSettings::for_session(&session);
        let ServerSession::H1(h1) = session else {
            return self.proxy.process_new_http(session, shutdown).await;
        };
        let settings = self.settings.current();
        let mut stream = h1.into_inner();
        let mut head = BytesMut::with_capacity(HEAD_BUFFER);
        match read_head(&mut stream, &mut head, &settings.downstream, shutdown).await {
            HeadRead::Closed | HeadRead::H2c => None,
            HeadRead::Refused(refusal, started) => {
                refuse(
                    &self.recorder,
                    &mut stream,
                    &head,
                    refusal,
                    &settings,
                    started,
                )
                .await;
                None
            }
            HeadRead::Accepted(..) => {
                let mut session = ServerSession::new_http1(stream);
                persistent.apply_to_session(&mut session);
                if session.get_keepalive().is_some() && !*shutdown.borrow() {
                    session.set_keepalive(Some(settings.downstream.keepalive_timeout.as_secs()));
                }
                session.set_pipelined_prefix(head);
                self.proxy.process_new_http(session, shutdown).await
            }
        }
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        Some(&self.options)
    }

    /// The same HTTP/2 limits as statuscope's own relay (`h2.*`, `downstream.max_header_bytes`).
    fn h2_options(&self) -> Option<H2Options> {
        let settings = self.settings.current();
        let h2 = settings.downstream.h2;
        let mut options = default_h2_options();
        options
            .max_header_list_size(settings.downstream.head.max_header_bytes as u32)
            .max_concurrent_streams(h2.max_concurrent_streams)
            .initial_window_size(h2.stream_window)
            .initial_connection_window_size(h2.connection_window);
        Some(options)
    }

    async fn http_cleanup(&self) {
        self.proxy.http_cleanup().await;
    }
}

/// Reads and discards what the client still sends after its answer, for a short while:
/// closing a socket with unread input makes the kernel send a reset, which can destroy the
/// answer before the client reads it (nginx's "lingering close").
pub async fn linger(stream: &mut Stream) {
    const LINGER: Duration = Duration::from_secs(1);
    const LINGER_BYTES: usize = 1024 * 1024;
    let mut scratch = [0u8; 4096];
    let mut discarded = 0;
    let deadline = Instant::now() + LINGER;
    while discarded < LINGER_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut scratch)).await {
            Ok(Ok(n)) if n > 0 => discarded += n,
            _ => return,
        }
    }
}

/// Reads one request head into `buf`: waits up to `keepalive_timeout` for its first byte and
/// `header_timeout` from then for the rest, checking each line as it arrives.
async fn read_head(
    stream: &mut Stream,
    buf: &mut BytesMut,
    limits: &Downstream,
    shutdown: &ShutdownWatch,
) -> HeadRead {
    let mut reader = HeadReader::default();
    let mut shutdown = shutdown.clone();
    let idle_until = Instant::now() + limits.keepalive_timeout;
    let mut first_bytes_at = None;
    loop {
        let deadline = first_bytes_at.map_or(idle_until, |at| at + limits.header_timeout);
        let read = tokio::select! {
            biased;
            // pingora's shared 10 ms timer wheel: no timer at all while data is waiting, and no
            // timer registration per read otherwise.
            read = fast_timeout(deadline.saturating_duration_since(Instant::now()), stream.read_buf(buf)) => read,
            _ = shutdown.wait_for(|down| *down) => return HeadRead::Closed,
        };
        let started = match (read, first_bytes_at) {
            (Ok(Ok(0)) | Ok(Err(_)), _) => return HeadRead::Closed,
            (Ok(Ok(_)), Some(at)) => at,
            (Ok(Ok(_)), None) => *first_bytes_at.insert(Instant::now()),
            // An idle keep-alive connection is simply closed.
            (Err(_), None) => return HeadRead::Closed,
            (Err(_), Some(at)) => return HeadRead::Refused(Refusal::TIMED_OUT, at),
        };
        match reader.advance(buf, &limits.head) {
            Progress::NeedMore => {}
            Progress::Refused(refusal) => return HeadRead::Refused(refusal, started),
            Progress::Complete(head) => {
                serve_as_http11(buf, &head);
                if head.chunked {
                    if let Err(refusal) = request_head::check_buffered_chunks(&buf[head.head_len..])
                    {
                        return HeadRead::Refused(refusal, started);
                    }
                }
                return HeadRead::Accepted(head, started);
            }
        }
    }
}

/// Makes a request line's `HTTP/1.x` past 1.1 read `HTTP/1.1`, in place: the reader served it
/// as 1.1 (RFC 9110 §2.5), and pingora's parser takes only 1.0 and 1.1.
fn serve_as_http11(buf: &mut [u8], head: &request_head::Head) {
    let version = head.target.end + 1;
    if head.http10 || buf.get(version..version + 7) != Some(b"HTTP/1.") {
        return;
    }
    buf[version + 7] = b'1';
}

/// Caps open client connections, closes those that never start a request, and tells h2c
/// from HTTP/1 connections.
pub struct ConnectionGuard {
    /// For HTTP/1 connections: pingora's h2c sniffing switched off.
    http1: Arc<HeadGuard>,
    /// For connections that opened with the HTTP/2 preface, when `h2c` is on.
    h2c: Option<Arc<HeadGuard>>,
    settings: Arc<Settings>,
    limit: ConnectionLimit,
}

impl HeadGuard {
    /// A guard in front of `proxy`; with `h2c`, pingora reads HTTP/2 with prior knowledge.
    pub fn new(
        proxy: Arc<HttpProxy<StatuscopeProxy>>,
        settings: Arc<Settings>,
        recorder: Recorder,
        h2c: bool,
    ) -> Arc<HeadGuard> {
        let mut options = HttpServerOptions::default();
        options.h2c = h2c;
        Arc::new(HeadGuard {
            proxy,
            settings,
            recorder,
            options,
        })
    }
}

impl ConnectionGuard {
    /// Guards connections to `proxy` within `limit`, accepting h2c when `h2c` is set.
    pub fn new(
        proxy: Arc<HttpProxy<StatuscopeProxy>>,
        settings: Arc<Settings>,
        recorder: &Recorder,
        limit: ConnectionLimit,
        h2c: bool,
    ) -> Self {
        let guard = |h2c| HeadGuard::new(proxy.clone(), settings.clone(), recorder.clone(), h2c);
        ConnectionGuard {
            http1: guard(false),
            h2c: h2c.then(|| guard(true)),
            limit,
            settings,
        }
    }
}

/// The cap on open client connections (`downstream.max_connections`) and its families, one for
/// all of a process's workers.
#[derive(Clone)]
pub struct ConnectionLimit {
    open: Slots,
    gauge: IntGauge,
    refused: IntCounter,
}

/// One open client connection, counted in the gauge and the cap for as long as it lives.
pub struct OpenConnection<'a> {
    _slot: Permit,
    gauge: &'a IntGauge,
}

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

impl ConnectionLimit {
    /// Registers `statuscope_downstream_connections` and
    /// `statuscope_downstream_connections_refused_total`, which report the cap.
    pub fn register(families: &Families) -> Self {
        ConnectionLimit {
            open: Slots::default(),
            gauge: families.gauge(
                "statuscope_downstream_connections",
                "Client connections open on the proxy port.",
            ),
            refused: families.counter(
                "statuscope_downstream_connections_refused_total",
                "Client connections closed at accept because downstream.max_connections were open.",
            ),
        }
    }

    /// Counts a new connection in, or refuses it (and counts the refusal) when `max` are open.
    pub fn admit(&self, max: usize) -> Option<OpenConnection<'_>> {
        let Some(slot) = self.open.try_take(max) else {
            self.refused.inc();
            return None;
        };
        self.gauge.inc();
        Some(OpenConnection {
            _slot: slot,
            gauge: &self.gauge,
        })
    }
}

/// Reads the first bytes of a connection, as many as it takes to tell the HTTP/2 preface
/// from anything else (one, for a connection that is not a `P`), and puts them back.
///
/// pingora's own sniffing waits for 24 bytes, so a complete HTTP/1 request shorter than
/// that (`GET / HTTP/1.0\r\n\r\n`) would wait forever.
async fn opens_with_h2_preface(stream: Stream, look_for_h2: bool) -> Option<(Stream, bool)> {
    let mut stream = stream.into_any().downcast::<L4Stream>().ok()?;
    let mut seen = [0u8; frame::PREFACE.len()];
    let mut len = 0;
    let wanted = if look_for_h2 { frame::PREFACE.len() } else { 1 };
    let mut opening = Opening::Undecided;
    while len < wanted && opening == Opening::Undecided {
        // Never more than the preface's remaining bytes: nothing past it is consumed.
        let n = stream.read(&mut seen[len..wanted]).await.ok()?;
        if n == 0 {
            return None;
        }
        len += n;
        opening = Opening::of(&seen[..len]);
    }
    stream.rewind(&seen[..len]);
    Some((stream as Stream, look_for_h2 && opening == Opening::Preface))
}

#[async_trait]
impl ServerApp for ConnectionGuard {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let settings = self.settings.current();
        let limits = &settings.downstream;
        // Dropping the stream closes it: nothing is owed to a connection refused at accept.
        let _open = self.limit.admit(limits.max_connections)?;
        // Silent or gone before its first bytes: closed without an answer.
        let sniffed = fast_timeout(
            limits.header_timeout,
            opens_with_h2_preface(stream, self.h2c.is_some()),
        );
        let (stream, h2) = sniffed.await.ok()??;
        match (&self.h2c, h2) {
            (Some(h2c), true) => {
                let guarded = FrameGuard::around(stream, limits.head.max_header_bytes);
                ServerApp::process_new(h2c, guarded, shutdown).await
            }
            _ => ServerApp::process_new(&self.http1, stream, shutdown).await,
        }
    }

    async fn cleanup(&self) {
        ServerApp::cleanup(self.http1.as_ref()).await;
    }
}
