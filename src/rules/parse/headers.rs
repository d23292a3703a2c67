//! Parsers of the response and request headers the rules read.

/// True when `value` is a valid `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub fn retry_after_is_valid(value: &str) -> bool {
    let value = value.trim();
    (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
        || httpdate::parse_http_date(value).is_ok()
}

/// The cacheability directives of a `Cache-Control` value (RFC 9111 §5.2.2).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheControl {
    /// `public`
    pub public: bool,
    /// `no-store`
    pub no_store: bool,
    /// `private`
    pub private: bool,
    /// `no-cache`
    pub no_cache: bool,
    /// `max-age=N`
    pub max_age: Option<u64>,
    /// `s-maxage=N`
    pub s_maxage: Option<u64>,
}

impl CacheControl {
    /// Parses every `Cache-Control` line of a response together.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> CacheControl {
        let mut parsed = CacheControl::default();
        for directive in values.into_iter().flat_map(|v| v.split(',')) {
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            let seconds = argument.and_then(|a| a.parse::<u64>().ok());
            match name.to_ascii_lowercase().as_str() {
                "public" => parsed.public = true,
                "no-store" => parsed.no_store = true,
                "private" => parsed.private = true,
                "no-cache" => parsed.no_cache = true,
                "max-age" => parsed.max_age = seconds,
                "s-maxage" => parsed.s_maxage = seconds,
                _ => {}
            }
        }
        parsed
    }
}

/// True when an `Allow` value lists `method` (methods are case-sensitive, RFC 9110 §9.1).
pub fn allow_lists(allow: &str, method: &str) -> bool {
    allow.split(',').any(|m| m.trim() == method)
}

/// True when an `Accept` value asks for JSON and nothing else: every media range it accepts
/// (q > 0) is `application/json` or a `+json` type, with no wildcard.
pub fn accepts_only_json(accept: &str) -> bool {
    let mut any = false;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        if media.is_empty() {
            continue;
        }
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        if refused {
            continue;
        }
        if !(media == "application/json"
            || (media.starts_with("application/") && media.ends_with("+json")))
        {
            return false;
        }
        any = true;
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_any_http_date_form() {
        assert!(retry_after_is_valid("120"));
        assert!(retry_after_is_valid("Wed, 21 Oct 2026 07:28:00 GMT"));
        assert!(retry_after_is_valid("Wednesday, 21-Oct-26 07:28:00 GMT"));
        assert!(retry_after_is_valid("Wed Oct 21 07:28:00 2026"));
        assert!(!retry_after_is_valid("-5"));
        assert!(!retry_after_is_valid("1.5"));
        assert!(!retry_after_is_valid("soon"));
        assert!(!retry_after_is_valid("2026-10-21T07:28:00Z"));
        assert!(!retry_after_is_valid(""));
    }

    #[test]
    fn cache_control_directives_are_read_across_lines() {
        let parsed = CacheControl::parse(["Public, max-age=\"60\"", "s-maxage=0"]);
        assert!(parsed.public);
        assert_eq!(parsed.max_age, Some(60));
        assert_eq!(parsed.s_maxage, Some(0));
        assert!(CacheControl::parse(["no-store"]).no_store);
    }

    #[test]
    fn allow_is_a_list_of_case_sensitive_methods() {
        assert!(allow_lists("GET, HEAD,POST", "POST"));
        assert!(!allow_lists("GET, HEAD", "POST"));
        assert!(!allow_lists("get", "GET"));
    }

    #[test]
    fn only_json_means_no_other_type_and_no_wildcard() {
        assert!(accepts_only_json("application/json"));
        assert!(accepts_only_json(
            "application/json, application/problem+json;q=0.9"
        ));
        assert!(accepts_only_json("application/json, text/html;q=0"));
        assert!(!accepts_only_json("application/json, */*;q=0.1"));
        assert!(!accepts_only_json("text/html,application/json"));
        assert!(!accepts_only_json("*/*"));
        assert!(!accepts_only_json(""));
    }
}
