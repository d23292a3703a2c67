//! The demo's clients: a few keep-alive workers sending a weighted mix of requests through
//! the proxy, some of which they give up on (client aborts).

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

const SCENARIOS: &[Scenario] = &[
    Scenario {
        weight: 30,
        method: "GET",
        path: "/users/{id}",
        body: "",
        patience: PATIENT,
    },
    Scenario {
        weight: 15,
        method: "GET",
        path: "/orders",
        body: "",
        patience: PATIENT,
    },
    Scenario {
        weight: 15,
        method: "POST",
        path: "/orders",
        body: r#"{"item":"book","quantity":1}"#,
        patience: PATIENT,
    },
    Scenario {
        weight: 10,
        method: "POST",
        path: "/login",
        body: r#"{"user":"alice","password":"x"}"#,
        patience: PATIENT,
    },
    Scenario {
        weight: 15,
        method: "GET",
        path: "/health",
        body: "",
        patience: PATIENT,
    },
    Scenario {
        weight: 5,
        method: "GET",
        path: "/reports",
        body: "",
        patience: PATIENT,
    },
    Scenario {
        weight: 3,
        method: "GET",
        path: "/export",
        body: "",
        patience: Duration::from_millis(300),
    },
    Scenario {
        weight: 4,
        method: "GET",
        path: "/old-home",
        body: "",
        patience: PATIENT,
    },
    Scenario {
        weight: 3,
        method: "GET",
        path: "/nowhere",
        body: "",
        patience: PATIENT,
    },
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
            loop {
                let mut pick = dice.roll(total_weight);
                let scenario = SCENARIOS
                    .iter()
                    .find(|s| {
                        let hit = pick < s.weight;
                        pick = pick.saturating_sub(s.weight);
                        hit
                    })
                    .unwrap_or(&SCENARIOS[0]);
                let path = scenario
                    .path
                    .replace("{id}", &(1 + dice.roll(1000)).to_string());
                let request = http::Request::builder()
                    .method(scenario.method)
                    .uri(format!("http://{proxy}{path}"))
                    .header("content-type", "application/json")
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
