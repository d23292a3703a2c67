//! `nonstandard-status`: a status code nobody registered.

use super::{Exchange, Rule, RuleKind, Severity, Verdict};

/// Flags a status code nobody registered.
pub static RULE: Rule = Rule {
    id: "nonstandard-status",
    kind: RuleKind::Http,
    title: "Status code not in the IANA registry",
    severity: Severity::Warning,
    fires_when: "a code not in the IANA registry, or outside 100–599",
    rationale: "RFC 9110 §15 and §16.2: clients understand registered codes; an unregistered code is \
                treated as the x00 of its class (so a 299 is a plain 200, a 420 a plain 400), and codes \
                outside 100–599 are not HTTP at all. 306 and 418 are reserved as unused.",
    evaluate,
};

/// Codes assigned in the IANA HTTP Status Code Registry (306 and 418 are reserved, unused).
pub fn is_registered(code: u16) -> bool {
    matches!(
        code,
        100..=103
            | 200..=208
            | 226
            | 300..=305
            | 307
            | 308
            | 400..=417
            | 421..=426
            | 428
            | 429
            | 431
            | 451
            | 500..=508
            | 510
            | 511
    )
}

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    let code = exchange.status;
    if is_registered(code) {
        return None;
    }
    let why = if (100..600).contains(&code) {
        "is not a registered status code"
    } else {
        "is outside 100–599"
    };
    Some(Verdict::new(Severity::Warning, format!("{code} {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::case;

    #[test]
    fn fires_on_unregistered_and_out_of_range_codes() {
        for code in [299, 306, 418, 420, 499, 520, 599, 600, 999] {
            assert!(case(code).fires(&RULE), "{code}");
        }
    }

    #[test]
    fn quiet_on_registered_codes() {
        for code in [
            100, 103, 200, 201, 204, 226, 304, 308, 404, 422, 429, 451, 500, 503, 511,
        ] {
            assert!(!case(code).fires(&RULE), "{code}");
        }
    }
}
