//! The demo's clients: a few keep-alive workers sending a weighted mix of requests through
//! the proxy (JSON API calls, without credentials), some of which they give up on (client
//! aborts).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
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

/// What a demo client sends next: each item once, in order, first — so every route (and
/// every deterministic misuse) shows within the first seconds — then items at random by weight.
struct Picker<T: 'static> {
    items: &'static [T],
    weight: fn(&T) -> u64,
    total: u64,
    toured: usize,
    dice: Dice,
}

impl<T> Picker<T> {
    fn new(items: &'static [T], weight: fn(&T) -> u64, seed: u64) -> Self {
        Picker {
            total: items.iter().map(weight).sum(),
            items,
            weight,
            toured: 0,
            dice: Dice::new(seed),
        }
    }

    fn pick(&mut self) -> &'static T {
        if let Some(item) = self.items.get(self.toured) {
            self.toured += 1;
            return item;
        }
        let mut pick = self.dice.roll(self.total);
        let weight = self.weight;
        self.items
            .iter()
            .find(|item| {
                let hit = pick < weight(item);
                pick = pick.saturating_sub(weight(item));
                hit
            })
            .unwrap_or(&self.items[0])
    }
}

/// A kind of demo client: what it sends and how patient it is.
pub struct Clients<T: 'static> {
    /// What the clients send, picked by [`Clients::weight`].
    pub items: &'static [T],
    /// An item's share of the traffic.
    pub weight: fn(&T) -> u64,
    /// The request for an item, sent to the proxy at the address given.
    pub request: fn(&T, &Dice, SocketAddr) -> http::Request<Full<Bytes>>,
    /// How long a client waits for the whole answer before it gives up.
    pub patience: fn(&T) -> Duration,
    /// The pause after each exchange: this many milliseconds, and up to as many more.
    pub pause_ms: u64,
    /// Seeds each client's randomness, with its number.
    pub seed: u64,
}

/// Runs `workers` clients of this kind through `client` to `proxy`, forever.
pub async fn drive_clients<T: Sync>(
    kind: Clients<T>,
    client: Client<HttpConnector, Full<Bytes>>,
    proxy: SocketAddr,
    workers: usize,
) {
    let kind = std::sync::Arc::new(kind);
    let mut tasks = Vec::with_capacity(workers);
    for worker in 0..workers {
        let (client, kind) = (client.clone(), kind.clone());
        tasks.push(tokio::spawn(async move {
            let mut picker = Picker::new(kind.items, kind.weight, kind.seed ^ worker as u64);
            loop {
                let item = picker.pick();
                let request = (kind.request)(item, &picker.dice, proxy);
                let exchange = async {
                    if let Ok(response) = client.request(request).await {
                        let _ = response.into_body().collect().await;
                    }
                };
                // Past its patience a client gives up: the demo's client hang-ups.
                let _ = tokio::time::timeout((kind.patience)(item), exchange).await;
                let pause = kind.pause_ms + picker.dice.roll(kind.pause_ms);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// Sends traffic to `proxy` from `workers` concurrent keep-alive clients, forever.
pub async fn drive(proxy: SocketAddr, workers: usize) {
    let clients = Clients {
        items: SCENARIOS,
        weight: |s| s.weight,
        request: |scenario, dice, proxy| {
            let path = scenario
                .path
                .replace("{id}", &(1 + dice.roll(1000)).to_string());
            http::Request::builder()
                .method(scenario.method)
                .uri(format!("http://{proxy}{path}"))
                .header("content-type", "application/json")
                // A JSON API client: an HTML error page is of no use to it.
                .header("accept", "application/json")
                .body(Full::new(Bytes::from_static(scenario.body.as_bytes())))
                .expect("valid demo request")
        },
        patience: |s| s.patience,
        // A steady few hundred requests per second.
        pause_ms: 25,
        seed: 0x9e37_79b9_7f4a_7c15,
    };
    let client = Client::builder(TokioExecutor::new()).build_http();
    drive_clients(clients, client, proxy, workers).await;
}
