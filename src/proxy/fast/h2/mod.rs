//! The fast engine's HTTP/2 client connections, relayed on statuscope's own HTTP/2
//! ([`crate::proxy::h2`]).
//!
//! A client connection that opens with the HTTP/2 preface is served in its connection's own
//! task ([`client`]): it reads frames, and for each stream an [`exchange`] carries the request
//! to the upstream and the response back. To an HTTP/2 upstream the exchange is *relayed*
//! ([`relay`]): each frame is re-encoded straight into the other connection's write buffer by
//! whichever task read it — no task, no channel and no header map per stream — with each side's
//! flow-control window given back only as the other side takes the bytes. The upstream's
//! connections are pooled per worker, each with a task of its own
//! ([`upstream::h2`](super::upstream::h2)). To an HTTP/1 upstream, a stream is carried by a
//! small future in the client's task ([`to_http1`]). Statuscope's own answers (a failed
//! upstream, a malformed or shed request) are made in [`answer`].
//!
//! Connections are shared between the tasks of one worker as `Arc<Mutex<…>>`: every lock is
//! taken on the worker's own thread and never held across an await, so it is never contended;
//! a second lock of the same connection in one call chain is a bug, and panics rather than
//! hangs ([`lock`]).

pub(super) mod answer;
pub(super) mod client;
pub(super) mod exchange;
pub(super) mod outbox;
pub(super) mod relay;
pub(super) mod to_http1;

use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use pingora::protocols::Stream;

use crate::proxy::h2::conn::{Conn, StreamKey, WBUF_SOFT_CAP};
use crate::record::Recorder;

use exchange::Carried;

pub(in crate::proxy::fast) use client::serve;

/// A connection shared by the tasks of one worker.
pub(in crate::proxy::fast) type Shared<T> = Arc<Mutex<T>>;

/// Locks a connection of this worker. Only this worker's tasks reach it, one at a time, and
/// none holds a lock across an await: a lock already held means the same call chain locked it
/// twice, a bug that would otherwise hang the worker.
pub(in crate::proxy::fast) fn lock<T>(shared: &Mutex<T>) -> MutexGuard<'_, T> {
    match shared.try_lock() {
        Ok(guard) => guard,
        // A panic while it was held: the state may be half updated, but the connection is
        // failed by whoever sees the panic's effects; better than failing every later lock.
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => panic!("an HTTP/2 connection was locked twice"),
    }
}

/// What a client connection keeps per stream: the exchange it carries.
#[derive(Debug, Default)]
pub(in crate::proxy::fast) struct OnClient {
    /// Set once the request head was accepted.
    pub exchange: Option<Box<Carried>>,
}

/// A client connection as its task and the upstream connections' tasks share it.
pub(in crate::proxy::fast) struct ClientSide {
    /// The protocol state.
    pub conn: Conn<OnClient>,
    /// The socket: read by the connection's task, written by whichever task has frames for it
    /// ([`outbox`]).
    pub stream: Stream,
    /// A write by another task found the socket gone.
    pub failed: bool,
    /// Streams whose exchange ended: tallied and judged once what was written for them is out.
    pub ended: Vec<StreamKey>,
    /// Where the tallies go.
    pub recorder: Recorder,
}

impl std::fmt::Debug for ClientSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSide")
            .field("conn", &self.conn)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl ClientSide {
    /// Writes what is queued as far as the socket takes it now (see [`outbox`]); once all of it
    /// is out, the exchanges it ended are tallied.
    pub fn send_now(&mut self) {
        let queued = self.conn.wbuf.len();
        if queued == 0 || self.failed {
            return;
        }
        match outbox::write_now(&mut *self.stream, &mut self.conn.wbuf) {
            outbox::Written::All => {
                self.tally();
                if !self.conn.wbuf.is_empty() {
                    // Tallying gave windows back: the client's own task writes the updates.
                    self.conn.wake();
                }
            }
            outbox::Written::Partly => self.conn.wake(),
            outbox::Written::Failed => {
                self.failed = true;
                self.conn.wake();
            }
        }
        self.resume_if_drained(queued);
    }

    /// Lets the streams that waited for room in the write buffer go on, when it held
    /// `queued` bytes, at least the soft cap, and the socket has taken some.
    pub fn resume_if_drained(&mut self, queued: usize) {
        if queued >= WBUF_SOFT_CAP && self.conn.wbuf.len() < queued {
            relay::client_window(self, None);
        }
    }

    /// Tallies the exchanges that ended and takes out their streams, and their upstream
    /// streams. A stream whose request is still arriving stays until it ends (its bytes are
    /// dropped, and what the exchange held of them given back): some clients take a reset of a
    /// stream they are still sending on as a failure of the response.
    pub fn tally(&mut self) {
        for key in std::mem::take(&mut self.ended) {
            let Some(stream) = self.conn.streams.get_mut(key) else {
                continue;
            };
            let Some(mut exchange) = stream.user.exchange.take() else {
                continue;
            };
            exchange.unlink();
            self.conn.release(key);
            exchange.finish(&self.recorder);
            relay::remove_if_closed(self, key);
        }
    }

    /// The exchange a stream carries, while it has one.
    pub fn exchange(&self, key: StreamKey) -> Option<&Carried> {
        self.conn.streams.get(key)?.user.exchange.as_deref()
    }

    /// The exchange a stream carries, while it has one.
    pub fn exchange_mut(&mut self, key: StreamKey) -> Option<&mut Carried> {
        self.conn.streams.get_mut(key)?.user.exchange.as_deref_mut()
    }
}

/// A client stream, as an upstream stream knows its peer.
#[derive(Debug, Clone)]
pub(in crate::proxy::fast) struct Peer {
    /// The client connection.
    pub client: Shared<ClientSide>,
    /// The stream on it.
    pub key: StreamKey,
}
