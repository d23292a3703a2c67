//! `grpc-non-200`: a gRPC call answered with an HTTP status other than 200.

use super::{Exchange, Rule, RuleKind, Severity, Verdict};

/// Flags a gRPC response whose HTTP status is not 200.
pub static RULE: Rule = Rule {
    id: "grpc-non-200",
    kind: RuleKind::Grpc,
    title: "gRPC response with an HTTP status other than 200",
    severity: Severity::Error,
    fires_when: "a gRPC call's response has an HTTP status other than 200",
    rationale: "gRPC over HTTP/2 (the PROTOCOL-HTTP2 specification): a call's outcome is its `grpc-status`, \
                sent with HTTP 200; other HTTP codes mean the transport failed, and clients turn them \
                into a guessed code (404 into UNIMPLEMENTED, 503 into UNAVAILABLE) while dropping the \
                service's `grpc-status`. A service that answers a gRPC call with 404 or 500 is speaking \
                HTTP where it should speak gRPC; a proxy in front of it is often the one doing so.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    exchange.grpc_trailers?;
    if exchange.status == 200 {
        return None;
    }
    Some(Verdict::new(
        Severity::Error,
        format!("gRPC call answered with HTTP {}", exchange.status),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{case, grpc_call};

    #[test]
    fn fires_on_any_other_http_status() {
        for status in [204, 404, 500, 503] {
            assert!(
                grpc_call(status).header("grpc-status", "14").fires(&RULE),
                "{status}"
            );
        }
    }

    #[test]
    fn quiet_on_200_whatever_the_grpc_status_and_on_plain_http() {
        assert!(!grpc_call(200).trailer("grpc-status", "13").fires(&RULE));
        assert!(!case(404).fires(&RULE));
    }
}
