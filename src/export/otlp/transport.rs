//! One export POSTed to the collector (OTLP/HTTP, protobuf), and what its answer means under
//! the OTLP specification: 2xx taken (perhaps partly), 429, 502, 503 and 504 retryable (after
//! `Retry-After` when given), any other status final, a connection that fails or times out
//! retryable.

use std::io::Write as _;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http::{HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use prost::Message;

use super::settings::{Compression, OtlpSettings};

/// The most of a collector's answer read: an `ExportMetricsServiceResponse` or an error.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The longest `Retry-After` obeyed: a collector asking for more is asked again sooner.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// How one export went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Taken; `rejected` points the collector refused in a partial success.
    Taken {
        /// Data points refused (`partial_success.rejected_data_points`).
        rejected: i64,
    },
    /// Worth trying again, after `after` when the collector said so.
    Retry {
        /// What went wrong, for the log.
        reason: String,
        /// `Retry-After`, when given.
        after: Option<Duration>,
    },
    /// Refused for good: trying the same request again would fail again.
    Refused {
        /// The collector's status.
        status: StatusCode,
    },
}

/// A pooled HTTP/1.1 client for the collector.
pub struct Transport {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Transport {
    /// A client keeping its connection to the collector open between exports.
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Transport {
            client: Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(1)
                .build(connector),
        }
    }

    /// POSTs `body` (an encoded `ExportMetricsServiceRequest`) under `settings`.
    pub async fn send(
        &self,
        body: &Bytes,
        settings: &OtlpSettings,
        files: &[(http::HeaderName, HeaderValue)],
    ) -> Sent {
        let request = match request(body, settings, files) {
            Ok(request) => request,
            Err(reason) => {
                return Sent::Retry {
                    reason,
                    after: None,
                }
            }
        };
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("{e}"))?;
            let status = response.status();
            let retry_after = response.headers().get(RETRY_AFTER).and_then(retry_after);
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map(|collected| collected.to_bytes())
                .unwrap_or_default();
            Ok::<_, String>((status, retry_after, body))
        };
        match tokio::time::timeout(settings.timeout, exchange).await {
            Err(_) => Sent::Retry {
                reason: format!("no answer within {:?}", settings.timeout),
                after: None,
            },
            Ok(Err(reason)) => Sent::Retry {
                reason,
                after: None,
            },
            Ok(Ok((status, after, body))) => judge(status, after, &body),
        }
    }
}

fn request(
    body: &Bytes,
    settings: &OtlpSettings,
    files: &[(http::HeaderName, HeaderValue)],
) -> Result<Request<Full<Bytes>>, String> {
    let mut builder = Request::post(settings.endpoint.clone())
        .header(CONTENT_TYPE, "application/x-protobuf")
        .header(
            USER_AGENT,
            concat!("statuscope/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in settings.headers.iter().chain(files) {
        builder = builder.header(name, value);
    }
    let body = match settings.compression {
        Compression::None => body.clone(),
        Compression::Gzip => {
            builder = builder.header(CONTENT_ENCODING, "gzip");
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder
                .write_all(body)
                .and_then(|()| encoder.finish())
                .map(Bytes::from)
                .map_err(|e| format!("cannot compress: {e}"))?
        }
    };
    builder
        .body(Full::new(body))
        .map_err(|e| format!("cannot build the request: {e}"))
}

/// The OTLP specification's reading of a collector's answer.
fn judge(status: StatusCode, after: Option<Duration>, body: &[u8]) -> Sent {
    match status.as_u16() {
        200..=299 => Sent::Taken {
            rejected: ExportMetricsServiceResponse::decode(body)
                .ok()
                .and_then(|answer| answer.partial_success)
                .map_or(0, |partial| partial.rejected_data_points),
        },
        429 | 502 | 503 | 504 => Sent::Retry {
            reason: format!("the collector answered {status}"),
            after,
        },
        _ => Sent::Refused { status },
    }
}

/// `Retry-After` as seconds or an HTTP date, at most [`MAX_RETRY_AFTER`].
fn retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    let after = match text.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(text)
            .ok()?
            .duration_since(SystemTime::now())
            .unwrap_or_default(),
    };
    Some(after.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_the_otlp_specification_says() {
        assert_eq!(
            judge(StatusCode::OK, None, b""),
            Sent::Taken { rejected: 0 }
        );
        for code in [429, 502, 503, 504] {
            let status = StatusCode::from_u16(code).unwrap();
            assert!(
                matches!(judge(status, None, b""), Sent::Retry { .. }),
                "{code}"
            );
        }
        for code in [400, 401, 403, 404, 413, 500, 501] {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(judge(status, None, b""), Sent::Refused { status }, "{code}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates_and_is_capped() {
        let seconds = HeaderValue::from_static("7");
        assert_eq!(retry_after(&seconds), Some(Duration::from_secs(7)));
        let far = HeaderValue::from_static("100000");
        assert_eq!(retry_after(&far), Some(MAX_RETRY_AFTER));
        let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(60));
        let after = retry_after(&HeaderValue::try_from(date).unwrap()).unwrap();
        assert!(
            after <= Duration::from_secs(60) && after >= Duration::from_secs(58),
            "{after:?}"
        );
        assert_eq!(retry_after(&HeaderValue::from_static("soon")), None);
    }

    #[test]
    fn a_partial_success_reports_the_rejected_points() {
        let answer = ExportMetricsServiceResponse {
            partial_success: Some(
                opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsPartialSuccess {
                    rejected_data_points: 3,
                    error_message: "bad".into(),
                },
            ),
        };
        let body = answer.encode_to_vec();
        assert_eq!(
            judge(StatusCode::OK, None, &body),
            Sent::Taken { rejected: 3 }
        );
    }
}
