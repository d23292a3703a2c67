//! One HTTP/2 connection's protocol state, for either role: its streams and their states,
//! flow control both ways, the settings of both ends, the HPACK decoder, the limits that keep
//! a hostile peer cheap, and the write buffer its frames go to.
//!
//! It does no I/O. The task that owns the socket feeds it what it reads ([`Conn::receive`],
//! which hands back one [`Event`] at a time) and writes out [`Conn::wbuf`]; the relay calls
//! the sending side ([`Conn::send_headers`], [`Conn::send_data`], …) from whichever task has
//! something for the peer, and [`Conn::wake`]s the owner to write it.

mod blocks;
mod receive;
mod streams;

use std::task::Waker;

use super::fields::FieldBlock;
use super::frame::{self, flag, kind, setting, Reason, DEFAULT_WINDOW, MAX_FRAME_SIZE};
use super::hpack::Decoder;

pub use receive::{ConnError, Event, HeadKind};
use streams::PendingEnd;
pub use streams::{Stream, StreamKey, Streams};

/// Which end of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It accepted the connection: it reads requests.
    Server,
    /// It opened the connection: it sends requests.
    Client,
}

/// The limits this end announces and enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Streams the peer may open at once (a server's limit; a client allows none).
    pub max_concurrent_streams: u32,
    /// Each stream's receive window (at least the protocol's 65,535).
    pub initial_window: u32,
    /// The connection's receive window (at least 65,535).
    pub connection_window: u32,
    /// The largest header list accepted, as RFC 9113 §6.5.2 counts it.
    pub max_header_list: usize,
}

/// Bytes a write buffer may hold before DATA waits in its streams instead: the socket is not
/// keeping up, and the senders should feel it.
pub const WBUF_SOFT_CAP: usize = 256 * 1024;

/// The connection's state as the owner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Streams come and go.
    Open,
    /// A GOAWAY was sent or received: no new streams, the open ones finish.
    Draining,
    /// A connection error: nothing more is read; the GOAWAY goes out and the socket closes.
    Failed,
}

/// One HTTP/2 connection (see the module docs); `U` is what the relay keeps per stream.
#[derive(Debug)]
pub struct Conn<U> {
    role: Role,
    limits: Limits,
    /// The streams.
    pub streams: Streams<U>,
    /// Frames to write, in order.
    pub wbuf: Vec<u8>,
    waker: Option<Waker>,
    lifecycle: Lifecycle,
    // What the peer announced.
    peer_initial_window: u32,
    peer_max_frame: usize,
    peer_max_streams: u32,
    // Connection-level flow control.
    send_window: i64,
    recv_window: i64,
    recv_unacked: u32,
    // Streams.
    /// The highest stream id the peer opened (a server) or this end opened (a client).
    last_stream: u32,
    /// A GOAWAY's last stream id, once one was received.
    goaway_received: Option<u32>,
    /// Some stream may have data or an end waiting for window (cleared by [`Conn::blocked`]
    /// when none has): most calls find none without looking at every stream.
    maybe_blocked: bool,
    // Reading.
    decoder: Decoder,
    block: FieldBlock,
    receive: receive::State,
    /// What the peer cost that was not useful work (see `receive`).
    abuse: super::budget::Budget,
}

impl<U> Conn<U> {
    /// A new connection in `role` under `limits`. Its opening (the client's preface, and each
    /// end's SETTINGS and connection window) is in the write buffer already.
    pub fn new(role: Role, limits: Limits) -> Self {
        let mut conn = Conn {
            role,
            limits,
            streams: Streams::default(),
            wbuf: Vec::with_capacity(4096),
            waker: None,
            lifecycle: Lifecycle::Open,
            peer_initial_window: DEFAULT_WINDOW,
            peer_max_frame: MAX_FRAME_SIZE,
            // Until the peer says otherwise, a client does not crowd one connection.
            peer_max_streams: 100,
            send_window: i64::from(DEFAULT_WINDOW),
            recv_window: i64::from(limits.connection_window),
            recv_unacked: 0,
            last_stream: 0,
            goaway_received: None,
            maybe_blocked: false,
            decoder: Decoder::default(),
            block: FieldBlock::default(),
            receive: receive::State::new(role),
            abuse: super::budget::Budget::default(),
        };
        if role == Role::Client {
            conn.wbuf.extend_from_slice(frame::PREFACE);
        }
        let max_streams = match role {
            Role::Server => limits.max_concurrent_streams,
            Role::Client => 0,
        };
        let mut params = vec![
            (setting::MAX_CONCURRENT_STREAMS, max_streams),
            (setting::INITIAL_WINDOW_SIZE, limits.initial_window),
            (setting::MAX_HEADER_LIST_SIZE, limits.max_header_list as u32),
        ];
        if role == Role::Client {
            params.insert(0, (setting::ENABLE_PUSH, 0));
        }
        frame::put_settings(&mut conn.wbuf, false, &params);
        if limits.connection_window > DEFAULT_WINDOW {
            frame::put_window_update(&mut conn.wbuf, 0, limits.connection_window - DEFAULT_WINDOW);
        }
        conn
    }

    /// Whether the peer's preface and first SETTINGS have come.
    pub fn established(&self) -> bool {
        self.receive.is_established()
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Where the connection is in its life.
    pub fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }

    /// The last decoded header block (valid while handling its [`Event::Headers`]).
    pub fn block(&self) -> &FieldBlock {
        &self.block
    }

    /// A stream and the last decoded header block, together (valid while handling the
    /// block's [`Event::Headers`]).
    pub fn stream_and_block(&mut self, key: StreamKey) -> (Option<&mut Stream<U>>, &FieldBlock) {
        (self.streams.get_mut(key), &self.block)
    }

    /// Keeps the owner's waker, to be woken when someone else writes to this connection.
    pub fn register(&mut self, waker: &Waker) {
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            self.waker = Some(waker.clone());
        }
    }

    /// Wakes the owner (to write what was added, or to notice a change).
    pub fn wake(&self) {
        if let Some(waker) = &self.waker {
            waker.wake_by_ref();
        }
    }

    /// Streams open at once, as the concurrency limits count them.
    pub fn active_streams(&self) -> usize {
        self.streams.active
    }

    /// Whether a client connection can take another stream now.
    pub fn has_room(&self) -> bool {
        self.lifecycle == Lifecycle::Open
            && self.streams.active < self.peer_max_streams as usize
            && self.last_stream < (1 << 31) - 3
    }

    /// Whether the connection has nothing left to do and can close once its writes are out.
    pub fn is_finished(&self) -> bool {
        match self.lifecycle {
            Lifecycle::Open => false,
            Lifecycle::Draining => self.streams.is_empty(),
            Lifecycle::Failed => true,
        }
    }

    /// Opens a client stream for `user`; `None` when the connection has no room.
    pub fn open(&mut self, user: U) -> Option<StreamKey> {
        if self.role != Role::Client || !self.has_room() {
            return None;
        }
        let id = if self.last_stream == 0 {
            1
        } else {
            self.last_stream + 2
        };
        self.last_stream = id;
        Some(self.insert_stream(id, user))
    }

    fn insert_stream(&mut self, id: u32, user: U) -> StreamKey {
        self.streams.insert(Stream {
            user,
            id,
            recv_open: true,
            send_open: true,
            head_sent: false,
            final_received: false,
            recv_window: i64::from(self.limits.initial_window),
            recv_unacked: 0,
            send_window: i64::from(self.peer_initial_window),
            body_left: None,
            outq: Vec::new(),
            pending_end: PendingEnd::None,
        })
    }

    /// Takes a stream out of the connection, giving back its user data. A stream still open
    /// either way is reset first (CANCEL).
    pub fn remove(&mut self, key: StreamKey) -> Option<U> {
        let open = self.streams.get(key).is_some_and(|s| !s.is_closed());
        if open {
            self.reset(key, Reason::CANCEL);
        }
        self.release(key);
        self.streams.remove(key)
    }

    /// Gives back every byte the stream received that the relay has not taken: its exchange
    /// is over and they will never be sent on. Without it their share of the connection's
    /// window would be lost for good, and a client still sending on the stream would wait
    /// for a window that never opens.
    pub fn release(&mut self, key: StreamKey) {
        let initial = self.limits.initial_window;
        if let Some(held) = self.streams.get(key).map(|s| s.held(initial)) {
            self.consumed(key, held as usize);
        }
    }

    /// Marks a half closed, keeping the count of active streams.
    fn close_half(&mut self, key: StreamKey, recv: bool) {
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        let was_closed = stream.is_closed();
        if recv {
            stream.recv_open = false;
        } else {
            stream.send_open = false;
            stream.outq = Vec::new();
            stream.pending_end = PendingEnd::None;
        }
        if !was_closed && stream.is_closed() {
            self.streams.active -= 1;
        }
    }

    /// Writes a header block for a stream: `encode` appends the block; it goes out in a
    /// HEADERS frame (and CONTINUATION frames if it is larger than the peer's frame size).
    /// Trailers (`end_stream` after data) wait behind queued data.
    pub fn send_headers(
        &mut self,
        key: StreamKey,
        end_stream: bool,
        encode: impl FnOnce(&mut Vec<u8>),
    ) {
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        if !stream.send_open {
            return;
        }
        if stream.head_sent && stream.is_blocked() {
            let mut block = Vec::new();
            encode(&mut block);
            stream.pending_end = PendingEnd::Trailers(block);
            self.maybe_blocked = true;
            return;
        }
        stream.head_sent = true;
        let id = stream.id;
        let at = self.wbuf.len();
        frame::put_head(&mut self.wbuf, 0, kind::HEADERS, flag::END_HEADERS, id);
        encode(&mut self.wbuf);
        self.frame_block(at, end_stream);
        if end_stream {
            self.close_half(key, false);
        }
    }

    /// Finishes the HEADERS frame started at `at`: its length, END_STREAM, and a split into
    /// CONTINUATION frames when the block is larger than the peer accepts in one frame.
    fn frame_block(&mut self, at: usize, end_stream: bool) {
        if end_stream {
            self.wbuf[at + 4] |= flag::END_STREAM;
        }
        let len = self.wbuf.len() - at - frame::HEADER_LEN;
        if len <= self.peer_max_frame {
            frame::set_len(&mut self.wbuf, at, len);
            return;
        }
        let block = self.wbuf.split_off(at + frame::HEADER_LEN);
        let id = frame::u32_at(&self.wbuf[at + 5..]);
        let mut chunks = block.chunks(self.peer_max_frame);
        let first = chunks.next().unwrap_or_default();
        self.wbuf[at + 4] &= !flag::END_HEADERS;
        frame::set_len(&mut self.wbuf, at, first.len());
        self.wbuf.extend_from_slice(first);
        let mut rest = chunks.peekable();
        while let Some(chunk) = rest.next() {
            let flags = if rest.peek().is_none() {
                flag::END_HEADERS
            } else {
                0
            };
            frame::put_head(&mut self.wbuf, chunk.len(), kind::CONTINUATION, flags, id);
            self.wbuf.extend_from_slice(chunk);
        }
    }

    /// How many DATA bytes the stream may send now.
    fn sendable(&self, stream: &Stream<U>) -> usize {
        if self.wbuf.len() >= WBUF_SOFT_CAP {
            return 0;
        }
        stream.send_window.min(self.send_window).max(0) as usize
    }

    /// Sends body bytes on a stream as far as the windows allow and queues the rest (which
    /// [`Conn::drain`] sends as they open); `end_stream` ends the stream after them. Returns how
    /// many were sent now: the sender's credit.
    pub fn send_data(&mut self, key: StreamKey, data: &[u8], end_stream: bool) -> usize {
        let Some(stream) = self.streams.get(key) else {
            return 0;
        };
        if !stream.send_open {
            return 0;
        }
        // Behind queued data, everything waits, the end of the stream included.
        let blocked = stream.is_blocked();
        let sent = if blocked {
            0
        } else {
            data.len().min(self.sendable(stream))
        };
        let done = !blocked && sent == data.len();
        self.write_data(key, &data[..sent], end_stream && done);
        if let Some(stream) = self.streams.get_mut(key) {
            if !done {
                self.maybe_blocked = true;
                stream.outq.extend_from_slice(&data[sent..]);
                if end_stream && matches!(stream.pending_end, PendingEnd::None) {
                    stream.pending_end = PendingEnd::EndStream;
                }
            }
        }
        sent
    }

    /// Writes DATA frames for `data`, which the windows allow; the last carries END_STREAM when
    /// `end_stream`.
    fn write_data(&mut self, key: StreamKey, data: &[u8], end_stream: bool) {
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        if data.is_empty() && !end_stream {
            return;
        }
        stream.send_window -= data.len() as i64;
        self.send_window -= data.len() as i64;
        let id = stream.id;
        let mut chunks = data.chunks(self.peer_max_frame.max(1)).peekable();
        if chunks.peek().is_none() {
            frame::put_data(&mut self.wbuf, id, &[], end_stream);
        }
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            frame::put_data(&mut self.wbuf, id, chunk, end_stream && last);
        }
        if end_stream {
            self.close_half(key, false);
        }
    }

    /// Sends what a stream has queued, as far as the windows now allow, and what ends it once
    /// the queue is empty. Returns how many body bytes went out: the sender's credit.
    pub fn drain(&mut self, key: StreamKey) -> usize {
        let Some(stream) = self.streams.get_mut(key) else {
            return 0;
        };
        let queued = std::mem::take(&mut stream.outq);
        let sent = queued
            .len()
            .min(self.sendable(self.streams.get(key).expect("present")));
        let rest_empty = sent == queued.len();
        let end = rest_empty
            && matches!(
                self.streams.get(key).map(|s| &s.pending_end),
                Some(PendingEnd::EndStream)
            );
        self.write_data(key, &queued[..sent], end);
        let Some(stream) = self.streams.get_mut(key) else {
            return sent;
        };
        if !rest_empty {
            let mut queued = queued;
            queued.drain(..sent);
            stream.outq = queued;
            return sent;
        }
        if let PendingEnd::Trailers(block) = std::mem::take(&mut stream.pending_end) {
            let at = self.wbuf.len();
            let id = stream.id;
            frame::put_head(&mut self.wbuf, 0, kind::HEADERS, flag::END_HEADERS, id);
            self.wbuf.extend_from_slice(&block);
            self.frame_block(at, true);
            self.close_half(key, false);
        }
        sent
    }

    /// Streams with data or an end waiting for window, into `into` (cleared first).
    pub fn blocked(&mut self, into: &mut Vec<StreamKey>) {
        into.clear();
        if !self.maybe_blocked {
            return;
        }
        into.extend(
            self.streams
                .keys()
                .filter(|&k| self.streams.get(k).is_some_and(|s| s.is_blocked())),
        );
        self.maybe_blocked = !into.is_empty();
    }

    /// Gives back `n` bytes of a stream's receive window, taken by the other side, and of the
    /// connection's (unless the connection gave them back on receipt); a WINDOW_UPDATE goes
    /// out once half a window is owed.
    pub fn consumed(&mut self, key: StreamKey, n: usize) {
        if n == 0 {
            return;
        }
        let n = n as u32;
        let initial = self.limits.initial_window;
        if let Some(stream) = self.streams.get_mut(key) {
            stream.recv_unacked += n;
            if stream.recv_open && stream.recv_unacked >= initial / 2 {
                let increment = stream.recv_unacked;
                stream.recv_unacked = 0;
                stream.recv_window += i64::from(increment);
                let id = stream.id;
                frame::put_window_update(&mut self.wbuf, id, increment);
            }
        }
        if self.role == Role::Server {
            self.consumed_connection(n);
        }
    }

    /// Gives back `n` bytes of the connection's receive window.
    fn consumed_connection(&mut self, n: u32) {
        self.recv_unacked += n;
        if self.recv_unacked >= self.limits.connection_window / 2 {
            let increment = self.recv_unacked;
            self.recv_unacked = 0;
            self.recv_window += i64::from(increment);
            frame::put_window_update(&mut self.wbuf, 0, increment);
        }
    }

    /// Resets a stream (RST_STREAM) and closes both its halves; nothing queued is sent.
    pub fn reset(&mut self, key: StreamKey, reason: Reason) {
        let Some(stream) = self.streams.get(key) else {
            return;
        };
        if stream.is_closed() {
            return;
        }
        frame::put_reset(&mut self.wbuf, stream.id, reason);
        self.close_half(key, false);
        self.close_half(key, true);
    }

    /// Sends GOAWAY: no stream above the last one opened will be processed. With NO_ERROR the
    /// open streams finish; with an error the connection fails.
    pub fn go_away(&mut self, reason: Reason) {
        if self.lifecycle == Lifecycle::Failed {
            return;
        }
        let last = match self.role {
            Role::Server => self.last_stream,
            Role::Client => 0,
        };
        frame::put_goaway(&mut self.wbuf, last, reason);
        self.lifecycle = if reason == Reason::NO_ERROR {
            Lifecycle::Draining
        } else {
            Lifecycle::Failed
        };
    }

    /// The stream id above which a GOAWAY the peer sent says nothing was processed.
    pub fn goaway_received(&self) -> Option<u32> {
        self.goaway_received
    }

    /// Fails the connection because its socket is gone: nothing more will be read or written.
    pub fn lost(&mut self) {
        self.lifecycle = Lifecycle::Failed;
        self.wbuf.clear();
    }

    /// The limits this end announced.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

#[cfg(test)]
mod tests;
