//! HTTP/2 frames on the wire (RFC 9113 §4, §6): the 9-byte frame header, the frame types and
//! flags statuscope reads and writes, the error codes, and the SETTINGS parameters. Frames are
//! read in place from a connection's read buffer and written straight into its write buffer.

/// The connection preface a client sends first (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a connection's first bytes say about the preface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// The whole preface: an HTTP/2 connection with prior knowledge (h2c).
    Preface,
    /// The start of the preface, so far: more bytes will tell.
    Undecided,
    /// Not the preface: HTTP/1 (or nothing statuscope speaks).
    Other,
}

impl Opening {
    /// What `bytes`, the first of a connection, say.
    pub fn of(bytes: &[u8]) -> Opening {
        let seen = &bytes[..bytes.len().min(PREFACE.len())];
        if !PREFACE.starts_with(seen) {
            Opening::Other
        } else if seen.len() == PREFACE.len() {
            Opening::Preface
        } else {
            Opening::Undecided
        }
    }
}

/// The length of a frame header.
pub const HEADER_LEN: usize = 9;

/// The frame size every endpoint accepts; statuscope never asks for more.
pub const MAX_FRAME_SIZE: usize = 16_384;

/// The flow-control window every stream and connection starts with (RFC 9113 §6.9.2).
pub const DEFAULT_WINDOW: u32 = 65_535;

/// The largest flow-control window (RFC 9113 §6.9.1).
pub const MAX_WINDOW: u32 = (1 << 31) - 1;

/// Frame types (RFC 9113 §6).
pub mod kind {
    /// Body bytes (§6.1).
    pub const DATA: u8 = 0x0;
    /// A header block opening a stream or ending it (§6.2).
    pub const HEADERS: u8 = 0x1;
    /// A deprecated priority signal (§6.3).
    pub const PRIORITY: u8 = 0x2;
    /// Ends one stream (§6.4).
    pub const RST_STREAM: u8 = 0x3;
    /// An endpoint's parameters (§6.5).
    pub const SETTINGS: u8 = 0x4;
    /// Server push, which statuscope never allows (§6.6).
    pub const PUSH_PROMISE: u8 = 0x5;
    /// A round-trip probe (§6.7).
    pub const PING: u8 = 0x6;
    /// The end of a connection (§6.8).
    pub const GOAWAY: u8 = 0x7;
    /// More flow-control credit (§6.9).
    pub const WINDOW_UPDATE: u8 = 0x8;
    /// The rest of a header block (§6.10).
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags.
pub mod flag {
    /// The sender's half of the stream ends with this frame.
    pub const END_STREAM: u8 = 0x1;
    /// A SETTINGS or PING acknowledgement.
    pub const ACK: u8 = 0x1;
    /// The header block ends in this frame.
    pub const END_HEADERS: u8 = 0x4;
    /// The payload is padded.
    pub const PADDED: u8 = 0x8;
    /// A HEADERS frame carries a priority field.
    pub const PRIORITY: u8 = 0x20;
}

/// SETTINGS parameters (RFC 9113 §6.5.2).
pub mod setting {
    /// The HPACK table size the sender's decoder allows.
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    /// Whether server push is allowed.
    pub const ENABLE_PUSH: u16 = 0x2;
    /// Streams the sender accepts at once.
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    /// Each new stream's receive window.
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    /// The largest frame payload the sender accepts.
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    /// The largest header list the sender accepts.
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// An error code (RFC 9113 §7), sent in RST_STREAM and GOAWAY frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason(pub u32);

impl Reason {
    /// A graceful end.
    pub const NO_ERROR: Reason = Reason(0x0);
    /// The peer broke the protocol.
    pub const PROTOCOL_ERROR: Reason = Reason(0x1);
    /// A fault of this end.
    pub const INTERNAL_ERROR: Reason = Reason(0x2);
    /// The peer broke flow control.
    pub const FLOW_CONTROL_ERROR: Reason = Reason(0x3);
    /// A frame for a closed stream.
    pub const STREAM_CLOSED: Reason = Reason(0x5);
    /// A frame of the wrong size.
    pub const FRAME_SIZE_ERROR: Reason = Reason(0x6);
    /// The stream was not processed; it may be retried.
    pub const REFUSED_STREAM: Reason = Reason(0x7);
    /// The stream is no longer needed.
    pub const CANCEL: Reason = Reason(0x8);
    /// The HPACK state cannot be kept.
    pub const COMPRESSION_ERROR: Reason = Reason(0x9);
    /// The peer is costing too much.
    pub const ENHANCE_YOUR_CALM: Reason = Reason(0xb);
}

/// A frame header as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    /// The payload's length.
    pub len: usize,
    /// The frame type.
    pub kind: u8,
    /// Its flags.
    pub flags: u8,
    /// The stream, 0 for the connection; the reserved bit cleared.
    pub stream: u32,
}

impl FrameHead {
    /// The header at the start of `buf`, if all nine bytes are there.
    pub fn parse(buf: &[u8]) -> Option<FrameHead> {
        let bytes: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
        Some(FrameHead {
            len: (usize::from(bytes[0]) << 16)
                | (usize::from(bytes[1]) << 8)
                | usize::from(bytes[2]),
            kind: bytes[3],
            flags: bytes[4],
            stream: u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & MAX_WINDOW,
        })
    }

    /// Whether `flag` is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Appends a frame header.
pub fn put_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    let len = len as u32;
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
}

/// Overwrites the length of the frame header that starts at `at`, once its payload is written.
pub fn set_len(out: &mut [u8], at: usize, len: usize) {
    out[at] = (len >> 16) as u8;
    out[at + 1] = (len >> 8) as u8;
    out[at + 2] = len as u8;
}

/// Appends a SETTINGS frame with these parameters (none for an ACK when `ack`).
pub fn put_settings(out: &mut Vec<u8>, ack: bool, params: &[(u16, u32)]) {
    put_head(
        out,
        params.len() * 6,
        kind::SETTINGS,
        if ack { flag::ACK } else { 0 },
        0,
    );
    for (id, value) in params {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
}

/// Appends a WINDOW_UPDATE frame.
pub fn put_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    put_head(out, 4, kind::WINDOW_UPDATE, 0, stream);
    out.extend_from_slice(&increment.to_be_bytes());
}

/// Appends a RST_STREAM frame.
pub fn put_reset(out: &mut Vec<u8>, stream: u32, reason: Reason) {
    put_head(out, 4, kind::RST_STREAM, 0, stream);
    out.extend_from_slice(&reason.0.to_be_bytes());
}

/// Appends a GOAWAY frame.
pub fn put_goaway(out: &mut Vec<u8>, last_stream: u32, reason: Reason) {
    put_head(out, 8, kind::GOAWAY, 0, 0);
    out.extend_from_slice(&last_stream.to_be_bytes());
    out.extend_from_slice(&reason.0.to_be_bytes());
}

/// Appends a DATA frame carrying `data`.
pub fn put_data(out: &mut Vec<u8>, stream: u32, data: &[u8], end_stream: bool) {
    let flags = if end_stream { flag::END_STREAM } else { 0 };
    put_head(out, data.len(), kind::DATA, flags, stream);
    out.extend_from_slice(data);
}

/// A big-endian u32 at the start of `bytes` (the caller checked the length).
pub fn u32_at(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opening_is_the_preface_only_when_every_byte_matches() {
        assert_eq!(Opening::of(PREFACE), Opening::Preface);
        assert_eq!(Opening::of(&[PREFACE, b"rest"].concat()), Opening::Preface);
        assert_eq!(Opening::of(b"PRI * HT"), Opening::Undecided);
        assert_eq!(Opening::of(b""), Opening::Undecided);
        // As long as the preface, but not it: an HTTP/1 request line.
        assert_eq!(
            Opening::of(b"GET /shop.Items/Get HTTP/1.1\r\n"),
            Opening::Other
        );
        assert_eq!(Opening::of(b"G"), Opening::Other);
    }

    #[test]
    fn a_written_header_reads_back() {
        let mut out = Vec::new();
        put_head(
            &mut out,
            0x01_02_03,
            kind::HEADERS,
            flag::END_HEADERS,
            0x8000_0007,
        );
        let head = FrameHead::parse(&out).unwrap();
        assert_eq!(head.len, 0x01_02_03);
        assert_eq!(head.kind, kind::HEADERS);
        assert!(head.has(flag::END_HEADERS) && !head.has(flag::END_STREAM));
        // The reserved bit is ignored on receipt (RFC 9113 §4.1).
        assert_eq!(head.stream, 7);
        assert_eq!(FrameHead::parse(&out[..8]), None);
        set_len(&mut out, 0, 5);
        assert_eq!(FrameHead::parse(&out).unwrap().len, 5);
    }
}
