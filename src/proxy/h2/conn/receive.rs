//! Reading frames (RFC 9113 §4–§6): one frame at a time out of the owner's read buffer, checked
//! against the protocol and this end's limits, turned into the [`Event`]s the relay acts on.
//! What needs no relay (SETTINGS, PING, PRIORITY) is answered here.
//!
//! Hostile peers are kept cheap (RFC 9113 §10.5): a header block is decoded within the header
//! list limit however far its HPACK expands, and the rest is the [`budget`](super::super::budget)
//! a client draws on.

use std::time::Instant;

use super::blocks::Partial;
use super::streams::StreamKey;
use super::{Conn, Lifecycle, Role};
use crate::proxy::h2::frame::{
    self, flag, kind, setting, FrameHead, Reason, MAX_FRAME_SIZE, MAX_WINDOW,
};

/// What a frame asks of the relay.
#[derive(Debug)]
pub enum Event<'a> {
    /// A complete header block for a stream, in [`Conn::block`].
    Headers {
        /// The stream (new, for a request).
        key: StreamKey,
        /// What the block is.
        kind: HeadKind,
        /// The peer ends its half of the stream with it.
        end_stream: bool,
    },
    /// Body bytes for a stream.
    Data {
        /// The stream.
        key: StreamKey,
        /// The bytes, padding left out.
        data: &'a [u8],
        /// The peer ends its half of the stream with them.
        end_stream: bool,
    },
    /// The stream was reset: by the peer, or by this end for breaking the protocol.
    Reset {
        /// The stream, closed both ways now.
        key: StreamKey,
        /// The error code.
        reason: Reason,
        /// The peer sent the RST_STREAM.
        by_peer: bool,
    },
    /// A window grew: a stream's, or (`None`) the connection's or every stream's.
    WindowOpened(Option<StreamKey>),
    /// The peer sent GOAWAY: streams above `last_stream` were not processed.
    GoAway {
        /// The last stream the peer may have processed.
        last_stream: u32,
        /// Its error code.
        reason: Reason,
    },
}

impl Event<'_> {
    /// The stream the event is about, if one.
    pub fn key(&self) -> Option<StreamKey> {
        match self {
            Event::Headers { key, .. } | Event::Data { key, .. } | Event::Reset { key, .. } => {
                Some(*key)
            }
            Event::WindowOpened(key) => *key,
            Event::GoAway { .. } => None,
        }
    }
}

/// What a header block is, by where it comes in its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadKind {
    /// A new stream's request head (a server).
    Request,
    /// A 1xx response (a client).
    Interim,
    /// The final response head (a client).
    Response,
    /// Trailers.
    Trailers,
}

/// A connection error (RFC 9113 §5.4.1): the GOAWAY is in the write buffer already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnError {
    /// The code sent.
    pub reason: Reason,
    /// What the peer did, for the log.
    pub detail: &'static str,
}

/// Where reading is.
#[derive(Debug)]
pub(super) struct State {
    /// Bytes of the client preface still expected (a server).
    preface_left: usize,
    /// The peer's first SETTINGS has come.
    settings_seen: bool,
    pub(super) partial: Option<Partial>,
}

impl State {
    pub(super) fn is_established(&self) -> bool {
        self.preface_left == 0 && self.settings_seen
    }

    pub(super) fn new(role: Role) -> Self {
        State {
            preface_left: if role == Role::Server {
                frame::PREFACE.len()
            } else {
                0
            },
            settings_seen: false,
            partial: None,
        }
    }
}

/// A FRAME_SIZE_ERROR unless the payload has the size its frame type fixes.
fn sized(payload: &[u8], len: usize, detail: &'static str) -> Result<(), ConnError> {
    if payload.len() == len {
        Ok(())
    } else {
        Err(conn_error(Reason::FRAME_SIZE_ERROR, detail))
    }
}

pub(super) fn conn_error(reason: Reason, detail: &'static str) -> ConnError {
    ConnError { reason, detail }
}

/// What one frame came to: the bytes it took, and an event if the relay has work.
type Read<'a> = Result<(usize, Option<Event<'a>>), ConnError>;

impl<U: Default> Conn<U> {
    /// Reads the next frame at the start of `buf` at `now`. `Ok((0, None))` asks for more bytes.
    /// On a connection error the GOAWAY is written and the connection has failed.
    pub fn receive<'a>(&mut self, buf: &'a [u8], now: Instant) -> Read<'a> {
        let result = self.read_frame(buf, now);
        if let Err(error) = result {
            if self.lifecycle != Lifecycle::Failed {
                self.go_away(error.reason);
            }
            self.lifecycle = Lifecycle::Failed;
        }
        result
    }

    fn read_frame<'a>(&mut self, buf: &'a [u8], now: Instant) -> Read<'a> {
        if self.lifecycle == Lifecycle::Failed {
            return Err(conn_error(
                Reason::PROTOCOL_ERROR,
                "the connection has failed",
            ));
        }
        if self.receive.preface_left > 0 {
            return self.read_preface(buf);
        }
        let Some(head) = FrameHead::parse(buf) else {
            return Ok((0, None));
        };
        if head.len > MAX_FRAME_SIZE {
            return Err(conn_error(
                Reason::FRAME_SIZE_ERROR,
                "a frame larger than allowed",
            ));
        }
        let total = frame::HEADER_LEN + head.len;
        let Some(payload) = buf.get(frame::HEADER_LEN..total) else {
            return Ok((0, None));
        };
        if !self.receive.settings_seen && head.kind != kind::SETTINGS {
            return Err(conn_error(
                Reason::PROTOCOL_ERROR,
                "the first frame is not SETTINGS",
            ));
        }
        if self.receive.partial.is_some() && head.kind != kind::CONTINUATION {
            return Err(conn_error(
                Reason::PROTOCOL_ERROR,
                "a frame inside a header block",
            ));
        }
        let event = match head.kind {
            kind::DATA => self.read_data(head, payload, now)?,
            kind::HEADERS => self.read_headers(head, payload)?,
            kind::CONTINUATION => self.read_continuation(head, payload)?,
            kind::PRIORITY => self.read_priority(head, payload)?,
            kind::RST_STREAM => self.read_reset(head, payload)?,
            kind::SETTINGS => self.read_settings(head, payload, now)?,
            kind::PUSH_PROMISE => {
                return Err(conn_error(
                    Reason::PROTOCOL_ERROR,
                    "PUSH_PROMISE, which is not allowed",
                ))
            }
            kind::PING => self.read_ping(head, payload, now)?,
            kind::GOAWAY => self.read_goaway(head, payload)?,
            kind::WINDOW_UPDATE => self.read_window_update(head, payload)?,
            // RFC 9113 §5.5: unknown frame types are ignored.
            _ => None,
        };
        Ok((total, event))
    }

    fn read_preface<'a>(&mut self, buf: &'a [u8]) -> Read<'a> {
        let done = frame::PREFACE.len() - self.receive.preface_left;
        let take = buf.len().min(self.receive.preface_left);
        if buf[..take] != frame::PREFACE[done..done + take] {
            return Err(conn_error(
                Reason::PROTOCOL_ERROR,
                "an invalid connection preface",
            ));
        }
        self.receive.preface_left -= take;
        Ok((take, None))
    }

    /// Checks a stream id a peer's frame names: not 0, and (for frames other than HEADERS) not
    /// a stream that was never opened.
    pub(super) fn known_stream(&self, head: &FrameHead) -> Result<Option<StreamKey>, ConnError> {
        if head.stream == 0 {
            return Err(conn_error(
                Reason::PROTOCOL_ERROR,
                "a stream frame on stream 0",
            ));
        }
        let idle = match self.role {
            Role::Server => head.stream > self.last_stream,
            Role::Client => head.stream > self.last_stream || head.stream % 2 == 0,
        };
        if idle {
            return Err(conn_error(
                Reason::PROTOCOL_ERROR,
                "a frame on an idle stream",
            ));
        }
        Ok(self.streams.find(head.stream))
    }

    /// Strips the padding of a DATA or HEADERS payload.
    pub(super) fn unpad<'p>(head: &FrameHead, payload: &'p [u8]) -> Result<&'p [u8], ConnError> {
        if !head.has(flag::PADDED) {
            return Ok(payload);
        }
        let (&pad, rest) = payload.split_first().ok_or(conn_error(
            Reason::PROTOCOL_ERROR,
            "padding without its length",
        ))?;
        rest.len()
            .checked_sub(usize::from(pad))
            .map(|len| &rest[..len])
            .ok_or(conn_error(
                Reason::PROTOCOL_ERROR,
                "more padding than payload",
            ))
    }

    fn read_data<'a>(
        &mut self,
        head: FrameHead,
        payload: &'a [u8],
        now: Instant,
    ) -> Result<Option<Event<'a>>, ConnError> {
        let key = self.known_stream(&head)?;
        let data = Self::unpad(&head, payload)?;
        let end_stream = head.has(flag::END_STREAM);
        // The whole payload counts against the windows, padding included.
        self.recv_window -= head.len as i64;
        if self.recv_window < 0 {
            return Err(conn_error(
                Reason::FLOW_CONTROL_ERROR,
                "more data than the connection window",
            ));
        }
        let padding = head.len - data.len();
        if self.role == Role::Client {
            // A client gives the connection window back at once: a slow client of one stream
            // must not stall the others sharing the upstream connection (each stream's own
            // window still bounds what is buffered for it).
            self.consumed_connection(head.len as u32);
        } else if padding > 0 {
            self.consumed_connection(padding as u32);
        }
        if data.is_empty() && !end_stream && !self.abuse.control(now) {
            return Err(conn_error(
                Reason::ENHANCE_YOUR_CALM,
                "a flood of empty DATA frames",
            ));
        }
        let Some(key) = key.filter(|&k| self.streams.get(k).is_some_and(|s| s.recv_open)) else {
            // A stream this end already closed or reset: the data was in flight.
            if self.role == Role::Server {
                self.consumed_connection(data.len() as u32);
            }
            return Ok(None);
        };
        self.abuse.useful();
        let stream = self.streams.get_mut(key).expect("found");
        stream.recv_window -= head.len as i64;
        stream.recv_unacked += padding as u32;
        if stream.recv_window < 0 {
            return Ok(self.stream_error(key, Reason::FLOW_CONTROL_ERROR));
        }
        let overrun = match &mut stream.body_left {
            Some(left) => match left.checked_sub(data.len() as u64) {
                Some(rest) => {
                    *left = rest;
                    end_stream && rest != 0
                }
                None => true,
            },
            None => false,
        };
        if overrun {
            // RFC 9113 §8.1.1: a body that does not match its content-length is malformed.
            return Ok(self.stream_error(key, Reason::PROTOCOL_ERROR));
        }
        if end_stream {
            self.close_half(key, true);
        }
        Ok(Some(Event::Data {
            key,
            data,
            end_stream,
        }))
    }

    /// Resets a stream for breaking the protocol and tells the relay.
    pub(super) fn stream_error<'a>(&mut self, key: StreamKey, reason: Reason) -> Option<Event<'a>> {
        self.reset(key, reason);
        Some(Event::Reset {
            key,
            reason,
            by_peer: false,
        })
    }

    fn read_priority<'a>(
        &mut self,
        head: FrameHead,
        payload: &[u8],
    ) -> Result<Option<Event<'a>>, ConnError> {
        if head.stream == 0 {
            return Err(conn_error(Reason::PROTOCOL_ERROR, "PRIORITY on stream 0"));
        }
        sized(payload, 5, "PRIORITY of the wrong size")?;
        // RFC 9113 §5.3.2: priority signals are deprecated; statuscope ignores them.
        Ok(None)
    }

    fn read_reset<'a>(
        &mut self,
        head: FrameHead,
        payload: &[u8],
    ) -> Result<Option<Event<'a>>, ConnError> {
        sized(payload, 4, "RST_STREAM of the wrong size")?;
        let Some(key) = self.known_stream(&head)? else {
            return Ok(None);
        };
        let Some(stream) = self.streams.get(key).filter(|s| !s.is_closed()) else {
            return Ok(None);
        };
        let unanswered = self.role == Role::Server && !stream.head_sent;
        self.close_half(key, true);
        self.close_half(key, false);
        let event = Some(Event::Reset {
            key,
            reason: Reason(frame::u32_at(payload)),
            by_peer: true,
        });
        if unanswered {
            return self.waste(event);
        }
        Ok(event)
    }

    fn read_settings<'a>(
        &mut self,
        head: FrameHead,
        payload: &[u8],
        now: Instant,
    ) -> Result<Option<Event<'a>>, ConnError> {
        if head.stream != 0 {
            return Err(conn_error(Reason::PROTOCOL_ERROR, "SETTINGS on a stream"));
        }
        if head.has(flag::ACK) {
            if !payload.is_empty() {
                return Err(conn_error(
                    Reason::FRAME_SIZE_ERROR,
                    "a SETTINGS ACK with a payload",
                ));
            }
            return Ok(None);
        }
        if payload.len() % 6 != 0 {
            return Err(conn_error(
                Reason::FRAME_SIZE_ERROR,
                "SETTINGS of the wrong size",
            ));
        }
        if self.receive.settings_seen && self.role == Role::Server && !self.abuse.control(now) {
            return Err(conn_error(
                Reason::ENHANCE_YOUR_CALM,
                "a flood of SETTINGS frames",
            ));
        }
        self.receive.settings_seen = true;
        let mut window_opened = false;
        for param in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([param[0], param[1]]);
            let value = frame::u32_at(&param[2..]);
            window_opened |= self.apply_setting(id, value)?;
        }
        frame::put_settings(&mut self.wbuf, true, &[]);
        Ok(window_opened.then_some(Event::WindowOpened(None)))
    }

    /// Applies one of the peer's settings; `true` when it opened stream windows.
    fn apply_setting(&mut self, id: u16, value: u32) -> Result<bool, ConnError> {
        match id {
            setting::ENABLE_PUSH if value > 1 || (self.role == Role::Client && value != 0) => Err(
                conn_error(Reason::PROTOCOL_ERROR, "an invalid SETTINGS_ENABLE_PUSH"),
            ),
            setting::MAX_CONCURRENT_STREAMS => {
                self.peer_max_streams = value;
                Ok(false)
            }
            setting::INITIAL_WINDOW_SIZE => {
                if value > MAX_WINDOW {
                    return Err(conn_error(
                        Reason::FLOW_CONTROL_ERROR,
                        "an initial window too large",
                    ));
                }
                let delta = i64::from(value) - i64::from(self.peer_initial_window);
                self.peer_initial_window = value;
                let keys: Vec<StreamKey> = self.streams.keys().collect();
                for key in keys {
                    let stream = self.streams.get_mut(key).expect("listed");
                    stream.send_window += delta;
                    if stream.send_window > i64::from(MAX_WINDOW) {
                        return Err(conn_error(
                            Reason::FLOW_CONTROL_ERROR,
                            "a stream window too large",
                        ));
                    }
                }
                Ok(delta > 0)
            }
            setting::MAX_FRAME_SIZE => {
                if !(MAX_FRAME_SIZE as u32..=(1 << 24) - 1).contains(&value) {
                    return Err(conn_error(
                        Reason::PROTOCOL_ERROR,
                        "an invalid SETTINGS_MAX_FRAME_SIZE",
                    ));
                }
                self.peer_max_frame = value as usize;
                Ok(false)
            }
            // The header table size and header list size bound the peer's decoder: statuscope's
            // encoder uses no dynamic table, and its heads are far below any list limit.
            _ => Ok(false),
        }
    }

    fn read_ping<'a>(
        &mut self,
        head: FrameHead,
        payload: &[u8],
        now: Instant,
    ) -> Result<Option<Event<'a>>, ConnError> {
        if head.stream != 0 {
            return Err(conn_error(Reason::PROTOCOL_ERROR, "PING on a stream"));
        }
        sized(payload, 8, "PING of the wrong size")?;
        if head.has(flag::ACK) {
            return Ok(None);
        }
        if self.role == Role::Server && !self.abuse.control(now) {
            return Err(conn_error(
                Reason::ENHANCE_YOUR_CALM,
                "a flood of PING frames",
            ));
        }
        frame::put_head(&mut self.wbuf, 8, kind::PING, flag::ACK, 0);
        self.wbuf.extend_from_slice(payload);
        Ok(None)
    }

    fn read_goaway<'a>(
        &mut self,
        head: FrameHead,
        payload: &[u8],
    ) -> Result<Option<Event<'a>>, ConnError> {
        if head.stream != 0 {
            return Err(conn_error(Reason::PROTOCOL_ERROR, "GOAWAY on a stream"));
        }
        if payload.len() < 8 {
            return Err(conn_error(Reason::FRAME_SIZE_ERROR, "GOAWAY cut short"));
        }
        let last_stream = frame::u32_at(payload) & MAX_WINDOW;
        let reason = Reason(frame::u32_at(&payload[4..]));
        let last = self
            .goaway_received
            .map_or(last_stream, |seen| seen.min(last_stream));
        self.goaway_received = Some(last);
        if self.lifecycle == Lifecycle::Open {
            self.lifecycle = Lifecycle::Draining;
        }
        Ok(Some(Event::GoAway {
            last_stream: last,
            reason,
        }))
    }

    fn read_window_update<'a>(
        &mut self,
        head: FrameHead,
        payload: &[u8],
    ) -> Result<Option<Event<'a>>, ConnError> {
        sized(payload, 4, "WINDOW_UPDATE of the wrong size")?;
        let increment = i64::from(frame::u32_at(payload) & MAX_WINDOW);
        if head.stream == 0 {
            if increment == 0 {
                return Err(conn_error(Reason::PROTOCOL_ERROR, "a WINDOW_UPDATE of 0"));
            }
            self.send_window += increment;
            if self.send_window > i64::from(MAX_WINDOW) {
                return Err(conn_error(
                    Reason::FLOW_CONTROL_ERROR,
                    "a connection window too large",
                ));
            }
            return Ok(Some(Event::WindowOpened(None)));
        }
        let Some(key) = self.known_stream(&head)? else {
            return Ok(None);
        };
        let Some(stream) = self.streams.get_mut(key).filter(|s| s.send_open) else {
            return Ok(None);
        };
        stream.send_window += increment;
        if increment == 0 || stream.send_window > i64::from(MAX_WINDOW) {
            let reason = if increment == 0 {
                Reason::PROTOCOL_ERROR
            } else {
                Reason::FLOW_CONTROL_ERROR
            };
            return Ok(self.stream_error(key, reason));
        }
        Ok(Some(Event::WindowOpened(Some(key))))
    }
}
