//! `body-on-no-content`: a 204 that announces content.

use super::{Exchange, Rule, RuleKind, Severity, Verdict};

/// Flags a 204 that announces content.
pub static RULE: Rule = Rule {
    id: "body-on-no-content",
    kind: RuleKind::Http,
    title: "204 No Content announcing content",
    severity: Severity::Error,
    fires_when: "204 with a non-zero `Content-Length` or a `Transfer-Encoding`; 304 with content",
    rationale: "RFC 9110 §15.3.5 and §8.6, RFC 9112 §6.1: a 204 has no content and must not carry \
                `Content-Length` or `Transfer-Encoding`; clients and proxies that trust the framing read \
                the announced bytes as the next response. A 304 may carry the `Content-Length` of the \
                representation it stands for (RFC 9110 §8.6), so only actual content counts there — and \
                an HTTP/1.1 parser never reads content after a 304, so 304s are judged by their framing \
                alone and do not fire.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    if exchange.status != 204 {
        return None;
    }
    if let Some(length) = exchange.header("content-length") {
        if length.trim() != "0" {
            return Some(Verdict::new(
                Severity::Error,
                format!("204 with Content-Length: {}", length.trim()),
            ));
        }
    }
    exchange
        .headers
        .contains("transfer-encoding")
        .then(|| Verdict::new(Severity::Error, "204 with Transfer-Encoding"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::case;

    #[test]
    fn fires_when_a_204_announces_content() {
        assert!(case(204).header("content-length", "12").fires(&RULE));
        assert!(case(204)
            .header("transfer-encoding", "chunked")
            .fires(&RULE));
    }

    #[test]
    fn quiet_on_empty_204s_and_on_304_lengths() {
        assert!(!case(204).fires(&RULE));
        assert!(!case(204).header("content-length", "0").fires(&RULE));
        assert!(!case(304).header("content-length", "1234").fires(&RULE));
    }
}
