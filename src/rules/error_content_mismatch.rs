//! `error-content-mismatch`: an HTML error page for a client that asked for JSON only.

use super::parse::headers::accepts_only_json;
use super::{Exchange, Rule, RuleKind, Severity, Verdict};

/// Flags an HTML error page for a client that asked for JSON only.
pub static RULE: Rule = Rule {
    id: "error-content-mismatch",
    kind: RuleKind::Http,
    title: "HTML error to a JSON-only client",
    severity: Severity::Warning,
    fires_when: "a 4xx/5xx sent as HTML to a request whose `Accept` asked only for JSON",
    rationale: "RFC 9110 §12.5.1: `Accept` states the media types the client can use. An HTML error page \
                (typically a framework's or a gateway's default) to a JSON-only client cannot be parsed, \
                and hides the error's details from it. The guide's §7.2.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    if !(400..600).contains(&exchange.status) {
        return None;
    }
    let accept = exchange.request.accept?;
    let html = exchange.content_type_is(&["text/html", "application/xhtml+xml"]);
    (html && accepts_only_json(accept)).then(|| {
        let accept: String = accept.chars().take(80).collect();
        Verdict::new(
            Severity::Warning,
            format!("{} as text/html to Accept: {accept}", exchange.status),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::case;
    use crate::rules::RequestFacts;

    fn accepting(accept: &'static str) -> RequestFacts<'static> {
        RequestFacts {
            accept: Some(accept),
            ..RequestFacts::default()
        }
    }

    #[test]
    fn fires_on_html_errors_to_json_only_clients() {
        assert!(case(500)
            .header("content-type", "text/html; charset=utf-8")
            .request(accepting("application/json"))
            .fires(&RULE));
    }

    #[test]
    fn quiet_when_the_client_takes_html_or_the_error_is_json() {
        assert!(!case(500)
            .header("content-type", "text/html")
            .request(accepting("application/json, */*"))
            .fires(&RULE));
        assert!(!case(500)
            .header("content-type", "text/html")
            .request(accepting("text/html"))
            .fires(&RULE));
        assert!(!case(500)
            .header("content-type", "application/json")
            .request(accepting("application/json"))
            .fires(&RULE));
        assert!(!case(500).header("content-type", "text/html").fires(&RULE));
        assert!(!case(200)
            .header("content-type", "text/html")
            .request(accepting("application/json"))
            .fires(&RULE));
    }
}
