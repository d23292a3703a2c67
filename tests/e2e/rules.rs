//! Every misuse rule, end to end: a real upstream commits it through a real statuscope, and the
//! finding shows in `/metrics` and `/findings` while the client gets the body unchanged. A
//! correct look-alike of each case produces no finding of that rule.

use crate::support::each_engine;
use crate::support::upstream::{encode, interim_upstream, raw_upstream, reply_body, Upstream};
use crate::support::{client, raw_exchange, send, Engine, Launch, Statuscope};
use statuscope::rules::{of_kind, RuleKind};

/// One exchange: the request, the reply the upstream is told to send, the rule it should trip.
struct Case {
    rule: &'static str,
    method: &'static str,
    request: &'static [(&'static str, &'static str)],
    status: u16,
    headers: &'static [&'static str],
    body: &'static str,
}

const fn case(
    rule: &'static str,
    status: u16,
    headers: &'static [&'static str],
    body: &'static str,
) -> Case {
    Case {
        rule,
        method: "GET",
        request: &[],
        status,
        headers,
        body,
    }
}

const JSON: &str = "content-type: application/json";

/// Each rule's violation, paired with a correct look-alike.
fn cases() -> Vec<(Case, Case)> {
    vec![
        (
            case(
                "error-body-on-success",
                200,
                &[JSON],
                r#"{"error": "User ID 999 not found"}"#,
            ),
            case(
                "error-body-on-success",
                200,
                &[JSON],
                r#"{"error": null, "errors": [], "id": 7}"#,
            ),
        ),
        (
            case(
                "missing-retry-after",
                429,
                &[JSON],
                r#"{"code": "RATE_LIMITED"}"#,
            ),
            case(
                "missing-retry-after",
                429,
                &[JSON, "retry-after: Wed, 21 Oct 2026 07:28:00 GMT"],
                r#"{"code": "RATE_LIMITED"}"#,
            ),
        ),
        (
            case(
                "invalid-retry-after",
                503,
                &[JSON, "retry-after: in a minute"],
                r#"{"code": "DOWN"}"#,
            ),
            case(
                "invalid-retry-after",
                503,
                &[JSON, "retry-after: 60"],
                r#"{"code": "DOWN"}"#,
            ),
        ),
        (
            Case {
                method: "POST",
                ..case("created-without-location", 201, &[JSON], r#"{"id": 7}"#)
            },
            Case {
                method: "POST",
                ..case(
                    "created-without-location",
                    201,
                    &[JSON, "location: /orders/7"],
                    r#"{"id": 7}"#,
                )
            },
        ),
        (
            case("created-for-safe-method", 201, &["location: /x"], ""),
            Case {
                method: "POST",
                ..case("created-for-safe-method", 201, &["location: /x"], "")
            },
        ),
        (
            case("redirect-without-location", 302, &[], ""),
            case(
                "redirect-without-location",
                302,
                &["location: /elsewhere"],
                "",
            ),
        ),
        (
            Case {
                method: "POST",
                ..case("method-changing-redirect", 301, &["location: /new"], "")
            },
            Case {
                method: "POST",
                ..case("method-changing-redirect", 308, &["location: /new"], "")
            },
        ),
        (
            case(
                "unauthorized-without-challenge",
                401,
                &[JSON],
                r#"{"code": "INVALID_CREDENTIALS"}"#,
            ),
            case(
                "unauthorized-without-challenge",
                401,
                &[JSON, "www-authenticate: Bearer"],
                r#"{"code": "INVALID_CREDENTIALS"}"#,
            ),
        ),
        (
            case(
                "forbidden-without-credentials",
                403,
                &[JSON],
                r#"{"code": "FORBIDDEN"}"#,
            ),
            Case {
                request: &[("authorization", "Bearer abc.def")],
                ..case(
                    "forbidden-without-credentials",
                    403,
                    &[JSON],
                    r#"{"code": "FORBIDDEN"}"#,
                )
            },
        ),
        (
            Case {
                method: "DELETE",
                ..case(
                    "method-not-allowed-without-allow",
                    405,
                    &[JSON],
                    r#"{"code": "NOPE"}"#,
                )
            },
            Case {
                method: "DELETE",
                ..case(
                    "method-not-allowed-without-allow",
                    405,
                    &[JSON, "allow: GET, HEAD"],
                    r#"{"code": "NOPE"}"#,
                )
            },
        ),
        (
            case(
                "unstructured-error-body",
                500,
                &["content-type: text/plain"],
                "Internal Server Error",
            ),
            case(
                "unstructured-error-body",
                500,
                &[JSON],
                r#"{"code": "INTERNAL", "details": ["db down"]}"#,
            ),
        ),
        (
            case(
                "error-leaks-internals",
                500,
                &[JSON],
                r#"{"code": "X", "trace": "Traceback (most recent call last):\n  File \"/app/db.py\", line 9, in q"}"#,
            ),
            case(
                "error-leaks-internals",
                500,
                &[JSON],
                r#"{"code": "X", "details": ["retry later"]}"#,
            ),
        ),
        (
            case("nonstandard-status", 299, &[JSON], r#"{"ok": true}"#),
            case("nonstandard-status", 208, &[JSON], r#"{"ok": true}"#),
        ),
        (
            Case {
                request: &[("accept", "application/json")],
                ..case(
                    "error-content-mismatch",
                    502,
                    &["content-type: text/html"],
                    "<h1>Bad Gateway</h1>",
                )
            },
            // A JSON-only client given a JSON error: nothing to say, by any rule.
            Case {
                request: &[("accept", "application/json")],
                ..case(
                    "error-content-mismatch",
                    502,
                    &[JSON],
                    r#"{"code": "BAD_GATEWAY"}"#,
                )
            },
        ),
        (
            case(
                "cacheable-server-error",
                503,
                &[JSON, "retry-after: 5", "cache-control: public, max-age=600"],
                r#"{"code": "DOWN"}"#,
            ),
            case(
                "cacheable-server-error",
                503,
                &[JSON, "retry-after: 5", "cache-control: no-store"],
                r#"{"code": "DOWN"}"#,
            ),
        ),
    ]
}

async fn run(
    case: &Case,
    statuscope: &Statuscope,
    client: &crate::support::HttpClient,
    extra: &[(&str, &str)],
) -> crate::support::Received {
    let status = case.status.to_string();
    let mut headers: Vec<(&str, &str)> =
        vec![("x-reply-status", &status), ("x-reply-body", case.body)];
    headers.extend(case.headers.iter().map(|h| ("x-reply-header", *h)));
    headers.extend_from_slice(case.request);
    headers.extend_from_slice(extra);
    let url = format!("http://{}/reply/{}", statuscope.listen, case.rule);
    send(client, case.method, &url, &headers, b"").await
}

fn findings_of(statuscope: &Statuscope, rule: &str) -> f64 {
    statuscope.total("statuscope_findings_total", &[("rule", rule)])
}

each_engine! {
    async fn each_rule_fires_on_its_violation_and_not_on_the_look_alike(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::start(engine, upstream.addr);
        let client = client();
        for (violation, look_alike) in cases() {
            let received = run(&look_alike, &statuscope, &client, &[]).await;
            assert_eq!(received.status, look_alike.status);
            statuscope.wait_idle();
            assert_eq!(
                findings_of(&statuscope, look_alike.rule),
                0.0,
                "{} fired on its look-alike",
                look_alike.rule
            );

            let received = run(&violation, &statuscope, &client, &[]).await;
            assert_eq!(received.status, violation.status);
            if !matches!(violation.status, 204 | 304) {
                assert_eq!(
                    received.body,
                    reply_body(violation.body),
                    "{}: body changed",
                    violation.rule
                );
            }
            statuscope.wait_idle();
            assert_eq!(
                findings_of(&statuscope, violation.rule),
                1.0,
                "{} did not fire",
                violation.rule
            );
            let route = format!("/reply/{}", violation.rule);
            let labels = [
                ("rule", violation.rule),
                ("route", route.as_str()),
                ("method", violation.method),
            ];
            // Both were judged; only the violation was flagged (look-alikes break no rule at all).
            let on_route = [("route", route.as_str())];
            assert_eq!(
                statuscope.total("statuscope_judged_responses_total", &on_route),
                2.0
            );
            assert_eq!(
                statuscope.total("statuscope_flagged_responses_total", &on_route),
                1.0,
                "{route}"
            );
            assert_eq!(
                statuscope.total("statuscope_findings_total", &labels),
                1.0,
                "{} labels",
                violation.rule
            );
        }
        let (status, findings) = crate::support::raw_get(statuscope.admin, "/findings").unwrap();
        assert_eq!(status, 200);
        let findings: serde_json::Value = serde_json::from_str(&findings).unwrap();
        let rules: Vec<&str> = findings["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule"].as_str().unwrap())
            .collect();
        for (violation, _) in cases() {
            assert!(
                rules.contains(&violation.rule),
                "{} missing from /findings",
                violation.rule
            );
        }
        let first = &findings["findings"][0];
        for field in [
            "time", "rule", "severity", "method", "route", "path", "status", "evidence",
        ] {
            assert!(!first[field].is_null(), "/findings entries carry {field}");
        }
        // Every rule has a case here; unexpected-continue and body-on-no-content need a raw
        // upstream and have their own tests below, the contract rules and the gRPC rules
        // suites of their own (contract.rs, grpc.rs).
        assert_eq!(
            cases().len()
                + 2
                + of_kind(RuleKind::Contract).count()
                + of_kind(RuleKind::Grpc).count(),
            statuscope::rules::CATALOGUE.len()
        );
    }
}

each_engine! {
    fn body_on_no_content_fires_when_a_204_announces_content(engine) {
        // hyper will not send a framed 204, so a raw upstream plays the misbehaving service.
        let upstream = raw_upstream(
            "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
            "",
        );
        let statuscope = Statuscope::start(engine, upstream);
        let response = raw_exchange(
            statuscope.listen,
            b"DELETE /items/1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        );
        assert!(response.starts_with("HTTP/1.1 204"), "{response}");
        statuscope.wait_idle();
        assert_eq!(findings_of(&statuscope, "body-on-no-content"), 1.0);

        let correct = raw_upstream("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", "");
        let statuscope = Statuscope::start(engine, correct);
        let response = raw_exchange(
            statuscope.listen,
            b"DELETE /items/1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        );
        assert!(response.starts_with("HTTP/1.1 204"), "{response}");
        statuscope.wait_idle();
        assert_eq!(
            statuscope.total("statuscope_responses_total", &[("code", "204")]),
            1.0
        );
        assert_eq!(findings_of(&statuscope, "body-on-no-content"), 0.0);
    }
}

each_engine! {
    fn unexpected_continue_fires_only_without_expect(engine) {
        let upstream = interim_upstream("HTTP/1.1 100 Continue\r\n\r\n");
        let statuscope = Statuscope::start(engine, upstream);
        let response = raw_exchange(
            statuscope.listen,
            b"GET /upload HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        );
        assert!(response.ends_with("final"), "{response}");
        statuscope.wait_idle();
        assert_eq!(findings_of(&statuscope, "unexpected-continue"), 1.0);
        let response = raw_exchange(
            statuscope.listen,
            b"POST /upload HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
        );
        assert!(response.ends_with("final"), "{response}");
        statuscope.wait_idle();
        assert_eq!(findings_of(&statuscope, "unexpected-continue"), 1.0);
    }
}

each_engine! {
    async fn compressed_and_oddly_chunked_bodies_are_judged_and_passed_unchanged(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::start(engine, upstream.addr);
        let client = client();
        let body = r#"{"error": "quota exceeded", "details": ["the quick brown fox jumps over the lazy dog"]}"#;
        let mut expected = 0.0;
        for encoding in ["gzip", "deflate", "br", "zstd"] {
            for chunks in ["1,1,1,1,1,1,1,1,1,1", "7,13,2", "40"] {
                let case = case("error-body-on-success", 200, &[JSON], body);
                let received = run(
                    &case,
                    &statuscope,
                    &client,
                    &[("x-reply-encoding", encoding), ("x-reply-chunks", chunks)],
                )
                .await;
                assert_eq!(received.headers["content-encoding"], encoding);
                assert_eq!(
                    received.body,
                    encode(encoding, body.as_bytes()),
                    "{encoding} {chunks}: bytes changed"
                );
                expected += 1.0;
            }
        }
        statuscope.wait_idle();
        assert_eq!(findings_of(&statuscope, "error-body-on-success"), expected);
        assert!(statuscope.total("statuscope_body_samples_total", &[]) >= expected);
    }
}

each_engine! {
    async fn rules_can_be_switched_off_re_graded_and_excepted_per_route(engine) {
        let upstream = Upstream::start();
        let path = crate::support::config_file(
            "rules.yaml",
            "routes:\n  templates: [/graphql]\nrules:\n  missing-retry-after:\n    severity: error\n  \
             created-without-location:\n    enabled: false\nroute_rules:\n  - route: /graphql\n    \
             disable: [error-body-on-success]\n",
        );
        let statuscope = Statuscope::launch(Launch {
            engine,
            upstream: Some(upstream.addr),
            config: Some(&path),
            ..Launch::default()
        });
        let client = client();
        let headers = |status: &'static str, body: &'static str| {
            vec![
                ("x-reply-status", status),
                ("x-reply-header", JSON),
                ("x-reply-body", body),
            ]
        };
        let errors = r#"{"data": null, "errors": [{"message": "x"}]}"#;
        for path in ["/graphql", "/rest"] {
            send(
                &client,
                "POST",
                &format!("http://{}{path}", statuscope.listen),
                &headers("200", errors),
                b"",
            )
            .await;
        }
        send(
            &client,
            "GET",
            &format!("http://{}/reply", statuscope.listen),
            &headers("429", r#"{"code": "SLOW"}"#),
            b"",
        )
        .await;
        send(
            &client,
            "POST",
            &format!("http://{}/reply", statuscope.listen),
            &headers("201", "{}"),
            b"",
        )
        .await;
        statuscope.wait_idle();
        let on_success = |route: &str| {
            statuscope.total(
                "statuscope_findings_total",
                &[("rule", "error-body-on-success"), ("route", route)],
            )
        };
        assert_eq!(on_success("/graphql"), 0.0, "excepted on /graphql");
        assert_eq!(
            on_success("/rest"),
            1.0,
            "the exception is for /graphql only"
        );
        assert_eq!(
            statuscope.total(
                "statuscope_findings_total",
                &[("rule", "missing-retry-after"), ("severity", "error")]
            ),
            1.0
        );
        assert_eq!(findings_of(&statuscope, "created-without-location"), 0.0);
    }
}

each_engine! {
    fn the_findings_endpoint_can_be_switched_off(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::launch(Launch {
            engine,
            upstream: Some(upstream.addr),
            env: vec![("STATUSCOPE_FINDINGS__ENDPOINT", "false".into())],
            ..Launch::default()
        });
        assert_eq!(
            crate::support::raw_get(statuscope.admin, "/findings")
                .unwrap()
                .0,
            404
        );
        assert_eq!(
            crate::support::raw_get(statuscope.admin, "/metrics")
                .unwrap()
                .0,
            200
        );
    }
}

each_engine! {
    async fn proxy_made_responses_are_never_judged(engine) {
        let nowhere: std::net::SocketAddr = format!("127.0.0.1:{}", crate::support::free_port())
            .parse()
            .unwrap();
        let statuscope = Statuscope::start(engine, nowhere);
        assert_eq!(
            crate::support::get(&client(), &statuscope, "/x")
                .await
                .status,
            502
        );
        statuscope.wait_idle();
        assert_eq!(statuscope.total("statuscope_findings_total", &[]), 0.0);
    }
}

each_engine! {
    async fn sampling_off_still_judges_headers_and_costs_nothing(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::launch(Launch {
            engine,
            upstream: Some(upstream.addr),
            env: vec![("STATUSCOPE_BODY_SAMPLE_BYTES", "0".into())],
            ..Launch::default()
        });
        let client = client();
        let (violation, _) = cases().into_iter().next().unwrap();
        run(&violation, &statuscope, &client, &[]).await;
        let retry = case("missing-retry-after", 429, &[JSON], r#"{"code": "X"}"#);
        run(&retry, &statuscope, &client, &[]).await;
        statuscope.wait_idle();
        assert_eq!(findings_of(&statuscope, "error-body-on-success"), 0.0);
        assert_eq!(findings_of(&statuscope, "missing-retry-after"), 1.0);
        assert_eq!(statuscope.total("statuscope_body_samples_total", &[]), 0.0);
    }
}

each_engine! {
    async fn findings_never_show_secrets(engine) {
        let upstream = Upstream::start();
        // The access log and debug logging on: even then no secret may reach a log line.
        let statuscope = Statuscope::launch(Launch {
            engine,
            upstream: Some(upstream.addr),
            env: vec![
                ("STATUSCOPE_LOG__ACCESS", "true".into()),
                ("STATUSCOPE_LOG__LEVEL", "debug".into()),
            ],
            ..Launch::default()
        });
        let body = r#"{"error": "login failed for bob@example.com with password=hunter2, token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"}"#;
        let headers = [
            ("x-reply-status", "200"),
            ("x-reply-header", JSON),
            ("x-reply-body", body),
            ("authorization", "Bearer sekrit-bearer-token"),
            ("cookie", "session=sekrit-cookie"),
        ];
        let url = format!(
            "http://{}/login/bob@example.com?api_key=sekrit-query",
            statuscope.listen
        );
        send(
            &client(),
            "POST",
            &url,
            &headers,
            b"password=sekrit-request-body",
        )
        .await;
        statuscope.wait_idle();
        let (_, findings) = crate::support::raw_get(statuscope.admin, "/findings").unwrap();
        assert!(findings.contains("error-body-on-success"), "{findings}");
        let secrets = ["bob@example.com", "hunter2", "eyJzdWIiOiIxIn0", "sekrit"];
        for secret in secrets {
            assert!(!findings.contains(secret), "{secret} leaked: {findings}");
        }
        let metrics = statuscope.metrics_text();
        let logs = statuscope.stderr();
        assert!(
            logs.contains("statuscope::access"),
            "the access log is on: {logs}"
        );
        for secret in secrets.iter().chain(&["example.com", "api_key"]) {
            assert!(!metrics.contains(secret), "{secret} reached a metric");
            assert!(!logs.contains(secret), "{secret} reached the logs: {logs}");
        }
    }
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Whatever the body, its framing and its encoding, the client gets the upstream's bytes,
        /// through either engine.
        #[test]
        fn client_bytes_always_equal_upstream_bytes(
            body in "[ -~]{0,3000}",
            chunks in prop::collection::vec(1usize..700, 0..8),
            encoding in prop::sample::select(vec!["", "gzip", "deflate", "br", "zstd"]),
            content_type in prop::sample::select(vec!["application/json", "text/html", "application/octet-stream"]),
        ) {
            for engine in [Engine::Fast, Engine::Pingora] {
                let upstream = Upstream::start();
                let statuscope = Statuscope::launch(Launch {
                    engine,
                    upstream: Some(upstream.addr),
                    env: vec![("STATUSCOPE_BODY_SAMPLE_BYTES", "97".into())],
                    ..Launch::default()
                });
                let runtime = tokio::runtime::Runtime::new().unwrap();
                let received = runtime.block_on(async {
                    let content_type = format!("content-type: {content_type}");
                    let chunks = chunks.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
                    let mut headers = vec![("x-reply-status", "200"), ("x-reply-header", content_type.as_str()), ("x-reply-body", body.as_str())];
                    if !chunks.is_empty() {
                        headers.push(("x-reply-chunks", chunks.as_str()));
                    }
                    if !encoding.is_empty() {
                        headers.push(("x-reply-encoding", encoding));
                    }
                    send(&client(), "GET", &format!("http://{}/p", statuscope.listen), &headers, b"").await
                });
                // The body travels to the upstream in a header, whose value loses surrounding spaces.
                let sent = reply_body(body.trim_matches(' '));
                let expected = if encoding.is_empty() { sent } else { encode(encoding, &sent) };
                prop_assert_eq!(received.status, 200);
                prop_assert_eq!(&received.body[..], &expected[..]);
            }
        }
    }
}
