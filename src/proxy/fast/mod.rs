//! The fast engine (`proxy.engine: fast`, the default): statuscope's own HTTP/1 keep-alive
//! loop, on pingora-core's server, listeners, runtime and shutdown.
//!
//! One client connection is one task on its worker's current-thread runtime, running
//! [`connection`]'s loop: read a head into the connection's buffer and check it with the
//! strict [`request_head`](super::request_head) reader, then carry the [`exchange`] — the head
//! forwarded as read ([`forward`]) on a connection from the worker's [`upstream`] pool, the
//! response head parsed once ([`response_head`]), bodies streamed by their framing through
//! reused buffers with backpressure both ways — and end it in [`finish`](super::finish), the
//! path both engines share. What the loop does not carry itself goes to the pingora engine
//! with the bytes already read: connections that open with the HTTP/2 preface (h2c), and
//! requests that ask to switch protocols (`Upgrade`, such as WebSocket).

pub mod deadline;
pub mod h1;
pub mod h2;
pub mod upstream;

use std::sync::Arc;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;

use super::guard::{ConnectionLimit, HeadGuard};
use super::in_flight::InFlightLimit;
use super::pingora::StatuscopeProxy;
use super::settings::Settings;
use crate::record::Recorder;

/// The fast engine: what every connection task shares.
pub struct FastEngine {
    settings: Arc<Settings>,
    recorder: Recorder,
    in_flight: InFlightLimit,
    limit: ConnectionLimit,
    /// Where requests asking for a protocol upgrade go: the pingora engine.
    upgrades: Arc<HeadGuard>,
    /// Connections that open with the HTTP/2 preface are served (`h2c`).
    h2c: bool,
    /// Idle upstream connections each worker keeps.
    pool_capacity: usize,
}

impl FastEngine {
    /// An engine with `proxy` (the pingora engine) for what it hands over, sharing `in_flight`
    /// and the connection `limit` with every other worker; each worker pools up to
    /// `pool_capacity` idle upstream connections.
    pub fn new(
        proxy: Arc<HttpProxy<StatuscopeProxy>>,
        settings: Arc<Settings>,
        recorder: &Recorder,
        in_flight: InFlightLimit,
        limit: ConnectionLimit,
        h2c: bool,
        pool_capacity: usize,
    ) -> Self {
        FastEngine {
            upgrades: HeadGuard::new(proxy, settings.clone(), recorder.clone(), false),
            h2c,
            settings,
            recorder: recorder.clone(),
            in_flight,
            limit,
            pool_capacity,
        }
    }
}

#[async_trait]
impl ServerApp for FastEngine {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let max_connections = self.settings.current().downstream.max_connections;
        // Dropping the stream closes it: nothing is owed to a connection refused at accept.
        let _open = self.limit.admit(max_connections)?;
        h1::connection::Client::new(self, stream, shutdown)
            .serve()
            .await;
        None
    }
}
