use super::*;

const LIMITS: HeadLimits = HeadLimits {
    max_header_bytes: 1024,
    max_headers: 8,
    max_target_bytes: 64,
};

fn read(head: &[u8]) -> Progress {
    HeadReader::default().advance(head, &LIMITS)
}

fn status(head: &[u8]) -> u16 {
    match read(head) {
        Progress::Refused(r) => r.error.status,
        other => panic!(
            "{:?} was not refused: {other:?}",
            String::from_utf8_lossy(head)
        ),
    }
}

fn complete(head: &[u8]) -> Head {
    match read(head) {
        Progress::Complete(facts) => facts,
        other => panic!("{other:?}"),
    }
}

#[test]
fn what_an_intermediary_must_not_send_on_as_written_is_refused_or_marked() {
    // RFC 9112 §3.2.2: the upstream gets origin form and Host, so they must agree.
    assert_eq!(status(b"GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n"), 400);
    assert_eq!(status(b"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    assert_eq!(
        status(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: x\r\n\r\n"),
        417
    );
    // Servers read these differently (waitress, nginx and h11 do not agree).
    assert_eq!(status(b"get / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    assert_eq!(status(b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    let marked = |head: &[u8]| complete(head).normalise;
    assert!(!marked(
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n"
    ));
    assert!(marked(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n"));
    assert!(marked(b"GET http://A/ HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert!(marked(
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 010\r\n\r\n"
    ));
}

#[test]
fn accepts_an_ordinary_head_and_finds_its_end() {
    let head = b"GET /a?b=1 HTTP/1.1\r\nHost: x.test\r\nAccept: */*\r\n\r\nbody";
    let facts = complete(head);
    assert_eq!(facts.head_len, head.len() - 4);
    assert!(!facts.chunked && !facts.http10 && !facts.hop_by_hop);
    assert_eq!(facts.method.of(head), b"GET");
    assert_eq!(facts.target.of(head), b"/a?b=1");
    assert_eq!(facts.accept.unwrap().of(head), b"*/*");
    assert_eq!(facts.content_length, None);
}

#[test]
fn tells_the_kubelet_s_probes_by_their_user_agent() {
    let probe = complete(
        b"GET /healthz HTTP/1.1\r\nHost: 10.0.0.7:7070\r\nUser-Agent: kube-probe/1.31\r\n\r\n",
    );
    assert!(probe.probe);
    for agent in ["curl/8.5.0", "my-kube-probe/1", "kube-probe"] {
        let head = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: {agent}\r\n\r\n");
        assert!(!complete(head.as_bytes()).probe, "{agent}");
    }
}

#[test]
fn gathers_what_forwarding_and_the_rules_need() {
    let head = b"POST /x HTTP/1.0\r\nContent-Length: 12\r\nConnection: Keep-Alive, X-Trace\r\n\
        Expect: 100-continue\r\nAuthorization: Bearer t\r\nCookie: a=b\r\n\r\n";
    let facts = complete(head);
    assert!(facts.http10 && facts.hop_by_hop && facts.expects_continue);
    assert!(facts.has_authorization && facts.has_cookie && !facts.upgrade);
    assert_eq!(facts.content_length, Some(12));
    assert_eq!(
        facts.connection,
        ConnectionOptions {
            close: false,
            keep_alive: true,
            names_fields: true
        }
    );
    let upgrade = complete(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    );
    assert!(upgrade.upgrade && upgrade.hop_by_hop && !upgrade.connection.names_fields);
    assert!(complete(b"GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n").hop_by_hop);
    assert_eq!(
        status(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: a b\r\n\r\n"),
        400
    );
}

#[test]
fn a_byte_at_a_time_reaches_the_same_answer() {
    let head = b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut reader = HeadReader::default();
    for n in 1..head.len() {
        assert_eq!(reader.advance(&head[..n], &LIMITS), Progress::NeedMore);
    }
    match reader.advance(head, &LIMITS) {
        Progress::Complete(facts) => {
            assert_eq!(facts.head_len, head.len());
            assert!(facts.chunked);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn refuses_smuggling_shapes() {
    for head in [
        &b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n X: folded\r\n\r\n",
        b"GET / HTTP/1.1\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    ] {
        assert_eq!(status(head), 400, "{}", String::from_utf8_lossy(head));
    }
}

#[test]
fn names_the_rfc_status_for_each_limit_and_feature() {
    assert_eq!(status(b"GET / HTTP/2.0\r\n"), 505);
    assert_eq!(status(b"CONNECT a:443 HTTP/1.1\r\n"), 405);
    assert_eq!(
        status(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
        501
    );
    assert_eq!(
        status(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"),
        400
    );
    let long_target = format!("GET /{} HTTP/1.1\r\n", "a".repeat(100));
    assert_eq!(status(long_target.as_bytes()), 414);
    let many = format!("GET / HTTP/1.1\r\n{}", "X: y\r\n".repeat(9));
    assert_eq!(status(many.as_bytes()), 431);
    let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "y".repeat(1100));
    assert_eq!(status(big.as_bytes()), 431);
}

#[test]
fn accepts_what_http_allows() {
    for head in [
        &b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"GET / HTTP/1.0\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
        b"PURGE /x HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
    ] {
        assert!(
            matches!(read(head), Progress::Complete(_)),
            "{}",
            String::from_utf8_lossy(head)
        );
    }
}

#[test]
fn chunk_framing_in_the_buffered_body_is_checked() {
    assert!(check_buffered_chunks(b"5\r\nhello\r\n0\r\n\r\n").is_ok());
    assert!(check_buffered_chunks(b"5;name=value\r\nhel").is_ok());
    assert!(check_buffered_chunks(b"zz\r\n").is_err());
    assert!(check_buffered_chunks(b"5\r\nhello world\r\n").is_err());
    assert!(check_buffered_chunks(b"5\nhello\r\n").is_err());
    assert!(check_buffered_chunks(b"5;a=\x01\r\n").is_err());
    assert!(check_buffered_chunks(b"ffffffffffffffffff\r\n").is_err());
}
