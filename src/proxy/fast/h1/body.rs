//! Message bodies on an HTTP/1 connection, by their framing (RFC 9112 §6.3): how much of a
//! body is still to come, and the body bytes among the bytes that arrived.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::AsyncWrite;

use crate::proxy::chunked::{ChunkedReader, Fed};
use crate::proxy::fast::upstream::response_head::Framing;
use crate::proxy::request_head::Head;

/// How much of a body is still to come, by its framing.
pub(in crate::proxy::fast) enum BodyLeft {
    /// This many bytes.
    Length(u64),
    /// Chunks, up to the last chunk and the trailer section.
    Chunked(ChunkedReader),
    /// Everything until the connection closes (a response only).
    UntilClose,
    /// Nothing: the body is complete, or there is none.
    Done,
    /// Complete, ended by these trailer field lines (a chunked body read with
    /// [`ChunkedReader::keeping_trailers`]).
    Trailed(Vec<u8>),
}

impl BodyLeft {
    /// The request body a head announces.
    pub(in crate::proxy::fast) fn of_request(head: &Head) -> BodyLeft {
        match head.content_length {
            _ if head.chunked => BodyLeft::Chunked(ChunkedReader::default()),
            Some(n) if n > 0 => BodyLeft::Length(n),
            _ => BodyLeft::Done,
        }
    }

    /// The response body a head announces.
    pub(in crate::proxy::fast) fn of_response(framing: Framing) -> BodyLeft {
        match framing {
            Framing::None | Framing::Length(0) => BodyLeft::Done,
            Framing::Length(n) => BodyLeft::Length(n),
            Framing::Chunked => BodyLeft::Chunked(ChunkedReader::default()),
            Framing::UntilClose => BodyLeft::UntilClose,
        }
    }

    /// The same framing, but a chunked body keeps its trailer fields ([`BodyLeft::trailers`]).
    pub(in crate::proxy::fast) fn keeping_trailers(self) -> BodyLeft {
        match self {
            BodyLeft::Chunked(_) => BodyLeft::Chunked(ChunkedReader::keeping_trailers()),
            other => other,
        }
    }

    pub(in crate::proxy::fast) fn is_done(&self) -> bool {
        matches!(self, BodyLeft::Done | BodyLeft::Trailed(_))
    }

    /// The trailer field lines a complete chunked body ended with, when they were kept.
    pub(in crate::proxy::fast) fn trailers(&self) -> Option<&[u8]> {
        match self {
            BodyLeft::Trailed(lines) => Some(lines),
            _ => None,
        }
    }

    /// Of `bytes`, the next bytes of the message, how many belong to the body; each piece of
    /// body data (chunk framing left out) goes to `data`.
    pub(in crate::proxy::fast) fn advance(
        &mut self,
        bytes: &[u8],
        mut data: impl FnMut(&[u8]),
    ) -> Result<usize, &'static str> {
        match self {
            BodyLeft::Done | BodyLeft::Trailed(_) => Ok(0),
            BodyLeft::UntilClose => {
                data(bytes);
                Ok(bytes.len())
            }
            BodyLeft::Length(left) => {
                let take = bytes
                    .len()
                    .min(usize::try_from(*left).unwrap_or(usize::MAX));
                data(&bytes[..take]);
                *left -= take as u64;
                if *left == 0 {
                    *self = BodyLeft::Done;
                }
                Ok(take)
            }
            BodyLeft::Chunked(reader) => match reader.feed(bytes, data)? {
                Fed::More => Ok(bytes.len()),
                Fed::End(n) => {
                    *self = match reader.trailers() {
                        Some(lines) => BodyLeft::Trailed(lines.to_vec()),
                        None => BodyLeft::Done,
                    };
                    Ok(n)
                }
            },
        }
    }
}

/// Writes every byte of `bufs`.
pub(in crate::proxy::fast) fn write_all_vectored<'a, 'b, W: AsyncWrite + Unpin>(
    writer: &'a mut W,
    mut bufs: &'a mut [IoSlice<'b>],
) -> WriteAllVectored<'a, 'b, W> {
    IoSlice::advance_slices(&mut bufs, 0);
    WriteAllVectored { writer, bufs }
}

/// The future of [`write_all_vectored`]: a plain struct rather than an `async fn`, so that it
/// inlines where it is awaited on the request path.
pub(in crate::proxy::fast) struct WriteAllVectored<'a, 'b, W> {
    writer: &'a mut W,
    bufs: &'a mut [IoSlice<'b>],
}

impl<W: AsyncWrite + Unpin> Future for WriteAllVectored<'_, '_, W> {
    type Output = io::Result<()>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while !this.bufs.is_empty() {
            match ready!(Pin::new(&mut *this.writer).poll_write_vectored(cx, this.bufs))? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                n => IoSlice::advance_slices(&mut this.bufs, n),
            }
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_end_where_their_framing_says() {
        let mut length = BodyLeft::Length(5);
        assert_eq!(length.advance(b"hel", |_| {}), Ok(3));
        assert_eq!(length.advance(b"loGET /", |_| {}), Ok(2));
        assert!(length.is_done());
        let mut chunked = BodyLeft::Chunked(ChunkedReader::default());
        let mut data = Vec::new();
        assert_eq!(
            chunked.advance(b"2\r\nhi\r\n0\r\n\r\nnext", |d| data.extend_from_slice(d)),
            Ok(12)
        );
        assert!(chunked.is_done());
        assert_eq!(data, b"hi");
        let mut rest = BodyLeft::UntilClose;
        assert_eq!(rest.advance(b"all of it", |_| {}), Ok(9));
        assert!(!rest.is_done());
    }
}
