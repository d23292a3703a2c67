//! The request target's path, the one thing every path through the proxy tallies a request
//! by: from an accepted head, from a refused one as far as it is readable, and from an HTTP/2
//! `:path`.

use memchr::memchr;

use super::syntax::{all_in, split_absolute, TARGET, TCHAR};

/// The request line as far as it was readable, for tallying a refused request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestLine<'a> {
    /// The method, if the line had one made of token characters.
    pub method: Option<&'a [u8]>,
    /// The target's path (see [`target_path`]), if the line had a readable target.
    pub path: Option<&'a str>,
}

/// The method and path of a request line, as far as they are readable; used to tally a
/// refused request under its route.
pub fn request_line(buf: &[u8]) -> RequestLine<'_> {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let line = &buf[start..];
    let line = &line[..memchr(b'\n', line).unwrap_or(line.len())];
    let mut parts = line.split(|&b| b == b' ');
    let method = parts.next().filter(|m| !m.is_empty() && all_in(m, TCHAR));
    let path = parts.next().and_then(target_path);
    RequestLine { method, path }
}

/// The path of a request target without its query: an origin form as it is, the path of an
/// absolute form (`/` when it has none), `*` for the asterisk form; `None` for anything else,
/// or a target with a byte outside visible ASCII.
pub fn target_path(target: &[u8]) -> Option<&str> {
    if !all_in(target, TARGET) {
        return None;
    }
    checked_target_path(target)
}

/// [`target_path`] of a target already known to be visible ASCII, as every target of an
/// accepted [`super::Head`] is (the head reader refuses any other byte): the request path
/// does not check its bytes twice.
#[inline]
pub fn checked_target_path(target: &[u8]) -> Option<&str> {
    let path = match target.first()? {
        b'/' => target,
        b'*' if target.len() == 1 => target,
        _ => match split_absolute(target)? {
            (_, rest) if rest.first() == Some(&b'/') => rest,
            // No path (`http://host` or `http://host?query`): the path is `/`.
            _ => b"/",
        },
    };
    let path = &path[..memchr(b'?', path).unwrap_or(path.len())];
    // Visible ASCII, so valid UTF-8: the check costs one pass and cannot fail.
    std::str::from_utf8(path).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_is_the_target_without_authority_or_query() {
        assert_eq!(target_path(b"/users/7?token=x"), Some("/users/7"));
        assert_eq!(target_path(b"http://api.test/users/7?x"), Some("/users/7"));
        assert_eq!(target_path(b"https://api.test"), Some("/"));
        assert_eq!(target_path(b"https://api.test?q"), Some("/"));
        assert_eq!(target_path(b"*"), Some("*"));
        assert_eq!(target_path(b"**"), None);
        assert_eq!(target_path(b"api.test:443"), None);
        assert_eq!(target_path(b"/caf\xc3\xa9"), None);
    }

    #[test]
    fn the_request_line_is_read_for_the_tally_as_far_as_possible() {
        let line = request_line(b"GET /users/7?token=x HTTP/1.1\r\nHost");
        assert_eq!(line.method, Some(&b"GET"[..]));
        assert_eq!(line.path, Some("/users/7"));
        let absolute = request_line(b"GET http://a.test/x?y HTTP/1.1\r\n");
        assert_eq!(absolute.path, Some("/x"));
        assert_eq!(request_line(b"\x01 nope").method, None);
    }
}
