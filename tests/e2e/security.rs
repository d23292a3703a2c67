//! Security properties: the admin port apart from the proxy port, the `/findings` token,
//! admin paths on the proxy port, and bounded cardinality under unique-path floods.

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::support::each_engine;
use crate::support::upstream::Upstream;
use crate::support::{client, config_file, raw_exchange, raw_get, send, Launch, Statuscope};

each_engine! {
    fn the_admin_port_binds_to_its_own_interface(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::launch(Launch {
            engine,
            upstream: Some(upstream.addr),
            admin_ip: Some("127.0.0.2"),
            ..Launch::default()
        });
        assert_eq!(statuscope.admin.ip().to_string(), "127.0.0.2");
        assert_eq!(raw_get(statuscope.admin, "/healthz").unwrap().0, 200);
        let same_port_on_proxy_interface =
            SocketAddr::new(statuscope.listen.ip(), statuscope.admin.port());
        assert!(
            TcpStream::connect(same_port_on_proxy_interface).is_err(),
            "the admin port must not listen on the proxy's interface"
        );
        assert_eq!(raw_get(statuscope.listen, "/status/200").unwrap().0, 200);
    }
}

each_engine! {
    fn the_proxy_port_passes_admin_paths_to_the_upstream(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::start(engine, upstream.addr);
        let paths = ["/metrics", "/findings", "/healthz", "/readyz"];
        for path in paths {
            let (status, body) = raw_get(statuscope.listen, path).unwrap();
            assert_eq!(
                (status, body.as_str()),
                (200, "ok"),
                "{path} must be the upstream's"
            );
        }
        assert_eq!(upstream.requests(), paths.len());
    }
}

each_engine! {
    fn findings_and_the_observed_contract_require_the_bearer_token_when_one_is_configured(engine) {
        const TOKEN: &str = "s3cr3t-admin-token-value";
        let upstream = Upstream::start();
        let token_file = config_file("findings-token", &format!("{TOKEN}\n"));
        let config = config_file(
            "findings-token.yaml",
            &format!("findings:\n  token_file: {}\n", token_file.display()),
        );
        let statuscope = Statuscope::launch(Launch {
            engine,
            upstream: Some(upstream.addr),
            config: Some(&config),
            env: vec![("STATUSCOPE_LOG__LEVEL", "debug".into())],
            ..Launch::default()
        });
        let get = |path: &str, authorization: &str| {
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n{authorization}\r\n"
            );
            raw_exchange(statuscope.admin, request.as_bytes())
        };
        // The observed contract takes the same token.
        let observed = get("/contract/observed", "");
        assert!(observed.starts_with("HTTP/1.1 401"), "{observed}");
        let observed = get("/contract/observed", &format!("Authorization: Bearer {TOKEN}\r\n"));
        assert!(observed.starts_with("HTTP/1.1 200"), "{observed}");
        let findings = |authorization: &str| get("/findings", authorization);
        for refused in [
            String::new(),
            "Authorization: Bearer wrong-token-of-other-length\r\n".to_string(),
            format!("Authorization: Bearer {}x\r\n", &TOKEN[..TOKEN.len() - 1]),
            format!("Authorization: Basic {TOKEN}\r\n"),
        ] {
            let response = findings(&refused);
            assert!(
                response.starts_with("HTTP/1.1 401"),
                "{refused}: {response}"
            );
            assert!(
                response.contains("www-authenticate: Bearer realm=\"statuscope\""),
                "{response}"
            );
        }
        let response = findings(&format!("Authorization: Bearer {TOKEN}\r\n"));
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        // Prometheus scrapes without a token; the token itself is never shown.
        let metrics = statuscope.metrics_text();
        assert!(!metrics.contains(TOKEN));
        assert!(
            !statuscope.stderr().contains(TOKEN),
            "{}",
            statuscope.stderr()
        );
    }
}

#[test]
fn an_unreadable_token_file_is_a_configuration_error_naming_the_key() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_statuscope"))
        .args(["check-config"])
        .arg(config_file(
            "bad-token.yaml",
            "findings:\n  token_file: /nonexistent/token\n",
        ))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("findings.token_file"), "{stderr}");
}

/// A small deterministic generator: the flood must not depend on a random seed to pass.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn random_word(state: &mut u64) -> String {
    (0..8)
        .map(|_| (b'a' + (next(state) % 26) as u8) as char)
        .collect()
}

each_engine! {
    async fn unique_paths_and_queries_leave_series_bounded_and_memory_flat(engine) {
        const REQUESTS: usize = 200_000;
        const ROUTE_CAP: usize = 50;
        let upstream = Upstream::start();
        let config = config_file(
            "cardinality.yaml",
            &format!("routes:\n  max: {ROUTE_CAP}\n"),
        );
        let statuscope = Arc::new(Statuscope::launch(Launch {
            engine,
            upstream: Some(upstream.addr),
            config: Some(&config),
            ..Launch::default()
        }));
        let client = client();
        let issued = Arc::new(AtomicUsize::new(0));
        let flood = |until: usize| {
            let workers: Vec<_> = (0..32u64)
                .map(|worker| {
                    let (client, issued, listen) = (client.clone(), issued.clone(), statuscope.listen);
                    tokio::spawn(async move {
                        let mut state = 0x9E37_79B9_7F4A_7C15 ^ ((worker + 1) * 0x1000_0001);
                        while issued.fetch_add(1, Ordering::Relaxed) < until {
                            let url = format!(
                                "http://{listen}/{}/{}?{}={}",
                                random_word(&mut state),
                                next(&mut state),
                                random_word(&mut state),
                                random_word(&mut state),
                            );
                            let received = send(&client, "GET", &url, &[], b"").await;
                            assert_eq!(received.status, 200);
                        }
                    })
                })
                .collect();
            async move {
                for worker in workers {
                    worker.await.unwrap();
                }
            }
        };
        flood(REQUESTS / 10).await;
        issued.store(REQUESTS / 10, Ordering::Relaxed);
        let rss_after_warm_up = statuscope.rss();
        flood(REQUESTS).await;
        let handle = statuscope.clone();
        tokio::task::spawn_blocking(move || handle.wait_idle())
            .await
            .unwrap();
        let rss_at_end = statuscope.rss();

        let samples = statuscope.metrics();
        let routes: BTreeSet<&str> = samples
            .iter()
            .filter(|s| s.name == "statuscope_responses_total")
            .map(|s| s.labels["route"].as_str())
            .collect();
        assert!(
            routes.len() <= ROUTE_CAP + 1,
            "{} routes for a cap of {ROUTE_CAP}",
            routes.len()
        );
        assert!(routes.contains("__other__"));
        assert!(
            samples
                .iter()
                .flat_map(|s| s.labels.values())
                .all(|value| !value.contains('?') && !value.contains('=')),
            "a query string reached a label"
        );
        assert_eq!(
            statuscope.total("statuscope_responses_total", &[]),
            REQUESTS as f64
        );
        // Flat: what the first tenth of the flood did not grow, the other nine tenths may not
        // either (allocator noise aside).
        let growth = rss_at_end.saturating_sub(rss_after_warm_up);
        eprintln!(
            "{} routes, RSS {rss_after_warm_up} bytes after {} requests, {rss_at_end} after {REQUESTS}",
            routes.len(),
            REQUESTS / 10
        );
        assert!(
            growth < 8 * 1024 * 1024,
            "memory grew {growth} bytes over {} unique paths ({rss_after_warm_up} -> {rss_at_end})",
            REQUESTS * 9 / 10
        );
    }
}
