//! The chunked transfer coding (RFC 9112 §7.1), read incrementally and strictly.
//!
//! One reader serves every chunked body statuscope carries: a request body (the head guard
//! checks what arrived with the head, the fast engine the rest as it streams) and an upstream
//! response body (the fast engine finds where it ends and samples its data). The bytes are
//! forwarded exactly as they came; the reader only tells where the chunk data is, where the
//! body ends, and what HTTP does not allow — so statuscope and the peer behind it can never
//! disagree about where one message stops and the next begins.
//!
//! Byte by byte over the framing, a slice at a time over the data: the cost is in the framing
//! lines, not in the body.
//!
//! The writers frame a body statuscope chunks itself: an HTTP/2 body without a length passed to
//! an HTTP/1 peer, its trailers as the trailer section.

use std::io::Write;

use super::h2::fields::FieldBlock;
use super::request_head::is_tchar;

/// The largest trailer section accepted after the last chunk.
pub const MAX_TRAILER_BYTES: usize = 32 * 1024;

/// At most this many hex digits in a chunk size (below 2^60: no overflow, no absurd sizes).
const MAX_SIZE_DIGITS: u8 = 15;

/// Writes the size line of a chunk of `len` bytes, which must not be zero (that is the last
/// chunk's).
pub fn write_chunk_size(len: usize, out: &mut Vec<u8>) {
    // Writing to a `Vec` cannot fail.
    let _ = write!(out, "{len:x}\r\n");
}

/// Writes the last chunk and the trailer section: `trailers`' regular fields, if any.
pub fn write_last_chunk(trailers: Option<&FieldBlock>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n");
    if let Some(trailers) = trailers {
        trailers.write_lines(|_| false, out);
    }
    out.extend_from_slice(b"\r\n");
}

/// Where a [`ChunkedReader`] is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The hex digits of a chunk size.
    Size { digits: u8, size: u64 },
    /// The first byte of a chunk extension's name, right after `;`.
    ExtensionName { size: u64 },
    /// A chunk extension, up to the line's end.
    Extension { size: u64 },
    /// The CR of a chunk-size line was read; its LF must follow.
    SizeLf { size: u64 },
    /// Chunk data, this many bytes still to come.
    Data(u64),
    /// The CR after a chunk's data must follow.
    DataCr,
    /// The LF after a chunk's data must follow.
    DataLf,
    /// At the start of a trailer field line, or of the empty line that ends the body.
    TrailerStart,
    /// Inside a trailer field line.
    Trailer,
    /// The CR of a trailer field line was read; its LF must follow.
    TrailerLf,
    /// The CR of the final empty line was read; its LF must follow.
    EndLf,
    /// The body is complete.
    Done,
}

/// Reads one chunked body, fed in pieces as they arrive.
#[derive(Debug, Clone)]
pub struct ChunkedReader {
    state: State,
    trailer_bytes: usize,
    /// The trailer section's lines, when asked for ([`ChunkedReader::keeping_trailers`]).
    trailers: Option<Vec<u8>>,
}

impl Default for ChunkedReader {
    fn default() -> Self {
        ChunkedReader {
            state: State::Size { digits: 0, size: 0 },
            trailer_bytes: 0,
            trailers: None,
        }
    }
}

/// How far one [`ChunkedReader::feed`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed {
    /// Every byte given belongs to the body, which goes on.
    More,
    /// The body ends after this many of the bytes given; the rest belongs to what follows.
    End(usize),
}

/// A field value byte (RFC 9110 §5.5): visible ASCII, space, tab or obs-text.
fn is_value_byte(byte: u8) -> bool {
    byte == b'\t' || (byte >= b' ' && byte != 0x7f)
}

impl ChunkedReader {
    /// A reader that keeps the trailer section's lines, for a relay that passes trailers on
    /// in another form (to an HTTP/2 peer).
    pub fn keeping_trailers() -> Self {
        ChunkedReader {
            trailers: Some(Vec::new()),
            ..ChunkedReader::default()
        }
    }

    /// The trailer section's field lines as read so far, each ending in CRLF, when kept.
    pub fn trailers(&self) -> Option<&[u8]> {
        self.trailers.as_deref()
    }

    /// Reads `bytes`, the next part of the body, handing each piece of chunk data to `data`.
    /// A framing error names what is wrong in a few words.
    pub fn feed(&mut self, bytes: &[u8], mut data: impl FnMut(&[u8])) -> Result<Fed, &'static str> {
        let mut at = 0;
        while at < bytes.len() {
            match self.state {
                State::Data(left) => {
                    let take = (bytes.len() - at).min(usize::try_from(left).unwrap_or(usize::MAX));
                    data(&bytes[at..at + take]);
                    at += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data(left)
                    };
                }
                State::Done => return Ok(Fed::End(at)),
                state => {
                    self.state = self.after_byte(state, bytes[at])?;
                    at += 1;
                }
            }
        }
        Ok(if self.state == State::Done {
            Fed::End(at)
        } else {
            Fed::More
        })
    }

    /// The state after `byte` in `state`, which is one of those read a byte at a time.
    fn after_byte(&mut self, state: State, byte: u8) -> Result<State, &'static str> {
        Ok(match state {
            State::Size { digits, size } => match (byte as char).to_digit(16) {
                Some(digit) if digits < MAX_SIZE_DIGITS => State::Size {
                    digits: digits + 1,
                    size: size << 4 | u64::from(digit),
                },
                Some(_) => return Err("an invalid chunk size"),
                None if digits == 0 => return Err("an invalid chunk size"),
                // RFC 9112 §7.1.1 allows whitespace before `;`, but parsers differ on it (h11
                // refuses it, waitress reads on): refused, like an extension without a name.
                None => match byte {
                    b';' => State::ExtensionName { size },
                    b'\r' => State::SizeLf { size },
                    b'\n' => return Err("a chunk-size line ends in a bare LF"),
                    b' ' | b'\t' => return Err("whitespace in a chunk-size line"),
                    _ => return Err("an invalid chunk size"),
                },
            },
            State::ExtensionName { size } => match byte {
                _ if is_tchar(byte) => State::Extension { size },
                _ => return Err("a chunk extension without a name"),
            },
            State::Extension { size } => match byte {
                b'\r' => State::SizeLf { size },
                b'\n' => return Err("a chunk-size line ends in a bare LF"),
                _ if is_value_byte(byte) => State::Extension { size },
                _ => return Err("a control character in a chunk extension"),
            },
            State::SizeLf { size } => match byte {
                b'\n' if size == 0 => State::TrailerStart,
                b'\n' => State::Data(size),
                _ => return Err("a chunk-size line ends in a bare CR"),
            },
            State::DataCr => match byte {
                b'\r' => State::DataLf,
                _ => return Err("chunk data longer or shorter than its size"),
            },
            State::DataLf => match byte {
                b'\n' => State::Size { digits: 0, size: 0 },
                _ => return Err("chunk data longer or shorter than its size"),
            },
            State::TrailerStart => match byte {
                b'\r' => State::EndLf,
                b'\n' => return Err("a trailer line ends in a bare LF"),
                _ if is_value_byte(byte) => self.trailer_byte(byte)?,
                _ => return Err("a control character in a trailer field"),
            },
            State::Trailer => match byte {
                b'\r' => State::TrailerLf,
                b'\n' => return Err("a trailer line ends in a bare LF"),
                _ if is_value_byte(byte) => self.trailer_byte(byte)?,
                _ => return Err("a control character in a trailer field"),
            },
            State::TrailerLf => match byte {
                b'\n' => {
                    self.keep_trailer_bytes(b"\r\n");
                    State::TrailerStart
                }
                _ => return Err("a trailer line ends in a bare CR"),
            },
            State::EndLf => match byte {
                b'\n' => State::Done,
                _ => return Err("the chunked body ends in a bare CR"),
            },
            // Read in bulk by `feed`, never a byte at a time.
            State::Data(_) | State::Done => state,
        })
    }

    fn keep_trailer_bytes(&mut self, bytes: &[u8]) {
        if let Some(kept) = self.trailers.as_mut() {
            kept.extend_from_slice(bytes);
        }
    }

    fn trailer_byte(&mut self, byte: u8) -> Result<State, &'static str> {
        self.keep_trailer_bytes(&[byte]);
        self.trailer_bytes += 1;
        if self.trailer_bytes > MAX_TRAILER_BYTES {
            return Err("the trailer section is too large");
        }
        Ok(State::Trailer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_whole(body: &[u8]) -> Result<(Fed, Vec<u8>), &'static str> {
        let mut data = Vec::new();
        let fed = ChunkedReader::default().feed(body, |d| data.extend_from_slice(d))?;
        Ok((fed, data))
    }

    #[test]
    fn finds_the_data_and_the_end() {
        let body = b"5\r\nhello\r\n6;name=value\r\n world\r\n0\r\nx-sum: 1\r\n\r\nGET /next";
        let (fed, data) = read_whole(body).unwrap();
        assert_eq!(data, b"hello world");
        assert_eq!(fed, Fed::End(body.len() - b"GET /next".len()));
    }

    #[test]
    fn a_byte_at_a_time_reaches_the_same_answer() {
        let body = b"a\r\n0123456789\r\n0\r\n\r\n";
        let mut reader = ChunkedReader::default();
        let mut data = Vec::new();
        for (i, byte) in body.iter().enumerate() {
            let fed = reader
                .feed(std::slice::from_ref(byte), |d| data.extend_from_slice(d))
                .unwrap();
            let expected = if i + 1 == body.len() {
                Fed::End(1)
            } else {
                Fed::More
            };
            assert_eq!(fed, expected, "at byte {i}");
        }
        assert!(reader.state == State::Done);
        assert_eq!(data, b"0123456789");
    }

    #[test]
    fn refuses_what_http_does_not_allow() {
        for body in [
            &b"zz\r\n"[..],
            b" 5\r\nhello\r\n",
            b"5\nhello\r\n",
            b"5\r\nhello world\r\n",
            b"5;a=\x01\r\n",
            b"ffffffffffffffffff\r\n",
            b"5\r\nhello\n",
            b"0\r\nx: a\nb\r\n\r\n",
            b"0\r\nx: \x00\r\n\r\n",
            b"\r\n",
            b"5 ;ext\r\nhello\r\n",
            b"5\t\r\nhello\r\n",
            b"5;\r\nhello\r\n",
            b"5;=x\r\nhello\r\n",
        ] {
            assert!(
                read_whole(body).is_err(),
                "{:?} was accepted",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn accepts_what_http_allows() {
        for body in [
            &b"5;ext\r\nhello\r\n0\r\n\r\n"[..],
            b"5;a=\"b c\"\r\nhello\r\n0\r\n\r\n",
            b"0;last\r\n\r\n",
            b"00\r\n\r\n",
        ] {
            assert!(
                matches!(read_whole(body), Ok((Fed::End(_), _))),
                "{:?} was refused",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn trailers_are_kept_when_asked_for() {
        let mut reader = ChunkedReader::keeping_trailers();
        let body = b"2\r\nhi\r\n0\r\ngrpc-status: 0\r\nx-a: b\r\n\r\n";
        for byte in body {
            reader.feed(std::slice::from_ref(byte), |_| {}).unwrap();
        }
        assert!(reader.state == State::Done);
        assert_eq!(
            reader.trailers(),
            Some(&b"grpc-status: 0\r\nx-a: b\r\n"[..])
        );
        assert_eq!(ChunkedReader::default().trailers(), None);
    }

    #[test]
    fn an_oversized_trailer_section_is_refused() {
        let mut body = b"0\r\n".to_vec();
        body.extend(std::iter::repeat_n(b'x', MAX_TRAILER_BYTES + 1));
        assert_eq!(
            read_whole(&body).unwrap_err(),
            "the trailer section is too large"
        );
    }
}
