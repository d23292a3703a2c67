//! The demo's gRPC side: a small gRPC service over h2c beside the HTTP API, and the clients
//! that call it through the proxy. Most calls succeed; some fail the way real services do
//! (NOT_FOUND, UNAVAILABLE, a deadline the client gives up at), and the `demo.Legacy` methods
//! break each gRPC rule once: no `grpc-status`, a status that is not a code, HTTP 404 to a
//! gRPC call, and a `Catalog/Reindex` whose `grpc-message` leaks a traceback.
//!
//! Messages are opaque bytes in gRPC's length-prefixed framing: statuscope reads statuses,
//! never payloads, so the demo needs no protobuf.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::service::Dice;
use super::traffic::{drive_clients, Clients};

/// A response body of frames known up front: messages, then trailers.
pub struct Frames(VecDeque<Frame<Bytes>>);

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(Ok))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }
}

/// One gRPC message: the compressed flag, the length, the payload.
fn message(payload: &[u8]) -> Frame<Bytes> {
    let mut framed = Vec::with_capacity(5 + payload.len());
    framed.push(0);
    framed.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    framed.extend_from_slice(payload);
    Frame::data(Bytes::from(framed))
}

fn trailers(status: &'static str, message: Option<&'static str>) -> Frame<Bytes> {
    let mut map = HeaderMap::new();
    map.insert("grpc-status", HeaderValue::from_static(status));
    if let Some(text) = message {
        map.insert("grpc-message", HeaderValue::from_static(text));
    }
    Frame::trailers(map)
}

/// A response with `http_status`, `content-type: application/grpc`, extra `head` fields and
/// `frames` for its body (none: the head ends the stream, a trailers-only response).
fn respond(
    http_status: StatusCode,
    head: &[(&'static str, &'static str)],
    frames: Vec<Frame<Bytes>>,
) -> Response<Frames> {
    let mut response = Response::new(Frames(frames.into()));
    *response.status_mut() = http_status;
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/grpc"));
    for (name, value) in head {
        headers.insert(*name, HeaderValue::from_static(value));
    }
    response
}

/// A trailers-only answer: the status in the head, no body.
fn status_only(status: &'static str, message: &'static str) -> Response<Frames> {
    respond(
        StatusCode::OK,
        &[("grpc-status", status), ("grpc-message", message)],
        Vec::new(),
    )
}

const TRACEBACK: &str = "Traceback (most recent call last):%0A  File \"/srv/catalog/index.py\", line 88, in reindex%0A    self.shards[n].rebuild()%0AIndexError: list index out of range";

/// Answers one gRPC call of the demo service.
pub async fn answer(
    request: Request<Incoming>,
    dice: &Dice,
) -> Result<Response<Frames>, Infallible> {
    let path = request.uri().path().to_string();
    // The request's messages are read whole first, as a unary or client-streaming server does.
    let _ = request.into_body().collect().await;
    let roll = dice.roll(100);
    let ok = || trailers("0", None);
    let response = match path.as_str() {
        "/demo.Catalog/GetItem" => match roll {
            0..=79 => respond(StatusCode::OK, &[], vec![message(b"item"), ok()]),
            80..=91 => status_only("5", "no such item"),
            92..=96 => status_only("14", "the catalog is warming up"),
            _ => {
                // Slower than the client's deadline: it gives up (DEADLINE_EXCEEDED).
                tokio::time::sleep(Duration::from_millis(800)).await;
                respond(StatusCode::OK, &[], vec![message(b"item"), ok()])
            }
        },
        "/demo.Catalog/ListItems" => {
            let mut frames: Vec<_> = (0..5).map(|_| message(b"item")).collect();
            if roll < 10 {
                frames.truncate(2);
                frames.push(trailers("13", Some("the listing broke off")));
            } else {
                frames.push(ok());
            }
            respond(StatusCode::OK, &[], frames)
        }
        // grpc-message-leaks-internals
        "/demo.Catalog/Reindex" => {
            respond(StatusCode::OK, &[], vec![trailers("13", Some(TRACEBACK))])
        }
        // grpc-status-missing: the messages, then the end of the stream without trailers.
        "/demo.Legacy/Ping" => respond(StatusCode::OK, &[], vec![message(b"pong")]),
        // grpc-invalid-status
        "/demo.Legacy/Status" => respond(
            StatusCode::OK,
            &[],
            vec![message(b"up"), trailers("OK", None)],
        ),
        // grpc-non-200
        "/demo.Legacy/Gone" => respond(StatusCode::NOT_FOUND, &[("grpc-status", "12")], Vec::new()),
        _ => status_only("12", "unknown method"),
    };
    Ok(response)
}

/// One gRPC method the demo clients call, with its share of their calls.
struct Method {
    weight: u64,
    path: &'static str,
}

const METHODS: &[Method] = &[
    Method {
        weight: 60,
        path: "/demo.Catalog/GetItem",
    },
    Method {
        weight: 25,
        path: "/demo.Catalog/ListItems",
    },
    Method {
        weight: 2,
        path: "/demo.Catalog/Reindex",
    },
    Method {
        weight: 2,
        path: "/demo.Legacy/Ping",
    },
    Method {
        weight: 2,
        path: "/demo.Legacy/Status",
    },
    Method {
        weight: 2,
        path: "/demo.Legacy/Gone",
    },
    Method {
        weight: 1,
        path: "/demo.Catalog/Export",
    },
];

/// How long a demo client waits for a call: its deadline, sent as `grpc-timeout`.
const DEADLINE: Duration = Duration::from_millis(300);

/// Calls the demo service through `proxy` from `workers` concurrent clients over HTTP/2
/// (prior knowledge, one multiplexed connection), forever.
pub async fn drive(proxy: SocketAddr, workers: usize) {
    let clients = Clients {
        items: METHODS,
        weight: |m| m.weight,
        request: |method, _, proxy| {
            Request::post(format!("http://{proxy}{}", method.path))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .header("grpc-timeout", "300m")
                .body(Full::new(Bytes::from_static(b"\0\0\0\0\x02id")))
                .expect("valid demo call")
        },
        // At its deadline the client gives up, as gRPC clients do.
        patience: |_| DEADLINE,
        pause_ms: 40,
        seed: 0x2545_f491_4f6c_dd1d,
    };
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    drive_clients(clients, client, proxy, workers).await;
}
