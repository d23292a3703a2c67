//! The sample stage: keeps the first bytes of a response body for the misuse rules.
//!
//! Only bodies some rule reads are sampled (JSON and `+json`, HTML, plain text, XML). On the
//! response path the sampler copies at most `body_sample_bytes` raw bytes, once, and nothing
//! else; decoding a `Content-Encoding` happens afterwards, in the `logging` hook, with the
//! decoded output capped at the same limit so a decompression bomb costs nothing. The client
//! always receives the body exactly as the upstream sent it.

pub(crate) mod decode;

use std::cell::Cell;

pub use decode::Encoding;

use prometheus::IntCounter;

use crate::families::Families;

/// What sampling costs, as the sampler's own families count it.
pub struct SampleMetrics {
    samples: IntCounter,
    bytes: IntCounter,
}

impl SampleMetrics {
    /// Registers `statuscope_body_samples_total` and `statuscope_body_sampled_bytes_total`.
    pub fn register(families: &Families) -> Self {
        SampleMetrics {
            samples: families.counter(
                "statuscope_body_samples_total",
                "Response bodies sampled for the rules.",
            ),
            bytes: families.counter(
                "statuscope_body_sampled_bytes_total",
                "Raw response body bytes copied into samples for the rules: the cost of sampling.",
            ),
        }
    }

    /// Counts one sample that copied `bytes` raw bytes.
    pub fn record(&self, bytes: usize) {
        self.samples.inc();
        self.bytes.inc_by(bytes as u64);
    }
}

/// The kinds of body the rules read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/json`, `application/*+json`.
    Json,
    /// `text/html`, `application/xhtml+xml`.
    Html,
    /// `text/plain`.
    Text,
    /// `application/xml`, `text/xml`, `application/*+xml`.
    Xml,
}

impl BodyKind {
    /// The kind of a `Content-Type` value, or `None` for a type no rule reads.
    pub fn of(content_type: &str) -> Option<BodyKind> {
        let essence = media_type(content_type);
        let slash = memchr::memchr(b'/', essence.as_bytes())?;
        let (kind, subtype) = (&essence[..slash], &essence[slash + 1..]);
        let is = |a: &str, b: &str| kind.eq_ignore_ascii_case(a) && subtype.eq_ignore_ascii_case(b);
        let suffix = |s: &str| {
            subtype.len() > s.len() && subtype[subtype.len() - s.len()..].eq_ignore_ascii_case(s)
        };
        if is("application", "json") || suffix("+json") {
            Some(BodyKind::Json)
        } else if is("text", "html") || is("application", "xhtml+xml") {
            Some(BodyKind::Html)
        } else if is("text", "plain") {
            Some(BodyKind::Text)
        } else if is("application", "xml") || is("text", "xml") || suffix("+xml") {
            Some(BodyKind::Xml)
        } else {
            None
        }
    }
}

/// The media type of a `Content-Type` value (`application/json`), its parameters dropped.
pub fn media_type(content_type: &str) -> &str {
    let end = memchr::memchr(b';', content_type.as_bytes()).unwrap_or(content_type.len());
    content_type[..end].trim_ascii()
}

/// Collects the raw prefix of one response body.
#[derive(Debug)]
pub struct Sampler {
    limit: usize,
    kind: BodyKind,
    encoding: Encoding,
    raw: Vec<u8>,
    cut: bool,
}

/// Largest `body_sample_bytes`: the sample is held per in-flight request.
pub const MAX_BODY_SAMPLE_BYTES: usize = 1024 * 1024;

thread_local! {
    /// A finished sample's buffer, kept for the next sampler on this thread: one allocation
    /// per worker rather than one per sampled response.
    static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A decoded body prefix, ready for the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// What the `Content-Type` says the body is.
    pub kind: BodyKind,
    /// The decoded prefix, at most `body_sample_bytes` long.
    pub bytes: Vec<u8>,
    /// True when the body goes on past `bytes` (or could not be decoded to its end).
    pub truncated: bool,
}

impl Drop for Sample {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.bytes);
        if bytes.capacity() == 0 || bytes.capacity() > MAX_BODY_SAMPLE_BYTES {
            return;
        }
        bytes.clear();
        SPARE.with(|spare| {
            let kept = spare.take();
            spare.set(if kept.capacity() >= bytes.capacity() {
                kept
            } else {
                bytes
            });
        });
    }
}

impl Sampler {
    /// A sampler for a response with these headers, or `None` when no rule reads such a body,
    /// its encoding is one statuscope does not decode, or sampling is off (`limit` 0).
    pub fn start(
        limit: usize,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
    ) -> Option<Sampler> {
        if limit == 0 {
            return None;
        }
        let kind = BodyKind::of(content_type?)?;
        let encoding = Encoding::parse(content_encoding)?;
        Some(Sampler {
            limit,
            kind,
            encoding,
            raw: Vec::new(),
            cut: false,
        })
    }

    /// Copies what still fits of a body chunk; returns how many bytes were copied.
    pub fn feed(&mut self, chunk: &[u8]) -> usize {
        let room = self.limit - self.raw.len();
        if chunk.len() > room {
            self.cut = true;
        }
        let take = chunk.len().min(room);
        if take > 0 {
            if self.raw.capacity() == 0 {
                self.raw = SPARE.with(Cell::take);
                // One allocation for the whole sample in the common case.
                self.raw
                    .reserve_exact(self.limit.min(chunk.len().max(1024)));
            }
            self.raw.extend_from_slice(&chunk[..take]);
        }
        take
    }

    /// Raw bytes copied so far.
    pub fn sampled(&self) -> usize {
        self.raw.len()
    }

    /// Decodes the collected prefix (off the response path).
    pub fn finish(self) -> Sample {
        let (bytes, decode_cut) = decode::decode(self.encoding, self.raw, self.limit);
        Sample {
            kind: self.kind,
            bytes,
            truncated: self.cut || decode_cut,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bodies_some_rule_reads_are_sampled() {
        assert_eq!(
            BodyKind::of("application/json; charset=utf-8"),
            Some(BodyKind::Json)
        );
        assert_eq!(
            BodyKind::of("application/problem+json"),
            Some(BodyKind::Json)
        );
        assert_eq!(BodyKind::of("Text/HTML"), Some(BodyKind::Html));
        assert_eq!(BodyKind::of("text/plain"), Some(BodyKind::Text));
        assert_eq!(BodyKind::of("application/soap+xml"), Some(BodyKind::Xml));
        assert_eq!(BodyKind::of("image/png"), None);
        assert_eq!(BodyKind::of("application/octet-stream"), None);
        assert_eq!(BodyKind::of("garbage"), None);
        assert!(Sampler::start(8192, Some("image/png"), None).is_none());
        assert!(Sampler::start(0, Some("application/json"), None).is_none());
        assert!(Sampler::start(8192, Some("application/json"), Some("compress")).is_none());
    }

    #[test]
    fn the_sample_stops_at_the_limit() {
        let mut sampler = Sampler::start(10, Some("text/plain"), None).unwrap();
        assert_eq!(sampler.feed(b"hello "), 6);
        assert_eq!(sampler.feed(b"world, again"), 4);
        assert_eq!(sampler.feed(b"more"), 0);
        let sample = sampler.finish();
        assert_eq!(sample.bytes, b"hello worl");
        assert!(sample.truncated);
    }

    #[test]
    fn a_body_that_fits_is_not_truncated() {
        let mut sampler = Sampler::start(10, Some("text/plain"), None).unwrap();
        sampler.feed(b"0123456789");
        let sample = sampler.finish();
        assert_eq!(sample.bytes.len(), 10);
        assert!(!sample.truncated);
    }
}
