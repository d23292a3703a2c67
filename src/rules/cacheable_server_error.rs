//! `cacheable-server-error`: a 5xx that caches are told to keep.

use std::time::SystemTime;

use super::parse::headers::CacheControl;
use super::{Exchange, Rule, RuleKind, Severity, Verdict};

/// Flags a 5xx that caches are told to keep.
pub static RULE: Rule = Rule {
    id: "cacheable-server-error",
    kind: RuleKind::Http,
    title: "Server error marked cacheable",
    severity: Severity::Warning,
    fires_when: "a 5xx marked cacheable (`Cache-Control` public or max-age/s-maxage > 0, or `Expires` in \
                 the future)",
    rationale: "RFC 9111 §3, §4.2.1 and §5.3: explicit freshness makes a response storable and reusable. A \
                cached 5xx keeps failing for every client until it expires, long after the service has \
                recovered.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    if !(500..600).contains(&exchange.status) {
        return None;
    }
    let status = exchange.status;
    let lines = exchange
        .headers
        .all("cache-control")
        .filter_map(crate::rules::visible_ascii);
    let cache_control = CacheControl::parse(lines);
    if cache_control.no_store {
        return None;
    }
    let fresh = |age: Option<u64>| age.is_some_and(|a| a > 0);
    if cache_control.public || fresh(cache_control.max_age) || fresh(cache_control.s_maxage) {
        let shown: String = exchange
            .header("cache-control")
            .unwrap_or("")
            .chars()
            .take(80)
            .collect();
        return Some(Verdict::new(
            Severity::Warning,
            format!("{status} with Cache-Control: {shown}"),
        ));
    }
    if cache_control.max_age.is_some() || cache_control.no_cache || cache_control.private {
        // max-age=0, no-cache and private take precedence over Expires (RFC 9111 §5.3).
        return None;
    }
    let expires = httpdate::parse_http_date(exchange.header("expires")?).ok()?;
    let now = exchange
        .header("date")
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .unwrap_or_else(SystemTime::now);
    (expires > now).then(|| {
        Verdict::new(
            Severity::Warning,
            format!("{status} with Expires in the future"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::case;

    #[test]
    fn fires_on_explicit_freshness() {
        assert!(case(500).header("cache-control", "public").fires(&RULE));
        assert!(case(503)
            .header("cache-control", "max-age=300")
            .fires(&RULE));
        assert!(case(502)
            .header("cache-control", "s-maxage=60")
            .fires(&RULE));
        assert!(case(500)
            .header("date", "Wed, 21 Oct 2026 07:28:00 GMT")
            .header("expires", "Wed, 21 Oct 2026 08:28:00 GMT")
            .fires(&RULE));
    }

    #[test]
    fn quiet_on_uncacheable_errors() {
        assert!(!case(500).fires(&RULE));
        assert!(!case(500).header("cache-control", "no-store").fires(&RULE));
        assert!(!case(500).header("cache-control", "max-age=0").fires(&RULE));
        assert!(!case(500)
            .header("cache-control", "public, no-store")
            .fires(&RULE));
        assert!(!case(500)
            .header("cache-control", "max-age=0")
            .header("expires", "Wed, 21 Oct 2099 07:28:00 GMT")
            .fires(&RULE));
        assert!(!case(500)
            .header("date", "Wed, 21 Oct 2026 07:28:00 GMT")
            .header("expires", "Wed, 21 Oct 2026 06:28:00 GMT")
            .fires(&RULE));
        assert!(!case(404)
            .header("cache-control", "public, max-age=60")
            .fires(&RULE));
    }
}
