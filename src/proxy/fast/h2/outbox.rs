//! Frames written for another connection go out before that connection's task runs.
//!
//! A task that relays frames into another connection's write buffer marks that connection
//! ([`client`], [`upstream`]); when the task has handled what it read, and holds no lock, it
//! writes every marked connection's buffer to its socket ([`send_marked`]) — as far as the
//! socket takes it at once, with a waker that registers nothing — and wakes the connection's own
//! task only for what is left. A client connection whose last frames went out this way has the
//! exchanges they ended tallied there and then. So a unary call crosses the worker without a
//! task woken on its behalf: the client's task sends the request on, the upstream connection's
//! task sends the response back, and each only when epoll says its own socket has something.

use std::cell::RefCell;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use tokio::io::AsyncWrite;

use super::{lock, ClientSide, Shared};
use crate::proxy::fast::upstream::h2::UpstreamSide;

/// A connection with frames waiting in its write buffer.
enum Marked {
    Client(Shared<ClientSide>),
    Upstream(Shared<UpstreamSide>),
}

thread_local! {
    static MARKED: RefCell<Vec<Marked>> = const { RefCell::new(Vec::new()) };
}

/// Marks a client connection to be written when the running task is done.
pub(in crate::proxy::fast) fn client(shared: &Shared<ClientSide>) {
    MARKED.with_borrow_mut(|marked| {
        let known = marked
            .iter()
            .any(|m| matches!(m, Marked::Client(c) if Arc::ptr_eq(c, shared)));
        if !known {
            marked.push(Marked::Client(shared.clone()));
        }
    });
}

/// Marks an upstream connection to be written when the running task is done.
pub(in crate::proxy::fast) fn upstream(shared: &Shared<UpstreamSide>) {
    MARKED.with_borrow_mut(|marked| {
        let known = marked
            .iter()
            .any(|m| matches!(m, Marked::Upstream(u) if Arc::ptr_eq(u, shared)));
        if !known {
            marked.push(Marked::Upstream(shared.clone()));
        }
    });
}

/// Writes every marked connection (see the module docs). The caller holds no lock.
pub(in crate::proxy::fast) fn send_marked() {
    loop {
        let Some(next) = MARKED.with_borrow_mut(Vec::pop) else {
            return;
        };
        match next {
            Marked::Client(shared) => lock(&shared).send_now(),
            Marked::Upstream(shared) => lock(&shared).send_now(),
        }
    }
}

/// The outcome of writing a buffer.
pub(in crate::proxy::fast) enum Written {
    /// All of it went out.
    All,
    /// Some is left: the socket is full.
    Partly,
    /// The socket is gone.
    Failed,
}

/// Writes as much of `buf` as `socket` takes now, draining what went out; with `cx`'s waker
/// registered for the rest.
pub(in crate::proxy::fast) fn write<W: AsyncWrite + Unpin + ?Sized>(
    socket: &mut W,
    buf: &mut Vec<u8>,
    cx: &mut Context<'_>,
) -> Written {
    let mut written = 0;
    let outcome = loop {
        if written == buf.len() {
            let _ = Pin::new(&mut *socket).poll_flush(cx);
            break Written::All;
        }
        match Pin::new(&mut *socket).poll_write(cx, &buf[written..]) {
            Poll::Ready(Ok(n)) if n > 0 => written += n,
            Poll::Pending => break Written::Partly,
            Poll::Ready(_) => break Written::Failed,
        }
    };
    buf.drain(..written);
    outcome
}

/// Writes what `socket` takes at once, registering no waker: what is left is for the
/// connection's own task.
pub(in crate::proxy::fast) fn write_now<W: AsyncWrite + Unpin + ?Sized>(
    socket: &mut W,
    buf: &mut Vec<u8>,
) -> Written {
    let mut cx = Context::from_waker(Waker::noop());
    write(socket, buf, &mut cx)
}
