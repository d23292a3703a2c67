//! A strict reader of HTTP/1 request heads, run before pingora parses anything.
//!
//! pingora's parser is lenient where a proxy must not be (bare LF line endings, a request with
//! both `Content-Length` and `Transfer-Encoding`, duplicate `Content-Length`) and answers what
//! it does refuse with an untallied 400. This reader refuses every ambiguous or malformed head
//! with the status RFC 9110/9112 names, so a request either reaches the upstream exactly as
//! every HTTP implementation would read it, or not at all.
//!
//! It is incremental: each line is checked once, when its line feed arrives, so a client that
//! sends a byte at a time costs linear work.

use std::time::Instant;

use memchr::memchr;

mod syntax;
mod target;

use super::chunked::ChunkedReader;
use super::error_response::ProxyError;
use crate::classify::route::is_probe_user_agent;
pub use crate::config::{HeadLimits, REQUEST_LINE_SLACK};
pub use syntax::{all_field_value, is_tchar, split_absolute};
use syntax::{
    all_in, check_version, is_absolute_http_uri, is_valid_host, split_request_line, trim_ows, TCHAR,
};
pub use target::{checked_target_path, request_line, target_path, RequestLine};

/// Why a request was refused: the status and body to send, and a precise reason for the log
/// and the `details` of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The response sent.
    pub error: ProxyError,
    /// What exactly was wrong, in a few words.
    pub reason: &'static str,
}

impl Refusal {
    /// RFC 9110 §15.5.9: 408 for a request head that did not arrive in time.
    pub const TIMED_OUT: Refusal = Refusal {
        error: ProxyError::REQUEST_TIMEOUT,
        reason: "the request head did not arrive within the header timeout",
    };
}

/// How waiting for a request head on a client connection ended.
#[derive(Debug)]
pub enum HeadRead {
    /// A complete, acceptable head; its first bytes arrived then.
    Accepted(Head, Instant),
    /// The head, whose first bytes arrived then, is refused.
    Refused(Refusal, Instant),
    /// The connection opened with the HTTP/2 preface.
    H2c,
    /// The client closed, went idle past its timeout, or shutdown began.
    Closed,
}

/// What the reader knows so far about a head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The head is not complete yet; read more.
    NeedMore,
    /// The head is complete and acceptable; it ends at `head_len`.
    Complete(Head),
    /// The head is refused.
    Refused(Refusal),
}

/// A span of bytes of the buffer a head was read from, as offsets from its start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    /// The first byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// The bytes of `buf` this span covers.
    pub fn of<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start..self.end]
    }

    /// The span of `part`, a subslice of `buf`.
    fn within(buf: &[u8], part: &[u8]) -> Span {
        let start = part.as_ptr() as usize - buf.as_ptr() as usize;
        Span {
            start,
            end: start + part.len(),
        }
    }
}

/// What the `Connection` field asked for (RFC 9110 §7.6.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionOptions {
    /// `close`: no further request on this connection.
    pub close: bool,
    /// `keep-alive`: an HTTP/1.0 client asks to keep the connection.
    pub keep_alive: bool,
    /// It names other fields as hop-by-hop, which forwarding must drop too.
    pub names_fields: bool,
}

/// Facts about an accepted head: where it ends, how its body is framed, and what the fast
/// engine needs to forward it and the rules need to judge its answer — gathered while each
/// line is checked, so nothing reads the head twice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    /// Bytes from the start of the buffer to the end of the blank line that ends the head.
    pub head_len: usize,
    /// The body is chunked, so the bytes after the head are chunk framing.
    pub chunked: bool,
    /// The `Content-Length`, when the request has one.
    pub content_length: Option<u64>,
    /// The method in the request line.
    pub method: Span,
    /// The request target in the request line.
    pub target: Span,
    /// The request line says `HTTP/1.0`.
    pub http10: bool,
    /// The head cannot go on as read: its version is not `HTTP/1.1` (an intermediary sends
    /// its own, RFC 9110 §2.5), its target is in absolute form (origin form to an origin
    /// server, RFC 9112 §3.2.1), or its `Content-Length` has leading zeros.
    pub normalise: bool,
    /// A `Host` field (an HTTP/1.0 request may have none).
    pub has_host: bool,
    /// The `Connection` options.
    pub connection: ConnectionOptions,
    /// An `Upgrade` field: the client asks to switch protocols.
    pub upgrade: bool,
    /// `Expect: 100-continue`.
    pub expects_continue: bool,
    /// An `Authorization` field.
    pub has_authorization: bool,
    /// A `Cookie` field.
    pub has_cookie: bool,
    /// The first `Accept` value, without surrounding whitespace.
    pub accept: Option<Span>,
    /// The `User-Agent` is the kubelet's: a liveness, readiness or startup probe.
    pub probe: bool,
    /// A field that is only for this hop: `Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`,
    /// `Upgrade`, `HTTP2-Settings` or `Proxy-Authorization`. Forwarding drops these (and the
    /// fields `Connection` names).
    pub hop_by_hop: bool,
}

/// The fields forwarding drops however they are listed (RFC 9110 §7.6.1; `Proxy-Authorization`
/// is meant for this proxy, RFC 9110 §11.7.2, and pingora drops it too).
pub const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "upgrade",
    "http2-settings",
    "proxy-authorization",
];

/// Whether `name` is one of [`HOP_BY_HOP`] (compared without case).
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    matches!(name.len(), 2 | 7 | 10 | 14 | 16 | 19)
        && HOP_BY_HOP
            .iter()
            .any(|known| name.eq_ignore_ascii_case(known.as_bytes()))
}

/// At most this many options in `Connection` fields (pingora's own bound is 10): each names a
/// field forwarding must look for.
const MAX_CONNECTION_OPTIONS: usize = 16;

/// An incremental request head reader. Feed it the growing buffer with [`HeadReader::advance`].
#[derive(Debug, Default)]
pub struct HeadReader {
    /// Where the next unchecked line starts.
    line_start: usize,
    /// Blank lines seen before the request line (RFC 9112 §2.2 allows a few).
    leading_blank_lines: usize,
    request_line_seen: bool,
    headers: usize,
    hosts: usize,
    content_lengths: usize,
    transfer_encoding: TransferEncoding,
    /// A coding other than `chunked` was named (statuscope implements only `chunked`).
    other_coding: bool,
    connection_options: usize,
    /// The authority of an absolute-form target, which `Host` must repeat.
    authority: Option<Span>,
    /// The facts gathered so far; complete once the blank line arrives.
    facts: Head,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum TransferEncoding {
    #[default]
    Absent,
    /// Present, with `chunked` as the last coding seen so far.
    EndsChunked,
    /// Present, with a last coding other than `chunked`.
    EndsOther,
}

const LEADING_BLANK_LINES: usize = 4;

/// A request line this long cannot hold an acceptable target, however it continues.
fn request_line_too_long(len: usize, limits: &HeadLimits) -> bool {
    len > limits.max_target_bytes + REQUEST_LINE_SLACK
}

pub(super) fn refuse(error: ProxyError, reason: &'static str) -> Progress {
    Progress::Refused(Refusal { error, reason })
}

pub(super) fn bad(reason: &'static str) -> Progress {
    refuse(ProxyError::BAD_REQUEST, reason)
}

impl HeadReader {
    /// Checks the lines of `buf` that completed since the last call. `buf` must be the same
    /// buffer, only ever appended to.
    pub fn advance(&mut self, buf: &[u8], limits: &HeadLimits) -> Progress {
        loop {
            let Some(offset) = memchr(b'\n', &buf[self.line_start..]) else {
                return self.need_more(buf.len(), limits);
            };
            let end = self.line_start + offset;
            let next = end + 1;
            let raw = &buf[self.line_start..end];
            // The size limits first, in `need_more`'s order, so the verdict does not depend on
            // whether the line's end arrived in the same read.
            if !self.request_line_seen && request_line_too_long(raw.len(), limits) {
                return refuse(ProxyError::URI_TOO_LONG, "the request target is too long");
            }
            if next > limits.max_header_bytes {
                return refuse(
                    ProxyError::HEADERS_TOO_LARGE,
                    "the request head is too large",
                );
            }
            let Some(line) = raw.strip_suffix(b"\r") else {
                return bad("a line ends in a bare LF");
            };
            self.line_start = next;
            let verdict = if !self.request_line_seen {
                if line.is_empty() {
                    self.leading_blank_lines += 1;
                    if self.leading_blank_lines > LEADING_BLANK_LINES {
                        return bad("blank lines instead of a request line");
                    }
                    continue;
                }
                self.request_line(buf, line, limits)
            } else if line.is_empty() {
                return self.finish(next);
            } else {
                self.field_line(buf, line, limits)
            };
            if let Some(refusal) = verdict {
                return refusal;
            }
        }
    }

    /// The limits `advance` applies to a complete line, applied to one still arriving, in the
    /// same order, so the verdict does not depend on how the bytes were split into reads.
    fn need_more(&self, buffered: usize, limits: &HeadLimits) -> Progress {
        let partial = buffered - self.line_start;
        if !self.request_line_seen && request_line_too_long(partial, limits) {
            // The request line alone has outgrown any acceptable target.
            return refuse(ProxyError::URI_TOO_LONG, "the request target is too long");
        }
        if buffered >= limits.max_header_bytes {
            return refuse(
                ProxyError::HEADERS_TOO_LARGE,
                "the request head is too large",
            );
        }
        Progress::NeedMore
    }

    fn request_line(&mut self, buf: &[u8], line: &[u8], limits: &HeadLimits) -> Option<Progress> {
        self.request_line_seen = true;
        let [method, target, version] = match split_request_line(line) {
            Ok(parts) => parts,
            Err(reason) => return Some(bad(reason)),
        };
        if target.len() > limits.max_target_bytes {
            return Some(refuse(
                ProxyError::URI_TOO_LONG,
                "the request target is too long",
            ));
        }
        if let Err(refusal) = check_version(version) {
            return Some(refusal);
        }
        self.facts.http10 = version == b"HTTP/1.0";
        self.facts.normalise = version != b"HTTP/1.1";
        self.facts.method = Span::within(buf, method);
        self.facts.target = Span::within(buf, target);
        if method == b"CONNECT" {
            return Some(refuse(
                ProxyError::METHOD_NOT_ALLOWED,
                "CONNECT is not proxied",
            ));
        }
        let absolute = match target[0] {
            b'/' => false,
            b'*' if target.len() == 1 && method == b"OPTIONS" => false,
            _ if is_absolute_http_uri(target) => true,
            _ => {
                return Some(bad(
                    "the request target is not in origin, absolute or asterisk form",
                ))
            }
        };
        if let Some((authority, _)) = split_absolute(target).filter(|_| absolute) {
            // RFC 9110 §4.2.4: userinfo in an http(s) URI is an error.
            if memchr(b'@', authority).is_some() {
                return Some(bad("userinfo in the request target"));
            }
            self.facts.normalise = true;
            self.authority = Some(Span::within(buf, authority));
        }
        None
    }

    fn field_line(&mut self, buf: &[u8], line: &[u8], limits: &HeadLimits) -> Option<Progress> {
        if matches!(line[0], b' ' | b'\t') {
            return Some(bad("obsolete line folding"));
        }
        self.headers += 1;
        if self.headers > limits.max_headers {
            return Some(refuse(
                ProxyError::HEADERS_TOO_LARGE,
                "too many header fields",
            ));
        }
        let Some(colon) = memchr(b':', line) else {
            return Some(bad("a header line without a colon"));
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !all_in(name, TCHAR) {
            return Some(bad("a header name with a character outside the token set"));
        }
        if !all_field_value(value) {
            return Some(bad("a control character in a header value"));
        }
        let value = trim_ows(value);
        // Dispatch on length first: most fields are none of these.
        let is = |known: &[u8]| name.len() == known.len() && name.eq_ignore_ascii_case(known);
        match name.len() {
            4 if is(b"host") => return self.host(buf, value).err(),
            14 if is(b"content-length") => return self.content_length(value).err(),
            17 if is(b"transfer-encoding") => return self.transfer_codings(value).err(),
            10 if is(b"connection") => {
                self.facts.hop_by_hop = true;
                return self.connection(value).err();
            }
            6 if is(b"expect") => {
                // RFC 9110 §10.1.1: 100-continue is the only expectation defined.
                if !value.eq_ignore_ascii_case(b"100-continue") {
                    return Some(refuse(
                        ProxyError::EXPECTATION_FAILED,
                        "an expectation other than 100-continue",
                    ));
                }
                self.facts.expects_continue = true;
            }
            6 if is(b"accept") && self.facts.accept.is_none() => {
                self.facts.accept = Some(Span::within(buf, value));
            }
            6 if is(b"cookie") => self.facts.has_cookie = true,
            10 if is(b"user-agent") => self.facts.probe = is_probe_user_agent(value),
            13 if is(b"authorization") => self.facts.has_authorization = true,
            7 if is(b"upgrade") => {
                self.facts.upgrade = true;
                self.facts.hop_by_hop = true;
            }
            _ if is_hop_by_hop(name) => self.facts.hop_by_hop = true,
            _ => {}
        }
        None
    }

    /// One `Host`: valid, alone, and naming the target's authority when it has one.
    #[inline]
    fn host(&mut self, buf: &[u8], value: &[u8]) -> Result<(), Progress> {
        self.hosts += 1;
        if self.hosts > 1 {
            return Err(bad("more than one Host header"));
        }
        if !is_valid_host(value) {
            return Err(bad("an invalid Host header"));
        }
        // RFC 9112 §3.2.2 lets a server ignore Host beside an absolute target; the upstream
        // gets origin form and this Host, so they must name the same authority.
        let authority = self.authority.map(|span| span.of(buf));
        if authority.is_some_and(|a| !a.eq_ignore_ascii_case(value)) {
            return Err(bad("the Host header differs from the target's authority"));
        }
        self.facts.has_host = true;
        Ok(())
    }

    /// One `Content-Length` of `1*DIGIT`, alone.
    #[inline]
    fn content_length(&mut self, value: &[u8]) -> Result<(), Progress> {
        self.content_lengths += 1;
        if self.content_lengths > 1 {
            return Err(bad("more than one Content-Length header"));
        }
        if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
            return Err(bad("an invalid Content-Length"));
        }
        // Valid, but sent on as the number alone.
        self.facts.normalise |= value.len() > 1 && value[0] == b'0';
        let n = value
            .iter()
            .fold(0, |n, &digit| n * 10 + u64::from(digit - b'0'));
        self.facts.content_length = Some(n);
        Ok(())
    }

    /// RFC 9110 §7.6.1: `Connection` lists options, each a token.
    fn connection(&mut self, value: &[u8]) -> Result<(), Progress> {
        for option in value.split(|&b| b == b',').map(trim_ows) {
            if option.is_empty() {
                continue;
            }
            self.connection_options += 1;
            if self.connection_options > MAX_CONNECTION_OPTIONS {
                return Err(bad("too many Connection options"));
            }
            if !all_in(option, TCHAR) {
                return Err(bad("an invalid Connection option"));
            }
            let options = &mut self.facts.connection;
            if option.eq_ignore_ascii_case(b"close") {
                options.close = true;
            } else if option.eq_ignore_ascii_case(b"keep-alive") {
                options.keep_alive = true;
            } else if !option.eq_ignore_ascii_case(b"upgrade") {
                options.names_fields = true;
            }
        }
        Ok(())
    }

    /// RFC 9112 §6.1: codings apply in order; `chunked` must be last and only once.
    fn transfer_codings(&mut self, value: &[u8]) -> Result<(), Progress> {
        for coding in value.split(|&b| b == b',').map(trim_ows) {
            if coding.is_empty() {
                return Err(bad("an empty transfer coding"));
            }
            if self.transfer_encoding == TransferEncoding::EndsChunked {
                return Err(bad("a transfer coding after chunked"));
            }
            self.transfer_encoding = if coding.eq_ignore_ascii_case(b"chunked") {
                TransferEncoding::EndsChunked
            } else if all_in(coding, TCHAR) {
                self.other_coding = true;
                TransferEncoding::EndsOther
            } else {
                return Err(bad("an invalid transfer coding"));
            };
        }
        Ok(())
    }

    fn finish(&mut self, head_len: usize) -> Progress {
        let http10 = self.facts.http10;
        if !http10 && self.hosts == 0 {
            return bad("an HTTP/1.1 request without a Host header");
        }
        match self.transfer_encoding {
            TransferEncoding::Absent => {}
            // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means the framing is faulty.
            _ if http10 => return bad("Transfer-Encoding in an HTTP/1.0 request"),
            // RFC 9112 §6.3: ought to be handled as an error; the classic smuggling vector.
            _ if self.content_lengths > 0 => {
                return bad("both Content-Length and Transfer-Encoding")
            }
            // RFC 9112 §6.3: the body length cannot be determined; 400.
            TransferEncoding::EndsOther => return bad("chunked is not the final transfer coding"),
            // RFC 9112 §6.1: a coding the server does not understand is a 501.
            TransferEncoding::EndsChunked if self.other_coding => {
                return refuse(
                    ProxyError::NOT_IMPLEMENTED,
                    "a transfer coding other than chunked",
                )
            }
            TransferEncoding::EndsChunked => {}
        }
        let mut head = std::mem::take(&mut self.facts);
        head.head_len = head_len;
        head.chunked = self.transfer_encoding == TransferEncoding::EndsChunked;
        Progress::Complete(head)
    }
}

/// Checks the chunk framing of the body bytes that arrived with the head, so a malformed
/// chunked body is refused before anything is forwarded. Bytes still to come are checked as
/// they stream (by the fast engine's reader, or pingora's).
pub fn check_buffered_chunks(body: &[u8]) -> Result<(), Refusal> {
    ChunkedReader::default()
        .feed(body, |_| {})
        .map(|_| ())
        .map_err(|reason| Refusal {
            error: ProxyError::BAD_REQUEST,
            reason,
        })
}

#[cfg(test)]
mod tests;
