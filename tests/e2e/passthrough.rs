//! The proxy is transparent: codes, headers, bodies, methods and targets arrive unchanged.

use std::io::{Read, Write};

use crate::support::each_engine;
use crate::support::upstream::{interim_upstream, Upstream};
use crate::support::{
    client, get, raw_connection, raw_exchange, read_body, read_head, send, Statuscope,
};

each_engine! {
    async fn every_final_status_code_passes_through_unchanged(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::start(engine, upstream.addr);
        let client = client();
        for code in 200u16..=599 {
            let received = get(&client, &statuscope, &format!("/status/{code}")).await;
            assert_eq!(received.status, code);
            assert_eq!(
                received.headers["x-upstream"],
                format!("status-{code}").as_str()
            );
            assert!(!received.headers.contains_key("statuscope-error"));
            let expected = if matches!(code, 204 | 304) {
                String::new()
            } else {
                format!("code {code}")
            };
            assert_eq!(received.body, expected.as_bytes(), "body of {code}");
        }
        statuscope.wait_idle();
        let metrics = statuscope.metrics();
        for code in 200u16..=599 {
            let code_text = code.to_string();
            let counted = crate::support::exposition::total(
                &metrics,
                "statuscope_responses_total",
                &[
                    ("code", &code_text),
                    ("origin", "upstream"),
                    ("route", "/status/{id}"),
                ],
            );
            assert_eq!(counted, 1.0, "tally of {code}");
        }
    }
}

each_engine! {
    async fn method_target_headers_and_body_reach_the_upstream_unchanged(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::start(engine, upstream.addr);
        let client = client();
        let url = format!("http://{}/echo/a%20b?x=1&y=two", statuscope.listen);
        let received = send(
            &client,
            "PATCH",
            &url,
            &[
                ("x-custom", "value one"),
                ("authorization", "Bearer secret"),
                ("content-type", "text/plain"),
            ],
            b"hello body",
        )
        .await;
        assert_eq!(received.status, 200);
        let echo: serde_json::Value = serde_json::from_slice(&received.body).unwrap();
        assert_eq!(echo["method"], "PATCH");
        assert_eq!(echo["uri"], "/echo/a%20b?x=1&y=two");
        assert_eq!(echo["body"], "hello body");
        let headers = echo["headers"].as_array().unwrap();
        let has = |name: &str, value: &str| headers.iter().any(|h| h[0] == name && h[1] == value);
        assert!(has("x-custom", "value one"), "{headers:?}");
        assert!(has("authorization", "Bearer secret"), "{headers:?}");
        assert!(has("host", &statuscope.listen.to_string()), "{headers:?}");
    }
}

each_engine! {
    fn interim_responses_are_forwarded_and_not_counted_as_final(engine) {
        let upstream =
            interim_upstream("HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n");
        let statuscope = Statuscope::start(engine, upstream);
        let response = raw_exchange(
            statuscope.listen,
            b"GET /page HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        );
        assert!(response.starts_with("HTTP/1.1 103"), "{response}");
        assert!(response.contains("link: </style.css>"), "{response}");
        assert!(response.contains("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("final"), "{response}");
        statuscope.wait_idle();
        assert_eq!(
            statuscope.total("statuscope_responses_total", &[("code", "103")]),
            0.0
        );
        assert_eq!(
            statuscope.total(
                "statuscope_responses_total",
                &[("code", "200"), ("route", "/page")]
            ),
            1.0
        );
    }
}

each_engine! {
    async fn head_and_query_strings_pass_without_reaching_labels(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::start(engine, upstream.addr);
        let client = client();
        let url = format!("http://{}/status/404?token=hunter2", statuscope.listen);
        let received = send(&client, "HEAD", &url, &[], b"").await;
        assert_eq!(received.status, 404);
        assert!(received.body.is_empty());
        statuscope.wait_idle();
        let text = statuscope.metrics_text();
        assert!(!text.contains("hunter2"));
        assert!(!text.contains("token"));
        assert_eq!(
            statuscope.total(
                "statuscope_responses_total",
                &[("method", "HEAD"), ("code", "404"), ("class", "4xx")]
            ),
            1.0
        );
    }
}

each_engine! {
    fn chunked_bodies_pass_in_both_directions(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::start(engine, upstream.addr);
        let (mut writer, mut reader) = raw_connection(statuscope.listen);
        writer
            .write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            .unwrap();
        let upload = read_head(&mut reader);
        assert!(
            upload.status.starts_with("HTTP/1.1 200"),
            "{}",
            upload.status
        );
        let mut count = vec![0u8; upload.content_length.unwrap()];
        reader.read_exact(&mut count).unwrap();
        assert_eq!(count, b"11");

        writer
            .write_all(b"GET /chunked/70000 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let download = read_head(&mut reader);
        assert!(
            download.status.starts_with("HTTP/1.1 200"),
            "{}",
            download.status
        );
        assert!(download.chunked);
        let decoded = read_body(&mut reader, &download);
        assert_eq!(decoded.len(), 70000);
        assert!(decoded.iter().all(|b| *b == b'x'));
        statuscope.wait_idle();
        assert_eq!(
            statuscope.total("statuscope_responses_total", &[("code", "200")]),
            2.0
        );
    }
}
