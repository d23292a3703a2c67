//! The grammar a request head is checked against, byte by byte: which bytes may appear in a
//! token, a field value or a target (RFC 9110 §5.5, §5.6.2; RFC 3986), and the shapes of a
//! request line, an HTTP version and a `Host` value.

use memchr::memchr;

use super::{bad, refuse, Progress};
use crate::proxy::error_response::ProxyError;

/// Byte classes, looked up once per byte: the reader runs on every request.
pub(super) const TCHAR: u8 = 1;
pub(super) const FIELD_VALUE: u8 = 2;
pub(super) const TARGET: u8 = 4;
/// A method byte: a token character but a lowercase letter (see [`split_request_line`]).
pub(super) const METHOD: u8 = 8;

/// Whether `byte` may appear in a token (RFC 9110 §5.6.2 `tchar`), such as a method or a field
/// name.
pub const fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

static CLASSES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        let visible = byte > 0x20 && byte < 0x7f;
        let tchar = is_tchar(byte);
        // A field value byte: visible ASCII, space, tab or obs-text; never a control character.
        let field_value = visible || byte == b' ' || byte == b'\t' || byte >= 0x80;
        let mut class = 0;
        if tchar {
            class |= TCHAR;
        }
        if tchar && !byte.is_ascii_lowercase() {
            class |= METHOD;
        }
        if field_value {
            class |= FIELD_VALUE;
        }
        // A request-target byte: visible ASCII only (RFC 3986 percent-encodes everything else),
        // and no `#`: a fragment is never sent (RFC 9110 §7.1), and parsers differ on one.
        if visible && byte != b'#' {
            class |= TARGET;
        }
        table[b] = class;
        b += 1;
    }
    table
};

pub(super) fn all_in(bytes: &[u8], class: u8) -> bool {
    bytes.iter().all(|&b| CLASSES[usize::from(b)] & class != 0)
}

/// [`all_in`] for field values, eight bytes at a time: values are most of a head's bytes, and
/// nearly all of them are plain visible ASCII. A word with a byte below 0x20 or a DEL is
/// checked byte by byte (it may hold a legal tab).
#[inline]
pub fn all_field_value(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let x = u64::from_ne_bytes(word.try_into().expect("eight bytes"));
        // High bit of a byte set where that byte is below 0x20 (bytes of 0x80 and up never
        // are), or equal to 0x7f: the classic "has less than" and "has zero" tests.
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGHS;
        let delete = (x ^ (ONES * 0x7f)).wrapping_sub(ONES) & !(x ^ (ONES * 0x7f)) & HIGHS;
        if (control | delete) != 0 && !all_in(word, FIELD_VALUE) {
            return false;
        }
    }
    all_in(words.remainder(), FIELD_VALUE)
}

pub(super) fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

/// The three parts of a request line.
pub(super) type RequestLineParts<'a> = [&'a [u8]; 3];

/// `method SP request-target SP HTTP-version`, each separated by exactly one space.
pub(super) fn split_request_line(line: &[u8]) -> Result<RequestLineParts<'_>, &'static str> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the request line is not `method target version`");
    };
    if method.is_empty() || !all_in(method, METHOD) {
        // Methods are case-sensitive and every registered one is uppercase; servers differ on
        // the others (nginx and waitress refuse them), so none goes on.
        return Err(if all_in(method, TCHAR) {
            "a method with lowercase letters"
        } else {
            "an invalid method"
        });
    }
    if target.is_empty() || !all_in(target, TARGET) {
        return Err("an invalid character in the request target");
    }
    Ok([method, target, version])
}

/// RFC 9112 §2.3: `HTTP/1.x` is served as 1.1 (or 1.0); another major version is a 505.
pub(super) fn check_version(version: &[u8]) -> Result<(), Progress> {
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            if *major == b'1' {
                Ok(())
            } else {
                Err(refuse(
                    ProxyError::VERSION_NOT_SUPPORTED,
                    "an HTTP version other than 1.x on an HTTP/1 connection",
                ))
            }
        }
        _ => Err(bad("an invalid HTTP version")),
    }
}

pub(super) fn is_absolute_http_uri(target: &[u8]) -> bool {
    let lower = |prefix: &[u8]| {
        target.len() > prefix.len() && target[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    lower(b"http://") || lower(b"https://")
}

/// An absolute-form target (`scheme://authority/path?query`) split into its authority and
/// what follows it (empty, or starting with `/` or `?`); `None` for the other forms.
pub fn split_absolute(target: &[u8]) -> Option<(&[u8], &[u8])> {
    let scheme_end = memchr(b':', target)?;
    let rest = target[scheme_end..].strip_prefix(b"://")?;
    let end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    Some(rest.split_at(end))
}

/// RFC 9110 §7.2: `uri-host [ ":" port ]`, where uri-host is a reg-name, IPv4 or IP literal.
/// An empty value is allowed (a target without an authority).
#[inline]
pub(super) fn is_valid_host(value: &[u8]) -> bool {
    let (host, port) = match value {
        [b'[', rest @ ..] => match memchr(b']', rest) {
            Some(close) => {
                let literal = &rest[..close];
                if literal.is_empty()
                    || !literal
                        .iter()
                        .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
                {
                    return false;
                }
                (&value[..close + 2], &rest[close + 1..])
            }
            None => return false,
        },
        _ => match memchr(b':', value) {
            Some(colon) => (&value[..colon], &value[colon..]),
            None => (value, &value[value.len()..]),
        },
    };
    let reg_name_ok = host.first() == Some(&b'[')
        || host
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b));
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    reg_name_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_at_a_time_value_check_agrees_with_the_byte_table() {
        for b in 0..=255u8 {
            for position in 0..17 {
                let mut value = vec![b'a'; 17];
                value[position] = b;
                assert_eq!(
                    all_field_value(&value),
                    all_in(&value, FIELD_VALUE),
                    "byte {b:#04x} at {position}"
                );
            }
        }
    }
}
