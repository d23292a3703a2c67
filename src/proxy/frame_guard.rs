//! The pingora engine's HTTP/2 client connections are read through a [`FrameGuard`]: it
//! follows the client's frames as they pass (their 9-byte headers; payloads are skipped) and
//! holds the client to the same [`budget`](super::h2::budget) statuscope's own relay enforces,
//! which the `h2` crate under pingora does not: a connection that floods SETTINGS or PING,
//! sends a header block past `downstream.max_header_bytes` (which would break the upstream
//! connection it shares with other clients), or does not open with the preface and SETTINGS
//! is sent GOAWAY and closed before pingora reads the frame.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use async_trait::async_trait;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, Stream, UniqueID,
    UniqueIDType,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::h2::budget::{Budget, MAX_CONTINUATIONS};
use super::h2::frame::{self, flag, kind, Reason};

/// An HTTP/2 client connection, read through the guard (see the module docs).
#[derive(Debug)]
pub struct FrameGuard {
    inner: Stream,
    scan: Scan,
    /// The GOAWAY to send before the connection is closed, once the client broke a limit.
    goaway: Option<Vec<u8>>,
    /// The last write to the connection was cut: a GOAWAY now would land inside a frame.
    mid_frame: bool,
}

/// Where the scan is in the client's bytes.
#[derive(Debug)]
struct Scan {
    preface_left: usize,
    settings_seen: bool,
    /// The frame header being read.
    head: [u8; frame::HEADER_LEN],
    head_filled: usize,
    /// Payload bytes of the current frame still to pass.
    payload_left: usize,
    /// Bytes and CONTINUATION frames of the header block being read, if one is open.
    block: Option<(usize, u32)>,
    max_block: usize,
    budget: Budget,
}

impl FrameGuard {
    /// Guards `inner`, whose first bytes are the client preface; a header block larger than
    /// `max_header_bytes` on the wire ends the connection (the `h2` crate holds the decoded
    /// list to the same limit).
    pub fn around(inner: Stream, max_header_bytes: usize) -> Stream {
        Box::new(FrameGuard {
            inner,
            scan: Scan::new(max_header_bytes),
            goaway: None,
            mid_frame: false,
        })
    }
}

impl Scan {
    fn new(max_block: usize) -> Scan {
        Scan {
            preface_left: frame::PREFACE.len(),
            settings_seen: false,
            head: [0; frame::HEADER_LEN],
            head_filled: 0,
            payload_left: 0,
            block: None,
            max_block,
            budget: Budget::default(),
        }
    }

    /// Follows `bytes`; the error code and why, once the client broke a limit.
    fn follow(&mut self, mut bytes: &[u8], now: Instant) -> Result<(), (Reason, &'static str)> {
        while !bytes.is_empty() {
            if self.preface_left > 0 {
                let done = frame::PREFACE.len() - self.preface_left;
                let take = bytes.len().min(self.preface_left);
                if bytes[..take] != frame::PREFACE[done..done + take] {
                    return Err((Reason::PROTOCOL_ERROR, "an invalid connection preface"));
                }
                self.preface_left -= take;
                bytes = &bytes[take..];
            } else if self.payload_left > 0 {
                let take = bytes.len().min(self.payload_left);
                self.payload_left -= take;
                bytes = &bytes[take..];
            } else {
                let take = bytes.len().min(frame::HEADER_LEN - self.head_filled);
                self.head[self.head_filled..self.head_filled + take]
                    .copy_from_slice(&bytes[..take]);
                self.head_filled += take;
                bytes = &bytes[take..];
                if self.head_filled == frame::HEADER_LEN {
                    self.head_filled = 0;
                    let head = frame::FrameHead::parse(&self.head).expect("nine bytes");
                    self.payload_left = head.len;
                    self.frame(head, now)?;
                }
            }
        }
        Ok(())
    }

    /// Accounts for one frame by its header.
    fn frame(
        &mut self,
        head: frame::FrameHead,
        now: Instant,
    ) -> Result<(), (Reason, &'static str)> {
        const CALM: Reason = Reason::ENHANCE_YOUR_CALM;
        if !self.settings_seen {
            if head.kind != kind::SETTINGS {
                return Err((Reason::PROTOCOL_ERROR, "the first frame is not SETTINGS"));
            }
            self.settings_seen = true;
            return Ok(());
        }
        match head.kind {
            kind::HEADERS => {
                self.budget.opened();
                self.block = (!head.has(flag::END_HEADERS)).then_some((head.len, 0));
                if head.len > self.max_block {
                    return Err((CALM, "a header block past any limit"));
                }
            }
            kind::CONTINUATION => {
                if let Some((bytes, frames)) = self.block.as_mut() {
                    *bytes += head.len;
                    *frames += 1;
                    if *bytes > self.max_block || *frames > MAX_CONTINUATIONS {
                        return Err((CALM, "a header block past any limit"));
                    }
                }
                if head.has(flag::END_HEADERS) {
                    self.block = None;
                }
            }
            kind::DATA if head.len > 0 || head.has(flag::END_STREAM) => self.budget.useful(),
            kind::DATA => self.control(now)?,
            kind::PING | kind::SETTINGS if !head.has(flag::ACK) => self.control(now)?,
            _ => {}
        }
        Ok(())
    }
}

impl Scan {
    fn control(&mut self, now: Instant) -> Result<(), (Reason, &'static str)> {
        if self.budget.control(now) {
            Ok(())
        } else {
            Err((Reason::ENHANCE_YOUR_CALM, "a flood of control frames"))
        }
    }
}

impl AsyncRead for FrameGuard {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.goaway.is_some() {
            return this.poll_goaway(cx);
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read {
            if let Err((reason, _)) = this.scan.follow(&buf.filled()[before..], Instant::now()) {
                buf.set_filled(before);
                let mut goaway = Vec::with_capacity(17);
                frame::put_goaway(&mut goaway, 0, reason);
                this.goaway = Some(goaway);
                return this.poll_goaway(cx);
            }
        }
        read
    }
}

impl FrameGuard {
    /// Writes the GOAWAY (unless a frame is cut mid-way), then fails the read: pingora closes
    /// the connection.
    fn poll_goaway(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let refused = || {
            Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "HTTP/2 client over its limits",
            )))
        };
        let Some(goaway) = self.goaway.as_mut() else {
            return refused();
        };
        while !goaway.is_empty() && !self.mid_frame {
            match Pin::new(&mut self.inner).poll_write(cx, goaway) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    goaway.drain(..n);
                }
                Poll::Pending => return Poll::Pending,
                Poll::Ready(_) => break,
            }
        }
        let _ = Pin::new(&mut self.inner).poll_flush(cx);
        refused()
    }
}

impl AsyncWrite for FrameGuard {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            this.mid_frame = n < buf.len();
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for FrameGuard {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await;
    }
}

impl UniqueID for FrameGuard {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for FrameGuard {}

impl GetTimingDigest for FrameGuard {
    fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
        self.inner.get_timing_digest()
    }
}

impl GetProxyDigest for FrameGuard {
    fn get_proxy_digest(
        &self,
    ) -> Option<std::sync::Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
}

impl GetSocketDigest for FrameGuard {
    fn get_socket_digest(&self) -> Option<std::sync::Arc<pingora::protocols::SocketDigest>> {
        self.inner.get_socket_digest()
    }
}

#[async_trait]
impl Peek for FrameGuard {}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan() -> Scan {
        Scan::new(1000)
    }

    fn opening() -> Vec<u8> {
        let mut bytes = frame::PREFACE.to_vec();
        frame::put_settings(&mut bytes, false, &[(3, 100)]);
        bytes
    }

    #[test]
    fn a_ping_flood_is_caught_a_byte_at_a_time_as_at_once() {
        let mut flood = opening();
        for _ in 0..200 {
            frame::put_head(&mut flood, 8, kind::PING, 0, 0);
            flood.extend_from_slice(b"12345678");
        }
        let now = Instant::now();
        assert!(scan().follow(&flood, now).is_err());
        let mut trickled = scan();
        let caught = flood
            .iter()
            .any(|b| trickled.follow(std::slice::from_ref(b), now).is_err());
        assert!(caught);
    }

    #[test]
    fn requests_and_their_pings_pass() {
        let mut bytes = opening();
        let now = Instant::now();
        for stream in (1..2000).step_by(2) {
            frame::put_head(&mut bytes, 3, kind::HEADERS, flag::END_HEADERS, stream);
            bytes.extend_from_slice(b"\x82\x86\x84");
            frame::put_head(&mut bytes, 8, kind::PING, 0, 0);
            bytes.extend_from_slice(b"12345678");
        }
        assert!(scan().follow(&bytes, now).is_ok());
    }

    #[test]
    fn the_opening_must_be_the_preface_and_settings() {
        let now = Instant::now();
        assert!(scan().follow(b"PRI * HTTP/2.0\r\n\r\nXY", now).is_err());
        let mut ping_first = frame::PREFACE.to_vec();
        frame::put_head(&mut ping_first, 8, kind::PING, 0, 0);
        assert!(scan().follow(&ping_first, now).is_err());
    }
}
