//! Faults: an upstream that dies and returns, upstream bodies cut short, upstreams and
//! clients that trickle, and the cap on client connections.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::each_engine;
use crate::support::upstream::{scripted_upstream, Ending, Upstream};
use crate::support::{
    client, config_file, raw_connection, send, wait_until, Launch, Statuscope, PATIENCE,
};

/// Longer than any answer may take here: a request that outlives it is a hang.
const NO_HANG: Duration = Duration::from_secs(5);

async fn status_within_deadline(client: &crate::support::HttpClient, url: &str) -> (u16, bool) {
    let received = tokio::time::timeout(NO_HANG, send(client, "GET", url, &[], b""))
        .await
        .unwrap_or_else(|_| panic!("{url} hung"));
    let from_proxy = received.headers.contains_key("statuscope-error");
    (received.status, from_proxy)
}

each_engine! {
    async fn an_upstream_that_dies_gets_proxy_502s_and_traffic_returns_with_it(engine) {
        let upstream = Upstream::start();
        let addr = upstream.addr;
        let statuscope = Statuscope::start(engine, addr);
        let client = client();
        let url = format!("http://{}/status/200", statuscope.listen);
        for _ in 0..20 {
            assert_eq!(status_within_deadline(&client, &url).await, (200, false));
        }

        drop(upstream);
        // Until the old upstream's sockets are gone a request may still reach it; after that
        // every answer is the proxy's 502.
        let mut down = 0;
        while down < 20 {
            match status_within_deadline(&client, &url).await {
                (502, true) => down += 1,
                (200, false) if down == 0 => {}
                other => panic!("while the upstream is down: {other:?}"),
            }
        }

        let upstream = Upstream::start_on(addr);
        // No circuit breaker, no back-off: the very first request after the return succeeds.
        for _ in 0..20 {
            assert_eq!(status_within_deadline(&client, &url).await, (200, false));
        }
        statuscope.wait_idle();
        assert!(
            statuscope.total(
                "statuscope_responses_total",
                &[("code", "502"), ("origin", "proxy")]
            ) >= 20.0
        );
        assert!(
            statuscope.total(
                "statuscope_upstream_errors_total",
                &[("kind", "connect_refused")]
            ) >= 20.0
        );
        assert!(upstream.requests() >= 20);
    }
}

/// Sends one request through a statuscope in front of `upstream` and returns every byte the
/// client got before the connection closed.
fn through(statuscope: &Statuscope) -> Vec<u8> {
    let (mut writer, mut reader) = raw_connection(statuscope.listen);
    writer
        .write_all(b"GET /download HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut received = Vec::new();
    // The proxy must close the connection: reading to the end must not time out.
    match reader.read_to_end(&mut received) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the client was left waiting: {e}"),
    }
    received
}

fn upstream_errors(statuscope: &Statuscope, kind: &str) -> f64 {
    statuscope.total("statuscope_upstream_errors_total", &[("kind", kind)])
}

each_engine! {
    fn bodies_cut_short_reach_the_client_as_failures_and_are_counted_by_kind(engine) {
        let cases = [
            (
                "reset mid-body",
                "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n",
                "first half",
                Ending::Reset,
                "reset",
            ),
            (
                "Content-Length longer than the body",
                "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n",
                "short",
                Ending::Close,
                "truncated",
            ),
            (
                "chunked body without its last chunk",
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                "5\r\nhello\r\n",
                Ending::Close,
                "truncated",
            ),
        ];
        for (name, head, tail, ending, kind) in cases {
            let statuscope = Statuscope::start(engine, scripted_upstream(head, tail, ending));
            let received = through(&statuscope);
            let text = String::from_utf8_lossy(&received);
            assert!(text.starts_with("HTTP/1.1 200"), "{name}: {text}");
            let (_, body) = text.split_once("\r\n\r\n").unwrap();
            if text.contains("content-length: 100") {
                assert!(body.len() < 100, "{name}: a short body passed as complete");
            } else {
                assert!(
                    !body.ends_with("0\r\n\r\n"),
                    "{name}: the proxy finished the chunked body"
                );
            }
            statuscope.wait_idle();
            assert_eq!(
                upstream_errors(&statuscope, kind),
                1.0,
                "{name}: {}",
                statuscope
                    .metrics_text()
                    .lines()
                    .filter(|l| l.contains("upstream_errors"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

each_engine! {
    fn an_upstream_trickling_its_body_is_cut_off_at_the_response_timeout(engine) {
        let upstream = scripted_upstream(
            "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n",
            "",
            Ending::Trickle(Duration::from_millis(200)),
        );
        // Each byte arrives well within the read timeout; only the response timeout can stop it.
        let statuscope = Statuscope::launch(Launch {
            engine,
            upstream: Some(upstream),
            env: vec![
                ("STATUSCOPE_TIMEOUTS__READ", "5s".into()),
                ("STATUSCOPE_TIMEOUTS__RESPONSE", "1s".into()),
            ],
            ..Launch::default()
        });
        let received = through(&statuscope);
        let text = String::from_utf8_lossy(&received);
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(body.len() < 100, "{} body bytes", body.len());
        statuscope.wait_idle();
        assert_eq!(upstream_errors(&statuscope, "response_timeout"), 1.0);
    }
}

each_engine! {
    fn slow_clients_are_cut_off_at_the_header_timeout_while_others_are_served(engine) {
        const SLOW_CLIENTS: usize = 1_000;
        let upstream = Upstream::start();
        let statuscope = Statuscope::launch(Launch {
            engine,
            upstream: Some(upstream.addr),
            env: vec![("STATUSCOPE_DOWNSTREAM__HEADER_TIMEOUT", "2s".into())],
            ..Launch::default()
        });
        let fds_before = open_fds(&statuscope);
        let mut slow: Vec<TcpStream> = (0..SLOW_CLIENTS)
            .map(|_| {
                let stream = TcpStream::connect(statuscope.listen).unwrap();
                stream.set_nonblocking(true).unwrap();
                stream
            })
            .collect();
        let head = b"GET /status/200 HTTP/1.1\r\nHost: t\r\nX-Slow: ";
        // Each client sends its head a byte at a time, round after round, until it is cut off.
        let trickler = std::thread::spawn(move || {
            let mut sent = vec![0usize; slow.len()];
            let mut alive = slow.len();
            let deadline = std::time::Instant::now() + PATIENCE;
            while alive > 0 && std::time::Instant::now() < deadline {
                alive = 0;
                for (stream, sent) in slow.iter_mut().zip(&mut sent) {
                    let byte = head.get(*sent).copied().unwrap_or(b'a');
                    let mut probe = [0u8; 1];
                    let closed = stream.peek(&mut probe).is_ok();
                    if !closed && stream.write(&[byte]).is_ok() {
                        *sent += 1;
                        alive += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            slow
        });
        // Meanwhile ordinary clients are served.
        for _ in 0..20 {
            let (status, _) = crate::support::raw_get(statuscope.listen, "/status/200").unwrap();
            assert_eq!(status, 200);
        }
        let slow = trickler.join().unwrap();
        for mut stream in slow {
            stream.set_nonblocking(false).unwrap();
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            assert!(
                answer.starts_with(b"HTTP/1.1 408"),
                "{}",
                String::from_utf8_lossy(&answer)
            );
        }
        wait_until("the slow connections to be closed", || {
            statuscope.total("statuscope_downstream_connections", &[]) == 0.0
        });
        assert_eq!(
            statuscope.total(
                "statuscope_responses_total",
                &[("code", "408"), ("origin", "proxy")]
            ),
            SLOW_CLIENTS as f64
        );
        assert_eq!(upstream.requests(), 20);
        let fds_after = open_fds(&statuscope);
        eprintln!(
            "{SLOW_CLIENTS} slow clients: {fds_before} -> {fds_after} descriptors, peak RSS {} bytes",
            statuscope.peak_rss()
        );
        assert!(
            fds_after <= fds_before + 8,
            "file descriptors leaked: {fds_before} -> {fds_after}"
        );
        assert!(
            statuscope.peak_rss() < 64 * 1024 * 1024,
            "peak RSS {} bytes with {SLOW_CLIENTS} slow clients",
            statuscope.peak_rss()
        );
    }
}

fn open_fds(statuscope: &Statuscope) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", statuscope.pid()))
        .unwrap()
        .count()
}

each_engine! {
    fn connections_beyond_the_cap_are_closed_at_accept(engine) {
        const CAP: usize = 20;
        let upstream = Upstream::start();
        let config = config_file(
            "max-connections.yaml",
            &format!("downstream:\n  max_connections: {CAP}\n"),
        );
        let statuscope = Statuscope::launch(Launch {
            engine,
            upstream: Some(upstream.addr),
            config: Some(&config),
            ..Launch::default()
        });
        let idle: Vec<TcpStream> = (0..CAP + 5)
            .map(|_| TcpStream::connect(statuscope.listen).unwrap())
            .collect();
        wait_until("every connection to be accepted or refused", || {
            statuscope.total("statuscope_downstream_connections", &[])
                + statuscope.total("statuscope_downstream_connections_refused_total", &[])
                == (CAP + 5) as f64
        });
        assert_eq!(
            statuscope.total("statuscope_downstream_connections", &[]),
            CAP as f64
        );
        drop(idle);
        wait_until("the held connections to close", || {
            statuscope.total("statuscope_downstream_connections", &[]) == 0.0
        });
        // With room again, requests are served.
        let (status, _) = crate::support::raw_get(statuscope.listen, "/status/200").unwrap();
        assert_eq!(status, 200);
    }
}
