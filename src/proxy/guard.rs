//! The guard in front of pingora: every client connection and every HTTP/1 request head
//! passes here first.
//!
//! - [`ConnectionGuard`] caps open client connections (`downstream.max_connections`) and
//!   closes a connection that sends nothing within `downstream.header_timeout`.
//! - [`HeadGuard`] reads each request head itself, with a deadline and size limits, checks it
//!   with the strict [`request_head`](super::request_head) reader, and only then hands the
//!   connection to pingora with the head already buffered. A refused head gets its 4xx (or
//!   501/505) from here, is tallied with `origin="proxy"`, and never reaches the upstream.
//!
//! HTTP/2 (h2c) streams arrive already framed and validated by the `h2` crate; they go
//! straight to pingora.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::BytesMut;
use pingora::apps::{
    HttpPersistentSettings, HttpServerApp, HttpServerOptions, ReusedHttpStream, ServerApp,
};
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout, timeout_at, Instant};
use tracing::debug;

use super::admission::Slots;
use super::request_head::{self, HeadReader, Progress, Refusal};
use super::settings::{LiveSettings, Settings};
use super::{log_access, StatuscopeProxy};
use crate::classify::{method_label, Origin};
use crate::config::Downstream;
use crate::record::{Exchange, Metrics};

/// The route label of a refused request whose request line has no readable path.
pub const MALFORMED_ROUTE: &str = "__malformed__";

/// pingora's own initial header buffer size; the head is handed over in a buffer like it.
const HEAD_BUFFER: usize = 4096;

/// How a head read ended.
enum HeadRead {
    /// A complete, acceptable head (and perhaps some body) is in the buffer.
    Accepted,
    /// The client closed, went idle past the keep-alive timeout, or shutdown began.
    Closed,
    /// The head is refused.
    Refused(Refusal),
}

/// Reads and checks request heads before pingora sees them (see the module docs).
pub struct HeadGuard {
    proxy: Arc<HttpProxy<StatuscopeProxy>>,
    settings: Arc<Settings>,
    metrics: Arc<Metrics>,
    options: HttpServerOptions,
}

impl HeadGuard {
    /// Guards `proxy`, which must share `settings` and `metrics`.
    pub fn new(
        proxy: HttpProxy<StatuscopeProxy>,
        settings: Arc<Settings>,
        metrics: Arc<Metrics>,
        h2c: bool,
    ) -> Self {
        let mut options = HttpServerOptions::default();
        options.h2c = h2c;
        HeadGuard {
            proxy: Arc::new(proxy),
            settings,
            metrics,
            options,
        }
    }

    /// Answers a refused head, closes the connection and tallies the request.
    async fn refuse(
        &self,
        mut stream: Stream,
        head: &[u8],
        refusal: Refusal,
        settings: &LiveSettings,
        started: Instant,
    ) {
        let line = request_head::request_line(head);
        let route = line
            .path
            .and_then(|path| std::str::from_utf8(path).ok())
            .map(|path| settings.routes.resolve(path));
        if route.as_ref().is_some_and(|route| route.overflow) {
            self.metrics.record_route_overflow();
        }
        let method = line
            .method
            .and_then(|m| http::Method::from_bytes(m).ok())
            .map_or("_OTHER", |m| method_label(&m));
        debug!(
            status = refusal.error.status,
            reason = refusal.reason,
            "refused a request head"
        );
        if let Ok(wire) = refusal.error.to_http1(refusal.reason) {
            // A client that does not read its answer is not waited for.
            let write = async {
                stream.write_all(&wire).await?;
                stream.shutdown().await
            };
            let _ = timeout(settings.downstream.header_timeout, write).await;
        }
        let exchange = Exchange {
            route: route.as_ref().map_or(MALFORMED_ROUTE, |r| &r.label),
            method,
            code: refusal.error.status,
            origin: Origin::Proxy,
            duration: started.elapsed(),
        };
        self.metrics.record(&exchange);
        if settings.access_log {
            log_access(&exchange);
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
        let started = Instant::now();
        match read_head(&mut stream, &mut head, &settings.downstream, shutdown).await {
            HeadRead::Closed => None,
            HeadRead::Refused(refusal) => {
                self.refuse(stream, &head, refusal, &settings, started)
                    .await;
                None
            }
            HeadRead::Accepted => {
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

    async fn http_cleanup(&self) {
        self.proxy.http_cleanup().await;
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
    let mut deadline = Instant::now() + limits.keepalive_timeout;
    loop {
        let read = tokio::select! {
            biased;
            read = timeout_at(deadline, stream.read_buf(buf)) => read,
            _ = shutdown.wait_for(|down| *down) => return HeadRead::Closed,
        };
        let first_bytes = match read {
            Ok(Ok(0)) | Ok(Err(_)) => return HeadRead::Closed,
            Ok(Ok(n)) => n == buf.len(),
            // RFC 9110 §15.5.9: 408 for a request that did not arrive in time; an idle
            // keep-alive connection is simply closed.
            Err(_) if buf.is_empty() => return HeadRead::Closed,
            Err(_) => {
                return HeadRead::Refused(Refusal {
                    error: super::error_response::ProxyError::REQUEST_TIMEOUT,
                    reason: "the request head did not arrive within the header timeout",
                })
            }
        };
        if first_bytes {
            deadline = Instant::now() + limits.header_timeout;
        }
        match reader.advance(buf, &limits.head) {
            Progress::NeedMore => {}
            Progress::Refused(refusal) => return HeadRead::Refused(refusal),
            Progress::Complete(head) => {
                if head.chunked {
                    if let Err(refusal) = request_head::check_buffered_chunks(&buf[head.head_len..])
                    {
                        return HeadRead::Refused(refusal);
                    }
                }
                return HeadRead::Accepted;
            }
        }
    }
}

/// Caps open client connections and closes those that never start a request.
pub struct ConnectionGuard {
    heads: Arc<HeadGuard>,
    open: Slots,
}

impl ConnectionGuard {
    /// Guards the connections of `heads`.
    pub fn new(heads: HeadGuard) -> Self {
        ConnectionGuard {
            heads: Arc::new(heads),
            open: Slots::default(),
        }
    }
}

/// Counts one open connection in the gauge for as long as it lives.
struct OpenConnection<'a>(&'a Metrics);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.connections().dec();
    }
}

#[async_trait]
impl ServerApp for ConnectionGuard {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let metrics = &self.heads.metrics;
        let limits = self.heads.settings.current().downstream.clone();
        // Dropping the stream closes it: nothing is owed to a connection refused at accept.
        let Some(_slot) = self.open.try_take(limits.max_connections) else {
            metrics.record_connection_refused();
            return None;
        };
        metrics.connections().inc();
        let _open = OpenConnection(metrics);
        let mut first = [0u8; 1];
        match timeout(limits.header_timeout, stream.try_peek(&mut first)).await {
            Ok(Ok(_)) => ServerApp::process_new(&self.heads, stream, shutdown).await,
            // Silent or gone before a first byte: close without an answer.
            Ok(Err(_)) | Err(_) => None,
        }
    }

    async fn cleanup(&self) {
        ServerApp::cleanup(self.heads.as_ref()).await;
    }
}
