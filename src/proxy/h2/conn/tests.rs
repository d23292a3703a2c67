//! Two connections talking through their write buffers: a client and a server.

use std::time::Instant;

use super::*;
use crate::proxy::h2::hpack::encode_field;

const LIMITS: Limits = Limits {
    max_concurrent_streams: 4,
    initial_window: DEFAULT_WINDOW,
    connection_window: DEFAULT_WINDOW,
    max_header_list: 16 * 1024,
};

/// What one side's events came to, as text, for comparing.
fn deliver(from: &mut Conn<()>, to: &mut Conn<()>) -> Vec<String> {
    let bytes = std::mem::take(&mut from.wbuf);
    let mut at = 0;
    let mut events = Vec::new();
    while at < bytes.len() {
        let (taken, event) = to
            .receive(&bytes[at..], Instant::now())
            .expect("no connection error");
        assert!(taken > 0, "a whole frame each time");
        at += taken;
        events.extend(event.map(|event| match event {
            Event::Headers {
                kind, end_stream, ..
            } => format!("{kind:?} end={end_stream}"),
            Event::Data {
                data, end_stream, ..
            } => format!("data {} end={end_stream}", data.len()),
            Event::Reset { reason, .. } => format!("reset {}", reason.0),
            Event::WindowOpened(key) => format!("window {}", key.is_some()),
            Event::GoAway { last_stream, .. } => format!("goaway {last_stream}"),
        }));
    }
    events
}

fn pair() -> (Conn<()>, Conn<()>) {
    let mut client = Conn::new(Role::Client, LIMITS);
    let mut server = Conn::new(Role::Server, LIMITS);
    deliver(&mut client, &mut server);
    deliver(&mut server, &mut client);
    deliver(&mut client, &mut server);
    (client, server)
}

fn request(out: &mut Vec<u8>) {
    encode_field(out, b":method", b"POST");
    encode_field(out, b":scheme", b"http");
    encode_field(out, b":path", b"/call");
    encode_field(out, b":authority", b"api.test");
}

#[test]
fn a_request_and_its_response_cross() {
    let (mut client, mut server) = pair();
    let key = client.open(()).unwrap();
    client.send_headers(key, false, request);
    client.send_data(key, b"hello", true);
    assert_eq!(
        deliver(&mut client, &mut server),
        ["Request end=false", "data 5 end=true"]
    );
    let served = server.streams.find(1).unwrap();
    server.send_headers(served, false, |out| encode_field(out, b":status", b"200"));
    server.send_data(served, b"world", false);
    server.send_headers(served, true, |out| encode_field(out, b"grpc-status", b"0"));
    assert_eq!(
        deliver(&mut server, &mut client),
        [
            "Response end=false",
            "data 5 end=false",
            "Trailers end=true"
        ]
    );
    assert!(client.streams.get(key).unwrap().is_closed());
    assert!(server.streams.get(served).unwrap().is_closed());
}

#[test]
fn the_end_of_a_stream_waits_behind_data_queued_for_window() {
    let (mut client, mut server) = pair();
    let key = client.open(()).unwrap();
    client.send_headers(key, true, request);
    deliver(&mut client, &mut server);
    let served = server.streams.find(1).unwrap();
    server.send_headers(served, false, |out| encode_field(out, b":status", b"200"));
    let body = vec![b'x'; 100_000];
    assert_eq!(
        server.send_data(served, &body, false),
        DEFAULT_WINDOW as usize
    );
    // An empty last frame, as some servers end a body: it must not overtake the queue.
    assert_eq!(server.send_data(served, &[], true), 0);
    let events = deliver(&mut server, &mut client);
    assert_eq!(events.first().unwrap(), "Response end=false");
    assert!(
        events.iter().all(|e| !e.ends_with("end=true")),
        "{events:?}"
    );
    client.consumed(key, DEFAULT_WINDOW as usize);
    let updates = deliver(&mut client, &mut server);
    assert!(updates.contains(&"window true".to_string()), "{updates:?}");
    let rest_len = 100_000 - DEFAULT_WINDOW as usize;
    assert_eq!(server.drain(served), rest_len);
    let rest = deliver(&mut server, &mut client);
    let sizes: usize = rest
        .iter()
        .map(|e| e.split(' ').nth(1).unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(sizes, rest_len);
    assert!(rest.last().unwrap().ends_with("end=true"), "{rest:?}");
}

#[test]
fn a_released_stream_gives_its_window_back_to_a_client_still_sending() {
    let (mut client, mut server) = pair();
    let key = client.open(()).unwrap();
    client.send_headers(key, false, request);
    let body = vec![b'x'; 100_000];
    assert_eq!(client.send_data(key, &body, false), DEFAULT_WINDOW as usize);
    deliver(&mut client, &mut server);
    let served = server.streams.find(1).unwrap();
    // The exchange ended without the relay taking the body: all of it is given back.
    server.release(served);
    let updates = deliver(&mut server, &mut client);
    assert_eq!(updates, ["window true", "window false"]);
    assert_eq!(client.drain(key), 100_000 - DEFAULT_WINDOW as usize);
}

#[test]
fn a_removed_stream_gives_its_share_of_the_connection_window_back() {
    let (mut client, mut server) = pair();
    let first = client.open(()).unwrap();
    client.send_headers(first, false, request);
    let body = vec![b'x'; DEFAULT_WINDOW as usize];
    assert_eq!(client.send_data(first, &body, false), body.len());
    deliver(&mut client, &mut server);
    server.remove(server.streams.find(1).unwrap());
    let answer = deliver(&mut server, &mut client);
    assert!(answer.contains(&"reset 8".to_string()), "{answer:?}");
    assert!(answer.contains(&"window false".to_string()), "{answer:?}");
    let second = client.open(()).unwrap();
    client.send_headers(second, false, request);
    assert_eq!(client.send_data(second, &body, true), body.len());
}

#[test]
fn a_header_block_larger_than_a_frame_goes_on_in_continuation_frames() {
    let (mut client, mut server) = pair();
    let key = client.open(()).unwrap();
    client.send_headers(key, true, |out| {
        request(out);
        encode_field(out, b"x-large", &[b'v'; 20_000]);
    });
    // Past the server's header list limit: decoded, kept in step, and marked too large.
    assert_eq!(deliver(&mut client, &mut server), ["Request end=true"]);
    assert!(server.block().too_large);
}

#[test]
fn streams_past_the_limit_are_refused() {
    let mut client = Conn::new(Role::Client, LIMITS);
    let mut server = Conn::new(Role::Server, LIMITS);
    // The client has not read the server's limit of 4 yet: it believes in 100.
    for _ in 0..6 {
        let key = client.open(()).unwrap();
        client.send_headers(key, true, request);
    }
    let events = deliver(&mut client, &mut server);
    assert_eq!(
        events.iter().filter(|e| e.starts_with("Request")).count(),
        4
    );
    let answers = deliver(&mut server, &mut client);
    assert_eq!(answers, ["reset 7", "reset 7"]);
}

#[test]
fn pings_and_settings_are_answered_and_a_goaway_is_read() {
    let (mut client, mut server) = pair();
    frame::put_head(&mut client.wbuf, 8, kind::PING, 0, 0);
    client.wbuf.extend_from_slice(b"12345678");
    assert!(deliver(&mut client, &mut server).is_empty());
    assert!(
        server.wbuf.windows(8).any(|w| w == b"12345678"),
        "the PING came back"
    );
    deliver(&mut server, &mut client);
    server.go_away(Reason::NO_ERROR);
    assert_eq!(deliver(&mut server, &mut client), ["goaway 0"]);
    assert_eq!(client.goaway_received(), Some(0));
    assert!(!client.has_room());
}
