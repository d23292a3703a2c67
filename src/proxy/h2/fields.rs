//! A decoded HTTP/2 header block and the rules of RFC 9113 §8.2 and §8.3 it is checked
//! against as it is decoded: lowercase token names, values without NUL, CR, LF or surrounding
//! whitespace, pseudo-header fields first and only the ones the message kind allows, no
//! connection-specific fields, `te` only `trailers`, one `content-length`. A block that breaks
//! them is *malformed*: statuscope never forwards it.
//!
//! Fields are copied into one reused buffer and located by [`FieldSpan`]s, which is what the
//! rules read (`Headers::InHead`): a block costs no allocation once the buffers have grown.

use super::hpack::encode_field;
use crate::proxy::request_head::{all_field_value, is_tchar};
use crate::rules::{FieldSpan, Headers};

/// Where a pseudo-header field's value is in the block's bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ValueSpan {
    start: u32,
    len: u32,
}

/// The pseudo-header fields of a block (RFC 9113 §8.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pseudo {
    /// `:method`
    pub method: Option<ValueSpan>,
    /// `:scheme`
    pub scheme: Option<ValueSpan>,
    /// `:authority`
    pub authority: Option<ValueSpan>,
    /// `:path`
    pub path: Option<ValueSpan>,
    /// `:status`
    pub status: Option<ValueSpan>,
}

/// What a header block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// A request's head (a server reads it).
    Request,
    /// A response's head, interim or final (a client reads it).
    Response,
    /// Trailers, ending either message.
    Trailers,
}

/// One decoded header block.
#[derive(Debug, Default)]
pub struct FieldBlock {
    bytes: Vec<u8>,
    fields: Vec<FieldSpan>,
    /// The pseudo-header fields.
    pub pseudo: Pseudo,
    /// The block's size as RFC 9113 §6.5.2 counts it (name, value and 32 per field).
    pub list_size: usize,
    /// The block is larger than the limit it was decoded under; fields past it were dropped.
    pub too_large: bool,
    /// Why the block is malformed, if it is.
    pub malformed: Option<&'static str>,
    /// The `content-length` value, when it has one.
    pub content_length: Option<u64>,
    regular_seen: bool,
    limit: usize,
    /// Where the first field of each [`known_slot`] name is in `fields`, plus one (0: absent).
    known: [u16; KNOWN],
}

/// The bytes of an HTTP/2 field name after any leading colon: token characters without
/// uppercase (RFC 9113 §8.2.1), looked up once per byte.
static NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        table[b] = is_tchar(byte) && !byte.is_ascii_uppercase();
        b += 1;
    }
    table
};

/// Whether `name` is a valid HTTP/2 field name after any leading colon.
fn is_lowercase_token(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| NAME_BYTES[usize::from(b)])
}

/// Whether `value` is a valid field value for HTTP/2: no leading or trailing space or tab, and
/// none of NUL, CR or LF (RFC 9113 §8.2.1) — nor any other control character, which HTTP
/// allows in no field (RFC 9110 §5.5) and which an HTTP/1 upstream could read apart.
fn is_valid_value(value: &[u8]) -> bool {
    !matches!(value.first(), Some(b' ' | b'\t'))
        && !matches!(value.last(), Some(b' ' | b'\t'))
        && all_field_value(value)
}

/// The fields statuscope itself reads from a block, located as it is decoded: [`FieldBlock::get`]
/// finds them without a scan.
fn known_slot(name: &[u8]) -> Option<usize> {
    let slot = match name {
        b"accept" => 0,
        b"authorization" => 1,
        b"content-encoding" => 2,
        b"content-type" => 3,
        b"cookie" => 4,
        b"expect" => 5,
        b"grpc-timeout" => 6,
        b"host" => 7,
        b"te" => 8,
        b"user-agent" => 9,
        b"grpc-status" => 10,
        b"grpc-message" => 11,
        _ => return None,
    };
    Some(slot)
}

/// How many names [`known_slot`] knows.
const KNOWN: usize = 12;

/// What is wrong with a regular field (not a pseudo-header field) for HTTP/2, if anything: a
/// name that is not a lowercase token, a field that exists only for one HTTP/1 connection, `te`
/// other than `trailers` (RFC 9113 §8.2). Values are checked apart.
pub fn field_problem(name: &[u8], value: &[u8]) -> Option<&'static str> {
    if !is_lowercase_token(name) {
        return Some("a field name that is not a lowercase token");
    }
    match name {
        b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding" | b"upgrade" => {
            Some("a connection-specific field")
        }
        b"te" if !value.eq_ignore_ascii_case(b"trailers") => Some("te other than trailers"),
        _ => None,
    }
}

impl ValueSpan {
    /// The value in `block`.
    pub fn of<'a>(&self, block: &'a FieldBlock) -> &'a [u8] {
        &block.bytes[self.start as usize..(self.start + self.len) as usize]
    }
}

impl FieldBlock {
    /// Empties the block for a new one of at most `limit` bytes (as `list_size` counts them).
    pub fn reset(&mut self, limit: usize) {
        self.bytes.clear();
        self.fields.clear();
        self.pseudo = Pseudo::default();
        self.list_size = 0;
        self.too_large = false;
        self.malformed = None;
        self.content_length = None;
        self.regular_seen = false;
        self.limit = limit;
        self.known = [0; KNOWN];
    }

    fn malformed(&mut self, reason: &'static str) {
        self.malformed.get_or_insert(reason);
    }

    /// Adds one decoded field, checking it. A block past its limit keeps counting its size but
    /// stores nothing more, so a block that expands (an HPACK bomb) costs no memory.
    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        self.list_size += name.len() + value.len() + super::hpack::ENTRY_OVERHEAD;
        if self.list_size > self.limit {
            self.too_large = true;
            return;
        }
        if !is_valid_value(value) {
            return self.malformed("a field value with NUL, CR, LF or surrounding whitespace");
        }
        let start = self.bytes.len() as u32;
        if let Some(pseudo) = name.strip_prefix(b":") {
            return self.push_pseudo(pseudo, value, start);
        }
        self.regular_seen = true;
        if let Some(problem) = field_problem(name, value) {
            return self.malformed(problem);
        }
        if name == b"content-length" {
            let parsed =
                (!value.is_empty() && value.len() <= 18 && value.iter().all(u8::is_ascii_digit))
                    .then(|| {
                        value
                            .iter()
                            .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'))
                    });
            match (parsed, self.content_length) {
                (None, _) => return self.malformed("an invalid content-length"),
                (Some(n), Some(seen)) if n != seen => {
                    return self.malformed("conflicting content-length values")
                }
                (Some(n), _) => self.content_length = Some(n),
            }
        }
        if let Some(slot) = known_slot(name) {
            if self.known[slot] == 0 {
                self.known[slot] = (self.fields.len() + 1) as u16;
            }
        }
        self.bytes.extend_from_slice(name);
        self.bytes.extend_from_slice(value);
        self.fields.push(FieldSpan {
            name_start: start,
            name_len: name.len() as u32,
            value_start: start + name.len() as u32,
            value_len: value.len() as u32,
        });
    }

    fn push_pseudo(&mut self, pseudo: &[u8], value: &[u8], start: u32) {
        if self.regular_seen {
            return self.malformed("a pseudo-header field after a regular one");
        }
        let slot = match pseudo {
            b"method" => &mut self.pseudo.method,
            b"scheme" => &mut self.pseudo.scheme,
            b"authority" => &mut self.pseudo.authority,
            b"path" => &mut self.pseudo.path,
            b"status" => &mut self.pseudo.status,
            _ => return self.malformed("an unknown pseudo-header field"),
        };
        if slot.is_some() {
            return self.malformed("a repeated pseudo-header field");
        }
        *slot = Some(ValueSpan {
            start,
            len: value.len() as u32,
        });
        self.bytes.extend_from_slice(value);
    }

    /// Checks the pseudo-header fields `kind` needs and allows; the first problem found is
    /// kept in `malformed`.
    pub fn check(&mut self, kind: BlockKind) {
        let p = self.pseudo;
        let problem = match kind {
            BlockKind::Trailers if p != Pseudo::default() => {
                Some("pseudo-header fields in trailers")
            }
            BlockKind::Trailers => None,
            BlockKind::Response => match p.status {
                _ if p.method.is_some()
                    || p.scheme.is_some()
                    || p.authority.is_some()
                    || p.path.is_some() =>
                {
                    Some("request pseudo-header fields in a response")
                }
                Some(status)
                    if status.len == 3 && status.of(self).iter().all(u8::is_ascii_digit) =>
                {
                    None
                }
                _ => Some("a missing or invalid :status"),
            },
            BlockKind::Request => self.request_problem(),
        };
        if let Some(problem) = problem {
            self.malformed(problem);
        }
    }

    fn request_problem(&self) -> Option<&'static str> {
        let p = self.pseudo;
        if p.status.is_some() {
            return Some(":status in a request");
        }
        let method = p.method.map(|m| m.of(self))?;
        if method == b"CONNECT" {
            // Answered, never forwarded: statuscope is not a tunnel.
            return None;
        }
        if method.is_empty() || !method.iter().all(|&b| b.is_ascii_graphic()) {
            return Some("an invalid :method");
        }
        let (Some(_), Some(path)) = (p.scheme, p.path) else {
            return Some("a request without :scheme or :path");
        };
        let path = path.of(self);
        let path_ok = path.first() == Some(&b'/') || (path == b"*" && method == b"OPTIONS");
        if !path_ok || !path.iter().all(|&b| b.is_ascii_graphic()) {
            return Some("an invalid :path");
        }
        // RFC 9113 §8.3.1: Host, when present, names the same authority.
        match (p.authority, self.get("host")) {
            (Some(authority), Some(host)) if authority.of(self) != host => {
                Some(":authority and host differ")
            }
            _ => None,
        }
    }

    /// The first value of the regular field `name` (lowercase).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        let Some(slot) = known_slot(name.as_bytes()) else {
            return self.headers().get(name);
        };
        let at = usize::from(self.known[slot]).checked_sub(1)?;
        Some(self.fields[at].of(&self.bytes).value)
    }

    /// The regular fields, as the rules read them.
    pub fn headers(&self) -> Headers<'_> {
        Headers::InHead {
            head: &self.bytes,
            spans: &self.fields,
        }
    }

    /// Writes the regular fields as HTTP/1 field lines (`name: value` CRLF), leaving out those
    /// whose name `skip` picks.
    pub fn write_lines(&self, skip: impl Fn(&[u8]) -> bool, out: &mut Vec<u8>) {
        for field in self.headers().iter().filter(|field| !skip(field.name)) {
            out.extend_from_slice(field.name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(field.value);
            out.extend_from_slice(b"\r\n");
        }
    }

    /// A pseudo-header field's value.
    pub fn pseudo(&self, span: Option<ValueSpan>) -> Option<&[u8]> {
        span.map(|s| s.of(self))
    }

    /// Encodes the block for another connection: its pseudo-header fields in the order RFC
    /// 9113 §8.3 lists them, then its regular fields as they came.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let p = self.pseudo;
        for (name, span) in [
            (&b":status"[..], p.status),
            (b":method", p.method),
            (b":scheme", p.scheme),
            (b":authority", p.authority),
            (b":path", p.path),
        ] {
            if let Some(span) = span {
                encode_field(out, name, span.of(self));
            }
        }
        for field in self.headers().iter() {
            encode_field(out, field.name, field.value);
        }
    }

    /// The `:status` as a number, when the block has a valid one.
    pub fn status(&self) -> Option<u16> {
        let digits = self.pseudo(self.pseudo.status)?;
        std::str::from_utf8(digits).ok()?.parse().ok()
    }

    /// Copies `other` (its fields and pseudo-header fields) into this block.
    pub fn copy_from(&mut self, other: &FieldBlock) {
        self.bytes.clear();
        self.bytes.extend_from_slice(&other.bytes);
        self.fields.clear();
        self.fields.extend_from_slice(&other.fields);
        self.pseudo = other.pseudo;
        self.list_size = other.list_size;
        self.content_length = other.content_length;
        self.too_large = other.too_large;
        self.malformed = other.malformed;
        self.known = other.known;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(kind: BlockKind, fields: &[(&str, &str)]) -> FieldBlock {
        let mut block = FieldBlock::default();
        block.reset(4096);
        for (name, value) in fields {
            block.push(name.as_bytes(), value.as_bytes());
        }
        block.check(kind);
        block
    }

    const REQUEST: [(&str, &str); 4] = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/shop.Items/Get"),
        (":authority", "api.test"),
    ];

    #[test]
    fn a_correct_request_keeps_its_fields_in_order() {
        let mut fields = REQUEST.to_vec();
        fields.extend([
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("content-length", "12"),
        ]);
        let request = block(BlockKind::Request, &fields);
        assert_eq!(request.malformed, None);
        assert_eq!(
            request.pseudo(request.pseudo.path),
            Some(&b"/shop.Items/Get"[..])
        );
        assert_eq!(request.get("te"), Some(&b"trailers"[..]));
        assert_eq!(request.content_length, Some(12));
        let names: Vec<&[u8]> = request.headers().iter().map(|f| f.name).collect();
        assert_eq!(names, [&b"content-type"[..], b"te", b"content-length"]);
    }

    #[test]
    fn malformed_requests_say_why() {
        let with = |extra: &[(&str, &str)]| {
            let mut fields = REQUEST.to_vec();
            fields.extend_from_slice(extra);
            block(BlockKind::Request, &fields).malformed
        };
        for extra in [
            &[("Content-Type", "x")][..],
            &[("connection", "keep-alive")],
            &[("transfer-encoding", "chunked")],
            &[("te", "gzip")],
            &[("x", " padded")],
            &[("x", "a\r\nb")],
            &[("content-length", "1"), ("content-length", "2")],
            &[("content-length", "-1")],
            &[("x", "y"), (":path", "/late")],
            &[(":status", "200")],
            &[(":protocol", "websocket")],
            &[("host", "other.test")],
        ] {
            assert!(with(extra).is_some(), "{extra:?}");
        }
        assert!(
            block(BlockKind::Request, &[(":method", "GET"), (":path", "/")])
                .malformed
                .is_some()
        );
        assert!(block(
            BlockKind::Request,
            &[(":method", "GET"), (":scheme", "http"), (":path", "x")]
        )
        .malformed
        .is_some());
        assert_eq!(with(&[("host", "api.test")]), None);
    }

    #[test]
    fn responses_and_trailers_have_their_own_pseudo_fields() {
        assert_eq!(
            block(BlockKind::Response, &[(":status", "204")]).malformed,
            None
        );
        assert!(block(BlockKind::Response, &[(":status", "20")])
            .malformed
            .is_some());
        assert!(block(BlockKind::Response, &[]).malformed.is_some());
        assert!(
            block(BlockKind::Response, &[(":status", "200"), (":path", "/")])
                .malformed
                .is_some()
        );
        assert_eq!(
            block(BlockKind::Trailers, &[("grpc-status", "0")]).malformed,
            None
        );
        assert!(block(BlockKind::Trailers, &[(":status", "200")])
            .malformed
            .is_some());
    }

    #[test]
    fn a_block_past_its_limit_stores_nothing_more() {
        let mut block = FieldBlock::default();
        block.reset(100);
        block.push(b"a", &[b'x'; 50]);
        for _ in 0..1000 {
            block.push(b"b", &[b'y'; 50]);
        }
        assert!(block.too_large);
        assert_eq!(block.headers().iter().count(), 1);
        assert!(block.bytes.len() < 100);
    }
}
