//! Responses statuscope makes itself: correct HTTP, a JSON body in the shape
//! `{"code": "...", "details": ["..."]}`, and a `statuscope-error` header naming the kind, so
//! nobody mistakes them for the service's own answers.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::{ErrorSource, ErrorType};

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
}

impl ProxyError {
    /// More requests in flight than `max_in_flight`.
    pub const OVERLOADED: ProxyError = ProxyError {
        status: 503,
        code: "OVERLOADED",
        kind: "overloaded",
        detail: "the sidecar has too many requests in flight; retry shortly",
        retry_after: Some(1),
    };

    /// The request could not be read as HTTP (for example a malformed chunked body).
    pub const BAD_REQUEST: ProxyError = ProxyError {
        status: 400,
        code: "BAD_REQUEST",
        kind: "bad_request",
        detail: "the request is not valid HTTP",
        retry_after: None,
    };

    /// A fault inside the proxy.
    pub const INTERNAL: ProxyError = ProxyError {
        status: 500,
        code: "INTERNAL_ERROR",
        kind: "internal",
        detail: "the sidecar failed to handle the request",
        retry_after: None,
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
        }
    }

    /// The answer for a pingora error, or `None` when the client is gone and nothing can be sent.
    pub fn for_error(error: &pingora::Error) -> Option<ProxyError> {
        if let Some(kind) = UpstreamErrorKind::of(error) {
            return Some(Self::upstream(kind));
        }
        match (error.esource(), error.etype()) {
            (_, ErrorType::HTTPStatus(400)) => Some(Self::BAD_REQUEST),
            (
                ErrorSource::Downstream,
                ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed,
            ) => None,
            (ErrorSource::Downstream, _) => Some(Self::BAD_REQUEST),
            _ => Some(Self::INTERNAL),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Bytes {
        let body = serde_json::json!({ "code": self.code, "details": [self.detail] });
        Bytes::from(body.to_string())
    }

    /// The response header for a body of `body_len` bytes.
    pub fn header(&self, body_len: usize) -> pingora::Result<ResponseHeader> {
        let mut header = ResponseHeader::build(self.status, Some(5))?;
        header.insert_header(http::header::CONTENT_TYPE, "application/json")?;
        header.insert_header(http::header::CONTENT_LENGTH, body_len.to_string())?;
        header.insert_header(http::header::CACHE_CONTROL, "no-store")?;
        header.insert_header(ERROR_HEADER, self.kind)?;
        if let Some(seconds) = self.retry_after {
            header.insert_header(http::header::RETRY_AFTER, seconds.to_string())?;
        }
        Ok(header)
    }
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
    fn a_gone_client_gets_nothing() {
        let gone = pingora::Error::explain(ErrorType::WriteError, "x").into_down();
        assert_eq!(ProxyError::for_error(&gone), None);
    }
}
