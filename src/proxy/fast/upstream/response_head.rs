//! The upstream's response head: parsed once (httparse, into a stack array), kept as spans
//! into the connection's buffer — which is what the rules later read — and written on to the
//! client as it came, but for the fields that only concern one hop.

use std::mem::MaybeUninit;

use crate::proxy::request_head::is_hop_by_hop;
use crate::rules::FieldSpan;

/// pingora's own limit on response header fields.
pub const MAX_RESPONSE_FIELDS: usize = 256;

/// A response head this long that is still incomplete is refused.
pub const MAX_RESPONSE_HEAD_BYTES: usize = 64 * 1024;

/// How the body after a response head ends (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: a response to HEAD, an interim response, 204 or 304.
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
    /// Everything until the upstream closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// Bytes of the head, from the status line to the blank line.
    pub len: usize,
    /// How its body ends.
    pub framing: Framing,
    /// The upstream keeps the connection open after this response (RFC 9112 §9.3).
    pub persistent: bool,
    /// `Connection` names fields that forwarding drops.
    names_fields: bool,
    /// Both `Transfer-Encoding` and `Content-Length`: the length is dropped (RFC 9112 §6.3).
    drop_length: bool,
}

/// What a look at the upstream's bytes so far found.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The head is not complete yet.
    Partial,
    /// A complete head; its fields' spans are in the vector given.
    Complete(ResponseHead),
    /// Not a valid response head.
    Invalid(&'static str),
}

/// Whether the request was `HEAD` and what protocol it spoke, which the framing depends on.
#[derive(Debug, Clone, Copy)]
pub struct Asked {
    /// The request method was `HEAD`: no body follows whatever the head says.
    pub head_method: bool,
}

/// Parses the response head at the start of `buf`, recording its fields' spans in `spans`.
pub fn parse(buf: &[u8], asked: Asked, spans: &mut Vec<FieldSpan>) -> Parsed {
    let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_RESPONSE_FIELDS];
    let mut response = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut fields,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_RESPONSE_HEAD_BYTES => {
            return Parsed::Invalid("the response head is too large")
        }
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Invalid("too many response header fields")
        }
        Err(_) => return Parsed::Invalid("a malformed response head"),
    };
    let (Some(status), Some(version)) = (response.code, response.version) else {
        return Parsed::Invalid("a malformed response head");
    };
    let fields = match FramingFields::read(buf, response.headers, spans) {
        Ok(fields) => fields,
        Err(reason) => return Parsed::Invalid(reason),
    };
    let framing =
        if asked.head_method || (100..200).contains(&status) || status == 204 || status == 304 {
            Framing::None
        } else {
            match (fields.transfer_encoding, fields.length) {
                (Some(true), _) => Framing::Chunked,
                (Some(false), _) => Framing::UntilClose,
                (None, Some(n)) => Framing::Length(n),
                (None, None) => Framing::UntilClose,
            }
        };
    let http10 = version == 0;
    let drop_length = fields.transfer_encoding.is_some() && fields.length.is_some();
    Parsed::Complete(ResponseHead {
        status,
        len,
        framing,
        persistent: framing != Framing::UntilClose
            && !fields.close
            && !drop_length
            && (!http10 || fields.keep_alive),
        names_fields: fields.names_fields,
        drop_length,
    })
}

/// What a response head's fields say about its framing and its connection.
#[derive(Default)]
struct FramingFields {
    /// `Content-Length`, all its values agreeing.
    length: Option<u64>,
    /// `Transfer-Encoding` was present; whether its last coding is `chunked`.
    transfer_encoding: Option<bool>,
    /// `Connection: close`.
    close: bool,
    /// `Connection: keep-alive` (which an HTTP/1.0 response needs to persist).
    keep_alive: bool,
    /// `Connection` names other fields, which are this hop's only.
    names_fields: bool,
}

impl FramingFields {
    /// Reads the framing fields from `headers` (parsed out of `buf`), recording every field's
    /// span in `spans`; the error says which field is invalid.
    #[inline]
    fn read(
        buf: &[u8],
        headers: &[httparse::Header<'_>],
        spans: &mut Vec<FieldSpan>,
    ) -> Result<Self, &'static str> {
        spans.clear();
        let base = buf.as_ptr() as usize;
        let offset = |part: &[u8]| (part.as_ptr() as usize - base) as u32;
        let mut fields = FramingFields::default();
        for field in headers {
            let name = field.name.as_bytes();
            spans.push(FieldSpan {
                name_start: offset(name),
                name_len: name.len() as u32,
                value_start: offset(field.value),
                value_len: field.value.len() as u32,
            });
            // Lengths first: most fields are none of the three.
            let is = |known: &[u8]| name.len() == known.len() && name.eq_ignore_ascii_case(known);
            if is(b"content-length") {
                fields.read_length(field.value)?;
            } else if is(b"transfer-encoding") {
                // The last coding named decides; only `chunked` ends by itself.
                if let Some(last) = field.value.rsplit(|&b| b == b',').next() {
                    fields.transfer_encoding =
                        Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                }
            } else if is(b"connection") {
                fields.read_connection(field.value);
            }
        }
        Ok(fields)
    }

    fn read_length(&mut self, value: &[u8]) -> Result<(), &'static str> {
        for value in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            let n = parse_length(value).ok_or("an invalid Content-Length")?;
            if self.length.is_some_and(|seen| seen != n) {
                return Err("conflicting Content-Length values");
            }
            self.length = Some(n);
        }
        Ok(())
    }

    fn read_connection(&mut self, value: &[u8]) {
        for option in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            if option.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if option.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if !option.is_empty() {
                self.names_fields = true;
            }
        }
    }
}

fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// What the client is told about its connection, in the head it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing: HTTP/1.1 keeps connections by default.
    Default,
    /// `Connection: close`: this response is the connection's last.
    Close,
    /// `Connection: keep-alive`: an HTTP/1.0 client asked to keep its connection, and may.
    KeepAlive,
}

impl ResponseHead {
    /// Writes the head for the client into `out`: the status line in statuscope's own version
    /// (RFC 9110 §2.5) and the fields as the upstream sent them, without the hop-by-hop ones,
    /// then statuscope's own `Connection`. With `dechunked`, the body goes to the client
    /// without its chunk framing (to an HTTP/1.0 client), so `Transfer-Encoding` is dropped too.
    pub fn write_for_client(
        &self,
        buf: &[u8],
        spans: &[FieldSpan],
        persistence: Persistence,
        dechunked: bool,
        out: &mut Vec<u8>,
    ) {
        out.clear();
        // The blank line that ends the head, however its lines end.
        let fields_end = self.len
            - if buf[..self.len].ends_with(b"\r\n\r\n") {
                2
            } else {
                1
            };
        let line_start = |i: usize| {
            spans
                .get(i)
                .map_or(fields_end, |span| span.name_start as usize)
        };
        // httparse admitted only `HTTP/1.0` and `HTTP/1.1`: eight bytes, then the status.
        out.extend_from_slice(b"HTTP/1.1");
        out.extend_from_slice(&buf[8..line_start(0)]);
        // The fields kept are copied a run of whole lines at a time.
        let mut run = None;
        for (i, span) in spans.iter().enumerate() {
            let name = span.of(buf).name;
            let dropped = self.is_dropped(buf, spans, name)
                || (dechunked && name.eq_ignore_ascii_case(b"transfer-encoding"));
            match (dropped, run) {
                (true, Some(start)) => {
                    out.extend_from_slice(&buf[start..line_start(i)]);
                    run = None;
                }
                (false, None) => run = Some(line_start(i)),
                _ => {}
            }
        }
        if let Some(start) = run {
            out.extend_from_slice(&buf[start..fields_end]);
        }
        out.extend_from_slice(match persistence {
            Persistence::Default => b"\r\n",
            Persistence::Close => b"Connection: close\r\n\r\n",
            Persistence::KeepAlive => b"Connection: keep-alive\r\n\r\n",
        });
    }

    /// Whether the field `name` of this head (in `buf`, at `spans`) stays on this hop: a
    /// hop-by-hop field, one `Connection` names, or a `Content-Length` beside
    /// `Transfer-Encoding` (RFC 9112 §6.3).
    #[inline(always)]
    pub fn is_dropped(&self, buf: &[u8], spans: &[FieldSpan], name: &[u8]) -> bool {
        is_hop_by_hop(name)
            || (self.drop_length && name.eq_ignore_ascii_case(b"content-length"))
            || (self.names_fields && self.named_by_connection(buf, spans, name))
    }

    /// Whether a `Connection` field names `name`.
    fn named_by_connection(&self, buf: &[u8], spans: &[FieldSpan], name: &[u8]) -> bool {
        spans
            .iter()
            .map(|span| span.of(buf))
            .filter(|field| field.name.eq_ignore_ascii_case(b"connection"))
            .flat_map(|field| field.value.split(|&b| b == b','))
            .any(|option| option.trim_ascii().eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: Asked = Asked { head_method: false };

    fn complete(buf: &[u8]) -> (ResponseHead, Vec<FieldSpan>) {
        let mut spans = Vec::new();
        match parse(buf, GET, &mut spans) {
            Parsed::Complete(head) => (head, spans),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn frames_bodies_as_rfc_9112_says() {
        let (head, _) = complete(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!(
            (head.framing, head.persistent, head.len),
            (Framing::Length(5), true, 38)
        );
        let (head, _) = complete(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!(head.framing, Framing::Chunked);
        let (head, _) = complete(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
        assert_eq!(
            (head.framing, head.persistent),
            (Framing::UntilClose, false)
        );
        let (head, _) = complete(b"HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(
            (head.framing, head.persistent),
            (Framing::UntilClose, false)
        );
        let (head, _) = complete(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n");
        assert_eq!((head.framing, head.persistent), (Framing::None, true));
        let (head, _) = complete(b"HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!(head.framing, Framing::None);
        let mut spans = Vec::new();
        let head_asked = Asked { head_method: true };
        // RFC 9112 §6.3 rule 1: whatever a response to HEAD announces, no body follows.
        for announced in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(matches!(
                parse(announced, head_asked, &mut spans),
                Parsed::Complete(ResponseHead {
                    framing: Framing::None,
                    ..
                })
            ));
        }
    }

    #[test]
    fn persistence_follows_the_version_and_connection() {
        let (head, _) =
            complete(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        assert!(!head.persistent);
        let (head, _) = complete(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert!(!head.persistent);
        let (head, _) =
            complete(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n");
        assert!(head.persistent);
    }

    #[test]
    fn refuses_what_cannot_be_framed() {
        let mut spans = Vec::new();
        for (buf, reason) in [
            (
                &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"[..],
                "conflicting Content-Length values",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                "an invalid Content-Length",
            ),
            (b"HTTP/1.1 2000 OK\r\n\r\n", "a malformed response head"),
            (b"SSH-2.0-OpenSSH\r\n\r\n", "a malformed response head"),
        ] {
            assert_eq!(parse(buf, GET, &mut spans), Parsed::Invalid(reason));
        }
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nX: y", GET, &mut spans),
            Parsed::Partial
        );
        let (head, _) = complete(b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n");
        assert_eq!(head.framing, Framing::Length(5));
    }

    #[test]
    fn the_client_gets_the_head_without_hop_by_hop_fields() {
        let buf = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive, X-Hop\r\n\
            Keep-Alive: timeout=5\r\nX-Hop: 1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n";
        let (head, spans) = complete(buf);
        let mut out = Vec::new();
        head.write_for_client(buf, &spans, Persistence::Close, false, &mut out);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\n"
        );
        assert_eq!(spans[0].of(buf).value, b"text/plain");
        let buf = b"HTTP/1.0 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (head, spans) = complete(buf);
        head.write_for_client(buf, &spans, Persistence::Close, true, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n"
        );
    }
}
