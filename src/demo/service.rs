//! The demo service: a small API answering a realistic mix of codes on a few routes, slowly or
//! not at all now and then, so every origin (service, proxy, client) shows up in the tallies.
//! Some routes commit a status-code misuse — every rule in the catalogue is broken somewhere —
//! and others are correct look-alikes that must raise no finding.
//!
//! Two misuses (a 204 announcing content, an unasked-for 100 Continue) are impossible to commit
//! through hyper, which rightly refuses; the `/legacy/` routes answer them from raw bytes.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderName, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
///
/// One HTTP/1 request per connection, so each request's first bytes tell whether hyper or the
/// raw `/legacy/` responder answers it; a connection that opens with the HTTP/2 preface is the
/// gRPC service's.
pub async fn serve(listener: tokio::net::TcpListener) {
    let dice: &'static Dice = Box::leak(Box::new(Dice::new(0x5eed_cafe)));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let mut first = [0u8; 32];
            let peeked = stream.peek(&mut first).await.unwrap_or(0);
            let line = &first[..peeked];
            if line.starts_with(b"PRI * HTTP/2.0") {
                // h2c: the gRPC service, its calls multiplexed on this connection.
                let service = service_fn(move |request| super::grpc::answer(request, dice));
                let _ = http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                return;
            }
            if line.windows(8).any(|w| w == b"/legacy/") {
                legacy(stream).await;
                return;
            }
            let service = service_fn(move |request| answer(request, dice));
            let _ = http1::Builder::new()
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Answers one `/legacy/` request from raw bytes, the way an old hand-written server might.
async fn legacy(mut stream: TcpStream) {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let response: &[u8] = if head.starts_with(b"DELETE") {
        // body-on-no-content: a 204 that announces five bytes it never sends.
        b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
    } else {
        // unexpected-continue: a 100 Continue to a request that did not ask for one.
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
          Content-Length: 15\r\nConnection: close\r\n\r\n{\"saved\": true}"
    };
    let _ = stream.write_all(response).await;
    let _ = stream.shutdown().await;
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: &'static str,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

fn json(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    respond(status, "application/json", body)
}

fn with(
    mut response: Response<Full<Bytes>>,
    name: HeaderName,
    value: &'static str,
) -> Response<Full<Bytes>> {
    response
        .headers_mut()
        .insert(name, header::HeaderValue::from_static(value));
    response
}

const STACK_TRACE: &str = r#"{"code": "INTERNAL", "trace": "java.lang.IllegalStateException: index closed\n\tat com.shop.search.Index.query(Index.java:88)\n\tat com.shop.search.SearchController.get(SearchController.java:31)"}"#;

async fn answer(
    request: Request<Incoming>,
    dice: &Dice,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() == Method::POST && request.uri().path() == super::collector::METRICS_PATH {
        return super::collector::take(request.into_body()).await;
    }
    let path = request.uri().path();
    let method = request.method();
    let roll = dice.roll(100);
    if let Some(response) = resources(method, path, roll).or_else(|| misuses(method, path, roll)) {
        return Ok(response);
    }
    let response = match (method.clone(), path) {
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
        _ => json(
            StatusCode::NOT_FOUND,
            r#"{"code":"NOT_FOUND","details":["no such route"]}"#,
        ),
    };
    Ok(response)
}

/// The demo API's resources: mostly correct answers, some misuses among them.
fn resources(method: &Method, path: &str, roll: u64) -> Option<Response<Full<Bytes>>> {
    Some(match (method.clone(), path) {
        (Method::GET | Method::HEAD, "/health") => json(StatusCode::OK, r#"{"status":"up"}"#),
        // method-not-allowed-without-allow
        (_, "/health") => json(
            StatusCode::METHOD_NOT_ALLOWED,
            r#"{"code":"METHOD_NOT_ALLOWED"}"#,
        ),
        (Method::GET, p) if p.starts_with("/users/") => match roll {
            0..=79 => json(StatusCode::OK, r#"{"id":101,"name":"Alice"}"#),
            80..=94 => json(
                StatusCode::NOT_FOUND,
                r#"{"code":"NOT_FOUND","details":["no such user"]}"#,
            ),
            // unstructured-error-body
            _ => respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                "Internal Server Error",
            ),
        },
        // created-without-location
        (Method::POST, "/users") => json(StatusCode::CREATED, r#"{"id":102}"#),
        // body-schema-mismatch: `errors` is not in the contract's schema
        (Method::GET, "/orders") => json(StatusCode::OK, r#"{"orders":[],"errors":[]}"#),
        // undeclared-operation: the contract declares GET and POST on /orders
        (Method::PATCH, "/orders") => json(StatusCode::OK, r#"{"orders":[]}"#),
        (Method::POST, "/orders") => match roll {
            0..=84 => with(
                json(StatusCode::CREATED, r#"{"id":7}"#),
                header::LOCATION,
                "/orders/7",
            ),
            85..=92 => json(
                StatusCode::UNPROCESSABLE_ENTITY,
                r#"{"code":"VALIDATION_ERROR","details":["quantity must be positive"]}"#,
            ),
            93..=96 => with(
                json(
                    StatusCode::TOO_MANY_REQUESTS,
                    r#"{"code":"RATE_LIMITED","details":["slow down"]}"#,
                ),
                header::RETRY_AFTER,
                "5",
            ),
            // missing-retry-after
            _ => json(StatusCode::TOO_MANY_REQUESTS, r#"{"code":"RATE_LIMITED"}"#),
        },
        (Method::POST, "/login") => match roll {
            0..=69 => json(StatusCode::OK, r#"{"token":"abcd1234"}"#),
            _ => with(
                json(
                    StatusCode::UNAUTHORIZED,
                    r#"{"code":"INVALID_CREDENTIALS"}"#,
                ),
                header::WWW_AUTHENTICATE,
                "Bearer",
            ),
        },
        _ => return None,
    })
}

/// Routes that misuse status codes one way each (the comment names the rule).
fn misuses(method: &Method, path: &str, roll: u64) -> Option<Response<Full<Bytes>>> {
    Some(match (method.clone(), path) {
        // method-changing-redirect
        (Method::POST, "/v1/orders") => with(
            json(StatusCode::MOVED_PERMANENTLY, "{}"),
            header::LOCATION,
            "/orders",
        ),
        // unauthorized-without-challenge
        (Method::GET, "/admin") => json(StatusCode::UNAUTHORIZED, r#"{"code":"UNAUTHENTICATED"}"#),
        // forbidden-without-credentials (the demo clients send no credentials here)
        (Method::GET, "/billing") => json(StatusCode::FORBIDDEN, r#"{"code":"FORBIDDEN"}"#),
        (Method::GET, "/search") => match roll {
            0..=79 => json(StatusCode::OK, r#"{"results":[],"total":0}"#),
            // error-body-on-success
            80..=91 => json(
                StatusCode::OK,
                r#"{"error":"search index unavailable","results":[]}"#,
            ),
            // error-leaks-internals
            _ => json(StatusCode::INTERNAL_SERVER_ERROR, STACK_TRACE),
        },
        // created-for-safe-method
        (Method::GET, "/sessions/new") => with(
            json(StatusCode::CREATED, r#"{"session":"s-1"}"#),
            header::LOCATION,
            "/sessions/1",
        ),
        // redirect-without-location
        (Method::GET, "/docs") => json(StatusCode::FOUND, "{}"),
        (Method::GET, "/old-home") => with(
            json(StatusCode::MOVED_PERMANENTLY, "{}"),
            header::LOCATION,
            "/home",
        ),
        (Method::GET, "/payments") => match roll {
            0..=89 => json(StatusCode::OK, r#"{"payments":[]}"#),
            // invalid-retry-after
            _ => with(
                json(StatusCode::SERVICE_UNAVAILABLE, r#"{"code":"MAINTENANCE"}"#),
                header::RETRY_AFTER,
                "in a minute",
            ),
        },
        (Method::GET, "/catalog") => match roll {
            // declared-header-mismatch: the contract declares the header an integer
            0..=89 => with(
                json(StatusCode::OK, r#"{"products":[]}"#),
                header::HeaderName::from_static("x-ratelimit-remaining"),
                "unlimited",
            ),
            // cacheable-server-error
            _ => with(
                with(
                    json(StatusCode::SERVICE_UNAVAILABLE, r#"{"code":"UNAVAILABLE"}"#),
                    header::RETRY_AFTER,
                    "30",
                ),
                header::CACHE_CONTROL,
                "public, max-age=300",
            ),
        },
        // nonstandard-status
        (Method::GET, "/feature-flags") => json(
            StatusCode::from_u16(299).expect("valid code"),
            r#"{"flags":{}}"#,
        ),
        // error-content-mismatch (the demo clients ask for JSON only)
        (Method::GET, "/widgets") => respond(
            StatusCode::BAD_GATEWAY,
            "text/html",
            "<html><body><h1>Bad Gateway</h1></body></html>",
        ),
        _ => return None,
    })
}
