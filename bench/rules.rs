//! The cost of judging one exchange: sampling (copy and decode) plus the whole rule catalogue,
//! over representative exchanges, and learning the observed contract. Run with `make bench-rules` (or `cargo bench --bench rules`).

use std::io::Write;
use std::sync::{Arc, OnceLock};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use http::Method;
use statuscope::contract::{Contract, Formats};
use statuscope::record::observed::{Learnt, ObservedLimits};
use statuscope::rules::rule_set::{Evaluation, RuleSet, RuleSetting};
use statuscope::rules::{Exchange, Field, Headers, RequestFacts};
use statuscope::sample::{Sample, Sampler};

const SAMPLE_BYTES: usize = 8 * 1024;

/// A JSON document of about `size` bytes: a successful list of orders.
fn json_success(size: usize) -> Vec<u8> {
    let mut body = String::from(r#"{"orders": ["#);
    let mut i = 0;
    while body.len() < size - 100 {
        body.push_str(&format!(
            r#"{{"id": {i}, "item": "book", "quantity": 1, "status": "shipped"}},"#
        ));
        i += 1;
    }
    body.push_str(r#"{"id": 0}], "next": null}"#);
    body.into_bytes()
}

/// A JSON document of about `size` bytes without any key an error envelope uses.
fn json_list(size: usize) -> Vec<u8> {
    let mut body = String::from(r#"{"id": 101, "name": "Alice", "items": ["#);
    let mut i = 0;
    while body.len() < size - 20 {
        body.push_str(&format!(r#""item-{i:02}","#));
        i += 1;
    }
    body.push_str(r#""end"]}"#);
    body.into_bytes()
}

/// An 8 KiB JSON error body with a stack trace, gzip-compressed as a service would send it.
fn gzip_error() -> Vec<u8> {
    let mut body = String::from(r#"{"code": "INTERNAL", "details": ["#);
    while body.len() < SAMPLE_BYTES - 100 {
        body.push_str(r#""at com.example.orders.OrderService.find(OrderService.java:42)","#);
    }
    body.push_str(r#""end"]}"#);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

/// An 8 KiB HTML page.
fn html_page() -> Vec<u8> {
    let mut page = String::from(
        "<!doctype html><html><head><title>Orders</title></head><body><h1>Your orders</h1><ul>",
    );
    while page.len() < SAMPLE_BYTES - 20 {
        page.push_str("<li><a href=\"/orders/1\">Order 1</a> shipped</li>");
    }
    page.push_str("</ul></body></html>");
    page.into_bytes()
}

struct Scenario {
    name: &'static str,
    status: u16,
    headers: Vec<Field<'static>>,
    body: Option<Vec<u8>>,
}

fn headers(pairs: &[(&'static str, &'static str)]) -> Vec<Field<'static>> {
    pairs
        .iter()
        .map(|(name, value)| Field {
            name: name.as_bytes(),
            value: value.as_bytes(),
        })
        .collect()
}

/// The route label every exchange here is on.
fn route() -> &'static Arc<str> {
    static ROUTE: OnceLock<Arc<str>> = OnceLock::new();
    ROUTE.get_or_init(|| Arc::from("/orders/{id}"))
}

/// An authenticated JSON client's GET of `/orders/42`, answered as given.
fn exchange<'a>(
    method: &'a Method,
    status: u16,
    headers: &'a [Field<'a>],
    body: Option<&'a Sample>,
) -> Exchange<'a> {
    Exchange {
        method,
        route: route(),
        path: "/orders/42",
        request: RequestFacts {
            has_authorization: true,
            has_cookie: false,
            expects_continue: false,
            accept: Some("application/json"),
            ..RequestFacts::default()
        },
        status,
        headers: Headers::List(headers),
        content_type: Headers::List(headers).media_type(),
        sent_continue: false,
        body,
        error_fields: &[],
        contract: None,
        grpc_trailers: None,
    }
}

fn judge(engine: &RuleSet, scenario: &Scenario, method: &Method) -> usize {
    let sample = scenario.body.as_ref().and_then(|body| {
        let headers = Headers::List(&scenario.headers);
        let mut sampler = Sampler::start(
            SAMPLE_BYTES,
            headers.get_str("content-type"),
            headers.get_str("content-encoding"),
        )?;
        // Bodies arrive in pieces; 4 KiB reads are typical.
        for chunk in body.chunks(4096) {
            sampler.feed(chunk);
        }
        Some(sampler.finish())
    });
    let exchange = exchange(method, scenario.status, &scenario.headers, sample.as_ref());
    let mut findings = 0;
    engine.evaluate(&exchange, |outcome| {
        if let Evaluation::Finding(_) = outcome {
            findings += 1;
        }
    });
    findings
}

fn catalogue(c: &mut Criterion) {
    let fields: Vec<String> = ["code", "error", "type", "title", "message"]
        .map(String::from)
        .to_vec();
    let engine = RuleSet::new(&[], &fields, &[], None);
    let method = Method::GET;
    let scenarios = [
        Scenario {
            name: "no body (200, JSON headers)",
            status: 200,
            headers: headers(&[
                ("content-type", "application/json"),
                ("content-length", "0"),
            ]),
            body: None,
        },
        Scenario {
            name: "1 KiB JSON success body",
            status: 200,
            headers: headers(&[("content-type", "application/json")]),
            body: Some(json_list(1024)),
        },
        Scenario {
            name: "8 KiB JSON success body",
            status: 200,
            headers: headers(&[("content-type", "application/json")]),
            body: Some(json_success(SAMPLE_BYTES)),
        },
        Scenario {
            name: "8 KiB gzip JSON error body",
            status: 500,
            headers: headers(&[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ]),
            body: Some(gzip_error()),
        },
        Scenario {
            name: "8 KiB HTML page",
            status: 200,
            headers: headers(&[("content-type", "text/html; charset=utf-8")]),
            body: Some(html_page()),
        },
    ];
    let mut group = c.benchmark_group("catalogue per exchange");
    for scenario in &scenarios {
        group.bench_function(scenario.name, |b| {
            b.iter(|| judge(&engine, black_box(scenario), &method))
        });
    }
    group.finish();
}

/// Each rule alone on pre-decoded 8 KiB samples, and the decoding alone: where the time goes.
fn each_rule(c: &mut Criterion) {
    let json = Sampler::start(SAMPLE_BYTES, Some("application/json"), None).map(|mut s| {
        s.feed(&json_list(1024));
        s.finish()
    });
    let mut group = c.benchmark_group("one rule on a 1 KiB JSON sample");
    group
        .measurement_time(std::time::Duration::from_secs(1))
        .warm_up_time(std::time::Duration::from_millis(300));
    let headers = headers(&[("content-type", "application/json")]);
    for status in [200u16, 500] {
        for rule in statuscope::rules::CATALOGUE {
            let exchange = exchange(&Method::GET, status, &headers, json.as_ref());
            group.bench_function(format!("{status} {}", rule.id), |b| {
                b.iter(|| (rule.evaluate)(black_box(&exchange)))
            });
        }
    }
    group.finish();
    let gzip = gzip_error();
    c.bench_function("decode 8 KiB gzip sample", |b| {
        b.iter(|| {
            let mut sampler =
                Sampler::start(SAMPLE_BYTES, Some("application/json"), Some("gzip")).unwrap();
            sampler.feed(black_box(&gzip));
            sampler.finish()
        })
    });
}

/// The contract the contract rules are measured against: an order list with a schema.
const CONTRACT: &str = r##"
openapi: 3.1.0
info: {title: bench, version: "1"}
paths:
  /orders/{id}:
    get:
      responses:
        "200":
          description: orders
          headers:
            ETag: {required: true, schema: {type: string}}
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Orders"}
        4XX: {description: a client error}
components:
  schemas:
    Orders:
      type: object
      required: [orders]
      properties:
        orders: {type: array, items: {$ref: "#/components/schemas/Order"}}
    Order:
      type: object
      required: [id, item, quantity, status]
      properties:
        id: {type: integer}
        item: {type: string}
        quantity: {type: integer, minimum: 1}
        status: {enum: [open, shipped]}
        placed: {type: string, format: date-time}
"##;

/// An order list of just under `bytes` that validates against [`CONTRACT`].
fn orders(bytes: usize) -> Vec<u8> {
    let mut body = String::from(r#"{"orders":["#);
    let mut id = 0;
    loop {
        let order = format!(
            r#"{{"id":{id},"item":"book {id}","quantity":2,"status":"open","placed":"2026-12-05T10:00:00Z"}}"#
        );
        if body.len() + order.len() + 3 > bytes {
            break;
        }
        if id > 0 {
            body.push(',');
        }
        body.push_str(&order);
        id += 1;
    }
    body.push_str("]}");
    body.into_bytes()
}

/// The contract rules alone (every other rule off), with the lookup the engine makes for
/// them: without a body, and with an 8 KiB JSON body validated against its schema — its
/// `format: date-time` annotated, then asserted (`contract.formats`).
fn contract_rules(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("statuscope-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("openapi.yaml");
    std::fs::write(&path, CONTRACT).unwrap();
    for formats in [Formats::Annotate, Formats::Assert] {
        let contract = Arc::new(Contract::load_with(&path, formats).unwrap());
        contract_group(c, contract, formats);
    }
}

/// The contract rules judging against `contract`, compiled with `formats`.
fn contract_group(c: &mut Criterion, contract: Arc<Contract>, formats: Formats) {
    let settings: Vec<RuleSetting> = statuscope::rules::CATALOGUE
        .iter()
        .enumerate()
        .filter(|(_, rule)| rule.kind != statuscope::rules::RuleKind::Contract)
        .map(|(rule, _)| RuleSetting {
            rule,
            enabled: false,
            severity: None,
        })
        .collect();
    let engine = RuleSet::new(&settings, &[], &[], Some(contract));
    let method = Method::GET;
    let json_headers = [("content-type", "application/json"), ("etag", "\"v1\"")];
    let scenarios = [
        Scenario {
            name: "no body (200, JSON headers)",
            status: 200,
            headers: headers(&json_headers),
            body: None,
        },
        Scenario {
            name: "8 KiB JSON body validated",
            status: 200,
            headers: headers(&json_headers),
            body: Some(orders(SAMPLE_BYTES)),
        },
    ];
    let name = match formats {
        Formats::Annotate => "contract rules per exchange",
        Formats::Assert => "contract rules per exchange, formats asserted",
    };
    let mut group = c.benchmark_group(name);
    for scenario in &scenarios {
        assert_eq!(
            judge(&engine, scenario, &method),
            0,
            "{}: a valid exchange",
            scenario.name
        );
        group.bench_function(scenario.name, |b| {
            b.iter(|| judge(&engine, black_box(scenario), &method))
        });
    }
    group.finish();
}

/// Learning the observed contract: per exchange whose body is not learnt (the shape is known),
/// and per learnt 1 KiB and 8 KiB JSON body; and amortised at the defaults (the first 16
/// bodies of a response learnt, then one in `observed.body_every`).
fn observed_learning(c: &mut Criterion) {
    let limits = |body_every| ObservedLimits {
        max_depth: 8,
        max_properties: 64,
        max_responses: 16,
        body_every,
    };
    let method = Method::GET;
    let json = headers(&[("content-type", "application/json"), ("etag", "\"v1\"")]);
    let sample = |body: Vec<u8>| {
        Sampler::start(SAMPLE_BYTES, Some("application/json"), None).map(|mut s| {
            s.feed(&body);
            s.finish()
        })
    };
    let small = sample(json_list(1024));
    let large = sample(json_success(SAMPLE_BYTES));
    let mut group = c.benchmark_group("observed contract per exchange");
    let mut learnt = Learnt::default();
    let never = limits(u64::MAX);
    for _ in 0..32 {
        learnt.learn(&exchange(&method, 200, &json, small.as_ref()), 1, &never);
    }
    group.bench_function("shape known, body not learnt", |b| {
        b.iter(|| {
            learnt.learn(
                black_box(&exchange(&method, 200, &json, small.as_ref())),
                1,
                &never,
            )
        })
    });
    for (name, body) in [
        ("1 KiB JSON body learnt", &small),
        ("8 KiB JSON body learnt", &large),
    ] {
        let mut learnt = Learnt::default();
        let every = limits(1);
        group.bench_function(name, |b| {
            b.iter(|| {
                learnt.learn(
                    black_box(&exchange(&method, 200, &json, body.as_ref())),
                    1,
                    &every,
                )
            })
        });
    }
    let mut learnt = Learnt::default();
    let defaults = limits(256);
    group.bench_function("1 KiB JSON bodies at the defaults, amortised", |b| {
        b.iter(|| {
            learnt.learn(
                black_box(&exchange(&method, 200, &json, small.as_ref())),
                1,
                &defaults,
            )
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    catalogue,
    each_rule,
    contract_rules,
    observed_learning
);
criterion_main!(benches);
