//! gRPC classification: which requests are gRPC calls, and the bounded `grpc_code` label of a
//! call's outcome — its `grpc-status`, whichever of the trailers or a trailers-only head carried
//! it, or what the call ended as when the proxy or the client ended it first.
//!
//! A gRPC call is an HTTP/2 request whose `content-type` is `application/grpc` or
//! `application/grpc+<codec>` (the gRPC over HTTP/2 protocol). gRPC-Web, which frames its
//! status inside the body so that HTTP/1 can carry it, is not a gRPC call here: it is tallied
//! and judged as the HTTP exchange it is.

use std::fmt::Write as _;
use std::time::Duration;

/// A gRPC status code (the `grpc-status` values 0–16 of the gRPC status code registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum GrpcCode {
    /// 0: not an error.
    Ok = 0,
    /// 1: the call was cancelled, typically by the caller.
    Cancelled,
    /// 2: an error without a better code, and the code of a call whose status is missing or
    /// unreadable.
    Unknown,
    /// 3: the client sent an invalid argument.
    InvalidArgument,
    /// 4: the deadline passed before the call completed.
    DeadlineExceeded,
    /// 5: a requested entity was not found.
    NotFound,
    /// 6: the entity the client tried to create exists.
    AlreadyExists,
    /// 7: the caller may not do this.
    PermissionDenied,
    /// 8: a resource (a quota, the server's capacity) is exhausted.
    ResourceExhausted,
    /// 9: the system is not in the state the operation needs.
    FailedPrecondition,
    /// 10: the operation was aborted (a concurrency conflict).
    Aborted,
    /// 11: the operation went past the valid range.
    OutOfRange,
    /// 12: the method is not implemented or not supported.
    Unimplemented,
    /// 13: an invariant of the server broke.
    Internal,
    /// 14: the service is unavailable for now; retrying may succeed.
    Unavailable,
    /// 15: unrecoverable data loss or corruption.
    DataLoss,
    /// 16: the request has no valid credentials.
    Unauthenticated,
}

impl GrpcCode {
    /// Every code, in numeric order.
    pub const ALL: [GrpcCode; 17] = [
        GrpcCode::Ok,
        GrpcCode::Cancelled,
        GrpcCode::Unknown,
        GrpcCode::InvalidArgument,
        GrpcCode::DeadlineExceeded,
        GrpcCode::NotFound,
        GrpcCode::AlreadyExists,
        GrpcCode::PermissionDenied,
        GrpcCode::ResourceExhausted,
        GrpcCode::FailedPrecondition,
        GrpcCode::Aborted,
        GrpcCode::OutOfRange,
        GrpcCode::Unimplemented,
        GrpcCode::Internal,
        GrpcCode::Unavailable,
        GrpcCode::DataLoss,
        GrpcCode::Unauthenticated,
    ];

    /// The codes OpenTelemetry's gRPC semantic conventions count as server errors (the span
    /// status of a server span is Error for exactly these); the gRPC SLO's error ratio is
    /// built on this set.
    pub const SERVER_ERRORS: [GrpcCode; 6] = [
        GrpcCode::Unknown,
        GrpcCode::DeadlineExceeded,
        GrpcCode::Unimplemented,
        GrpcCode::Internal,
        GrpcCode::Unavailable,
        GrpcCode::DataLoss,
    ];

    /// The canonical name: the `grpc_code` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            GrpcCode::Ok => "OK",
            GrpcCode::Cancelled => "CANCELLED",
            GrpcCode::Unknown => "UNKNOWN",
            GrpcCode::InvalidArgument => "INVALID_ARGUMENT",
            GrpcCode::DeadlineExceeded => "DEADLINE_EXCEEDED",
            GrpcCode::NotFound => "NOT_FOUND",
            GrpcCode::AlreadyExists => "ALREADY_EXISTS",
            GrpcCode::PermissionDenied => "PERMISSION_DENIED",
            GrpcCode::ResourceExhausted => "RESOURCE_EXHAUSTED",
            GrpcCode::FailedPrecondition => "FAILED_PRECONDITION",
            GrpcCode::Aborted => "ABORTED",
            GrpcCode::OutOfRange => "OUT_OF_RANGE",
            GrpcCode::Unimplemented => "UNIMPLEMENTED",
            GrpcCode::Internal => "INTERNAL",
            GrpcCode::Unavailable => "UNAVAILABLE",
            GrpcCode::DataLoss => "DATA_LOSS",
            GrpcCode::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The numeric value, as `grpc-status` carries it.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The code a `grpc-status` value names: an integer 0–16 in decimal digits, nothing else
    /// (no sign, no spaces, no leading zeros beyond the digit 0 itself).
    pub fn parse(value: &[u8]) -> Option<GrpcCode> {
        let number = match value {
            [digit @ b'0'..=b'9'] => digit - b'0',
            [b'1', digit @ b'0'..=b'6'] => 10 + (digit - b'0'),
            _ => return None,
        };
        GrpcCode::ALL.get(usize::from(number)).copied()
    }

    /// The call's code from its `grpc-status` field: `UNKNOWN` when it is missing or invalid,
    /// as a gRPC client library reports it.
    pub fn of_status(value: Option<&[u8]>) -> GrpcCode {
        value.and_then(GrpcCode::parse).unwrap_or(GrpcCode::Unknown)
    }

    /// The code gRPC clients derive from an HTTP status when a response carries no
    /// `grpc-status` (gRPC's "HTTP to gRPC status code mapping"), for the answers statuscope
    /// makes itself — except that a gateway timeout is the deadline it is, not UNAVAILABLE.
    pub fn for_http_status(status: u16) -> GrpcCode {
        match status {
            200 => GrpcCode::Ok,
            400 => GrpcCode::Internal,
            401 => GrpcCode::Unauthenticated,
            403 => GrpcCode::PermissionDenied,
            404 => GrpcCode::Unimplemented,
            504 => GrpcCode::DeadlineExceeded,
            429 | 502 | 503 => GrpcCode::Unavailable,
            _ => GrpcCode::Unknown,
        }
    }
}

/// Whether a request's `content-type` makes it a gRPC call: `application/grpc`, alone or with
/// a `+codec` suffix or parameters, compared without case. `application/grpc-web…` is not.
pub fn is_grpc_content_type(value: &[u8]) -> bool {
    const PREFIX: &[u8] = b"application/grpc";
    value.len() >= PREFIX.len()
        && value[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
        && matches!(value.get(PREFIX.len()), None | Some(b'+' | b';' | b' '))
}

/// The deadline a `grpc-timeout` value sets: up to eight digits and a unit (`H`, `M`, `S`,
/// `m`, `u`, `n`); `None` when the value is not of that form.
pub fn parse_timeout(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let amount = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(amount * 3600),
        b'M' => Duration::from_secs(amount * 60),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// When, from the arrival of a call with this `grpc-timeout`, a client that cancels it has
/// given up at its deadline rather than at will: the client counts its deadline from before it
/// sent the call and statuscope from the moment it took the call up, so by statuscope's clock a
/// reset at the deadline comes early by the time the call spent in between — tens of
/// milliseconds on a loaded node, and over 100 ms seen on the 2-core CI machine under the full
/// suite — so a quarter of the timeout, at most 250 ms, is allowed. Erring this way is the
/// safer: DEADLINE_EXCEEDED is a server error, CANCELLED is not.
pub fn deadline_after(timeout: Duration) -> Duration {
    timeout - (timeout / 4).min(Duration::from_millis(250))
}

/// `grpc-message` as sent, percent-decoded (gRPC percent-encodes every byte outside
/// printable ASCII and `%` itself); undecodable escapes are kept as they are.
pub fn decode_message(value: &[u8]) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(value.len());
    let mut at = 0;
    while at < value.len() {
        let escaped = match value[at..] {
            [b'%', high, low, ..] => hex(high).zip(hex(low)),
            _ => None,
        };
        match escaped {
            Some((high, low)) => {
                out.push(high << 4 | low);
                at += 3;
            }
            None => {
                out.push(value[at]);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `text` percent-encoded for `grpc-message`: printable ASCII but `%` as it is, every other
/// byte of its UTF-8 as `%XX`.
pub fn encode_message(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (b' '..=b'~').contains(&byte) && byte != b'%' {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_from_0_to_16_has_its_canonical_name() {
        for (number, code) in GrpcCode::ALL.iter().enumerate() {
            assert_eq!(usize::from(code.number()), number);
            assert_eq!(GrpcCode::parse(number.to_string().as_bytes()), Some(*code));
        }
        assert_eq!(GrpcCode::parse(b"5").unwrap().as_str(), "NOT_FOUND");
        assert_eq!(GrpcCode::parse(b"16").unwrap().as_str(), "UNAUTHENTICATED");
    }

    #[test]
    fn anything_but_a_plain_integer_0_to_16_is_invalid_and_counts_as_unknown() {
        for invalid in [
            &b"17"[..],
            b"-1",
            b"05",
            b" 5",
            b"5 ",
            b"OK",
            b"",
            b"1.0",
            b"100",
        ] {
            assert_eq!(GrpcCode::parse(invalid), None, "{invalid:?}");
            assert_eq!(GrpcCode::of_status(Some(invalid)), GrpcCode::Unknown);
        }
        assert_eq!(GrpcCode::of_status(None), GrpcCode::Unknown);
    }

    #[test]
    fn the_server_error_set_is_opentelemetry_s() {
        let names: Vec<_> = GrpcCode::SERVER_ERRORS.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "UNKNOWN",
                "DEADLINE_EXCEEDED",
                "UNIMPLEMENTED",
                "INTERNAL",
                "UNAVAILABLE",
                "DATA_LOSS"
            ]
        );
    }

    #[test]
    fn grpc_content_types_are_told_from_grpc_web_and_others() {
        assert!(is_grpc_content_type(b"application/grpc"));
        assert!(is_grpc_content_type(b"application/grpc+proto"));
        assert!(is_grpc_content_type(b"Application/GRPC+json"));
        assert!(is_grpc_content_type(b"application/grpc; charset=utf-8"));
        assert!(!is_grpc_content_type(b"application/grpc-web"));
        assert!(!is_grpc_content_type(b"application/grpc-web+proto"));
        assert!(!is_grpc_content_type(b"application/json"));
        assert!(!is_grpc_content_type(b"application/grp"));
    }

    #[test]
    fn timeouts_read_every_unit_and_refuse_the_rest() {
        assert_eq!(parse_timeout(b"100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_timeout(b"2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_timeout(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_timeout(b"3M"), Some(Duration::from_secs(180)));
        assert_eq!(
            parse_timeout(b"999999u"),
            Some(Duration::from_micros(999_999))
        );
        assert_eq!(parse_timeout(b"5n"), Some(Duration::from_nanos(5)));
        for invalid in [&b"m"[..], b"123456789S", b"10s", b"1.5S", b"", b"-1S"] {
            assert_eq!(parse_timeout(invalid), None, "{invalid:?}");
        }
    }

    #[test]
    fn a_reset_just_before_the_deadline_by_statuscope_s_clock_is_the_deadline() {
        assert_eq!(
            deadline_after(Duration::from_millis(300)),
            Duration::from_millis(225)
        );
        assert_eq!(
            deadline_after(Duration::from_secs(10)),
            Duration::from_millis(9750)
        );
        assert_eq!(deadline_after(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn messages_round_trip_through_percent_encoding() {
        let text = "no row «7» at 100%\n\tat Db.get";
        let encoded = encode_message(text);
        assert!(encoded.bytes().all(|b| (b' '..=b'~').contains(&b)));
        assert!(encoded.contains("%25") && encoded.contains("%0A"));
        assert_eq!(decode_message(encoded.as_bytes()), text);
        assert_eq!(decode_message(b"50%zz off"), "50%zz off");
    }

    #[test]
    fn proxy_answers_map_as_grpc_clients_read_them() {
        assert_eq!(GrpcCode::for_http_status(502), GrpcCode::Unavailable);
        assert_eq!(GrpcCode::for_http_status(503), GrpcCode::Unavailable);
        assert_eq!(GrpcCode::for_http_status(504), GrpcCode::DeadlineExceeded);
        assert_eq!(GrpcCode::for_http_status(400), GrpcCode::Internal);
        assert_eq!(GrpcCode::for_http_status(500), GrpcCode::Unknown);
    }
}
