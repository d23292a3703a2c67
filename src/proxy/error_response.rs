//! Responses statuscope makes itself: correct HTTP, a JSON body in the shape
//! `{"code": "...", "details": ["..."]}`, and a `statuscope-error` header naming the kind, so
//! nobody mistakes them for the service's own answers.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::{ErrorSource, ErrorType};

use crate::classify::grpc::{self, GrpcCode};
use crate::classify::UpstreamErrorKind;

/// The header that marks a response as made by statuscope, not by the service.
pub const ERROR_HEADER: &str = "statuscope-error";

/// A response the proxy produces instead of the upstream's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyError {
    /// The status code sent.
    pub status: u16,
    /// The `code` field of the JSON body.
    pub code: &'static str,
    /// The `statuscope-error` header value.
    pub kind: &'static str,
    /// The one line in `details`.
    pub detail: &'static str,
    /// Seconds for `Retry-After`, when the client should come back later.
    pub retry_after: Option<u32>,
    /// The `Allow` header of a 405 (RFC 9110 §15.5.6 requires one).
    pub allow: Option<&'static str>,
}

/// A refusal of a malformed request head: 400 unless a more precise status applies.
const fn refusal(status: u16, code: &'static str, detail: &'static str) -> ProxyError {
    ProxyError {
        status,
        code,
        kind: "bad_request",
        detail,
        retry_after: None,
        allow: None,
    }
}

impl ProxyError {
    /// More requests in flight than `max_in_flight`.
    pub const OVERLOADED: ProxyError = ProxyError {
        status: 503,
        code: "OVERLOADED",
        kind: "overloaded",
        detail: "the sidecar has too many requests in flight; retry shortly",
        retry_after: Some(1),
        allow: None,
    };

    /// The request could not be read as HTTP (for example a malformed chunked body).
    pub const BAD_REQUEST: ProxyError =
        refusal(400, "BAD_REQUEST", "the request is not valid HTTP");

    /// The request head did not arrive within `downstream.header_timeout`.
    pub const REQUEST_TIMEOUT: ProxyError = refusal(
        408,
        "REQUEST_TIMEOUT",
        "the request head did not arrive in time",
    );

    /// The request target is longer than `downstream.max_target_bytes`.
    pub const URI_TOO_LONG: ProxyError =
        refusal(414, "URI_TOO_LONG", "the request target is too long");

    /// The head is larger than `downstream.max_header_bytes` or has too many fields.
    pub const HEADERS_TOO_LARGE: ProxyError = refusal(
        431,
        "REQUEST_HEADER_FIELDS_TOO_LARGE",
        "the request head is too large",
    );

    /// An `Expect` other than `100-continue` (RFC 9110 §10.1.1).
    pub const EXPECTATION_FAILED: ProxyError = refusal(
        417,
        "EXPECTATION_FAILED",
        "the proxy meets no expectation but 100-continue",
    );

    /// A transfer coding other than `chunked` (RFC 9112 §6.1).
    pub const NOT_IMPLEMENTED: ProxyError = refusal(
        501,
        "NOT_IMPLEMENTED",
        "the request uses a transfer coding the proxy does not implement",
    );

    /// A request line naming HTTP/2 or later on an HTTP/1 connection.
    pub const VERSION_NOT_SUPPORTED: ProxyError = refusal(
        505,
        "HTTP_VERSION_NOT_SUPPORTED",
        "the HTTP version is not supported",
    );

    /// CONNECT: statuscope observes a service, it is not a tunnel.
    pub const METHOD_NOT_ALLOWED: ProxyError = ProxyError {
        allow: Some("GET, HEAD, POST, PUT, DELETE, OPTIONS, TRACE, PATCH"),
        ..refusal(405, "METHOD_NOT_ALLOWED", "CONNECT is not proxied")
    };

    /// A fault inside the proxy.
    pub const INTERNAL: ProxyError = ProxyError {
        status: 500,
        code: "INTERNAL_ERROR",
        kind: "internal",
        detail: "the sidecar failed to handle the request",
        retry_after: None,
        allow: None,
    };

    /// The answer for a failure talking to the upstream.
    pub fn upstream(kind: UpstreamErrorKind) -> ProxyError {
        let (status, code, detail) = match kind {
            UpstreamErrorKind::ConnectRefused => (
                502,
                "UPSTREAM_UNAVAILABLE",
                "the upstream refused the connection or is unreachable",
            ),
            UpstreamErrorKind::ConnectTimeout => (
                504,
                "UPSTREAM_TIMEOUT",
                "no connection to the upstream within the connect timeout",
            ),
            UpstreamErrorKind::ReadTimeout => (
                504,
                "UPSTREAM_TIMEOUT",
                "the upstream did not answer within the read timeout",
            ),
            UpstreamErrorKind::WriteTimeout => (
                504,
                "UPSTREAM_TIMEOUT",
                "the upstream did not accept the request within the write timeout",
            ),
            UpstreamErrorKind::ResponseTimeout => (
                504,
                "UPSTREAM_TIMEOUT",
                "the upstream did not finish its response within the response timeout",
            ),
            UpstreamErrorKind::Truncated => (
                502,
                "UPSTREAM_TRUNCATED",
                "the upstream closed the connection before the end of its response",
            ),
            UpstreamErrorKind::Reset => (
                502,
                "UPSTREAM_RESET",
                "the upstream closed the connection before answering",
            ),
            UpstreamErrorKind::Other => (
                502,
                "UPSTREAM_ERROR",
                "the upstream sent an invalid response",
            ),
        };
        ProxyError {
            status,
            code,
            kind: kind.as_str(),
            detail,
            retry_after: None,
            allow: None,
        }
    }

    /// The answer for a pingora error, or `None` when the client is gone and nothing can be sent.
    pub fn for_error(error: &pingora::Error) -> Option<ProxyError> {
        // Only called before anything was sent to the client.
        if let Some(kind) = UpstreamErrorKind::of(error, false) {
            return Some(Self::upstream(kind));
        }
        match (error.esource(), error.etype()) {
            (_, ErrorType::HTTPStatus(400)) => Some(Self::BAD_REQUEST),
            (
                ErrorSource::Downstream,
                ErrorType::ReadError
                | ErrorType::WriteError
                | ErrorType::ConnectionClosed
                | ErrorType::H2Error,
            ) => None,
            (ErrorSource::Downstream, _) => Some(Self::BAD_REQUEST),
            _ => Some(Self::INTERNAL),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Bytes {
        self.body_with_detail(self.detail)
    }

    /// The JSON body with a more precise `details` line than the default one.
    pub fn body_with_detail(&self, detail: &str) -> Bytes {
        let body = serde_json::json!({ "code": self.code, "details": [detail] });
        Bytes::from(body.to_string())
    }

    /// The whole HTTP/1.1 response, closing the connection, for answers written straight to a
    /// socket without a pingora session.
    pub fn to_http1(self, detail: &str) -> pingora::Result<Vec<u8>> {
        self.to_http1_keeping(detail, false)
    }

    /// The whole HTTP/1.1 response; with `keep_alive`, the connection stays open after it.
    pub fn to_http1_keeping(self, detail: &str, keep_alive: bool) -> pingora::Result<Vec<u8>> {
        let body = self.body_with_detail(detail);
        let mut header = self.header(body.len())?;
        if !keep_alive {
            header.insert_header(http::header::CONNECTION, "close")?;
        }
        let reason = header.status.canonical_reason().unwrap_or("");
        let mut wire = format!("HTTP/1.1 {} {reason}\r\n", self.status).into_bytes();
        for (name, value) in header.headers.iter() {
            wire.extend_from_slice(name.as_str().as_bytes());
            wire.extend_from_slice(b": ");
            wire.extend_from_slice(value.as_bytes());
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"\r\n");
        wire.extend_from_slice(&body);
        Ok(wire)
    }

    /// The code a gRPC client sees for this answer: UNAVAILABLE for an upstream it could not
    /// reach or that failed (a retry may succeed), DEADLINE_EXCEEDED for a timeout.
    pub fn grpc_code(&self) -> GrpcCode {
        GrpcCode::for_http_status(self.status)
    }

    /// The HTTP status this answer goes out with: its own, or 200 for a gRPC call, whose
    /// outcome is in `grpc-status`.
    pub fn status_sent(&self, grpc: bool) -> u16 {
        if grpc {
            200
        } else {
            self.status
        }
    }

    /// The header fields of this answer: for a gRPC call (`grpc`) a trailers-only response
    /// (HTTP 200, `grpc-status` and `grpc-message` in the head, no body), which is what gRPC
    /// client libraries read — a JSON 502 would reach the application as an opaque transport
    /// error; otherwise the fields of a JSON body of `body_len` bytes.
    pub fn fields(&self, grpc: bool, body_len: usize) -> Vec<(&'static str, String)> {
        if grpc {
            return vec![
                ("content-type", "application/grpc".into()),
                ("grpc-status", self.grpc_code().number().to_string()),
                ("grpc-message", grpc::encode_message(self.detail)),
                (ERROR_HEADER, self.kind.into()),
            ];
        }
        let mut fields = vec![
            ("content-type", "application/json".into()),
            ("content-length", body_len.to_string()),
            ("cache-control", "no-store".into()),
            (ERROR_HEADER, self.kind.into()),
        ];
        if let Some(methods) = self.allow {
            fields.push(("allow", methods.into()));
        }
        if let Some(seconds) = self.retry_after {
            fields.push(("retry-after", seconds.to_string()));
        }
        fields
    }

    /// This answer for a gRPC call, as a pingora response header (see [`ProxyError::fields`]).
    pub fn grpc_header(&self) -> pingora::Result<ResponseHeader> {
        self.response_header(200, true, 0)
    }

    /// The response header for a body of `body_len` bytes.
    pub fn header(&self, body_len: usize) -> pingora::Result<ResponseHeader> {
        self.response_header(self.status, false, body_len)
    }

    fn response_header(
        &self,
        status: u16,
        grpc: bool,
        body_len: usize,
    ) -> pingora::Result<ResponseHeader> {
        let fields = self.fields(grpc, body_len);
        let mut header = ResponseHeader::build(status, Some(fields.len()))?;
        for (name, value) in fields {
            header.insert_header(name, value)?;
        }
        Ok(header)
    }
}

/// Every answer statuscope makes itself, with the situation that makes it: the source of
/// `docs/answers.md` (`statuscope reference answers`), which the README links.
const SITUATIONS: &[(&str, Answer)] = &[
    ("the upstream refused the connection or is unreachable", Answer::Upstream(UpstreamErrorKind::ConnectRefused)),
    ("no connection within `timeouts.connect`", Answer::Upstream(UpstreamErrorKind::ConnectTimeout)),
    ("the upstream did not answer within `timeouts.read`", Answer::Upstream(UpstreamErrorKind::ReadTimeout)),
    ("the upstream did not take the request within `timeouts.write`", Answer::Upstream(UpstreamErrorKind::WriteTimeout)),
    ("the upstream's head did not come within `timeouts.response` (after the head, the connection is closed instead)", Answer::Upstream(UpstreamErrorKind::ResponseTimeout)),
    ("the upstream closed the connection before answering", Answer::Upstream(UpstreamErrorKind::Reset)),
    ("the upstream sent an invalid response", Answer::Upstream(UpstreamErrorKind::Other)),
    ("more than `max_in_flight` requests at once", Answer::Own(ProxyError::OVERLOADED)),
    ("a malformed or ambiguous request (see the README)", Answer::Own(ProxyError::BAD_REQUEST)),
    ("the request head not complete within `downstream.header_timeout`", Answer::Own(ProxyError::REQUEST_TIMEOUT)),
    ("a request target over `downstream.max_target_bytes`", Answer::Own(ProxyError::URI_TOO_LONG)),
    ("a head over `downstream.max_header_bytes` or `downstream.max_headers`", Answer::Own(ProxyError::HEADERS_TOO_LARGE)),
    ("`CONNECT` (statuscope is not a tunnel)", Answer::Own(ProxyError::METHOD_NOT_ALLOWED)),
    ("an `Expect` other than `100-continue`", Answer::Own(ProxyError::EXPECTATION_FAILED)),
    ("a transfer coding other than `chunked`", Answer::Own(ProxyError::NOT_IMPLEMENTED)),
    ("a request line naming HTTP/2 or later", Answer::Own(ProxyError::VERSION_NOT_SUPPORTED)),
    ("a fault inside statuscope", Answer::Own(ProxyError::INTERNAL)),
];

/// An entry of [`SITUATIONS`]: a failure talking to the upstream, or one of the fixed answers.
enum Answer {
    Upstream(UpstreamErrorKind),
    Own(ProxyError),
}

/// `docs/answers.md`: every answer statuscope makes itself, generated from `SITUATIONS` and
/// the answers' definitions above.
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Answers statuscope makes itself\n\n\
         Generated from `src/proxy/error_response.rs` by `statuscope reference answers` (`make docs`); \
         a test fails when this file is stale.\n\n\
         When statuscope answers instead of the service, the response says so: a JSON body \
         `{\"code\": \"…\", \"details\": [\"…\"]}` and a header `statuscope-error: <kind>`. \
         A gRPC client gets the same as trailers-only `grpc-status` and `grpc-message` \
         (see [grpc.md](grpc.md)).\n\n\
         | situation | status | `code` | `statuscope-error` | `details` |\n|---|---|---|---|---|\n",
    );
    for (situation, answer) in SITUATIONS {
        let error = match answer {
            Answer::Upstream(kind) => ProxyError::upstream(*kind),
            Answer::Own(error) => *error,
        };
        let mut status = error.status.to_string();
        if let Some(seconds) = error.retry_after {
            status.push_str(&format!(" + `Retry-After: {seconds}`"));
        }
        if error.allow.is_some() {
            status.push_str(" + `Allow`");
        }
        out.push_str(&format!(
            "| {situation} | {status} | `{}` | `{}` | {} |\n",
            error.code, error.kind, error.detail
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_504_and_refusals_502() {
        assert_eq!(
            ProxyError::upstream(UpstreamErrorKind::ReadTimeout).status,
            504
        );
        assert_eq!(
            ProxyError::upstream(UpstreamErrorKind::ConnectTimeout).status,
            504
        );
        assert_eq!(
            ProxyError::upstream(UpstreamErrorKind::ConnectRefused).status,
            502
        );
    }

    #[test]
    fn body_has_the_structured_shape() {
        let body = ProxyError::OVERLOADED.body();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["code"], "OVERLOADED");
        assert!(value["details"][0].as_str().unwrap().contains("retry"));
    }

    #[test]
    fn a_grpc_call_gets_a_trailers_only_answer_with_the_code_its_client_expects() {
        let refused = ProxyError::upstream(UpstreamErrorKind::ConnectRefused);
        let header = refused.grpc_header().unwrap();
        assert_eq!(header.status, 200);
        let field = |name| header.headers.get(name).unwrap().to_str().unwrap();
        assert_eq!(field("content-type"), "application/grpc");
        assert_eq!(field("grpc-status"), "14");
        assert_eq!(field("grpc-message"), refused.detail);
        assert_eq!(field(ERROR_HEADER), "connect_refused");
        let timeout = ProxyError::upstream(UpstreamErrorKind::ResponseTimeout);
        assert_eq!(timeout.grpc_code(), GrpcCode::DeadlineExceeded);
        assert_eq!(ProxyError::OVERLOADED.grpc_code(), GrpcCode::Unavailable);
    }

    #[test]
    fn a_gone_client_gets_nothing() {
        let gone = pingora::Error::explain(ErrorType::WriteError, "x").into_down();
        assert_eq!(ProxyError::for_error(&gone), None);
    }
}
