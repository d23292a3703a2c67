//! The request head as the upstream gets it: the bytes the client sent, but for the fields
//! that only concern the hop between the client and statuscope.
//!
//! Most heads have none of those: they are forwarded straight from the buffer they were read
//! into, not copied. The others are rewritten into a scratch buffer line by line.

use crate::proxy::request_head::{is_hop_by_hop, split_absolute, Head};

/// At most this many fields a `Connection` field may name (the head reader allows 16 options).
const MAX_NAMED: usize = 16;

/// Fields a `Connection` option can never take away: the upstream must see the same `Host`
/// and the same framing statuscope read the request with.
const NEVER_DROPPED: [&[u8]; 3] = [b"host", b"content-length", b"transfer-encoding"];

/// The request head for the upstream: the bytes of `buf` (the head as read, from its request
/// line) when nothing needs editing, or `None` after writing the edited head into `out`.
///
/// Like every intermediary, statuscope speaks its own version (RFC 9110 §2.5): any HTTP/1.x
/// request goes on as HTTP/1.1 (an HTTP/1.0 one too, so the upstream connection can be
/// reused; the engine turns a chunked answer back into one an HTTP/1.0 client can read). An
/// absolute-form target goes on in origin form with its authority as `Host` (checked equal
/// by the head reader, added when an HTTP/1.0 request had none), and a `Content-Length` as
/// the number alone.
pub fn upstream_head<'b>(buf: &'b [u8], head: &Head, out: &mut Vec<u8>) -> Option<&'b [u8]> {
    let from = head.method.start;
    let lines = &buf[from..head.head_len];
    if !head.hop_by_hop && !head.normalise {
        return Some(lines);
    }
    let mut named = [&[][..]; MAX_NAMED];
    let mut count = 0;
    if head.connection.names_fields {
        for value in field_lines(lines)
            .filter_map(|(name, value)| name.eq_ignore_ascii_case(b"connection").then_some(value))
        {
            for option in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if count < MAX_NAMED
                    && !NEVER_DROPPED.iter().any(|n| option.eq_ignore_ascii_case(n))
                {
                    named[count] = option;
                    count += 1;
                }
            }
        }
    }
    let named = &named[..count];
    out.clear();
    write_request_line(buf, head, out);
    let request_line_end = memchr::memmem::find(lines, b"\r\n").map_or(lines.len(), |at| at + 2);
    let mut rest = &lines[request_line_end..];
    while let Some(end) = memchr::memmem::find(rest, b"\r\n") {
        let line = &rest[..end + 2];
        rest = &rest[end + 2..];
        if end == 0 {
            break;
        }
        let name = &line[..memchr::memchr(b':', line).unwrap_or(0)];
        if is_hop_by_hop(name) || named.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        match head.content_length {
            Some(length) if name.eq_ignore_ascii_case(b"content-length") => {
                out.extend_from_slice(b"Content-Length: ");
                out.extend_from_slice(itoa::Buffer::new().format(length).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            _ => out.extend_from_slice(line),
        }
    }
    out.extend_from_slice(b"\r\n");
    None
}

/// `method SP origin-form SP HTTP/1.1`, and the `Host` an absolute-form target implies when
/// the request had none.
fn write_request_line(buf: &[u8], head: &Head, out: &mut Vec<u8>) {
    let target = head.target.of(buf);
    out.extend_from_slice(&buf[head.method.start..head.target.start]);
    let authority = match split_absolute(target) {
        Some((authority, rest)) => {
            if rest.first() != Some(&b'/') {
                out.push(b'/');
            }
            out.extend_from_slice(rest);
            Some(authority)
        }
        None => {
            out.extend_from_slice(target);
            None
        }
    };
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(authority) = authority.filter(|_| !head.has_host) {
        out.extend_from_slice(b"Host: ");
        out.extend_from_slice(authority);
        out.extend_from_slice(b"\r\n");
    }
}

/// The field lines of a head (request line first), as name and trimmed value.
fn field_lines(lines: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    lines.split(|&b| b == b'\n').skip(1).filter_map(|line| {
        let colon = memchr::memchr(b':', line)?;
        Some((&line[..colon], line[colon + 1..].trim_ascii()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::request_head::{HeadLimits, HeadReader, Progress};

    fn forwarded(request: &[u8]) -> String {
        let limits = HeadLimits {
            max_header_bytes: 4096,
            max_headers: 32,
            max_target_bytes: 1024,
        };
        let Progress::Complete(head) = HeadReader::default().advance(request, &limits) else {
            panic!("refused");
        };
        let mut out = Vec::new();
        let bytes = match upstream_head(request, &head, &mut out) {
            Some(bytes) => bytes.to_vec(),
            None => out,
        };
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_head_without_hop_by_hop_fields_goes_as_read() {
        let request = b"\r\nGET /a?b HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\nbody";
        assert_eq!(
            forwarded(request),
            "GET /a?b HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"
        );
    }

    #[test]
    fn hop_by_hop_and_named_fields_are_dropped_and_framing_kept() {
        let request =
            b"POST /a HTTP/1.1\r\nHost: x\r\nConnection: close, X-Trace, Content-Length\r\n\
            X-Trace: 1\r\nTE: trailers\r\nKeep-Alive: 5\r\nProxy-Authorization: Basic eA==\r\n\
            Content-Length: 2\r\nX-Kept: yes\r\n\r\nhi";
        assert_eq!(
            forwarded(request),
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nX-Kept: yes\r\n\r\n"
        );
    }

    #[test]
    fn an_http10_request_goes_on_in_statuscope_s_version() {
        assert_eq!(
            forwarded(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\nX: y\r\n\r\n"),
            "GET /a HTTP/1.1\r\nX: y\r\n\r\n"
        );
    }

    #[test]
    fn any_http1_minor_version_goes_on_as_http11() {
        assert_eq!(
            forwarded(b"GET /a HTTP/1.2\r\nHost: x\r\n\r\n"),
            "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        );
    }

    #[test]
    fn an_absolute_target_goes_on_in_origin_form() {
        assert_eq!(
            forwarded(b"GET http://x/a?b HTTP/1.1\r\nHost: x\r\n\r\n"),
            "GET /a?b HTTP/1.1\r\nHost: x\r\n\r\n"
        );
        assert_eq!(
            forwarded(b"GET HTTP://x:8080?q HTTP/1.1\r\nHost: X:8080\r\n\r\n"),
            "GET /?q HTTP/1.1\r\nHost: X:8080\r\n\r\n"
        );
        // HTTP/1.0 needs no Host: the target's authority becomes it.
        assert_eq!(
            forwarded(b"GET http://x/ HTTP/1.0\r\n\r\n"),
            "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        );
    }

    #[test]
    fn a_content_length_with_leading_zeros_goes_on_as_the_number() {
        assert_eq!(
            forwarded(b"POST /a HTTP/1.1\r\nHost: x\r\ncontent-length: 007\r\n\r\n"),
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n"
        );
    }
}
