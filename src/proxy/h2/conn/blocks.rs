//! Header blocks (RFC 9113 §4.3, §6.2, §6.10, §8.1): a HEADERS frame and the CONTINUATION
//! frames that complete it, bounded in bytes and frames; the block decoded whole (always: the
//! HPACK tables must stay in step) within the header list limit; and what it is in its stream
//! — a new request, an interim or final response, or trailers.

use super::receive::{conn_error, ConnError, Event, HeadKind};
use super::{Conn, Lifecycle, Role};
use crate::proxy::h2::budget;
use crate::proxy::h2::fields::BlockKind;
use crate::proxy::h2::frame::{self, flag, kind, FrameHead, Reason, MAX_FRAME_SIZE, MAX_WINDOW};

/// A header block still arriving in CONTINUATION frames.
#[derive(Debug)]
pub(super) struct Partial {
    stream: u32,
    end_stream: bool,
    block: Vec<u8>,
    frames: u32,
}

impl<U: Default> Conn<U> {
    pub(super) fn read_headers<'a>(
        &mut self,
        head: FrameHead,
        payload: &'a [u8],
    ) -> Result<Option<Event<'a>>, ConnError> {
        if head.stream == 0 {
            return Err(conn_error(Reason::PROTOCOL_ERROR, "HEADERS on stream 0"));
        }
        let mut block = Self::unpad(&head, payload)?;
        if head.has(flag::PRIORITY) {
            let priority = block.get(..5).ok_or(conn_error(
                Reason::PROTOCOL_ERROR,
                "a priority field cut short",
            ))?;
            if frame::u32_at(priority) & MAX_WINDOW == head.stream {
                return Err(conn_error(
                    Reason::PROTOCOL_ERROR,
                    "a stream that depends on itself",
                ));
            }
            block = &block[5..];
        }
        let end_stream = head.has(flag::END_STREAM);
        if !head.has(flag::END_HEADERS) {
            self.check_block_size(block.len())?;
            self.receive.partial = Some(Partial {
                stream: head.stream,
                end_stream,
                block: block.to_vec(),
                frames: 0,
            });
            return Ok(None);
        }
        self.read_block(head.stream, block, end_stream)
    }
    pub(super) fn check_block_size(&self, len: usize) -> Result<(), ConnError> {
        // Huffman coding makes a block smaller than its fields, never larger by much.
        if len > self.limits.max_header_list + MAX_FRAME_SIZE {
            return Err(conn_error(
                Reason::ENHANCE_YOUR_CALM,
                "a header block past any limit",
            ));
        }
        Ok(())
    }
    pub(super) fn read_continuation<'a>(
        &mut self,
        head: FrameHead,
        payload: &'a [u8],
    ) -> Result<Option<Event<'a>>, ConnError> {
        let Some(partial) = self.receive.partial.as_mut() else {
            return Err(conn_error(
                Reason::PROTOCOL_ERROR,
                "CONTINUATION without HEADERS",
            ));
        };
        if head.stream != partial.stream {
            return Err(conn_error(
                Reason::PROTOCOL_ERROR,
                "CONTINUATION on another stream",
            ));
        }
        partial.frames += 1;
        partial.block.extend_from_slice(payload);
        let (frames, len) = (partial.frames, partial.block.len());
        if frames > budget::MAX_CONTINUATIONS {
            return Err(conn_error(
                Reason::ENHANCE_YOUR_CALM,
                "a flood of CONTINUATION frames",
            ));
        }
        self.check_block_size(len)?;
        if !head.has(flag::END_HEADERS) {
            return Ok(None);
        }
        let partial = self.receive.partial.take().expect("present");
        self.read_block(partial.stream, &partial.block, partial.end_stream)
    }
    /// Decodes a complete header block (always: the HPACK tables must stay in step) and finds
    /// out what it is for.
    pub(super) fn read_block<'a>(
        &mut self,
        id: u32,
        block: &[u8],
        end_stream: bool,
    ) -> Result<Option<Event<'a>>, ConnError> {
        let limit = match self.role {
            Role::Server => self.limits.max_header_list,
            Role::Client => crate::proxy::fast::upstream::response_head::MAX_RESPONSE_HEAD_BYTES,
        };
        self.block.reset(limit);
        let fields = &mut self.block;
        self.decoder
            .decode(block, |name, value| fields.push(name, value))
            .map_err(|error| conn_error(Reason::COMPRESSION_ERROR, error.0))?;
        match self.role {
            Role::Server => self.read_request_block(id, end_stream),
            Role::Client => self.read_response_block(id, end_stream),
        }
    }
    pub(super) fn read_request_block<'a>(
        &mut self,
        id: u32,
        end_stream: bool,
    ) -> Result<Option<Event<'a>>, ConnError> {
        if id % 2 == 0 {
            return Err(conn_error(
                Reason::PROTOCOL_ERROR,
                "a client stream with an even id",
            ));
        }
        if id <= self.last_stream {
            return self.read_trailers(id, end_stream);
        }
        self.last_stream = id;
        if self.lifecycle != Lifecycle::Open {
            // Above the GOAWAY's last stream: ignored, the client retries it elsewhere.
            return Ok(None);
        }
        self.abuse.opened();
        if self.streams.active >= self.limits.max_concurrent_streams as usize {
            crate::proxy::h2::frame::put_reset(&mut self.wbuf, id, Reason::REFUSED_STREAM);
            return self.waste(None);
        }
        self.block.check(BlockKind::Request);
        let key = self.insert_stream(id, U::default());
        let stream = self.streams.get_mut(key).expect("inserted");
        stream.body_left = self.block.content_length;
        if end_stream {
            if self.block.content_length.is_some_and(|n| n > 0) && self.block.malformed.is_none() {
                self.block.malformed = Some("a content-length with no body");
            }
            self.close_half(key, true);
        }
        Ok(Some(Event::Headers {
            key,
            kind: HeadKind::Request,
            end_stream,
        }))
    }
    /// Counts a wasted stream, failing the connection when the peer wastes too many.
    pub(super) fn waste<'a>(
        &mut self,
        event: Option<Event<'a>>,
    ) -> Result<Option<Event<'a>>, ConnError> {
        if self.abuse.wasted() {
            Ok(event)
        } else {
            Err(conn_error(
                Reason::ENHANCE_YOUR_CALM,
                "more streams reset or refused than answered",
            ))
        }
    }
    pub(super) fn read_trailers<'a>(
        &mut self,
        id: u32,
        end_stream: bool,
    ) -> Result<Option<Event<'a>>, ConnError> {
        let Some(key) = self
            .streams
            .find(id)
            .filter(|&k| self.streams.get(k).is_some_and(|s| s.recv_open))
        else {
            // A stream already closed this way or reset: in flight, ignored.
            return Ok(None);
        };
        self.block.check(BlockKind::Trailers);
        if !end_stream || self.block.malformed.is_some() {
            return Ok(self.stream_error(key, Reason::PROTOCOL_ERROR));
        }
        let stream = self.streams.get_mut(key).expect("found");
        if stream.body_left.is_some_and(|left| left != 0) {
            return Ok(self.stream_error(key, Reason::PROTOCOL_ERROR));
        }
        self.close_half(key, true);
        Ok(Some(Event::Headers {
            key,
            kind: HeadKind::Trailers,
            end_stream,
        }))
    }
    pub(super) fn read_response_block<'a>(
        &mut self,
        id: u32,
        end_stream: bool,
    ) -> Result<Option<Event<'a>>, ConnError> {
        let head = FrameHead {
            len: 0,
            kind: kind::HEADERS,
            flags: 0,
            stream: id,
        };
        let Some(key) = self.known_stream(&head)? else {
            return Ok(None);
        };
        let Some(stream) = self.streams.get(key).filter(|s| s.recv_open) else {
            return Ok(None);
        };
        if stream.final_received {
            return self.read_trailers(id, end_stream);
        }
        self.block.check(BlockKind::Response);
        let interim = self
            .block
            .pseudo(self.block.pseudo.status)
            .is_some_and(|s| s[0] == b'1');
        if interim && end_stream && self.block.malformed.is_none() {
            self.block.malformed = Some("an interim response that ends the stream");
        }
        let stream = self.streams.get_mut(key).expect("found");
        let kind = if interim {
            HeadKind::Interim
        } else {
            stream.final_received = true;
            stream.body_left = self.block.content_length;
            HeadKind::Response
        };
        if end_stream {
            self.close_half(key, true);
        }
        Ok(Some(Event::Headers {
            key,
            kind,
            end_stream,
        }))
    }
}
