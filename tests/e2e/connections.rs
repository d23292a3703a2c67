//! What a proxy owns about connections, on both engines: pipelining, bodies framed by their
//! headers or by a close, heads without bodies, an upstream that answers before reading,
//! pooled upstream connections (reused, stale, never resending what is not idempotent), large
//! heads, HTTP/1.0 clients, and a client that stops reading.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use crate::support::upstream::{response, Reply, ScriptedServer, Upstream};
use crate::support::{
    each_engine, raw_connection, read_body, read_head, wait_until, Engine, Launch, Statuscope,
    PATIENCE,
};

/// Reads one response with a `Content-Length` body: its status line and body.
fn read_response(reader: &mut impl BufRead) -> (String, Vec<u8>) {
    let head = read_head(reader);
    let mut body = vec![0u8; head.content_length.unwrap_or(0)];
    reader.read_exact(&mut body).unwrap();
    (head.status.trim_end().to_string(), body)
}

fn tally(statuscope: &Statuscope, labels: &[(&str, &str)]) -> f64 {
    statuscope.total("statuscope_responses_total", labels)
}

each_engine! {
    /// A body that ends when the upstream closes reaches the client whole, and so does one the
    /// upstream framed by length before closing; neither upstream connection is reused.
    fn bodies_ended_by_a_close_or_framed_before_one_arrive_whole(engine) {
        let server = ScriptedServer::start(|_, line| {
            if line.starts_with("GET /until-close") {
                Reply::AnswerAndClose(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nall of it".to_vec())
            } else {
                let mut answer = b"HTTP/1.1 200 OK\r\nconnection: close\r\n".to_vec();
                answer.extend_from_slice(b"content-length: 6\r\n\r\nlength");
                Reply::AnswerAndClose(answer)
            }
        });
        let statuscope = Statuscope::start(engine, server.addr);
        let (mut writer, mut reader) = raw_connection(statuscope.listen);
        writer.write_all(b"GET /length HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut reader).1, b"length");
        // The client's connection outlives the upstream's.
        writer.write_all(b"GET /until-close HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let head = read_head(&mut reader);
        assert!(head.status.starts_with("HTTP/1.1 200"), "{}", head.status);
        // Passed on as it came, ended by a close, or framed anew in chunks: whole either way.
        assert_eq!(read_body(&mut reader, &head), b"all of it");
        statuscope.wait_idle();
        assert_eq!(server.connections(), 2);
        assert_eq!(tally(&statuscope, &[("code", "200"), ("origin", "upstream")]), 2.0);
        assert_eq!(statuscope.total("statuscope_upstream_errors_total", &[]), 0.0);
    }

    /// Answers to HEAD, 204 and 304 have no body, whatever length their heads announce: the
    /// next answer on the connection follows at once.
    fn heads_without_bodies_leave_the_connection_in_step(engine) {
        let server = ScriptedServer::start(|_, line| {
            let answer: &[u8] = if line.starts_with("HEAD /chunked") {
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            } else if line.starts_with("HEAD") {
                b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n"
            } else if line.starts_with("GET /204") {
                b"HTTP/1.1 204 No Content\r\ncontent-length: 1000\r\n\r\n"
            } else if line.starts_with("GET /304") {
                b"HTTP/1.1 304 Not Modified\r\netag: \"v1\"\r\ncontent-length: 1000\r\n\r\n"
            } else {
                b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nlast"
            };
            Reply::Answer(answer.to_vec())
        });
        let statuscope = Statuscope::start(engine, server.addr);
        let (mut writer, mut reader) = raw_connection(statuscope.listen);
        for (request, status) in [
            ("HEAD /resource", "HTTP/1.1 200"),
            ("GET /204", "HTTP/1.1 204"),
            ("GET /304", "HTTP/1.1 304"),
        ] {
            write!(writer, "{request} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            let head = read_head(&mut reader);
            assert!(head.status.starts_with(status), "{request}: {}", head.status);
            assert_eq!(head.content_length, Some(1000), "{request}: the length passes as sent");
        }
        // Transfer-Encoding on an answer to HEAD passes too, and no body is awaited after it.
        writer.write_all(b"HEAD /chunked HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let head = read_head(&mut reader);
        assert!(head.status.starts_with("HTTP/1.1 200") && head.chunked, "{}", head.status);
        writer.write_all(b"GET /last HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut reader).1, b"last");
        statuscope.wait_idle();
        assert_eq!(server.connections(), 1);
        assert_eq!(tally(&statuscope, &[("origin", "upstream")]), 5.0);
    }

    /// An upstream may answer before it has read the request body: the client gets that
    /// answer, the rest of the body goes nowhere, and that upstream connection is not reused.
    fn an_answer_before_the_body_is_read_reaches_the_client(engine) {
        let server = ScriptedServer::start(|_, line| {
            if line.starts_with("POST") {
                Reply::AnswerEarly(response("413 Content Too Large", "too large"))
            } else {
                Reply::Answer(response("200 OK", "fine"))
            }
        });
        let statuscope = Statuscope::start(engine, server.addr);
        let stream = TcpStream::connect(statuscope.listen).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut writer = stream.try_clone().unwrap();
        const BODY: usize = 64 * 1024 * 1024;
        // The client goes on sending while the answer comes; it may be cut off, which is fine.
        let sender = std::thread::spawn(move || {
            let _ = write!(writer, "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {BODY}\r\n\r\n");
            let chunk = vec![b'b'; 64 * 1024];
            for _ in 0..BODY / chunk.len() {
                if writer.write_all(&chunk).is_err() {
                    break;
                }
            }
        });
        let mut reader = BufReader::new(stream);
        assert_eq!(
            read_response(&mut reader),
            ("HTTP/1.1 413 Content Too Large".into(), b"too large".to_vec())
        );
        drop(reader);
        sender.join().unwrap();
        statuscope.wait_idle();
        assert_eq!(tally(&statuscope, &[("code", "413"), ("origin", "upstream")]), 1.0);
        // The next request needs a new upstream connection.
        let (status, body) = crate::support::raw_get(statuscope.listen, "/next").unwrap();
        assert_eq!((status, body.as_str()), (200, "fine"));
        assert_eq!(server.connections(), 2);
    }

    /// A pooled connection the upstream closed while it sat idle is noticed before a POST goes
    /// out on it: the POST is sent once, on a new connection, and succeeds.
    fn a_post_never_goes_out_on_a_pooled_connection_the_upstream_closed(engine) {
        let server = ScriptedServer::start(|_, _| Reply::AnswerAndClose(response("200 OK", "done")));
        let statuscope = Statuscope::start(engine, server.addr);
        let client = crate::support::client();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let post = |path: &str| {
            let url = format!("http://{}{path}", statuscope.listen);
            runtime.block_on(crate::support::send(&client, "POST", &url, &[], b"data")).status
        };
        assert_eq!(post("/first"), 200);
        // The upstream closed the connection statuscope pooled (its answer did not say so).
        wait_until("the upstream to close the first connection", || server.closed() == 1);
        assert_eq!(post("/second"), 200);
        statuscope.wait_idle();
        assert_eq!(server.requests(), ["POST /first HTTP/1.1", "POST /second HTTP/1.1"]);
        assert_eq!(server.connections(), 2);
        assert_eq!(statuscope.total("statuscope_upstream_errors_total", &[]), 0.0);
    }

    /// When a pooled connection fails under a request before any answer (the upstream dropped
    /// it as the request came), a GET is sent once more on a new connection and a POST is not:
    /// the POST gets a 502, and the upstream saw it once.
    fn a_request_a_stale_connection_swallowed_is_retried_only_if_idempotent(engine) {
        // Each connection answers its first request and drops the second unanswered.
        let server = ScriptedServer::start(|index, _| match index {
            0 => Reply::Answer(response("200 OK", "fresh")),
            _ => Reply::Close,
        });
        let statuscope = Statuscope::start(engine, server.addr);
        let (mut writer, mut reader) = raw_connection(statuscope.listen);
        let mut exchange = |request: &str| {
            writer.write_all(request.as_bytes()).unwrap();
            read_response(&mut reader)
        };
        assert_eq!(exchange("GET /a HTTP/1.1\r\nHost: t\r\n\r\n").1, b"fresh");
        // On the pooled connection: swallowed, then resent on a new one.
        assert_eq!(exchange("GET /b HTTP/1.1\r\nHost: t\r\n\r\n").1, b"fresh");
        assert_eq!(server.requests(), ["GET /a HTTP/1.1", "GET /b HTTP/1.1", "GET /b HTTP/1.1"]);
        // The second connection is pooled now; a POST it swallows is not resent.
        let (status, _) = exchange("POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi");
        assert!(status.starts_with("HTTP/1.1 502"), "{status}");
        statuscope.wait_idle();
        let posts = server.requests().iter().filter(|r| r.starts_with("POST")).count();
        assert_eq!(posts, 1, "{:?}", server.requests());
        assert_eq!(tally(&statuscope, &[("code", "502"), ("origin", "proxy")]), 1.0);
        assert_eq!(
            statuscope.total("statuscope_upstream_errors_total", &[("kind", "reset")]),
            1.0
        );
    }

    /// Requests from many client connections, one after another, share one upstream connection.
    fn upstream_connections_are_reused_across_requests_and_clients(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::start(engine, upstream.addr);
        for _ in 0..5 {
            let (mut writer, mut reader) = raw_connection(statuscope.listen);
            for _ in 0..10 {
                writer.write_all(b"GET /status/200 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
                assert_eq!(read_response(&mut reader).1, b"code 200");
            }
        }
        statuscope.wait_idle();
        assert_eq!(upstream.requests(), 50);
        assert_eq!(upstream.connections(), 1);
    }

    /// A 64 KiB request head, and a 60 KiB response head, pass whole when the limits allow.
    fn heads_of_64_kib_pass_whole(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::launch(Launch {
            engine,
            upstream: Some(upstream.addr),
            env: vec![("STATUSCOPE_DOWNSTREAM__MAX_HEADER_BYTES", "131072".into())],
            ..Launch::default()
        });
        let big = "v".repeat(60 * 1024);
        let (mut writer, mut reader) = raw_connection(statuscope.listen);
        let request = format!(
            "GET /echo HTTP/1.1\r\nHost: t\r\nx-reply-status: 200\r\nx-reply-header: x-big: {big}\r\n\
             x-pad: {}\r\n\r\n",
            "p".repeat(4 * 1024)
        );
        assert!(request.len() >= 64 * 1024);
        writer.write_all(request.as_bytes()).unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        let mut found = false;
        loop {
            let mut field = String::new();
            reader.read_line(&mut field).unwrap();
            if field == "\r\n" {
                break;
            }
            found |= field.trim_end() == format!("x-big: {big}");
        }
        assert!(found, "the 60 KiB response field did not arrive whole");
        statuscope.wait_idle();
        assert_eq!(tally(&statuscope, &[("code", "200")]), 1.0);
    }

    /// A client that stops reading a long download holds back the upstream, not memory: the
    /// proxy stops reading once the sockets' buffers are full, and the hang-up is a 499.
    fn a_client_that_stops_reading_holds_back_the_upstream_not_memory(engine) {
        const SIZE: usize = 1 << 30;
        let upstream = crate::support::upstream::Upstream::start();
        let statuscope = Statuscope::start(engine, upstream.addr);
        let (mut writer, mut reader) = raw_connection(statuscope.listen);
        write!(writer, "GET /bytes/{SIZE} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let head = read_head(&mut reader);
        assert_eq!(head.content_length, Some(SIZE));
        let mut some = vec![0u8; 1 << 20];
        reader.read_exact(&mut some).unwrap();
        // Stop reading. The proxy's resident memory must not follow the download.
        let before = statuscope.rss();
        let cap = 64 * 1024 * 1024;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        // Bounded by time on purpose: this is how long the upstream is given to push bytes into
        // a proxy that should not take them.
        while std::time::Instant::now() < deadline {
            assert!(statuscope.rss() < cap, "RSS grew to {} bytes", statuscope.rss());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        println!(
            "RSS {:.1} -> {:.1} MiB while the client read nothing",
            before as f64 / 1048576.0,
            statuscope.rss() as f64 / 1048576.0
        );
        drop((writer, reader));
        statuscope.wait_idle();
        assert_eq!(tally(&statuscope, &[("code", "499"), ("origin", "client")]), 1.0);
        assert!(statuscope.peak_rss() < cap);
    }
}

// The pingora engine drops requests pipelined behind the first, and sends chunked bodies
// to HTTP/1.0 clients: these two hold for the fast engine only (docs/engines.md).

/// Requests sent back to back, before any answer, are answered in order.
#[test]
fn pipelined_requests_are_answered_in_order() {
    let engine = Engine::Fast;
    let upstream = Upstream::start();
    let statuscope = Statuscope::start(engine, upstream.addr);
    let (mut writer, mut reader) = raw_connection(statuscope.listen);
    writer
        .write_all(
            b"GET /status/200 HTTP/1.1\r\nHost: t\r\n\r\n\
              POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello\
              GET /status/404 HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .unwrap();
    assert_eq!(
        read_response(&mut reader),
        ("HTTP/1.1 200 OK".into(), b"code 200".to_vec())
    );
    assert_eq!(
        read_response(&mut reader),
        ("HTTP/1.1 200 OK".into(), b"5".to_vec())
    );
    assert_eq!(
        read_response(&mut reader),
        ("HTTP/1.1 404 Not Found".into(), b"code 404".to_vec())
    );
    statuscope.wait_idle();
    assert_eq!(upstream.requests(), 3);
    assert_eq!(tally(&statuscope, &[("origin", "upstream")]), 3.0);
}

/// An HTTP/1.0 client can read a chunked answer: it gets the data, ended by the close.
#[test]
fn an_http10_client_gets_a_chunked_body_without_its_framing() {
    let engine = Engine::Fast;
    let upstream = Upstream::start();
    let statuscope = Statuscope::start(engine, upstream.addr);
    let response =
        crate::support::raw_exchange(statuscope.listen, b"GET /chunked/70000 HTTP/1.0\r\n\r\n");
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding"),
        "{head}"
    );
    assert_eq!(body.len(), 70000);
    assert!(body.bytes().all(|b| b == b'x'));
}
