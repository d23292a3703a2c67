//! The demo service: a small API answering a realistic mix of codes on a few routes, slowly or
//! not at all now and then, so every origin (service, proxy, client) shows up in the tallies.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// A tiny xorshift generator: the demo needs variety, not cryptographic randomness.
pub struct Dice(AtomicU64);

impl Dice {
    /// A generator seeded from `seed` (never zero).
    pub fn new(seed: u64) -> Self {
        Dice(AtomicU64::new(seed | 1))
    }

    /// A number in `0..n`.
    pub fn roll(&self, n: u64) -> u64 {
        let mut x = self.0.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0.store(x, Ordering::Relaxed);
        x % n
    }
}

/// Serves the demo API on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener) {
    let dice: &'static Dice = Box::leak(Box::new(Dice::new(0x5eed_cafe)));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(request, dice));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn json(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

fn with_header(
    mut response: Response<Full<Bytes>>,
    name: header::HeaderName,
    value: &'static str,
) -> Response<Full<Bytes>> {
    response
        .headers_mut()
        .insert(name, header::HeaderValue::from_static(value));
    response
}

async fn answer(
    request: Request<Incoming>,
    dice: &Dice,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path();
    let method = request.method().clone();
    let roll = dice.roll(100);
    let response = match (method, path) {
        (_, "/health") => json(StatusCode::OK, r#"{"status":"up"}"#),
        (Method::GET, p) if p.starts_with("/users/") => match roll {
            0..=79 => json(StatusCode::OK, r#"{"id":101,"name":"Alice"}"#),
            80..=94 => json(
                StatusCode::NOT_FOUND,
                r#"{"code":"NOT_FOUND","details":["no such user"]}"#,
            ),
            _ => json(
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"code":"INTERNAL","details":["database unavailable"]}"#,
            ),
        },
        (Method::GET, "/orders") => json(StatusCode::OK, r#"{"orders":[]}"#),
        (Method::POST, "/orders") => match roll {
            0..=84 => with_header(
                json(StatusCode::CREATED, r#"{"id":7}"#),
                header::LOCATION,
                "/orders/7",
            ),
            85..=94 => json(
                StatusCode::UNPROCESSABLE_ENTITY,
                r#"{"code":"VALIDATION_ERROR","details":["quantity must be positive"]}"#,
            ),
            _ => with_header(
                json(
                    StatusCode::TOO_MANY_REQUESTS,
                    r#"{"code":"RATE_LIMITED","details":["slow down"]}"#,
                ),
                header::RETRY_AFTER,
                "5",
            ),
        },
        (Method::POST, "/login") => match roll {
            0..=69 => json(StatusCode::OK, r#"{"token":"abcd1234"}"#),
            _ => with_header(
                json(
                    StatusCode::UNAUTHORIZED,
                    r#"{"code":"INVALID_CREDENTIALS"}"#,
                ),
                header::WWW_AUTHENTICATE,
                "Bearer",
            ),
        },
        (Method::GET, "/reports") => {
            // Now and then far slower than the proxy's read timeout: the proxy answers 504.
            if roll < 10 {
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            json(StatusCode::OK, r#"{"report":"ok"}"#)
        }
        (Method::GET, "/export") => {
            // Slower than the demo client waits: it hangs up and statuscope tallies a 499.
            tokio::time::sleep(Duration::from_millis(800)).await;
            json(StatusCode::OK, r#"{"export":"done"}"#)
        }
        (Method::GET, "/old-home") => with_header(
            json(StatusCode::MOVED_PERMANENTLY, "{}"),
            header::LOCATION,
            "/home",
        ),
        _ => json(
            StatusCode::NOT_FOUND,
            r#"{"code":"NOT_FOUND","details":["no such route"]}"#,
        ),
    };
    Ok(response)
}
