//! Protocol features pass through: `Expect: 100-continue`, WebSocket upgrades, h2c.

use std::io::{BufRead, Read, Write};

use futures_util::{SinkExt, StreamExt};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio_tungstenite::tungstenite::Message;

use crate::support::each_engine;
use crate::support::upstream::Upstream;
use crate::support::{raw_connection, send, Launch, Statuscope};

each_engine! {
    fn expect_100_continue_upload_works(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::start(engine, upstream.addr);
        let (mut writer, mut reader) = raw_connection(statuscope.listen);
        writer
            .write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 100"), "{line}");
        reader.read_line(&mut line).unwrap();
        writer.write_all(b"hello world").unwrap();
        let mut rest = String::new();
        reader.read_to_string(&mut rest).unwrap();
        assert!(rest.contains("HTTP/1.1 200"), "{rest}");
        assert!(rest.ends_with("11"), "{rest}");
        statuscope.wait_idle();
        assert_eq!(
            statuscope.total(
                "statuscope_responses_total",
                &[("code", "200"), ("method", "POST")]
            ),
            1.0
        );
        assert_eq!(
            statuscope.total("statuscope_responses_total", &[("code", "100")]),
            0.0
        );
    }
}

/// A WebSocket echo server.
fn websocket_upstream() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
                    while let Some(Ok(message)) = ws.next().await {
                        if message.is_close() {
                            break;
                        }
                        ws.send(message).await.unwrap();
                    }
                });
            }
        });
    });
    addr
}

each_engine! {
    async fn websocket_echo_works_through_the_proxy_and_outlives_the_response_timeout(engine) {
        // An upgraded connection is a session, not a response: `timeouts.response` must not cut it.
        let statuscope = Statuscope::launch(Launch {
            engine,
            upstream: Some(websocket_upstream()),
            env: vec![("STATUSCOPE_TIMEOUTS__RESPONSE", "20ms".into())],
            ..Launch::default()
        });
        let stream = tokio::net::TcpStream::connect(statuscope.listen)
            .await
            .unwrap();
        let url = format!("ws://{}/chat", statuscope.listen);
        let (mut ws, response) = tokio_tungstenite::client_async(url, stream).await.unwrap();
        assert_eq!(response.status(), 101);
        for text in ["one", "two", "three"] {
            // The duration under test, not a synchronisation: each message comes after the limit.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            ws.send(Message::text(text)).await.unwrap();
            let echoed = ws.next().await.unwrap().unwrap();
            assert_eq!(echoed.into_text().unwrap().as_str(), text);
        }
        ws.close(None).await.unwrap();
        while ws.next().await.is_some() {}
        statuscope.wait_idle();
        assert_eq!(
            statuscope.total(
                "statuscope_responses_total",
                &[("code", "101"), ("class", "1xx"), ("route", "/chat")]
            ),
            1.0
        );
    }
}

each_engine! {
    async fn h2c_clients_are_proxied_and_tallied(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::start(engine, upstream.addr);
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http();
        for code in [200, 201, 404] {
            let received = send(
                &client,
                "GET",
                &format!("http://{}/status/{code}", statuscope.listen),
                &[],
                b"",
            )
            .await;
            assert_eq!(received.status, code);
            assert_eq!(received.body, format!("code {code}").as_bytes());
        }
        statuscope.wait_idle();
        assert_eq!(
            statuscope.total("statuscope_responses_total", &[("route", "/status/{id}")]),
            3.0
        );
    }
}
