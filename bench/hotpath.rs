//! The per-request work statuscope adds to a proxied exchange without a body: check the request
//! head, resolve the route, classify, record the tallies and run the rule catalogue. `bench/hotpath.sh` runs it
//! under callgrind, which counts instructions — the same count for the same binary however
//! busy the machine — so a regression on the request path shows up in review.
//!
//!     cargo run --release --example hotpath -- 100000

use std::hint::black_box;
use std::time::Duration;

use http::Method;
use statuscope::classify::route::{RouteTable, RouteTemplate};
use statuscope::classify::{method_label, HttpVersion, Origin};
use statuscope::proxy::request_head::{HeadLimits, HeadReader, Progress};
use statuscope::record::{Metrics, Tally};
use statuscope::rules::rule_set::RuleSet;
use statuscope::rules::{self, Field, Headers, RequestFacts};

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let metrics = Metrics::default();
    let routes = RouteTable::new(
        vec![RouteTemplate::parse("/users/{id}").expect("valid")],
        200,
    );
    let fields: Vec<String> = ["code", "error", "type", "title", "message"]
        .map(String::from)
        .to_vec();
    let engine = RuleSet::new(&[], &fields, &[], None);
    let paths = [
        "/users/42",
        "/orders/7/items",
        "/health",
        "/search",
        "/orders/3f2c1a9e-4b7d-4e8a-9c1b-2d3e4f5a6b7c",
    ];
    let codes = [200u16, 201, 204, 404, 500];
    let fields = [
        Field {
            name: b"content-type",
            value: b"application/json",
        },
        Field {
            name: b"content-length",
            value: b"512",
        },
    ];
    let method = Method::GET;
    let head = b"GET /users/42 HTTP/1.1\r\nHost: api.internal\r\nUser-Agent: client/1.0\r\n\
        Accept: application/json\r\nX-Request-Id: 4b7d4e8a9c1b\r\n\r\n";
    let limits = HeadLimits {
        max_header_bytes: 32 * 1024,
        max_headers: 100,
        max_target_bytes: 8 * 1024,
    };
    for i in 0..iterations {
        let checked = HeadReader::default().advance(black_box(head), &limits);
        assert!(matches!(checked, Progress::Complete(_)));
        let path = paths[i % paths.len()];
        let code = codes[i % codes.len()];
        let route = routes.resolve(black_box(path));
        let label = method_label(&method);
        metrics.record(&Tally {
            route: &route.label,
            method: label,
            code,
            origin: Origin::Upstream,
            version: HttpVersion::Http11,
            duration: Duration::from_micros(850),
        });
        let exchange = rules::Exchange {
            method: &method,
            route: &route.label,
            path,
            request: RequestFacts {
                target: path.as_bytes(),
                ..RequestFacts::default()
            },
            status: code,
            headers: Headers::List(&fields),
            content_type: Headers::List(&fields).media_type(),
            sent_continue: false,
            body: None,
            error_fields: &[],
            contract: None,
            grpc_trailers: None,
        };
        let mut flagged = false;
        engine.evaluate(&exchange, |_| flagged = true);
        metrics.record_judged(&route.label, label, flagged);
    }
    black_box(metrics.registry().gather().len());
}
