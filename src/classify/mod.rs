//! Classification: turns one finished exchange into the bounded label values we record —
//! status class, method, origin, route template, upstream error kind and a gRPC call's code.

pub mod grpc;
pub mod route;

use pingora::{ErrorSource, ErrorType};

/// Who produced the status a client saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The service behind the proxy answered.
    Upstream,
    /// Statuscope answered itself (upstream failure, overload, malformed request).
    Proxy,
    /// The client went away before the response was complete (tallied as 499).
    Client,
}

impl Origin {
    /// The `origin` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Upstream => "upstream",
            Origin::Proxy => "proxy",
            Origin::Client => "client",
        }
    }
}

/// The HTTP version a client spoke: the `http_version` label of the duration histogram, and
/// OpenTelemetry's `network.protocol.version` in the OTLP push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpVersion {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1, and what a request whose version could not be read is counted as.
    #[default]
    Http11,
    /// HTTP/2 (h2c).
    Http2,
}

impl HttpVersion {
    /// The label value, as OpenTelemetry writes `network.protocol.version`.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Http10 => "1.0",
            HttpVersion::Http11 => "1.1",
            HttpVersion::Http2 => "2",
        }
    }

    /// An HTTP/1 request head's version, from whether it said `HTTP/1.0`.
    #[inline]
    pub fn of_http1(http10: bool) -> HttpVersion {
        if http10 {
            HttpVersion::Http10
        } else {
            HttpVersion::Http11
        }
    }

    /// The version of a request head (HTTP/0.9 and anything unknown count as 1.1: a head
    /// statuscope read was answered in HTTP/1.1 framing).
    pub fn of(version: http::Version) -> HttpVersion {
        match version {
            http::Version::HTTP_10 => HttpVersion::Http10,
            http::Version::HTTP_2 => HttpVersion::Http2,
            _ => HttpVersion::Http11,
        }
    }
}

/// nginx's convention for "client closed request": never sent on the wire, only tallied.
pub const CLIENT_CLOSED_REQUEST: u16 = 499;

/// The `class` label for a status code: `1xx` to `5xx`, or `invalid` outside 100–599.
pub fn status_class(code: u16) -> &'static str {
    match code {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "invalid",
    }
}

/// The `method` label: one of the methods RFC 9110 and RFC 5789 define, or `_OTHER`, so an
/// invented method cannot create a series.
pub fn method_label(method: &http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "PATCH" => "PATCH",
        _ => "_OTHER",
    }
}

/// Why talking to the upstream failed; the `kind` label of `statuscope_upstream_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    /// The upstream refused the connection, or is unreachable.
    ConnectRefused,
    /// No connection was established within `timeouts.connect`.
    ConnectTimeout,
    /// A read from the upstream took longer than `timeouts.read`.
    ReadTimeout,
    /// A write to the upstream took longer than `timeouts.write`.
    WriteTimeout,
    /// The whole response took longer than `timeouts.response` (an upstream that trickles).
    ResponseTimeout,
    /// The upstream reset the connection, or closed it before answering.
    Reset,
    /// The upstream closed the connection before the end of the body it announced.
    Truncated,
    /// Anything else: a malformed response, a socket error.
    Other,
}

impl UpstreamErrorKind {
    /// Every kind, so each series exists from start-up (rates of absent series are invisible).
    pub const ALL: [UpstreamErrorKind; 8] = [
        UpstreamErrorKind::ConnectRefused,
        UpstreamErrorKind::ConnectTimeout,
        UpstreamErrorKind::ReadTimeout,
        UpstreamErrorKind::WriteTimeout,
        UpstreamErrorKind::ResponseTimeout,
        UpstreamErrorKind::Reset,
        UpstreamErrorKind::Truncated,
        UpstreamErrorKind::Other,
    ];

    /// The pingora error statuscope raises when `timeouts.response` runs out mid-body.
    pub fn response_timeout_error() -> Box<pingora::Error> {
        pingora::Error::explain(RESPONSE_TIMED_OUT, "timeouts.response ran out").into_up()
    }

    /// The `kind` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamErrorKind::ConnectRefused => "connect_refused",
            UpstreamErrorKind::ConnectTimeout => "connect_timeout",
            UpstreamErrorKind::ReadTimeout => "read_timeout",
            UpstreamErrorKind::WriteTimeout => "write_timeout",
            UpstreamErrorKind::ResponseTimeout => "response_timeout",
            UpstreamErrorKind::Reset => "reset",
            UpstreamErrorKind::Truncated => "truncated",
            UpstreamErrorKind::Other => "other",
        }
    }

    /// Classifies a pingora error whose source is the upstream; `None` for any other source.
    /// `mid_body`: the upstream's response head had already been passed on, so a closed
    /// connection cut its body short.
    pub fn of(error: &pingora::Error, mid_body: bool) -> Option<Self> {
        if *error.esource() != ErrorSource::Upstream {
            return None;
        }
        Some(match error.etype() {
            ErrorType::ConnectRefused | ErrorType::ConnectNoRoute => Self::ConnectRefused,
            ErrorType::ConnectTimedout => Self::ConnectTimeout,
            ErrorType::ReadTimedout => Self::ReadTimeout,
            ErrorType::WriteTimedout => Self::WriteTimeout,
            &RESPONSE_TIMED_OUT => Self::ResponseTimeout,
            ErrorType::ConnectionClosed if mid_body => Self::Truncated,
            ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError => {
                Self::Reset
            }
            _ => Self::Other,
        })
    }
}

const RESPONSE_TIMED_OUT: ErrorType = ErrorType::new("UpstreamResponseTimedout");

/// True when a pingora error means the client's connection is gone, so no answer can reach it
/// (an HTTP/2 client that reset its stream, cancelling a gRPC call, among them).
pub fn is_client_gone(error: &pingora::Error) -> bool {
    *error.esource() == ErrorSource::Downstream
        && matches!(
            error.etype(),
            ErrorType::ReadError
                | ErrorType::WriteError
                | ErrorType::ConnectionClosed
                | ErrorType::H2Error
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_the_registered_range_only() {
        assert_eq!(status_class(100), "1xx");
        assert_eq!(status_class(299), "2xx");
        assert_eq!(status_class(499), "4xx");
        assert_eq!(status_class(599), "5xx");
        assert_eq!(status_class(99), "invalid");
        assert_eq!(status_class(600), "invalid");
    }

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label(&http::Method::PATCH), "PATCH");
        let invented = http::Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&invented), "_OTHER");
    }

    #[test]
    fn upstream_errors_map_to_their_kind() {
        let refused = pingora::Error::explain(ErrorType::ConnectRefused, "x").into_up();
        assert_eq!(
            UpstreamErrorKind::of(&refused, false),
            Some(UpstreamErrorKind::ConnectRefused)
        );
        let timeout = pingora::Error::explain(ErrorType::ReadTimedout, "x").into_up();
        assert_eq!(
            UpstreamErrorKind::of(&timeout, false),
            Some(UpstreamErrorKind::ReadTimeout)
        );
        let downstream = pingora::Error::explain(ErrorType::ReadError, "x").into_down();
        assert_eq!(UpstreamErrorKind::of(&downstream, false), None);
        assert!(is_client_gone(&downstream));
    }
}
