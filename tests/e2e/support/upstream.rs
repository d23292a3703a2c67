//! A real upstream service for the tests: a hyper server on its own thread, speaking HTTP/1.1,
//! or HTTP/2 to a connection that opens with the HTTP/2 preface (h2c, prior knowledge).
//!
//! Paths: `/status/{code}[/...]` answers that code; `/slow/{ms}` waits first; `/bytes/{n}`
//! streams n bytes with a length (`/chunked/{n}`: chunked); `/upload` counts the request body; `/echo` returns the request (its trailers too) as JSON.
//! A request with `x-reply-*` headers, on any path, is answered as they say (see [`reply`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

type Body = BoxBody<Bytes, Infallible>;

/// A running test upstream. It stops when dropped.
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    /// Requests to [`BYSTANDER_PATH`], which the others are counted apart from.
    bystander: Arc<AtomicUsize>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The path of a client that only watches whether it is still served (counted apart).
pub const BYSTANDER_PATH: &str = "/status/204";

impl Upstream {
    /// Starts an upstream on a free loopback port.
    pub fn start() -> Upstream {
        Self::serve(std::net::TcpListener::bind("127.0.0.1:0").unwrap())
    }

    /// Starts an upstream on `addr`, waiting for a previous upstream there to let go of it.
    pub fn start_on(addr: SocketAddr) -> Upstream {
        let mut listener = None;
        super::wait_until(&format!("{addr} to be free"), || {
            listener = std::net::TcpListener::bind(addr).ok();
            listener.is_some()
        });
        Self::serve(listener.unwrap())
    }

    fn serve(listener: std::net::TcpListener) -> Upstream {
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let connections = Arc::new(AtomicUsize::new(0));
        let bystander = Arc::new(AtomicUsize::new(0));
        let counters = (requests.clone(), connections.clone(), bystander.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                tokio::select! {
                    _ = accept_loop(listener, counters) => {}
                    _ = stopped => {}
                }
            });
            runtime.shutdown_background();
        });
        Upstream {
            addr,
            requests,
            connections,
            bystander,
            _stop: stop,
        }
    }

    /// How many requests reached the upstream.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// How many requests reached the upstream, but for [`BYSTANDER_PATH`].
    pub fn requests_but_bystander(&self) -> usize {
        self.requests() - self.bystander.load(Ordering::SeqCst)
    }

    /// How many TCP connections the upstream accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    (requests, connections, bystander): (Arc<AtomicUsize>, Arc<AtomicUsize>, Arc<AtomicUsize>),
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        connections.fetch_add(1, Ordering::SeqCst);
        let counter = requests.clone();
        let bystander = bystander.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                counter.fetch_add(1, Ordering::SeqCst);
                if request.uri().path() == BYSTANDER_PATH {
                    bystander.fetch_add(1, Ordering::SeqCst);
                }
                handle(request)
            });
            let mut preface = [0u8; 24];
            let h2c = stream.peek(&mut preface).await.is_ok_and(|n| {
                n >= 4 && b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".starts_with(&preface[..n])
            });
            if h2c {
                let _ = http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            } else {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            }
        });
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

async fn handle(request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    if request.headers().contains_key("x-reply-status") {
        return Ok(reply(request.headers()));
    }
    let path = request.uri().path().to_string();
    let mut segments = path.trim_start_matches('/').split('/');
    let response = match (segments.next(), segments.next()) {
        (Some("status"), Some(code)) => {
            let code: u16 = code.parse().unwrap();
            let no_body = matches!(code, 204 | 304) || request.method() == http::Method::HEAD;
            let body = if no_body {
                full("")
            } else {
                full(format!("code {code}"))
            };
            Response::builder()
                .status(code)
                .header("x-upstream", format!("status-{code}"))
                .body(body)
                .unwrap()
        }
        (Some("slow"), Some(ms)) => {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
            Response::new(full("slow"))
        }
        (Some(kind @ ("bytes" | "chunked")), Some(n)) => {
            let total: usize = n.parse().unwrap();
            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
            let body = stream::unfold(total, move |left| {
                let chunk = chunk.clone();
                async move {
                    (left > 0).then(|| {
                        let take = left.min(chunk.len());
                        (
                            Ok::<_, Infallible>(Frame::data(chunk.slice(..take))),
                            left - take,
                        )
                    })
                }
            });
            // Without a length, hyper frames the body with chunked transfer coding.
            let mut response = Response::builder();
            if kind == "bytes" {
                response = response.header("content-length", total.to_string());
            }
            response
                .body(BodyExt::boxed(StreamBody::new(body)))
                .unwrap()
        }
        (Some("upload"), _) => {
            let mut body = request.into_body();
            let mut received = 0usize;
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame.expect("upload body").into_data() {
                    received += data.len();
                }
            }
            Response::new(full(received.to_string()))
        }
        (Some("echo"), _) => {
            let method = request.method().to_string();
            let version = request.version();
            let uri = request.uri().to_string();
            let headers: Vec<(String, String)> = request
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let collected = request.into_body().collect().await.unwrap();
            let trailers: Vec<(String, String)> = collected
                .trailers()
                .into_iter()
                .flat_map(|t| t.iter())
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = collected.to_bytes();
            let echo = serde_json::json!({
                "version": format!("{version:?}"),
                "method": method,
                "uri": uri,
                "headers": headers,
                "body": String::from_utf8_lossy(&body),
                "trailers": trailers,
            });
            Response::builder()
                .header("content-type", "application/json")
                .body(full(echo.to_string()))
                .unwrap()
        }
        _ => Response::new(full("ok")),
    };
    Ok(response)
}

/// Compresses `body` as `encoding` (`gzip`, `deflate`, `br` or `zstd`) — deterministically, so a
/// test can compute the bytes the upstream sent.
pub fn encode(encoding: &str, body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match encoding {
        "gzip" => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(body).unwrap();
            encoder.finish().unwrap()
        }
        "deflate" => {
            let mut encoder =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(body).unwrap();
            encoder.finish().unwrap()
        }
        "br" => {
            let mut out = Vec::new();
            brotli::CompressorWriter::new(&mut out, 4096, 5, 22)
                .write_all(body)
                .unwrap();
            out
        }
        "zstd" => zstd::stream::encode_all(body, 3).unwrap(),
        other => panic!("unknown encoding {other}"),
    }
}

/// The body `/reply` sends for an `x-reply-body` value: `\n` stands for a newline.
pub fn reply_body(spec: &str) -> Vec<u8> {
    spec.replace("\\n", "\n").into_bytes()
}

/// Answers as instructed: `x-reply-status`, `x-reply-header: Name: value` (repeatable),
/// `x-reply-body` (with `\n` for newlines), `x-reply-encoding` (compresses the body and sets
/// `Content-Encoding`), `x-reply-chunks: 3,1,5` (sends the body in frames of these sizes, the
/// rest in one last frame, with chunked transfer coding), `x-reply-trailer: Name: value`
/// (repeatable; HTTP/2 trailers after the body). Without a body or trailers, an HTTP/2 answer
/// is its head alone, ending the stream (a gRPC trailers-only response).
fn reply(headers: &http::HeaderMap) -> Response<Body> {
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string());
    let status: u16 = text("x-reply-status").map_or(200, |s| s.parse().unwrap());
    let mut body = text("x-reply-body")
        .map(|b| reply_body(&b))
        .unwrap_or_default();
    let mut response = Response::builder().status(status);
    for line in headers.get_all("x-reply-header") {
        let (name, value) = line.to_str().unwrap().split_once(':').unwrap();
        response = response.header(name.trim(), value.trim());
    }
    if let Some(encoding) = text("x-reply-encoding") {
        body = encode(&encoding, &body);
        response = response.header("content-encoding", encoding);
    }
    if headers.contains_key("x-reply-trailer") {
        let mut trailers = http::HeaderMap::new();
        for line in headers.get_all("x-reply-trailer") {
            let (name, value) = line.to_str().unwrap().split_once(':').unwrap();
            trailers.append(
                http::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                http::HeaderValue::from_str(value.trim()).unwrap(),
            );
            // HTTP/1.1 sends only the trailer fields the head announced.
            response = response.header("trailer", name.trim());
        }
        let frames = [Frame::data(Bytes::from(body)), Frame::trailers(trailers)];
        let stream = stream::iter(frames.map(Ok::<_, Infallible>));
        return response
            .body(BodyExt::boxed(StreamBody::new(stream)))
            .unwrap();
    }
    let Some(sizes) = text("x-reply-chunks") else {
        return response.body(full(body)).unwrap();
    };
    let mut frames = Vec::new();
    let mut rest = Bytes::from(body);
    for size in sizes.split(',').map(|s| s.trim().parse::<usize>().unwrap()) {
        let take = size.min(rest.len());
        frames.push(rest.split_to(take));
    }
    frames.push(rest);
    let stream = stream::iter(
        frames
            .into_iter()
            .filter(|f| !f.is_empty())
            .map(|f| Ok::<_, Infallible>(Frame::data(f))),
    );
    response
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap()
}

/// A raw upstream that sends `interims` (1xx responses) before a final `200 OK` with body `final`.
pub fn interim_upstream(interims: &'static str) -> SocketAddr {
    raw_upstream(
        interims,
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfinal",
    )
}

/// A raw upstream answering every request with `head` then `tail`, byte for byte, then closing.
pub fn raw_upstream(head: &'static str, tail: &'static str) -> SocketAddr {
    scripted_upstream(head, tail, Ending::Close)
}

/// How a [`scripted_upstream`] ends each answer.
#[derive(Debug, Clone, Copy)]
pub enum Ending {
    /// Closes the connection normally (FIN).
    Close,
    /// Resets the connection (RST, through `SO_LINGER` 0).
    Reset,
    /// Sends one more byte every so often, for as long as anyone listens.
    Trickle(Duration),
}

/// A raw upstream answering every request with `head` then `tail`, then ending as told.
pub fn scripted_upstream(head: &'static str, tail: &'static str, ending: Ending) -> SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(tail.as_bytes());
                match ending {
                    Ending::Close => {}
                    Ending::Reset => reset_on_close(&stream),
                    Ending::Trickle(every) => {
                        while stream.write_all(b"x").is_ok() {
                            std::thread::sleep(every);
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Makes closing `stream` send a reset instead of a FIN.
fn reset_on_close(stream: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on an open socket this thread owns, with a correctly sized value.
    let result = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(result, 0, "SO_LINGER");
}

/// What a [`ScriptedServer`] does with one request.
pub enum Reply {
    /// Reads the request's body (by its `Content-Length`), answers, and waits for the next
    /// request on the connection.
    Answer(Vec<u8>),
    /// Reads the body, answers, then closes the connection.
    AnswerAndClose(Vec<u8>),
    /// Reads the request and closes the connection without a word: a keep-alive connection
    /// the server dropped just as the request came.
    Close,
    /// Answers at once without reading the body, then neither reads nor closes.
    AnswerEarly(Vec<u8>),
}

/// A raw HTTP/1 server that answers each request as a script says, given the request's index
/// on its connection and its request line; it counts connections, requests and closes.
pub struct ScriptedServer {
    /// Where it listens.
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    requests: Arc<std::sync::Mutex<Vec<String>>>,
}

impl ScriptedServer {
    /// Starts the server on a free loopback port.
    pub fn start(script: impl Fn(usize, &str) -> Reply + Send + Sync + 'static) -> ScriptedServer {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = ScriptedServer {
            addr: listener.local_addr().unwrap(),
            connections: Arc::default(),
            closed: Arc::default(),
            requests: Arc::default(),
        };
        let (connections, closed, requests) = (
            server.connections.clone(),
            server.closed.clone(),
            server.requests.clone(),
        );
        let script = Arc::new(script);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let stream = stream.unwrap();
                connections.fetch_add(1, Ordering::SeqCst);
                let (script, closed, requests) = (script.clone(), closed.clone(), requests.clone());
                std::thread::spawn(move || {
                    let mut writer = stream.try_clone().unwrap();
                    let mut reader = BufReader::new(stream);
                    for index in 0.. {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        let mut length = 0;
                        loop {
                            let mut field = String::new();
                            reader.read_line(&mut field).unwrap();
                            if field == "\r\n" || field.is_empty() {
                                break;
                            }
                            if let Some((name, value)) = field.split_once(':') {
                                if name.eq_ignore_ascii_case("content-length") {
                                    length = value.trim().parse().unwrap();
                                }
                            }
                        }
                        let line = line.trim_end().to_string();
                        requests.lock().unwrap().push(line.clone());
                        let mut read_body = || {
                            let mut body = vec![0u8; length];
                            reader.read_exact(&mut body).unwrap();
                        };
                        match script(index, &line) {
                            Reply::Answer(bytes) => {
                                read_body();
                                writer.write_all(&bytes).unwrap();
                            }
                            Reply::AnswerAndClose(bytes) => {
                                read_body();
                                writer.write_all(&bytes).unwrap();
                                break;
                            }
                            Reply::Close => {
                                read_body();
                                break;
                            }
                            Reply::AnswerEarly(bytes) => {
                                writer.write_all(&bytes).unwrap();
                                // Holds the connection, reading nothing more, until the test ends.
                                loop {
                                    std::thread::park();
                                }
                            }
                        }
                    }
                    drop((reader, writer));
                    closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        server
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Connections the server has closed so far.
    pub fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }

    /// The request lines received so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// A complete response with a `Content-Length` body.
pub fn response(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
