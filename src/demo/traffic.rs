//! The demo's clients: a few keep-alive workers sending a weighted mix of requests through
//! the proxy (JSON API calls, without credentials), some of which they give up on (client
//! aborts).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::service::Dice;

/// One kind of request the demo sends, with its share of the traffic.
struct Scenario {
    weight: u64,
    method: &'static str,
    path: &'static str,
    body: &'static str,
    /// The client gives up after this long (the demo's source of 499s).
    patience: Duration,
}

const PATIENT: Duration = Duration::from_secs(10);

const fn get(weight: u64, path: &'static str) -> Scenario {
    Scenario {
        weight,
        method: "GET",
        path,
        body: "",
        patience: PATIENT,
    }
}

const fn send(
    weight: u64,
    method: &'static str,
    path: &'static str,
    body: &'static str,
) -> Scenario {
    Scenario {
        weight,
        method,
        path,
        body,
        patience: PATIENT,
    }
}

const SCENARIOS: &[Scenario] = &[
    get(25, "/users/{id}"),
    get(10, "/orders"),
    send(1, "PATCH", "/orders", r#"{"note":"x"}"#),
    send(12, "POST", "/orders", r#"{"item":"book","quantity":1}"#),
    send(2, "POST", "/users", r#"{"name":"Bob"}"#),
    send(8, "POST", "/login", r#"{"user":"alice","password":"x"}"#),
    get(12, "/health"),
    send(1, "DELETE", "/health", ""),
    get(2, "/admin"),
    get(2, "/billing"),
    get(8, "/search"),
    get(1, "/sessions/new"),
    get(1, "/docs"),
    send(1, "POST", "/v1/orders", r#"{"item":"pen"}"#),
    get(4, "/payments"),
    get(3, "/catalog"),
    get(1, "/feature-flags"),
    get(1, "/widgets"),
    send(1, "DELETE", "/legacy/items/{id}", ""),
    send(1, "POST", "/legacy/upload", r#"{"file":"a.txt"}"#),
    get(4, "/reports"),
    Scenario {
        weight: 2,
        method: "GET",
        path: "/export",
        body: "",
        patience: Duration::from_millis(300),
    },
    get(2, "/old-home"),
    get(2, "/nowhere"),
];

/// Sends traffic to `proxy` from `workers` concurrent keep-alive clients, forever.
pub async fn drive(proxy: SocketAddr, workers: usize) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let total_weight: u64 = SCENARIOS.iter().map(|s| s.weight).sum();
    let mut tasks = Vec::with_capacity(workers);
    for worker in 0..workers {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let dice = Dice::new(0x9e37_79b9_7f4a_7c15 ^ worker as u64);
            // Each worker first tours every scenario once, so every route (and every
            // deterministic misuse) shows within the first seconds; then it picks by weight.
            let mut tour = SCENARIOS.iter();
            loop {
                let scenario = tour.next().unwrap_or_else(|| {
                    let mut pick = dice.roll(total_weight);
                    SCENARIOS
                        .iter()
                        .find(|s| {
                            let hit = pick < s.weight;
                            pick = pick.saturating_sub(s.weight);
                            hit
                        })
                        .unwrap_or(&SCENARIOS[0])
                });
                let path = scenario
                    .path
                    .replace("{id}", &(1 + dice.roll(1000)).to_string());
                let request = http::Request::builder()
                    .method(scenario.method)
                    .uri(format!("http://{proxy}{path}"))
                    .header("content-type", "application/json")
                    // A JSON API client: an HTML error page is of no use to it.
                    .header("accept", "application/json")
                    .body(Full::new(Bytes::from_static(scenario.body.as_bytes())))
                    .expect("valid demo request");
                let exchange = async {
                    if let Ok(response) = client.request(request).await {
                        let _ = response.into_body().collect().await;
                    }
                };
                let _ = tokio::time::timeout(scenario.patience, exchange).await;
                // Pacing, so the demo shows a steady few hundred requests per second.
                tokio::time::sleep(Duration::from_millis(20 + dice.roll(30))).await;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}
