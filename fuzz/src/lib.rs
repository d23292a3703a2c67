//! The properties the fuzz targets check, one function per target. `make fuzz` runs them
//! under libFuzzer; `make test` runs them over the committed seed corpora
//! (`tests/fuzz_corpora.rs`), so they keep compiling and the seeds keep passing.

use std::ops::ControlFlow;
use std::time::Instant;

use statuscope::classify::route::{normalise, RouteTable, RouteTemplate};
use statuscope::proxy::h2::conn::{Conn, Event, HeadKind, Limits, Role, StreamKey};
use statuscope::proxy::h2::frame::{FrameHead, HEADER_LEN, PREFACE};
use statuscope::proxy::h2::hpack::{encode_field, Decoder};
use statuscope::proxy::request_head::{self, HeadLimits, HeadReader, Progress};
use statuscope::rules::parse::headers::{
    accepts_only_json, allow_lists, retry_after_is_valid, CacheControl,
};
use statuscope::rules::parse::{html, json};
use statuscope::sample::Sampler;

/// A fuzz target's property: panics on a violation.
pub type Check = fn(&[u8]);

/// Every target, by name, for the corpus runner.
pub const TARGETS: &[(&str, Check)] = &[
    ("sampler", sampler),
    ("json_envelope", json_envelope),
    ("html_error_page", html_error_page),
    ("route_templater", route_templater),
    ("header_parsers", header_parsers),
    ("request_head", request_head),
    ("hpack", hpack),
    ("h2_server", h2_server),
];

/// The body sampler and its decoders: the first byte picks the content type, encoding,
/// sample size and chunking; the rest is the body as it streams. The sample never exceeds
/// its limit, raw or decoded.
pub fn sampler(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let selector = usize::from(selector);
    let types = [
        "application/json",
        "text/html",
        "application/problem+json",
        "text/plain",
    ];
    let encodings = [
        None,
        Some("gzip"),
        Some("deflate"),
        Some("br"),
        Some("zstd"),
        Some("x-gzip"),
    ];
    let limit = 1 + (selector >> 4) * 97;
    let Some(mut sampler) = Sampler::start(
        limit,
        Some(types[selector % types.len()]),
        encodings[(selector >> 2) % encodings.len()],
    ) else {
        return;
    };
    for chunk in body.chunks(1 + selector % 13) {
        assert!(sampler.feed(chunk) <= chunk.len());
    }
    assert!(sampler.sampled() <= limit);
    let sample = sampler.finish();
    assert!(sample.bytes.len() <= limit);
}

/// The JSON scanner behind the error-envelope detector: any bytes, any early stop.
pub fn json_envelope(data: &[u8]) {
    let mut members = 0usize;
    json::scan(data, |key, _value| {
        assert!(key.len() <= data.len());
        members += 1;
        if members > 64 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
}

/// The HTML error-page detector: its texts come from the page and never have more characters
/// than it has bytes (invalid UTF-8 becomes one replacement character per byte).
pub fn html_error_page(data: &[u8]) {
    let headline = html::headline(data);
    for text in [headline.title, headline.heading].into_iter().flatten() {
        assert!(text.chars().count() <= data.len());
    }
}

/// The route templater: a path resolves to the same label every time, a label never carries
/// a query string, and normalising is idempotent.
pub fn route_templater(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = RouteTemplate::parse(text);
    let templates = ["/users/{id}", "/orders/{order}/items/{item}"]
        .iter()
        .map(|t| RouteTemplate::parse(t).expect("valid template"))
        .collect();
    let table = RouteTable::new(templates, 4);
    let path = text.split('?').next().unwrap_or_default();
    let first = table.resolve(path);
    assert_eq!(first.label, table.resolve(path).label);
    assert!(!first.label.contains('?'));
    let once = normalise(path);
    assert_eq!(normalise(&once), once);
}

/// The `Retry-After`, `Allow`, `Cache-Control` and `Accept` parsers.
pub fn header_parsers(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = retry_after_is_valid(text);
    let _ = CacheControl::parse(text.split('\n'));
    let _ = allow_lists(text, "GET");
    let _ = accepts_only_json(text);
}

/// The strict request-head reader: the same verdict whether the head arrives whole or a byte
/// at a time, and a complete head never ends past the bytes read.
pub fn request_head(data: &[u8]) {
    let limits = HeadLimits {
        max_header_bytes: 2048,
        max_headers: 16,
        max_target_bytes: 256,
    };
    let whole = HeadReader::default().advance(data, &limits);
    let mut reader = HeadReader::default();
    let mut trickled = Progress::NeedMore;
    for end in 1..=data.len() {
        trickled = reader.advance(&data[..end], &limits);
        if trickled != Progress::NeedMore {
            break;
        }
    }
    match (&whole, &trickled) {
        (Progress::Complete(a), Progress::Complete(b)) => {
            assert_eq!(a, b);
            assert!(a.head_len <= data.len());
            let _ = request_head::check_buffered_chunks(&data[a.head_len..]);
        }
        // Whole, a later line may already be refused where the trickle completed first; but
        // both must agree on whether the head is acceptable as far as the trickle read.
        (Progress::Refused(a), Progress::Refused(b)) => assert_eq!(a, b),
        (Progress::NeedMore, Progress::NeedMore) => {}
        (whole, trickled) => panic!("whole: {whole:?}, trickled: {trickled:?}"),
    }
    let _ = request_head::request_line(data);
}

/// The HPACK decoder: any bytes, as a run of header blocks sharing one dynamic table (the first
/// byte picks where the blocks part). What decodes, encoded again by statuscope's encoder,
/// decodes to the same fields.
pub fn hpack(data: &[u8]) {
    let Some((&selector, blocks)) = data.split_first() else {
        return;
    };
    let mut decoder = Decoder::default();
    for block in blocks.chunks(1 + usize::from(selector)) {
        let mut fields = Vec::new();
        let decoded = decoder.decode(block, |name, value| {
            fields.push((name.to_vec(), value.to_vec()))
        });
        if decoded.is_err() {
            // A compression error ends the connection, and the table with it.
            return;
        }
        let mut encoded = Vec::new();
        for (name, value) in &fields {
            encode_field(&mut encoded, name, value);
        }
        let mut again = Vec::new();
        Decoder::default()
            .decode(&encoded, |name, value| {
                again.push((name.to_vec(), value.to_vec()))
            })
            .expect("statuscope's own encoding decodes");
        assert_eq!(fields, again);
    }
}

/// A server connection fed a client's preface and then any bytes, in reads of any size (the
/// first byte picks them), answering each request it accepts. It never panics, never asks for
/// more bytes while a whole frame is buffered, and writes at most a bounded multiple of what it
/// read (no amplification: every answer to the peer's frames is as small as they are).
pub fn h2_server(data: &[u8]) {
    let Some((&selector, frames)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_concurrent_streams: 8,
        initial_window: 65_535,
        connection_window: 65_535,
        max_header_list: 4096,
    };
    let mut conn: Conn<()> = Conn::new(Role::Server, limits);
    let opening = conn.wbuf.len();
    let mut input = PREFACE.to_vec();
    let mut read = 0;
    let now = Instant::now();
    for piece in frames.chunks(1 + usize::from(selector) * 7) {
        input.extend_from_slice(piece);
        loop {
            let rest = &input[read..];
            let (taken, event) = match conn.receive(rest, now) {
                Err(_) => return,
                Ok(read) => read,
            };
            if taken == 0 {
                if let Some(head) = FrameHead::parse(rest).filter(|_| read >= PREFACE.len()) {
                    assert!(
                        rest.len() < HEADER_LEN + head.len,
                        "a whole frame left unread"
                    );
                }
                break;
            }
            read += taken;
            let key = event.as_ref().and_then(Event::key);
            if let Some(Event::Headers {
                key,
                kind: HeadKind::Request,
                ..
            }) = event
            {
                answer(&mut conn, key);
            }
            // A relay lets go of a stream once both halves ended.
            if let Some(key) =
                key.filter(|&key| conn.streams.get(key).is_some_and(|s| s.is_closed()))
            {
                conn.remove(key);
            }
        }
    }
    let own_frames = 2 * 1024 + 64 * conn.streams.len();
    assert!(
        conn.wbuf.len() <= opening + own_frames + 2 * read,
        "wrote {} bytes for {read} read",
        conn.wbuf.len()
    );
}

/// Answers a request with a status and a short body, as a relay would.
fn answer(conn: &mut Conn<()>, key: StreamKey) {
    conn.send_headers(key, false, |out| encode_field(out, b":status", b"200"));
    conn.send_data(key, b"ok", true);
}
