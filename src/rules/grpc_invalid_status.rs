//! `grpc-invalid-status`: a `grpc-status` that is not a gRPC status code.

use super::{visible_ascii, Exchange, Rule, RuleKind, Severity, Verdict};
use crate::classify::grpc::GrpcCode;

/// Flags a `grpc-status` that is not an integer 0–16.
pub static RULE: Rule = Rule {
    id: "grpc-invalid-status",
    kind: RuleKind::Grpc,
    title: "grpc-status is not a status code",
    severity: Severity::Error,
    fires_when: "a gRPC call's `grpc-status` is not an integer from 0 to 16 in plain decimal (`OK`, `200`, \
                 `-1`, ` 5`)",
    rationale: "gRPC's status codes are the integers 0 to 16 (the gRPC status code registry; PROTOCOL-HTTP2: \
                `grpc-status` is 1*DIGIT). Client libraries turn any other value into UNKNOWN, so the \
                call's real outcome is lost to the caller, to its retry policy and to every dashboard.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    let status = exchange.grpc_field("grpc-status")?;
    if GrpcCode::parse(status).is_some() {
        return None;
    }
    let shown = visible_ascii(status).map_or_else(
        || format!("{} bytes that are not text", status.len()),
        |text| format!("`{}`", text.chars().take(40).collect::<String>()),
    );
    Some(Verdict::new(
        Severity::Error,
        format!("grpc-status {shown} is not a code 0-16"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{case, grpc_call};

    #[test]
    fn fires_on_names_out_of_range_numbers_and_padding() {
        for invalid in ["OK", "17", "200", "-1", " 5", "05"] {
            let call = grpc_call(200).trailer("grpc-status", invalid);
            assert!(call.fires(&RULE), "{invalid:?}");
        }
        let head = grpc_call(200).header("grpc-status", "NOT_FOUND");
        assert!(head.check(&RULE).unwrap().evidence.contains("`NOT_FOUND`"));
    }

    #[test]
    fn quiet_on_every_code_a_missing_status_and_plain_http() {
        for code in 0..=16 {
            let call = grpc_call(200).trailer("grpc-status", &code.to_string());
            assert!(!call.fires(&RULE), "{code}");
        }
        // Missing is grpc-status-missing's finding, not this rule's.
        assert!(!grpc_call(200).fires(&RULE));
        assert!(!case(200).header("grpc-status", "OK").fires(&RULE));
    }
}
