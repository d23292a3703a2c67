//! `grpc-status-missing`: a gRPC call that ended without saying how.

use super::{Exchange, Rule, RuleKind, Severity, Verdict};

/// Flags a gRPC response without `grpc-status`.
pub static RULE: Rule = Rule {
    id: "grpc-status-missing",
    kind: RuleKind::Grpc,
    title: "gRPC response without grpc-status",
    severity: Severity::Error,
    fires_when: "a gRPC call's response ended with no `grpc-status`, neither in its trailers nor in a \
                 trailers-only head",
    rationale: "gRPC over HTTP/2 (the PROTOCOL-HTTP2 specification): every response ends with `grpc-status`; \
                without it the client library reports UNKNOWN (or INTERNAL) and the caller cannot tell \
                a success from a crash. Typical causes: a handler that writes the body and exits, or an \
                HTTP/1 hop that dropped the trailers.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    exchange.grpc_trailers?;
    if exchange.grpc_field("grpc-status").is_some() {
        return None;
    }
    Some(Verdict::new(
        Severity::Error,
        format!(
            "gRPC response (HTTP {}) ended without grpc-status",
            exchange.status
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{case, grpc_call};

    #[test]
    fn fires_when_neither_trailers_nor_head_carry_a_status() {
        assert!(grpc_call(200).fires(&RULE));
        assert!(grpc_call(200).trailer("grpc-message", "done").fires(&RULE));
    }

    #[test]
    fn quiet_with_a_status_in_the_trailers_or_a_trailers_only_head() {
        assert!(!grpc_call(200).trailer("grpc-status", "0").fires(&RULE));
        assert!(!grpc_call(200).header("grpc-status", "5").fires(&RULE));
        // Not a gRPC call: plain HTTP has no grpc-status to miss.
        assert!(!case(200).fires(&RULE));
    }
}
