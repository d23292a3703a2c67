//! Errors the proxy makes itself: correct codes, structured bodies, `origin="proxy"`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::support::each_engine;
use crate::support::upstream::Upstream;
use crate::support::{client, free_port, get, wait_until, Launch, Received, Statuscope};

fn assert_structured(received: &Received, status: u16, code: &str, kind: &str) {
    assert_eq!(received.status, status);
    assert_eq!(received.headers["statuscope-error"], kind);
    assert_eq!(received.headers["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_slice(&received.body).unwrap();
    assert_eq!(body["code"], code);
    assert!(!body["details"][0].as_str().unwrap().is_empty());
}

fn wait_in_flight(statuscope: &Statuscope, expected: f64) {
    wait_until(&format!("{expected} requests in flight"), || {
        statuscope.total("statuscope_requests_in_flight", &[]) == expected
    });
}

each_engine! {
    async fn upstream_down_gives_a_structured_502_from_the_proxy(engine) {
        let nowhere: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let statuscope = Statuscope::start(engine, nowhere);
        let received = get(&client(), &statuscope, "/users/7").await;
        assert_structured(&received, 502, "UPSTREAM_UNAVAILABLE", "connect_refused");
        statuscope.wait_idle();
        let labels = [
            ("route", "/users/{id}"),
            ("code", "502"),
            ("class", "5xx"),
            ("origin", "proxy"),
        ];
        assert_eq!(statuscope.total("statuscope_responses_total", &labels), 1.0);
        assert_eq!(
            statuscope.total(
                "statuscope_upstream_errors_total",
                &[("kind", "connect_refused")]
            ),
            1.0
        );
        assert_eq!(
            statuscope.total("statuscope_responses_total", &[("origin", "upstream")]),
            0.0
        );
    }
}

each_engine! {
    async fn slow_upstream_gives_504_at_the_read_timeout(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::launch(Launch {
            engine,
            upstream: Some(upstream.addr),
            env: vec![("STATUSCOPE_TIMEOUTS__READ", "300ms".into())],
            ..Launch::default()
        });
        let received = get(&client(), &statuscope, "/slow/3000").await;
        assert_structured(&received, 504, "UPSTREAM_TIMEOUT", "read_timeout");
        statuscope.wait_idle();
        assert_eq!(
            statuscope.total(
                "statuscope_responses_total",
                &[("code", "504"), ("origin", "proxy")]
            ),
            1.0
        );
        assert_eq!(
            statuscope.total(
                "statuscope_upstream_errors_total",
                &[("kind", "read_timeout")]
            ),
            1.0
        );
    }
}

each_engine! {
    async fn in_flight_limit_sheds_with_503_and_retry_after(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::launch(Launch {
            engine,
            upstream: Some(upstream.addr),
            env: vec![("STATUSCOPE_MAX_IN_FLIGHT", "2".into())],
            ..Launch::default()
        });
        let client = client();
        let slow: Vec<_> = (0..2)
            .map(|_| {
                let client = client.clone();
                let url = format!("http://{}/slow/1500", statuscope.listen);
                tokio::spawn(async move {
                    crate::support::send(&client, "GET", &url, &[], b"")
                        .await
                        .status
                })
            })
            .collect();
        wait_in_flight(&statuscope, 2.0);
        let shed = get(&client, &statuscope, "/orders").await;
        assert_structured(&shed, 503, "OVERLOADED", "overloaded");
        assert_eq!(shed.headers["retry-after"], "1");
        for task in slow {
            assert_eq!(task.await.unwrap(), 200);
        }
        statuscope.wait_idle();
        assert_eq!(
            statuscope.total(
                "statuscope_responses_total",
                &[("code", "503"), ("origin", "proxy"), ("route", "/orders")]
            ),
            1.0
        );
        assert_eq!(
            statuscope.total(
                "statuscope_responses_total",
                &[("code", "200"), ("origin", "upstream")]
            ),
            2.0
        );
        // The shed request never reached the upstream.
        assert_eq!(upstream.requests(), 2);
    }
}

each_engine! {
    fn client_abort_while_waiting_is_tallied_as_499_from_the_client(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::start(engine, upstream.addr);
        let mut stream = TcpStream::connect(statuscope.listen).unwrap();
        stream
            .write_all(b"GET /slow/2000 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        wait_in_flight(&statuscope, 1.0);
        drop(stream);
        statuscope.wait_idle();
        assert_eq!(
            statuscope.total(
                "statuscope_responses_total",
                &[("code", "499"), ("origin", "client"), ("class", "4xx")]
            ),
            1.0
        );
        assert_eq!(
            statuscope.total("statuscope_responses_total", &[("class", "5xx")]),
            0.0
        );
    }
}

each_engine! {
    fn client_abort_mid_body_is_tallied_as_499_from_the_client(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::start(engine, upstream.addr);
        let mut stream = TcpStream::connect(statuscope.listen).unwrap();
        stream
            .write_all(b"GET /bytes/1073741824 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut first = [0u8; 65536];
        let n = stream.read(&mut first).unwrap();
        assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
        drop(stream);
        statuscope.wait_idle();
        assert_eq!(
            statuscope.total(
                "statuscope_responses_total",
                &[("code", "499"), ("origin", "client")]
            ),
            1.0
        );
        assert_eq!(
            statuscope.total("statuscope_responses_total", &[("code", "200")]),
            0.0
        );
    }
}

each_engine! {
    fn invalid_chunk_arriving_after_the_head_gets_a_structured_400(engine) {
        // A malformed chunk that arrives with the head is refused by the guard (see `hostile`);
        // one that arrives later is caught by pingora's body reader, mid-request.
        let upstream = Upstream::start();
        let statuscope = Statuscope::start(engine, upstream.addr);
        let (mut writer, mut reader) = crate::support::raw_connection(statuscope.listen);
        writer
            .write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        wait_in_flight(&statuscope, 1.0);
        writer.write_all(b"zz\r\nhello\r\n0\r\n\r\n").unwrap();
        let mut response = String::new();
        let _ = reader.read_to_string(&mut response);
        assert!(response.starts_with("HTTP/1.1 400"), "{response}");
        assert!(
            response.contains("statuscope-error: bad_request"),
            "{response}"
        );
        statuscope.wait_idle();
        assert_eq!(
            statuscope.total(
                "statuscope_responses_total",
                &[("code", "400"), ("origin", "proxy")]
            ),
            1.0
        );
    }
}
