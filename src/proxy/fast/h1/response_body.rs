//! The response body from an HTTP/1 upstream to an HTTP/1 client, by its framing, through the
//! upstream connection's buffer (the head stays at its front for the rules), sampled on the
//! way, with backpressure both ways: nothing is read from the upstream faster than the client
//! takes it.

use std::io::IoSlice;
use std::time::Instant;

use super::body::{write_all_vectored, BodyLeft};
use super::connection::Client;
use super::request_body::{upstream_failure, Failure};
use crate::classify::UpstreamErrorKind;
use crate::proxy::fast::upstream::http1::UpstreamConn;
use crate::proxy::fast::upstream::response_head::ResponseHead;
use crate::proxy::settings::LiveSettings;
use crate::sample::Sampler;

/// Room for body bytes behind a response head in the upstream's buffer.
const BODY_ROOM: usize = 8 * 1024;

impl Client<'_> {
    /// Streams the response body by its framing to the client, after the head in
    /// `self.parts.out`, feeding the sampler; `Ok(true)` when it ended exactly where its
    /// framing said. With `dechunked`, only the chunks' data goes to the client.
    pub(super) async fn relay_body(
        &mut self,
        upstream: &mut UpstreamConn,
        response: &ResponseHead,
        dechunked: bool,
        sampler: &mut Option<Sampler>,
        settings: &LiveSettings,
        response_deadline: Option<Instant>,
    ) -> Result<bool, Failure> {
        let mut left = BodyLeft::of_response(response.framing);
        let mut head_sent = false;
        if upstream.buf.len() < response.len + BODY_ROOM {
            upstream.buf.resize(response.len + BODY_ROOM, 0);
        }
        loop {
            let arrived = &upstream.buf[response.len..upstream.filled];
            if head_sent {
                self.parts.out.clear();
            }
            let out = &mut self.parts.out;
            let taken = left
                .advance(arrived, |data| {
                    if let Some(sampler) = sampler.as_mut() {
                        sampler.feed(data);
                    }
                    if dechunked {
                        out.extend_from_slice(data);
                    }
                })
                .map_err(|_| upstream_failure(UpstreamErrorKind::Other, false))?;
            let raw = if dechunked {
                &[][..]
            } else {
                &arrived[..taken]
            };
            let written = self
                .parts
                .deadline
                .run(
                    || response_deadline,
                    write_all_vectored(
                        &mut self.stream,
                        &mut [IoSlice::new(&self.parts.out), IoSlice::new(raw)],
                    ),
                )
                .await;
            head_sent = true;
            match written {
                None => return Err(upstream_failure(UpstreamErrorKind::ResponseTimeout, false)),
                Some(Err(_)) => return Err(Failure::ClientGone),
                Some(Ok(())) => {}
            }
            if left.is_done() {
                return Ok(taken == arrived.len());
            }
            upstream.filled = response.len;
            let timer = &mut self.parts.deadline;
            let read = upstream
                .read_more(timer, settings.timeouts.read, response_deadline)
                .await
                .map_err(|kind| upstream_failure(kind, false))?;
            match read {
                0 if matches!(left, BodyLeft::UntilClose) => return Ok(true),
                0 => return Err(upstream_failure(UpstreamErrorKind::Truncated, false)),
                n => upstream.filled += n,
            }
        }
    }
}
