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
pub(super) mod relay;
pub(super) mod to_http1;

use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use crate::proxy::h2::conn::{Conn, Key};

use exchange::Exchange;

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
    pub exchange: Option<Box<Exchange>>,
}

/// A client connection as its task and the upstream connections' tasks share it.
#[derive(Debug)]
pub(in crate::proxy::fast) struct ClientSide {
    /// The protocol state.
    pub conn: Conn<OnClient>,
    /// Streams whose exchange ended since the client's task last ran: tallied and judged by
    /// that task once what it wrote for them is out.
    pub ended: Vec<Key>,
}

impl ClientSide {
    /// The exchange a stream carries, while it has one.
    pub fn exchange(&self, key: Key) -> Option<&Exchange> {
        self.conn.streams.get(key)?.user.exchange.as_deref()
    }

    /// The exchange a stream carries, while it has one.
    pub fn exchange_mut(&mut self, key: Key) -> Option<&mut Exchange> {
        self.conn.streams.get_mut(key)?.user.exchange.as_deref_mut()
    }
}

/// A client stream, as an upstream stream knows its peer.
#[derive(Debug, Clone)]
pub(in crate::proxy::fast) struct Peer {
    /// The client connection.
    pub client: Shared<ClientSide>,
    /// The stream on it.
    pub key: Key,
}
