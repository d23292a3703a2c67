//! Malformed and smuggling-style requests over raw sockets: each gets the status HTTP names
//! for it, is tallied with `origin="proxy"`, and nothing reaches the upstream.

use std::collections::BTreeMap;
use std::io::Write;

use crate::support::each_engine;
use crate::support::upstream::Upstream;
use crate::support::{config_file, raw_exchange, Launch, Statuscope};

/// The limits the cases below are written against (the defaults are larger).
const LIMITS: &str = "downstream:
  max_header_bytes: 16384
  max_headers: 50
  max_target_bytes: 4096
";

fn cases() -> Vec<(&'static str, Vec<u8>, u16)> {
    let post = |headers: &str, body: &str| {
        format!("POST /orders HTTP/1.1\r\nHost: api.test\r\n{headers}\r\n{body}").into_bytes()
    };
    let get = |line: &str, headers: &str| format!("{line}\r\n{headers}\r\n").into_bytes();
    let chunked = |body: &str| post("Transfer-Encoding: chunked\r\n", body);
    vec![
        // Framing conflicts and Content-Length forms.
        (
            "cl-then-te",
            post(
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\n",
            ),
            400,
        ),
        (
            "te-then-cl",
            post(
                "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                "0\r\n\r\n",
            ),
            400,
        ),
        (
            "two-differing-cl",
            post("Content-Length: 5\r\nContent-Length: 6\r\n", "hello"),
            400,
        ),
        (
            "two-equal-cl",
            post("Content-Length: 5\r\nContent-Length: 5\r\n", "hello"),
            400,
        ),
        ("cl-list", post("Content-Length: 5, 5\r\n", "hello"), 400),
        ("cl-negative", post("Content-Length: -1\r\n", ""), 400),
        ("cl-plus", post("Content-Length: +5\r\n", "hello"), 400),
        ("cl-hex", post("Content-Length: 0x5\r\n", "hello"), 400),
        (
            "cl-huge",
            post("Content-Length: 123456789012345678901234567890\r\n", ""),
            400,
        ),
        ("cl-empty", post("Content-Length:\r\n", ""), 400),
        // Transfer-Encoding forms.
        (
            "te-chunked-twice",
            post("Transfer-Encoding: chunked, chunked\r\n", "0\r\n\r\n"),
            400,
        ),
        (
            "te-not-chunked",
            post("Transfer-Encoding: xchunked\r\n", "0\r\n\r\n"),
            400,
        ),
        (
            "te-chunked-not-last",
            post("Transfer-Encoding: chunked, gzip\r\n", "0\r\n\r\n"),
            400,
        ),
        (
            "te-unknown-coding",
            post("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"),
            501,
        ),
        (
            "te-empty-element",
            post("Transfer-Encoding: ,chunked\r\n", "0\r\n\r\n"),
            400,
        ),
        (
            "te-vertical-tab",
            post("Transfer-Encoding: \x0bchunked\r\n", "0\r\n\r\n"),
            400,
        ),
        (
            "te-space-before-colon",
            post("Transfer-Encoding : chunked\r\n", "0\r\n\r\n"),
            400,
        ),
        (
            "te-in-http10",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            400,
        ),
        // Chunk sizes and extensions.
        (
            "chunk-size-not-hex",
            chunked("zz\r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        ("chunk-size-0x", chunked("0x5\r\nhello\r\n0\r\n\r\n"), 400),
        (
            "chunk-size-overflow",
            chunked("fffffffffffffffffffff\r\nx\r\n0\r\n\r\n"),
            400,
        ),
        (
            "chunk-size-negative",
            chunked("-5\r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        ("chunk-size-empty", chunked("\r\nhello\r\n0\r\n\r\n"), 400),
        (
            "chunk-extension-control",
            chunked("5;a=\x01\r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        (
            "chunk-data-too-long",
            chunked("5\r\nhello, world\r\n0\r\n\r\n"),
            400,
        ),
        ("chunk-size-bare-lf", chunked("5\nhello\r\n0\r\n\r\n"), 400),
        // Line structure.
        (
            "obs-fold-space",
            get("GET / HTTP/1.1", "Host: api.test\r\nX-A: one\r\n two\r\n"),
            400,
        ),
        (
            "obs-fold-tab",
            get("GET / HTTP/1.1", "Host: api.test\r\nX-A: one\r\n\ttwo\r\n"),
            400,
        ),
        (
            "bare-lf",
            b"GET / HTTP/1.1\nHost: api.test\n\n".to_vec(),
            400,
        ),
        (
            "bare-lf-in-headers",
            b"GET / HTTP/1.1\r\nHost: api.test\nX: y\r\n\r\n".to_vec(),
            400,
        ),
        (
            "bare-cr",
            get("GET / HTTP/1.1", "Host: api.test\r\nX-A: a\rb\r\n"),
            400,
        ),
        // Characters in names and values.
        (
            "nul-in-value",
            get("GET / HTTP/1.1", "Host: api.test\r\nX-A: a\0b\r\n"),
            400,
        ),
        (
            "nul-in-name",
            get("GET / HTTP/1.1", "Host: api.test\r\nX\0A: b\r\n"),
            400,
        ),
        (
            "control-in-name",
            get("GET / HTTP/1.1", "Host: api.test\r\nX\x01A: b\r\n"),
            400,
        ),
        (
            "del-in-value",
            get("GET / HTTP/1.1", "Host: api.test\r\nX-A: a\x7fb\r\n"),
            400,
        ),
        (
            "space-before-colon",
            get("GET / HTTP/1.1", "Host : api.test\r\n"),
            400,
        ),
        (
            "no-colon",
            get("GET / HTTP/1.1", "Host: api.test\r\nJustAName\r\n"),
            400,
        ),
        (
            "empty-name",
            get("GET / HTTP/1.1", "Host: api.test\r\n: value\r\n"),
            400,
        ),
        // Methods and request lines.
        (
            "method-with-parens",
            get("G(ET / HTTP/1.1", "Host: api.test\r\n"),
            400,
        ),
        (
            "method-with-nul",
            get("GE\0T / HTTP/1.1", "Host: api.test\r\n"),
            400,
        ),
        (
            "leading-space",
            get(" GET / HTTP/1.1", "Host: api.test\r\n"),
            400,
        ),
        (
            "double-space",
            get("GET  / HTTP/1.1", "Host: api.test\r\n"),
            400,
        ),
        (
            "space-in-target",
            get("GET /a b HTTP/1.1", "Host: api.test\r\n"),
            400,
        ),
        (
            "non-ascii-target",
            get("GET /caf\u{e9} HTTP/1.1", "Host: api.test\r\n"),
            400,
        ),
        (
            "relative-target",
            get("GET users HTTP/1.1", "Host: api.test\r\n"),
            400,
        ),
        (
            "asterisk-with-get",
            get("GET * HTTP/1.1", "Host: api.test\r\n"),
            400,
        ),
        (
            "connect",
            get("CONNECT api.test:443 HTTP/1.1", "Host: api.test:443\r\n"),
            405,
        ),
        // Sizes.
        (
            "absurd-target",
            get(
                &format!("GET /{} HTTP/1.1", "a".repeat(100_000)),
                "Host: api.test\r\n",
            ),
            414,
        ),
        (
            "oversized-header-section",
            get(
                "GET / HTTP/1.1",
                &format!("Host: api.test\r\nX-Big: {}\r\n", "b".repeat(40_000)),
            ),
            431,
        ),
        (
            "too-many-headers",
            get(
                "GET / HTTP/1.1",
                &format!("Host: api.test\r\n{}", "X-Many: y\r\n".repeat(200)),
            ),
            431,
        ),
        // Versions.
        ("http09", b"GET /\r\n\r\n".to_vec(), 400),
        (
            "http2-line",
            get("GET / HTTP/2.0", "Host: api.test\r\n"),
            505,
        ),
        (
            "version-garbage",
            get("GET / HTTP/1.1x", "Host: api.test\r\n"),
            400,
        ),
        (
            "version-lowercase",
            get("GET / http/1.1", "Host: api.test\r\n"),
            400,
        ),
        (
            "version-missing-minor",
            get("GET / HTTP/1", "Host: api.test\r\n"),
            400,
        ),
        // Host.
        ("no-host-http11", get("GET / HTTP/1.1", ""), 400),
        (
            "two-hosts",
            get("GET / HTTP/1.1", "Host: a.test\r\nHost: b.test\r\n"),
            400,
        ),
        (
            "host-with-slash",
            get("GET / HTTP/1.1", "Host: a.test/evil\r\n"),
            400,
        ),
        (
            "host-with-userinfo",
            get("GET / HTTP/1.1", "Host: user@a.test\r\n"),
            400,
        ),
        (
            "host-bad-port",
            get("GET / HTTP/1.1", "Host: a.test:80x\r\n"),
            400,
        ),
        (
            "host-unclosed-literal",
            get("GET / HTTP/1.1", "Host: [::1\r\n"),
            400,
        ),
    ]
}

fn status_of(response: &str) -> Option<u16> {
    response.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

each_engine! {
    fn hostile_requests_get_their_status_are_tallied_and_never_reach_the_upstream(engine) {
        let upstream = Upstream::start();
        let config = config_file("hostile.yaml", LIMITS);
        let statuscope = Statuscope::launch(Launch {
            engine,
            upstream: Some(upstream.addr),
            config: Some(&config),
            ..Launch::default()
        });
        let cases = cases();
        assert!(cases.len() >= 40, "the issue asks for at least 40 cases");
        let mut expected_by_code: BTreeMap<u16, usize> = BTreeMap::new();
        let mut wrong = Vec::new();
        for (name, request, expected) in &cases {
            let response = raw_exchange(statuscope.listen, request);
            let status = status_of(&response);
            if status != Some(*expected) {
                wrong.push(format!(
                    "{name}: expected {expected}, got {:?}",
                    response.lines().next()
                ));
                continue;
            }
            assert!(
                response.contains("statuscope-error: ") && response.contains("connection: close"),
                "{name}: not a structured proxy answer:\n{response}"
            );
            *expected_by_code.entry(*expected).or_default() += 1;
        }
        assert!(wrong.is_empty(), "wrong answers:\n{}", wrong.join("\n"));
        assert_eq!(
            upstream.connections(),
            0,
            "a hostile request reached the upstream"
        );
        assert_eq!(upstream.requests(), 0);

        for (code, count) in &expected_by_code {
            let tallied = statuscope.total(
                "statuscope_responses_total",
                &[("code", &code.to_string()), ("origin", "proxy")],
            );
            assert_eq!(tallied, *count as f64, "tally of {code}");
        }
        assert_eq!(
            statuscope.total("statuscope_responses_total", &[]),
            cases.len() as f64,
            "every refused request is tallied once, and only those"
        );
        // Readable paths keep their route; unreadable request lines are `__malformed__`.
        assert!(statuscope.total("statuscope_responses_total", &[("route", "/orders")]) > 0.0);
        assert!(statuscope.total("statuscope_responses_total", &[("route", "__malformed__")]) > 0.0);

        // The proxy still serves, and the upstream sees exactly that one request.
        let response = raw_exchange(
            statuscope.listen,
            b"GET /status/200 HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status_of(&response), Some(200), "{response}");
        assert_eq!(upstream.requests(), 1);
    }
}

each_engine! {
    fn a_head_split_across_many_writes_is_read_whole(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::start(engine, upstream.addr);
        let (mut writer, mut reader) = crate::support::raw_connection(statuscope.listen);
        let request = b"GET /status/204 HTTP/1.1\r\nHost: api.test\r\nX-Pad: abcdefghij\r\nConnection: close\r\n\r\n";
        for chunk in request.chunks(3) {
            writer.write_all(chunk).unwrap();
            writer.flush().unwrap();
        }
        let head = crate::support::read_head(&mut reader);
        assert!(head.status.starts_with("HTTP/1.1 204"), "{}", head.status);
        assert_eq!(upstream.requests(), 1);
    }
}

each_engine! {
    fn a_request_shorter_than_the_http2_preface_is_answered(engine) {
        // pingora's own h2c sniffing waits for 24 bytes; this request has 18 and then waits.
        let upstream = Upstream::start();
        let statuscope = Statuscope::start(engine, upstream.addr);
        let (mut writer, mut reader) = crate::support::raw_connection(statuscope.listen);
        writer.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let head = crate::support::read_head(&mut reader);
        assert!(head.status.starts_with("HTTP/1.1 "), "{}", head.status);
        assert_eq!(upstream.requests(), 1);
    }
}
