//! Tallies equal what the clients saw, under concurrent keep-alive load.

use std::collections::BTreeMap;

use crate::support::each_engine;
use crate::support::upstream::Upstream;
use crate::support::{client, get, Statuscope};

/// More than 20 codes, with and without bodies, from every class the upstream can send.
const CODES: [u16; 24] = [
    200, 201, 202, 203, 204, 206, 301, 302, 303, 307, 308, 400, 401, 403, 404, 405, 409, 410, 422,
    429, 500, 501, 503, 504,
];
/// Ten routes, each a literal last segment after the code.
const ROUTES: [&str; 10] = [
    "orders", "items", "users", "carts", "search", "login", "health", "reports", "export", "admin",
];
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const WORKERS: usize = 32;
const PER_WORKER: usize = 1_600;
/// Every this many requests a worker also starts a large download and hangs up after the
/// first bytes: a client abort mid-response, tallied 499 with `origin="client"`.
const ABORT_EVERY: usize = 100;

type Key = (String, String, u16, String);

/// Starts a 1 GiB download on a fresh connection and hangs up once the head has arrived.
async fn abort_mid_response(listen: std::net::SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(listen).await.unwrap();
    stream
        .write_all(b"GET /bytes/1073741824 HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 16];
    stream.read_exact(&mut first).await.unwrap();
    assert_eq!(&first[..12], b"HTTP/1.1 200");
}

each_engine! {
    async fn tallies_equal_the_clients_ground_truth_under_concurrent_load_and_aborts(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::start(engine, upstream.addr);
        let client = client();
        let mut tasks = Vec::new();
        for worker in 0..WORKERS {
            let client = client.clone();
            let listen = statuscope.listen;
            tasks.push(tokio::spawn(async move {
                let mut seen: BTreeMap<Key, u64> = BTreeMap::new();
                for i in 0..PER_WORKER {
                    let code = CODES[(worker * 7 + i) % CODES.len()];
                    let route = ROUTES[(worker + i * 3) % ROUTES.len()];
                    let method = METHODS[(worker + i) % METHODS.len()];
                    let url = format!("http://{listen}/status/{code}/{route}");
                    let received = crate::support::send(&client, method, &url, &[], b"").await;
                    assert_eq!(received.status, code);
                    let key = (
                        format!("/status/{{id}}/{route}"),
                        method.to_string(),
                        code,
                        "upstream".to_string(),
                    );
                    *seen.entry(key).or_default() += 1;
                    if i % ABORT_EVERY == 0 {
                        abort_mid_response(listen).await;
                        let key = (
                            "/bytes/{id}".to_string(),
                            "GET".to_string(),
                            499,
                            "client".to_string(),
                        );
                        *seen.entry(key).or_default() += 1;
                    }
                }
                seen
            }));
        }
        let mut expected: BTreeMap<Key, u64> = BTreeMap::new();
        for task in tasks {
            for (key, count) in task.await.unwrap() {
                *expected.entry(key).or_default() += count;
            }
        }
        let total: u64 = expected.values().sum();
        assert!(total >= 50_000, "{total} requests");
        statuscope.wait_idle();
        let metrics = statuscope.metrics();
        let mut counted: BTreeMap<Key, u64> = BTreeMap::new();
        for sample in metrics
            .iter()
            .filter(|s| s.name == "statuscope_responses_total")
        {
            let code: u16 = sample.labels["code"].parse().unwrap();
            assert_eq!(sample.labels["class"], format!("{}xx", code / 100));
            let key = (
                sample.labels["route"].clone(),
                sample.labels["method"].clone(),
                code,
                sample.labels["origin"].clone(),
            );
            counted.insert(key, sample.value as u64);
        }
        assert_eq!(counted, expected);
        // The duration histogram counts the same exchanges under the same labels (and the
        // HTTP version, 1.1 for this client): the OTLP push's HTTP view is read from it.
        let mut timed: BTreeMap<Key, u64> = BTreeMap::new();
        for sample in metrics
            .iter()
            .filter(|s| s.name == "statuscope_response_duration_seconds_count")
        {
            assert_eq!(sample.labels["http_version"], "1.1");
            let key = (
                sample.labels["route"].clone(),
                sample.labels["method"].clone(),
                sample.labels["code"].parse().unwrap(),
                sample.labels["origin"].clone(),
            );
            *timed.entry(key).or_default() += sample.value as u64;
        }
        assert_eq!(timed, expected);
        assert_eq!(
            crate::support::exposition::total(&metrics, "statuscope_requests_in_flight", &[]),
            0.0
        );
        assert_eq!(upstream.requests() as u64, total);
        // Keep-alive towards the upstream: connections are pooled and reused, not one per request
        // (each aborted download leaves its upstream connection unusable).
        let aborts = WORKERS * PER_WORKER / ABORT_EVERY;
        assert!(
            upstream.connections() <= 4 * WORKERS + aborts,
            "{} upstream connections",
            upstream.connections()
        );
    }
}

each_engine! {
    async fn service_proxy_and_client_outcomes_are_each_counted_once(engine) {
        use std::io::Write;

        let upstream = Upstream::start();
        let statuscope = crate::support::Statuscope::launch(crate::support::Launch {
            engine,
            upstream: Some(upstream.addr),
            env: vec![("STATUSCOPE_TIMEOUTS__READ", "200ms".into())],
            ..crate::support::Launch::default()
        });
        let client = client();
        let listen = statuscope.listen;
        let mut tasks = Vec::new();
        for worker in 0..8 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut statuses = Vec::new();
                for i in 0..40 {
                    // Every tenth request outlives the read timeout: a proxy-made 504.
                    let slow = (worker + i) % 10 == 0;
                    let path = if slow {
                        "/slow/1000".to_string()
                    } else {
                        format!("/status/{}", CODES[i % CODES.len()])
                    };
                    let status = crate::support::send(
                        &client,
                        "GET",
                        &format!("http://{listen}{path}"),
                        &[],
                        b"",
                    )
                    .await
                    .status;
                    statuses.push((slow, status));
                }
                statuses
            }));
        }
        // Meanwhile, clients that hang up before their answer.
        let aborts = 5;
        for _ in 0..aborts {
            let mut stream = std::net::TcpStream::connect(listen).unwrap();
            stream
                .write_all(b"GET /slow/150 HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            drop(stream);
        }
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.extend(task.await.unwrap());
        }
        statuscope.wait_idle();
        assert!(statuses
            .iter()
            .all(|&(slow, status)| !slow || status == 504));
        let timeouts = statuses.iter().filter(|(slow, _)| *slow).count() as f64;
        assert_eq!(timeouts, 32.0);
        let metrics = statuscope.metrics();
        let total = |labels: &[(&str, &str)]| {
            crate::support::exposition::total(&metrics, "statuscope_responses_total", labels)
        };
        assert_eq!(total(&[("origin", "proxy"), ("code", "504")]), timeouts);
        assert_eq!(
            total(&[("origin", "upstream")]),
            statuses.len() as f64 - timeouts
        );
        assert_eq!(
            total(&[("origin", "client"), ("code", "499")]),
            aborts as f64
        );
        assert_eq!(total(&[]), (statuses.len() + aborts) as f64);
    }
}

each_engine! {
    async fn the_duration_histogram_has_the_configured_buckets(engine) {
        let upstream = Upstream::start();
        let config = crate::support::config_file(
            "buckets.yaml",
            "metrics:\n  duration_buckets: [0.0005, 0.05, 120]\n",
        );
        let statuscope = Statuscope::launch(crate::support::Launch {
            engine,
            upstream: Some(upstream.addr),
            config: Some(&config),
            ..crate::support::Launch::default()
        });
        let client = client();
        get(&client, &statuscope, "/slow/80").await;
        statuscope.wait_idle();
        let buckets: Vec<(String, f64)> = statuscope
            .metrics()
            .into_iter()
            .filter(|s| s.name == "statuscope_response_duration_seconds_bucket")
            .map(|s| (s.labels["le"].clone(), s.value))
            .collect();
        // Each bound as configured, and +Inf: an 80 ms response is above 0.05, below 120.
        let expected = [("0.0005", 0.0), ("0.05", 0.0), ("120", 1.0), ("+Inf", 1.0)];
        let expected: Vec<(String, f64)> =
            expected.iter().map(|(le, n)| (le.to_string(), *n)).collect();
        assert_eq!(buckets, expected);
    }
}
