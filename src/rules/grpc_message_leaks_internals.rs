//! `grpc-message-leaks-internals`: a `grpc-message` that shows the service's insides.

use super::{error_leaks_internals, Exchange, Rule, RuleKind, Severity, Verdict};
use crate::classify::grpc::decode_message;

/// Flags a `grpc-message` carrying a stack trace or internal error text.
pub static RULE: Rule = Rule {
    id: "grpc-message-leaks-internals",
    kind: RuleKind::Grpc,
    title: "Stack trace or internal error text in grpc-message",
    severity: Severity::Error,
    fires_when: "a gRPC call's `grpc-message`, percent-decoded, carries a stack trace or internal error text, \
                 judged by the patterns of `error-leaks-internals`",
    rationale: "The guide's §6.1 applies to gRPC as to HTTP: log the details of an unhandled exception, \
                don't send them. `grpc-message` reaches the caller as the error's text, and a server that \
                puts `str(exception)` or a formatted traceback there (a common default of handler \
                frameworks) shows file layout, library versions and queries to every client.",
    evaluate,
};

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    let message = exchange.grpc_field("grpc-message")?;
    // Most messages have no escape: those are judged as sent, without a copy.
    let leak = match memchr::memchr(b'%', message) {
        None => error_leaks_internals::detect(message),
        Some(_) => error_leaks_internals::detect(decode_message(message).as_bytes()),
    }?;
    Some(Verdict::new(
        Severity::Error,
        format!("grpc-message shows {leak}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{case, grpc_call};

    #[test]
    fn fires_on_a_percent_encoded_traceback_in_the_trailers_or_the_head() {
        let traceback = "Traceback (most recent call last):%0A  File \"/srv/app.py\", line 12, in Get%0AKeyError: 7";
        let call = grpc_call(200)
            .trailer("grpc-status", "13")
            .trailer("grpc-message", traceback);
        assert!(call.check(&RULE).unwrap().evidence.contains("Python"));
        let java =
            "java.lang.IllegalStateException: closed%0A%09at com.shop.Index.get(Index.java:88)";
        assert!(grpc_call(200).header("grpc-message", java).fires(&RULE));
    }

    #[test]
    fn quiet_on_a_plain_message_and_outside_grpc() {
        let call = grpc_call(200)
            .trailer("grpc-status", "5")
            .trailer("grpc-message", "no item 7 %E2%80%94 try another id");
        assert!(!call.fires(&RULE));
        assert!(!grpc_call(200).trailer("grpc-status", "0").fires(&RULE));
        let http = case(500).header("grpc-message", "Traceback (most recent call last):");
        assert!(!http.fires(&RULE));
    }
}
