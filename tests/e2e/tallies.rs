//! Tallies equal what the clients saw, under concurrent keep-alive load.

use std::collections::BTreeMap;

use crate::support::upstream::Upstream;
use crate::support::{client, Statuscope};

const CODES: [u16; 8] = [200, 201, 204, 301, 404, 429, 500, 503];
const ROUTES: [&str; 3] = [
    "/status/{code}",
    "/status/{code}/orders",
    "/status/{code}/items/{n}",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tallies_equal_requests_sent_under_concurrent_keep_alive_load() {
    let upstream = Upstream::start();
    let statuscope = Statuscope::start(upstream.addr);
    let client = client();
    let mut tasks = Vec::new();
    for worker in 0..16usize {
        let client = client.clone();
        let listen = statuscope.listen;
        tasks.push(tokio::spawn(async move {
            let mut seen: BTreeMap<(String, u16), u64> = BTreeMap::new();
            for i in 0..150usize {
                let code = CODES[(worker * 7 + i) % CODES.len()];
                let template = ROUTES[(worker + i) % ROUTES.len()];
                let path = template
                    .replace("{code}", &code.to_string())
                    .replace("{n}", &(i * 13).to_string());
                let received = crate::support::send(
                    &client,
                    "GET",
                    &format!("http://{listen}{path}"),
                    &[],
                    b"",
                )
                .await;
                assert_eq!(received.status, code);
                let route = template.replace("{code}", "{id}").replace("{n}", "{id}");
                *seen.entry((route, received.status)).or_default() += 1;
            }
            seen
        }));
    }
    let mut expected: BTreeMap<(String, u16), u64> = BTreeMap::new();
    for task in tasks {
        for (key, count) in task.await.unwrap() {
            *expected.entry(key).or_default() += count;
        }
    }
    statuscope.wait_idle();
    let metrics = statuscope.metrics();
    let mut counted: BTreeMap<(String, u16), u64> = BTreeMap::new();
    for sample in metrics
        .iter()
        .filter(|s| s.name == "statuscope_responses_total")
    {
        assert_eq!(sample.labels["origin"], "upstream");
        assert_eq!(sample.labels["method"], "GET");
        let code: u16 = sample.labels["code"].parse().unwrap();
        assert_eq!(sample.labels["class"], format!("{}xx", code / 100));
        counted.insert((sample.labels["route"].clone(), code), sample.value as u64);
    }
    assert_eq!(counted, expected);
    let histogram_count = crate::support::exposition::total(
        &metrics,
        "statuscope_response_duration_seconds_count",
        &[],
    );
    assert_eq!(histogram_count as u64, 16 * 150);
    assert_eq!(
        crate::support::exposition::total(&metrics, "statuscope_requests_in_flight", &[]),
        0.0
    );
    assert_eq!(upstream.requests(), 16 * 150);
    // Keep-alive towards the upstream: connections are pooled and reused, not one per request.
    assert!(
        upstream.connections() <= 64,
        "{} upstream connections",
        upstream.connections()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn service_proxy_and_client_outcomes_are_each_counted_once() {
    use std::io::Write;

    let upstream = Upstream::start();
    let statuscope = crate::support::Statuscope::launch(crate::support::Launch {
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
                let path = if (worker + i) % 10 == 0 {
                    "/slow/1000".to_string()
                } else {
                    format!("/status/{}", CODES[i % CODES.len()])
                };
                statuses.push(
                    crate::support::send(
                        &client,
                        "GET",
                        &format!("http://{listen}{path}"),
                        &[],
                        b"",
                    )
                    .await
                    .status,
                );
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
    let timeouts = statuses.iter().filter(|s| **s == 504).count() as f64;
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
