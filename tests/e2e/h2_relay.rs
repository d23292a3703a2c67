//! HTTP/2 carried end to end, on both engines: what an HTTP/2 upstream does to its streams
//! (GOAWAY mid-load, REFUSED_STREAM, a limit of one stream per connection) loses and repeats
//! nothing; HTTP/1 and HTTP/2 on either side keep codes, bodies and trailers; real clients
//! (curl, nghttp) are served; a gigabyte each way passes one stream in bounded memory; SIGTERM
//! sends GOAWAY and lets the streams in flight finish.

use std::io::{BufRead, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::support::upstream::Upstream;
use crate::support::{
    each_engine, raw_connection, read_body, read_head, wait_until, Engine, Launch, Peer, Statuscope,
};

/// An h2c upstream of tests/tools/h2_peer.py in `mode`.
fn scripted_upstream(mode: &str) -> Peer {
    Peer::start("h2_peer.py", &["upstream", mode])
}

/// A scripted upstream's counts: requests, processed, connections, refused.
async fn upstream_stats(upstream: &Peer) -> Value {
    let answer = h2_call(upstream.addr, "GET", "/__stats", Bytes::new(), &[]).await;
    serde_json::from_slice(&answer.body).unwrap()
}

/// What an HTTP/2 client got.
struct Answer {
    status: u16,
    body: Bytes,
    trailers: Option<http::HeaderMap>,
}

/// One HTTP/2 request with prior knowledge, its body and extra header fields.
async fn h2_call(
    target: SocketAddr,
    method: &str,
    path: &str,
    body: Bytes,
    headers: &[(&str, &str)],
) -> Answer {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("http://{target}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = client
        .request(request.body(Full::new(body)).unwrap())
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    let collected = response.into_body().collect().await.expect("the body");
    Answer {
        status,
        trailers: collected.trailers().cloned(),
        body: collected.to_bytes(),
    }
}

fn launch(engine: Engine, upstream: SocketAddr, protocol: &str) -> Statuscope {
    Statuscope::launch(Launch {
        engine,
        upstream: Some(upstream),
        env: vec![("STATUSCOPE_UPSTREAM_PROTOCOL", protocol.into())],
        ..Launch::default()
    })
}

each_engine! {
    fn curl_and_nghttp_are_served_over_h2c_both_ways(engine) {
        let upstream = Upstream::start();
        for protocol in ["http1", "h2c"] {
            let statuscope = launch(engine, upstream.addr, protocol);
            let base = format!("http://{}", statuscope.listen);
            let curl = Command::new("curl")
                .args(["-s", "--http2-prior-knowledge", "-w", "\n%{http_code} %{http_version}", "--data-binary", "from curl"])
                .arg(format!("{base}/echo"))
                .output()
                .expect("curl runs");
            let out = String::from_utf8_lossy(&curl.stdout);
            assert!(out.ends_with("200 2"), "{protocol}: {out}");
            assert!(out.contains("\"body\":\"from curl\""), "{protocol}: {out}");
            let nghttp = Command::new("nghttp")
                .args(["-s", "-v"])
                .arg(format!("{base}/status/201"))
                .output()
                .expect("nghttp runs (`make test-deps` installs nghttp2-client)");
            let out = String::from_utf8_lossy(&nghttp.stdout);
            assert!(nghttp.status.success() && out.contains(":status: 201"), "{protocol}: {out}");
            statuscope.wait_idle();
            assert_eq!(statuscope.total("statuscope_responses_total", &[]), 2.0, "{protocol}");
        }
    }

    fn a_gigabyte_each_way_passes_one_stream_in_bounded_memory(engine) {
        const GIB: u64 = 1 << 30;
        let upstream = Upstream::start();
        let statuscope = launch(engine, upstream.addr, "h2c");
        let base = format!("http://{}", statuscope.listen);
        let download = Command::new("curl")
            .args(["-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{exitcode}"])
            .arg(format!("{base}/bytes/{GIB}"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&download.stdout), format!("200 {GIB} 0"));
        let mut upload = Command::new("curl")
            .args(["-s", "--http2-prior-knowledge", "-T", "-"])
            .arg(format!("{base}/upload"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = upload.stdin.take().unwrap();
        let chunk = vec![b'u'; 1 << 20];
        for _ in 0..GIB >> 20 {
            stdin.write_all(&chunk).unwrap();
        }
        drop(stdin);
        let mut received = String::new();
        upload.stdout.take().unwrap().read_to_string(&mut received).unwrap();
        assert!(upload.wait().unwrap().success());
        assert_eq!(received, GIB.to_string());
        statuscope.wait_idle();
        let peak = statuscope.peak_rss();
        println!("peak RSS across 1 GiB each way: {} MiB", peak >> 20);
        assert!(peak < 64 << 20, "peak RSS {} MiB", peak >> 20);
    }

    async fn sigterm_sends_goaway_and_the_streams_in_flight_finish(engine) {
        let upstream = Upstream::start();
        let mut statuscope = launch(engine, upstream.addr, "http1");
        let target = statuscope.listen;
        let calls: Vec<_> = (0..10)
            .map(|_| tokio::spawn(h2_call(target, "GET", "/slow/1500", Bytes::new(), &[])))
            .collect();
        wait_until("10 calls in flight", || statuscope.total("statuscope_requests_in_flight", &[]) == 10.0);
        statuscope.signal(libc::SIGTERM);
        for call in calls {
            assert_eq!(call.await.unwrap().status, 200);
        }
        assert!(statuscope.wait_exit().success());
    }
}

// What statuscope's own HTTP/2 path does and the pingora engine does not (docs/engines.md):
// streams the upstream did not process sent again, streams spread over connections by the
// upstream's limit, and trailers carried between HTTP/1 and HTTP/2.

/// POSTs, so a call sent twice would be processed twice.
#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_goaway_mid_load_loses_no_call_and_processes_none_twice() {
    let upstream = scripted_upstream("goaway-after:50");
    let statuscope = launch(Engine::Fast, upstream.addr, "h2c");
    let calls = (0..200).map(|n| {
        let body = Bytes::from(format!("call {n}"));
        h2_call(statuscope.listen, "POST", "/orders", body, &[])
    });
    let answers = futures_util::future::join_all(calls).await;
    assert!(
        answers.iter().all(|a| a.status == 200),
        "every call answered 200"
    );
    let stats = upstream_stats(&upstream).await;
    assert_eq!(stats["processed"], 200, "{stats}");
    assert!(stats["connections"].as_u64().unwrap() >= 2, "{stats}");
    statuscope.wait_idle();
    let ok = statuscope.total(
        "statuscope_responses_total",
        &[("route", "/orders"), ("code", "200")],
    );
    assert_eq!(ok, 200.0);
    assert_eq!(
        statuscope.total("statuscope_responses_total", &[("route", "/orders")]),
        200.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_stream_is_sent_again_once_on_a_new_connection() {
    let upstream = scripted_upstream("refuse-first");
    let statuscope = launch(Engine::Fast, upstream.addr, "h2c");
    let answer = h2_call(
        statuscope.listen,
        "POST",
        "/orders",
        Bytes::from("one"),
        &[],
    )
    .await;
    assert_eq!(answer.status, 200);
    let stats = upstream_stats(&upstream).await;
    assert_eq!(
        (stats["refused"].as_u64(), stats["processed"].as_u64()),
        (Some(1), Some(1)),
        "{stats}"
    );
    statuscope.wait_idle();
    assert_eq!(
        statuscope.total("statuscope_responses_total", &[("code", "200")]),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_still_sending_after_an_early_answer_is_never_stalled() {
    // The upstream answers before the body and resets the stream: what statuscope held of
    // each body for it must be given back, to the stream and to the client's connection
    // (1 MiB window, so eight calls of 1 MiB leaking what they held would stall).
    let upstream = scripted_upstream("answer-early");
    let statuscope = launch(Engine::Fast, upstream.addr, "h2c");
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<StreamBody<ChunkStream>>();
    for call in 0..8 {
        let (sender, chunks) = tokio::sync::mpsc::channel(1);
        let body = StreamBody::new(ChunkStream(chunks));
        let request = http::Request::post(format!("http://{}/upload", statuscope.listen))
            .body(body)
            .unwrap();
        let sending = tokio::spawn(async move {
            for _ in 0..16 {
                let chunk = Frame::data(Bytes::from(vec![b'u'; 64 << 10]));
                sender.send(Ok(chunk)).await.expect("hyper reads the body");
            }
        });
        let response = client.request(request).await.expect("an answer");
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "early");
        tokio::time::timeout(std::time::Duration::from_secs(30), sending)
            .await
            .unwrap_or_else(|_| panic!("call {call}: the body stalled after the answer"))
            .unwrap();
    }
    statuscope.wait_idle();
    assert_eq!(
        statuscope.total("statuscope_responses_total", &[("code", "200")]),
        8.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_longer_than_the_read_timeout_is_not_cut() {
    // `timeouts.read` is the wait for the upstream once the request is sent, not for the
    // whole upload: a body that trickles in for twice as long still gets its answer.
    let upstream = Upstream::start();
    let statuscope = Statuscope::launch(Launch {
        engine: Engine::Fast,
        upstream: Some(upstream.addr),
        env: vec![
            ("STATUSCOPE_UPSTREAM_PROTOCOL", "h2c".into()),
            ("STATUSCOPE_TIMEOUTS__READ", "1s".into()),
        ],
        ..Launch::default()
    });
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<StreamBody<ChunkStream>>();
    let (sender, chunks) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        for _ in 0..8 {
            let chunk = Frame::data(Bytes::from(vec![b'u'; 1024]));
            sender.send(Ok(chunk)).await.expect("hyper reads the body");
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    });
    let request = http::Request::post(format!("http://{}/upload", statuscope.listen))
        .body(StreamBody::new(ChunkStream(chunks)))
        .unwrap();
    let response = client.request(request).await.expect("an answer");
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "8192");
}

/// A request body fed through a channel, so the test sees when the client stops taking it.
struct ChunkStream(tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>);

impl futures_util::Stream for ChunkStream {
    type Item = Result<Frame<Bytes>, std::io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_that_allows_one_stream_gets_several_connections() {
    let upstream = scripted_upstream("one-stream:300");
    let statuscope = launch(Engine::Fast, upstream.addr, "h2c");
    // The first call learns the upstream's SETTINGS; the next ones overlap.
    assert_eq!(
        h2_call(statuscope.listen, "GET", "/first", Bytes::new(), &[])
            .await
            .status,
        200
    );
    let calls = (0..8).map(|_| h2_call(statuscope.listen, "GET", "/next", Bytes::new(), &[]));
    for answer in futures_util::future::join_all(calls).await {
        assert_eq!(answer.status, 200);
    }
    let stats = upstream_stats(&upstream).await;
    assert!(stats["connections"].as_u64().unwrap() >= 2, "{stats}");
    assert_eq!(stats["processed"], 9, "{stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http2_client_and_an_http1_upstream_keep_codes_bodies_and_trailers() {
    let upstream = Upstream::start();
    let statuscope = launch(Engine::Fast, upstream.addr, "http1");
    let answer = h2_call(
        statuscope.listen,
        "POST",
        "/reply",
        Bytes::from("ignored"),
        &[
            ("te", "trailers"),
            ("x-reply-status", "418"),
            ("x-reply-body", "short and stout"),
            ("x-reply-trailer", "x-checksum: 7"),
        ],
    )
    .await;
    assert_eq!(answer.status, 418);
    assert_eq!(answer.body, "short and stout");
    assert_eq!(answer.trailers.expect("trailers")["x-checksum"], "7");
    // The request's own body and trailers reach the HTTP/1 upstream, in its version.
    let echo =
        h2_call_with_trailers(statuscope.listen, "/echo", "a body", ("x-request-sum", "3")).await;
    let echo: Value = serde_json::from_slice(&echo).unwrap();
    assert_eq!(echo["version"], "HTTP/1.1");
    assert_eq!(echo["body"], "a body");
    assert_eq!(
        echo["trailers"][0],
        serde_json::json!(["x-request-sum", "3"])
    );
}

#[test]
fn an_http1_client_and_an_http2_upstream_keep_codes_bodies_and_trailers() {
    let upstream = Upstream::start();
    let statuscope = launch(Engine::Fast, upstream.addr, "h2c");
    let (mut writer, mut reader) = raw_connection(statuscope.listen);
    // A chunked request with trailers; a chunked answer with trailers.
    write!(
        writer,
        "POST /echo HTTP/1.1\r\nHost: t\r\nTE: trailers\r\nTransfer-Encoding: chunked\r\n\r\n\
         4\r\nbody\r\n0\r\nx-request-sum: 4\r\n\r\n"
    )
    .unwrap();
    let head = read_head(&mut reader);
    assert!(head.status.starts_with("HTTP/1.1 200"), "{}", head.status);
    let body = read_body(&mut reader, &head);
    let echo: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["version"], "HTTP/2.0");
    assert_eq!(echo["body"], "body");
    assert_eq!(
        echo["trailers"][0],
        serde_json::json!(["x-request-sum", "4"])
    );
    write!(
        writer,
        "GET /reply HTTP/1.1\r\nHost: t\r\nTE: trailers\r\nx-reply-status: 409\r\n\
         x-reply-body: taken\r\nx-reply-trailer: x-reason: duplicate\r\n\r\n"
    )
    .unwrap();
    let head = read_head(&mut reader);
    assert!(head.status.starts_with("HTTP/1.1 409"), "{}", head.status);
    let (body, trailers) = read_chunked(&mut reader);
    assert_eq!(body, b"taken");
    assert!(trailers.contains("x-reason: duplicate"), "{trailers}");
    statuscope.wait_idle();
    assert_eq!(
        statuscope.total("statuscope_responses_total", &[("code", "409")]),
        1.0
    );
}

/// An HTTP/2 POST of `body` followed by one trailer field; the response body.
async fn h2_call_with_trailers(
    target: SocketAddr,
    path: &str,
    body: &'static str,
    trailer: (&'static str, &'static str),
) -> Bytes {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<StreamBody<
            stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, std::convert::Infallible>>>,
        >>();
    let mut trailers = http::HeaderMap::new();
    trailers.insert(trailer.0, trailer.1.parse().unwrap());
    let frames = vec![
        Ok(Frame::data(Bytes::from(body))),
        Ok(Frame::trailers(trailers)),
    ];
    let request = http::Request::post(format!("http://{target}{path}"))
        .header("te", "trailers")
        .body(StreamBody::new(stream::iter(frames)))
        .unwrap();
    let response = client.request(request).await.expect("an answer");
    response.into_body().collect().await.unwrap().to_bytes()
}

/// Reads a chunked body: its data, and its trailer section as text.
fn read_chunked(reader: &mut impl BufRead) -> (Vec<u8>, String) {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).unwrap();
        let size = usize::from_str_radix(size.trim().split(';').next().unwrap(), 16).unwrap();
        if size == 0 {
            break;
        }
        let mut chunk = vec![0u8; size + 2];
        reader.read_exact(&mut chunk).unwrap();
        body.extend_from_slice(&chunk[..size]);
    }
    let mut trailers = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            return (body, trailers);
        }
        trailers.push_str(&line);
    }
}
