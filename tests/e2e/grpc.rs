//! gRPC end to end: a real gRPC server and real gRPC clients (grpcio, from PyPI, driven by
//! tests/tools/grpc_peer.py) through a real statuscope speaking h2c to the upstream — every
//! call tallied by its `grpc-status`, statuscope's own failures answered as gRPC — and the gRPC
//! rules judged on answers a scripted HTTP/2 upstream makes.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::deploy::root;
use crate::support::upstream::Upstream;
use crate::support::{
    config_file, each_engine, python, wait_until, Engine, Launch, Peer, Statuscope,
};

/// The service's methods, as routes.
const GET_ITEM: &str = "/statuscope.test.Shop/GetItem";
const LIST_ITEMS: &str = "/statuscope.test.Shop/ListItems";

/// The grpcio server of tests/grpc/shop.proto.
pub(crate) fn grpc_server() -> Peer {
    Peer::start("grpc_peer.py", &["server"])
}

/// Runs one client scenario of grpc_peer.py against `target`; its outcome as JSON.
pub(crate) fn call(target: SocketAddr, scenario: &str, arg: &str) -> Value {
    outcome_of(client(target, scenario, arg), scenario)
}

/// The `cancel` scenario's client, told to cancel its call (by a line on its stdin) only once
/// statuscope holds the call in flight: on a loaded machine a cancellation after a fixed pause
/// can leave before the call does, and never reach statuscope.
fn cancel_in_flight(statuscope: &Statuscope, delay_ms: &str) -> Value {
    let mut client = client(statuscope.listen, "cancel", delay_ms);
    wait_until("the call is in flight", || {
        statuscope.total("statuscope_requests_in_flight", &[]) == 1.0
    });
    client.stdin.take().unwrap().write_all(b"cancel\n").unwrap();
    outcome_of(client, "cancel")
}

fn client(target: SocketAddr, scenario: &str, arg: &str) -> Child {
    Command::new(python())
        .arg(root().join("tests/tools/grpc_peer.py"))
        .args(["client", &target.to_string(), scenario, arg])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs")
}

fn outcome_of(client: Child, scenario: &str) -> Value {
    let output = client.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "grpc_peer.py client {scenario} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// statuscope on `engine` in front of `upstream`, speaking h2c to it, with more `config`.
pub(crate) fn launch_h2c(
    engine: Engine,
    upstream: SocketAddr,
    name: &str,
    config: &str,
) -> Statuscope {
    let file = config_file(name, &format!("upstream_protocol: h2c\n{config}"));
    Statuscope::launch(Launch {
        engine,
        upstream: Some(upstream),
        config: Some(&file),
        ..Launch::default()
    })
}

fn grpc_calls(statuscope: &Statuscope, labels: &[(&str, &str)]) -> f64 {
    statuscope.total("statuscope_grpc_responses_total", labels)
}

/// What an HTTP/2 client got: the status, the head, and the trailers.
struct H2Answer {
    status: u16,
    headers: http::HeaderMap,
    trailers: Option<http::HeaderMap>,
}

/// Sends one request over h2c with `headers`, reading the answer to its trailers.
async fn h2_request(target: SocketAddr, path: &str, headers: &[(&str, &str)]) -> H2Answer {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{target}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from_static(b"\0\0\0\0\0")))
        .unwrap();
    let response = client.request(request).await.expect("an answer");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let collected = response.into_body().collect().await.expect("the body");
    H2Answer {
        status,
        headers,
        trailers: collected.trailers().cloned(),
    }
}

const GRPC: (&str, &str) = ("content-type", "application/grpc");
const GRPC_ANSWER: (&str, &str) = ("x-reply-header", "content-type: application/grpc");

/// One gRPC answer of the scripted upstream, the rule it breaks, and its correct look-alike.
struct Violation {
    rule: &'static str,
    broken: &'static [(&'static str, &'static str)],
    correct: &'static [(&'static str, &'static str)],
}

const VIOLATIONS: &[Violation] = &[
    Violation {
        rule: "grpc-status-missing",
        // A body, then the end of the stream: no trailers at all.
        broken: &[("x-reply-status", "200"), ("x-reply-body", "frame")],
        // Trailers-only: the status in the head, which ends the stream.
        correct: &[
            ("x-reply-status", "200"),
            ("x-reply-header", "grpc-status: 5"),
            ("x-reply-header", "grpc-message: no such item"),
        ],
    },
    Violation {
        rule: "grpc-non-200",
        broken: &[
            ("x-reply-status", "503"),
            ("x-reply-header", "grpc-status: 14"),
        ],
        correct: &[
            ("x-reply-status", "200"),
            ("x-reply-header", "grpc-status: 14"),
        ],
    },
    Violation {
        rule: "grpc-invalid-status",
        broken: &[
            ("x-reply-status", "200"),
            ("x-reply-trailer", "grpc-status: NOT_FOUND"),
        ],
        correct: &[
            ("x-reply-status", "200"),
            ("x-reply-trailer", "grpc-status: 16"),
        ],
    },
    Violation {
        rule: "grpc-message-leaks-internals",
        broken: &[
            ("x-reply-status", "200"),
            ("x-reply-trailer", "grpc-status: 13"),
            (
                "x-reply-trailer",
                "grpc-message: Traceback (most recent call last):%0A  File \"/srv/shop.py\", line 7, in GetItem%0AKeyError: 7",
            ),
        ],
        correct: &[
            ("x-reply-status", "200"),
            ("x-reply-trailer", "grpc-status: 13"),
            ("x-reply-trailer", "grpc-message: the index is closed; retry later"),
        ],
    },
];

#[test]
fn the_grpc_slo_and_dashboards_count_exactly_opentelemetry_s_server_error_codes() {
    use statuscope::classify::grpc::GrpcCode;
    let set: Vec<&str> = GrpcCode::SERVER_ERRORS.iter().map(|c| c.as_str()).collect();
    let expected = format!("grpc_code=~\"{}\"", set.join("|"));
    let rules =
        std::fs::read_to_string(root().join("deploy/prometheus/statuscope-rules.yaml")).unwrap();
    let overview =
        std::fs::read_to_string(root().join("dashboards/statuscope-overview.json")).unwrap();
    for (file, text) in [
        ("rules", rules),
        ("overview dashboard", overview.replace("\\\"", "\"")),
    ] {
        let selectors: Vec<&str> = text
            .match_indices("grpc_code=~\"")
            .map(|(at, _)| &text[at..at + text[at + 12..].find('"').unwrap() + 13])
            .collect();
        assert!(
            !selectors.is_empty(),
            "{file} selects no server-error codes"
        );
        for selector in selectors {
            assert_eq!(selector, expected, "{file}");
        }
    }
}

each_engine! {
    fn unary_calls_are_tallied_by_their_grpc_status_and_once_by_http_status(engine) {
        let server = grpc_server();
        let statuscope = launch_h2c(engine, server.addr, "grpc-unary.yaml", "");
        let outcome = call(statuscope.listen, "unary", "1,404,500");
        assert_eq!(outcome["1"], serde_json::json!(["OK", "item 1"]));
        assert_eq!(
            outcome["404"],
            serde_json::json!(["NOT_FOUND", "no item 404"])
        );
        assert_eq!(
            outcome["500"],
            serde_json::json!(["INTERNAL", "the index is closed"])
        );
        statuscope.wait_idle();
        for code in ["OK", "NOT_FOUND", "INTERNAL"] {
            let labels = [
                ("route", GET_ITEM),
                ("grpc_code", code),
                ("origin", "upstream"),
            ];
            assert_eq!(grpc_calls(&statuscope, &labels), 1.0, "{code}");
        }
        assert_eq!(grpc_calls(&statuscope, &[]), 3.0);
        // Every call is an HTTP 200 in the HTTP tally, counted once.
        assert_eq!(
            statuscope.total("statuscope_responses_total", &[("route", GET_ITEM)]),
            3.0
        );
        assert_eq!(
            statuscope.total(
                "statuscope_responses_total",
                &[("route", GET_ITEM), ("code", "200"), ("origin", "upstream")]
            ),
            3.0
        );
        let durations = statuscope.total(
            "statuscope_grpc_duration_seconds_count",
            &[("route", GET_ITEM), ("grpc_code", "NOT_FOUND")],
        );
        assert_eq!(durations, 1.0);
        // A correct gRPC server breaks no rule, HTTP or gRPC.
        assert_eq!(statuscope.total("statuscope_findings_total", &[]), 0.0);
        assert_eq!(
            statuscope.total("statuscope_judged_responses_total", &[]),
            3.0
        );
    }

    fn streaming_calls_of_every_kind_stream_and_end_with_their_status(engine) {
        let server = grpc_server();
        let statuscope = launch_h2c(engine, server.addr, "grpc-streams.yaml", "");
        let ok = call(statuscope.listen, "stream", "ok");
        assert_eq!(ok, serde_json::json!({"code": "OK", "received": 100}));
        let failed = call(statuscope.listen, "stream", "fail");
        assert_eq!(
            failed,
            serde_json::json!({"code": "INTERNAL", "received": 100})
        );
        let upload = call(statuscope.listen, "upload", "50");
        assert_eq!(upload, serde_json::json!({"code": "OK", "count": 50}));
        // Each message is read back before the next is written: a proxy that buffered either
        // direction would deadlock this call.
        let chat = call(statuscope.listen, "chat", "20");
        assert_eq!(chat, serde_json::json!({"code": "OK", "echoed": 20}));
        statuscope.wait_idle();
        for (code, calls) in [("OK", 1.0), ("INTERNAL", 1.0)] {
            let labels = [("route", LIST_ITEMS), ("grpc_code", code)];
            assert_eq!(grpc_calls(&statuscope, &labels), calls, "{code}");
        }
        for route in ["/statuscope.test.Shop/Upload", "/statuscope.test.Shop/Chat"] {
            let labels = [
                ("route", route),
                ("grpc_code", "OK"),
                ("origin", "upstream"),
            ];
            assert_eq!(grpc_calls(&statuscope, &labels), 1.0, "{route}");
        }
        assert_eq!(statuscope.total("statuscope_findings_total", &[]), 0.0);
    }

    fn a_call_the_client_cancels_or_gives_up_on_at_its_deadline_is_the_client_s(engine) {
        let server = grpc_server();
        let statuscope = launch_h2c(engine, server.addr, "grpc-client-ends.yaml", "");
        assert_eq!(cancel_in_flight(&statuscope, "5000")["code"], "CANCELLED");
        // A server that keeps the deadline it is sent answers DEADLINE_EXCEEDED itself when
        // the client's reset is a moment late (the upstream's call, rightly tallied so); this
        // one never answers, so the only end of the call is the client's.
        let silent = Peer::start("h2_peer.py", &["upstream", "silent"]);
        let gives_up = launch_h2c(engine, silent.addr, "grpc-client-deadline.yaml", "");
        let deadline = call(gives_up.listen, "deadline", "5000,1000");
        assert_eq!(deadline["code"], "DEADLINE_EXCEEDED");
        for (statuscope, code) in [(&statuscope, "CANCELLED"), (&gives_up, "DEADLINE_EXCEEDED")] {
            statuscope.wait_idle();
            let client = [("route", GET_ITEM), ("grpc_code", code), ("origin", "client")];
            let metrics = statuscope.metrics();
            let tallied: Vec<_> = metrics
                .iter()
                .filter(|sample| sample.name == "statuscope_grpc_responses_total")
                .map(|sample| &sample.labels)
                .collect();
            assert_eq!(grpc_calls(statuscope, &client), 1.0, "{tallied:?}");
            assert_eq!(grpc_calls(statuscope, &[]), 1.0, "{tallied:?}");
            // The HTTP tally has it as a 499, once.
            let http = [("code", "499"), ("origin", "client")];
            assert_eq!(statuscope.total("statuscope_responses_total", &http), 1.0);
        }
    }

    fn statuscope_s_own_failures_reach_grpc_clients_as_unavailable_and_deadline_exceeded(engine) {
        let server = grpc_server();
        // An upstream that does not answer its head within timeouts.read.
        let statuscope = launch_h2c(
            engine,
            server.addr,
            "grpc-proxy-timeout.yaml",
            "timeouts:\n  read: 300ms\n",
        );
        let slow = call(statuscope.listen, "deadline", "3000,10000");
        assert_eq!(slow["code"], "DEADLINE_EXCEEDED");
        assert_eq!(
            slow["details"],
            "the upstream did not answer within the read timeout"
        );
        statuscope.wait_idle();
        let proxy = [("grpc_code", "DEADLINE_EXCEEDED"), ("origin", "proxy")];
        assert_eq!(grpc_calls(&statuscope, &proxy), 1.0);

        // The upstream gone: what the client library reports is UNAVAILABLE, with statuscope's
        // reason, not an opaque transport error.
        let gone = server.addr;
        drop(server);
        let down = launch_h2c(engine, gone, "grpc-upstream-down.yaml", "");
        let outcome = call(down.listen, "unary", "1");
        assert_eq!(
            outcome["1"],
            serde_json::json!([
                "UNAVAILABLE",
                "the upstream refused the connection or is unreachable"
            ])
        );
        down.wait_idle();
        let labels = [
            ("route", GET_ITEM),
            ("grpc_code", "UNAVAILABLE"),
            ("origin", "proxy"),
        ];
        assert_eq!(grpc_calls(&down, &labels), 1.0);
        // Its HTTP status was 200, as for every gRPC answer, and it is the proxy's.
        assert_eq!(
            down.total(
                "statuscope_responses_total",
                &[("code", "200"), ("origin", "proxy")]
            ),
            1.0
        );
        assert_eq!(
            down.total(
                "statuscope_upstream_errors_total",
                &[("kind", "connect_refused")]
            ),
            1.0
        );
    }

    fn tallies_are_exact_per_method_and_code_under_10000_multiplexed_calls(engine) {
        let server = grpc_server();
        let statuscope = launch_h2c(engine, server.addr, "grpc-load.yaml", "");
        // 100 calls at a time over one HTTP/2 connection from the client.
        let outcome = call(statuscope.listen, "load", "10000,100");
        let counts = &outcome["counts"];
        let expected = [("OK", 8000.0), ("NOT_FOUND", 1000.0), ("INTERNAL", 1000.0)];
        for (code, calls) in expected {
            assert_eq!(counts[code].as_f64(), Some(calls), "client saw {outcome}");
        }
        statuscope.wait_idle();
        for (code, calls) in expected {
            let labels = [
                ("route", GET_ITEM),
                ("grpc_code", code),
                ("origin", "upstream"),
            ];
            assert_eq!(grpc_calls(&statuscope, &labels), calls, "{code}");
        }
        assert_eq!(grpc_calls(&statuscope, &[]), 10_000.0);
        assert_eq!(
            statuscope.total("statuscope_responses_total", &[("code", "200")]),
            10_000.0
        );
    }

    async fn every_grpc_rule_fires_on_its_violation_and_not_on_its_correct_look_alike(engine) {
        let upstream = Upstream::start();
        let statuscope = launch_h2c(engine, upstream.addr, "grpc-rules.yaml", "");
        for violation in VIOLATIONS {
            let findings = |statuscope: &Statuscope| {
                statuscope.total("statuscope_findings_total", &[("rule", violation.rule)])
            };
            let mut headers = vec![GRPC, GRPC_ANSWER];
            headers.extend_from_slice(violation.correct);
            h2_request(statuscope.listen, "/shop.Items/Get", &headers).await;
            statuscope.wait_idle();
            assert_eq!(
                findings(&statuscope),
                0.0,
                "{} on its look-alike",
                violation.rule
            );
            let mut headers = vec![GRPC, GRPC_ANSWER];
            headers.extend_from_slice(violation.broken);
            h2_request(statuscope.listen, "/shop.Items/Get", &headers).await;
            statuscope.wait_idle();
            assert_eq!(
                findings(&statuscope),
                1.0,
                "{} on its violation",
                violation.rule
            );
        }
        // Each violation broke its own rule only: gRPC calls are judged by the gRPC rules alone.
        assert_eq!(
            statuscope.total("statuscope_findings_total", &[]),
            VIOLATIONS.len() as f64
        );
        let grpc_findings = |statuscope: &Statuscope| -> f64 {
            VIOLATIONS
                .iter()
                .map(|v| statuscope.total("statuscope_findings_total", &[("rule", v.rule)]))
                .sum()
        };
        // The same answers to a request that is not a gRPC call raise no gRPC finding.
        for violation in VIOLATIONS {
            h2_request(statuscope.listen, "/plain", violation.broken).await;
        }
        statuscope.wait_idle();
        assert_eq!(grpc_findings(&statuscope), VIOLATIONS.len() as f64);
    }

    async fn trailers_pass_through_unchanged_and_missing_or_invalid_statuses_count_as_unknown(engine) {
        let upstream = Upstream::start();
        let statuscope = launch_h2c(engine, upstream.addr, "grpc-trailers.yaml", "");
        let answer = h2_request(
            statuscope.listen,
            "/shop.Items/Get",
            &[
                GRPC,
                GRPC_ANSWER,
                ("x-reply-status", "200"),
                ("x-reply-body", "frame"),
                ("x-reply-trailer", "grpc-status: 7"),
                ("x-reply-trailer", "grpc-message: not yours"),
                ("x-reply-trailer", "x-trace: 9f2c"),
            ],
        )
        .await;
        assert_eq!(answer.status, 200);
        let trailers = answer.trailers.expect("the trailers");
        assert_eq!(trailers["grpc-status"], "7");
        assert_eq!(trailers["grpc-message"], "not yours");
        assert_eq!(trailers["x-trace"], "9f2c");
        // Trailers-only: the status in the head, and no trailers.
        let head_only = h2_request(
            statuscope.listen,
            "/shop.Items/Get",
            &[
                GRPC,
                GRPC_ANSWER,
                ("x-reply-status", "200"),
                ("x-reply-header", "grpc-status: 5"),
            ],
        )
        .await;
        assert_eq!(head_only.headers["grpc-status"], "5");
        for broken in [
            &[("x-reply-body", "frame")][..],
            &[("x-reply-trailer", "grpc-status: 99")][..],
        ] {
            let mut headers = vec![GRPC, GRPC_ANSWER, ("x-reply-status", "200")];
            headers.extend_from_slice(broken);
            h2_request(statuscope.listen, "/shop.Items/Get", &headers).await;
        }
        statuscope.wait_idle();
        let code = |code| {
            grpc_calls(
                &statuscope,
                &[("route", "/shop.Items/Get"), ("grpc_code", code)],
            )
        };
        assert_eq!(code("PERMISSION_DENIED"), 1.0);
        assert_eq!(code("NOT_FOUND"), 1.0);
        assert_eq!(code("UNKNOWN"), 2.0);
    }

    async fn upstream_protocol_downstream_keeps_each_client_s_protocol_and_http1_stays_http1(engine) {
        let upstream = Upstream::start();
        let version_reaching_upstream = |statuscope: &Statuscope, h2: bool| {
            let target = statuscope.listen;
            async move {
                let client = Client::builder(TokioExecutor::new())
                    .http2_only(h2)
                    .build_http::<Full<Bytes>>();
                let request = http::Request::get(format!("http://{target}/echo"))
                    .body(Full::default())
                    .unwrap();
                let response = client.request(request).await.unwrap();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                let echo: Value = serde_json::from_slice(&body).unwrap();
                echo["version"].as_str().unwrap().to_string()
            }
        };
        let config = config_file("grpc-downstream.yaml", "upstream_protocol: downstream\n");
        let both = Statuscope::launch(Launch {
            engine,
            upstream: Some(upstream.addr),
            config: Some(&config),
            ..Launch::default()
        });
        assert_eq!(version_reaching_upstream(&both, false).await, "HTTP/1.1");
        assert_eq!(version_reaching_upstream(&both, true).await, "HTTP/2.0");
        // The default is HTTP/1.1 to the upstream whatever the client speaks; h2c, HTTP/2 always.
        let default = Statuscope::start(engine, upstream.addr);
        assert_eq!(version_reaching_upstream(&default, true).await, "HTTP/1.1");
        let h2c = launch_h2c(engine, upstream.addr, "grpc-h2c.yaml", "");
        assert_eq!(version_reaching_upstream(&h2c, false).await, "HTTP/2.0");
        assert_eq!(version_reaching_upstream(&h2c, true).await, "HTTP/2.0");
    }

    async fn concurrent_calls_share_one_pooled_upstream_connection(engine) {
        let upstream = Upstream::start();
        let statuscope = launch_h2c(engine, upstream.addr, "grpc-multiplex.yaml", "");
        // One call opens the upstream connection; it goes back to the pool when the call ends.
        h2_request(statuscope.listen, "/slow/1", &[GRPC]).await;
        assert_eq!(upstream.connections(), 1);
        // Then 50 at once, each held open by the upstream for a while: as streams of that one
        // connection, not 50 connections.
        let calls = (0..50).map(|_| h2_request(statuscope.listen, "/slow/300", &[GRPC]));
        for answer in futures_util::future::join_all(calls).await {
            assert_eq!(answer.status, 200);
        }
        statuscope.wait_idle();
        assert_eq!(upstream.requests(), 51);
        assert_eq!(upstream.connections(), 1);
    }
}
