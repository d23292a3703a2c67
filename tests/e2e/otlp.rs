//! The OTLP push end to end: a real statuscope pushing to a real OTLP/HTTP receiver
//! (tests/tools/otlp_receiver.py, decoding with the OpenTelemetry project's own protobuf
//! classes from PyPI). Under traffic with known outcomes, what arrives equals `/metrics` to the
//! unit, the OpenTelemetry views use the names the semantic conventions' own package lists, and
//! a collector that is down, refusing or asking to wait costs no count and no request.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::grpc::{call, grpc_server, launch_h2c};
use crate::support::upstream::Upstream;
use crate::support::{
    client, config_file, exposition, get, raw_exchange, send, wait_until, Engine, Launch, Peer,
    Statuscope,
};

/// The receiver, on `port` (0: any).
fn receiver(port: u16) -> Peer {
    Peer::start("otlp_receiver.py", &[&port.to_string()])
}

fn receiver_get(receiver: &Peer, path: &str) -> Value {
    let (status, body) =
        crate::support::raw_get(receiver.addr, path).expect("the receiver answers");
    assert_eq!(status, 200, "{path}");
    serde_json::from_str(&body).unwrap()
}

fn exports(receiver: &Peer) -> Vec<Value> {
    receiver_get(receiver, "/exports")
        .as_array()
        .unwrap()
        .clone()
}

/// Tells the receiver how to answer the next exports.
fn script_answers(receiver: &Peer, answers: &str) {
    let request = format!(
        "POST /answers HTTP/1.1\r\nHost: r\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answers}",
        answers.len()
    );
    assert!(raw_exchange(receiver.addr, request.as_bytes()).starts_with("HTTP/1.1 204"));
}

/// statuscope pushing to `receiver` every `interval`, with more `config` and environment.
fn launch(
    upstream: &Upstream,
    receiver_addr: std::net::SocketAddr,
    interval: &str,
    config: &str,
    env: Vec<(&'static str, String)>,
) -> Statuscope {
    let file = config_file(
        "otlp.yaml",
        &format!("otlp:\n  endpoint: http://{receiver_addr}\n  interval: {interval}\n{config}"),
    );
    launch_with(upstream, &file, env)
}

/// statuscope in front of `upstream` with the configuration `file`.
fn launch_with(
    upstream: &Upstream,
    file: &std::path::Path,
    env: Vec<(&'static str, String)>,
) -> Statuscope {
    Statuscope::launch(Launch {
        engine: Engine::Fast,
        upstream: Some(upstream.addr),
        config: Some(file),
        env,
        ..Launch::default()
    })
}

/// Every attribute name the semantic conventions define, from the receiver's `/conventions`.
fn attribute_names(conventions: &Value) -> Vec<&str> {
    conventions["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

/// One data point as it arrived.
#[derive(Debug, Clone)]
struct Point {
    metric: String,
    unit: String,
    kind: &'static str,
    temporality: String,
    attributes: BTreeMap<String, String>,
    value: f64,
    count: u64,
    sum: f64,
    buckets: Vec<u64>,
    bounds: Vec<f64>,
}

fn number(value: &Value) -> f64 {
    match value {
        Value::String(text) => text.parse().unwrap(),
        Value::Number(n) => n.as_f64().unwrap(),
        Value::Null => 0.0,
        other => panic!("not a number: {other}"),
    }
}

fn attributes(point: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for pair in point["attributes"].as_array().into_iter().flatten() {
        let value = &pair["value"];
        let text = match (value.get("string_value"), value.get("int_value")) {
            (Some(text), _) => text.as_str().unwrap().to_string(),
            (None, Some(int)) => format!("int:{}", number(int)),
            _ => String::new(),
        };
        out.insert(pair["key"].as_str().unwrap().to_string(), text);
    }
    out
}

/// Every point of one export.
fn points(export: &Value) -> Vec<Point> {
    let mut out = Vec::new();
    for resource in export["request"]["resource_metrics"].as_array().unwrap() {
        for scope in resource["scope_metrics"].as_array().unwrap() {
            for metric in scope["metrics"].as_array().unwrap() {
                let (kind, data) = ["sum", "gauge", "histogram"]
                    .into_iter()
                    .find_map(|kind| Some((kind, metric.get(kind)?)))
                    .expect("a sum, gauge or histogram");
                for point in data["data_points"].as_array().into_iter().flatten() {
                    let numbers = |key: &str| -> Vec<f64> {
                        point[key]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(number)
                            .collect()
                    };
                    out.push(Point {
                        metric: metric["name"].as_str().unwrap().to_string(),
                        unit: metric["unit"].as_str().unwrap_or("").to_string(),
                        kind,
                        temporality: data["aggregation_temporality"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                        attributes: attributes(point),
                        value: point
                            .get("as_int")
                            .or(point.get("as_double"))
                            .map_or(0.0, number),
                        count: number(&point["count"]) as u64,
                        sum: number(&point["sum"]),
                        buckets: numbers("bucket_counts").iter().map(|n| *n as u64).collect(),
                        bounds: numbers("explicit_bounds"),
                    });
                }
            }
        }
    }
    out
}

fn total(points: &[Point], metric: &str, field: impl Fn(&Point) -> f64) -> f64 {
    points
        .iter()
        .filter(|p| p.metric == metric)
        .map(field)
        .sum()
}

/// The statuscope families compared: all but the push's own count, which an export changes.
fn compared(name: &str) -> bool {
    name.starts_with("statuscope_") && !name.starts_with("statuscope_otlp_exports")
}

/// Asserts every statuscope series of `/metrics` arrived in `points`, every counter and
/// histogram with the same values, and nothing else did.
fn assert_equal_to_metrics(points: &[Point], samples: &[exposition::Sample]) {
    let mut expected = 0;
    for sample in samples.iter().filter(|s| compared(&s.name)) {
        let labels: BTreeMap<String, String> = sample
            .labels
            .iter()
            .filter(|(k, _)| *k != "le")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| sample.name.strip_suffix(suffix))
            .filter(|base| {
                points
                    .iter()
                    .any(|p| p.metric == *base && p.kind == "histogram")
            })
            .unwrap_or(&sample.name);
        let point = points
            .iter()
            .find(|p| p.metric == family && p.attributes == labels)
            .unwrap_or_else(|| panic!("{} {labels:?} was not pushed", sample.name));
        let pushed = if sample.name.ends_with("_count") && point.kind == "histogram" {
            point.count as f64
        } else if sample.name.ends_with("_sum") && point.kind == "histogram" {
            point.sum
        } else if let Some(le) = sample.labels.get("le") {
            let within = point
                .bounds
                .iter()
                .take_while(|b| le == "+Inf" || **b <= le.parse::<f64>().unwrap())
                .count();
            let upto = if le == "+Inf" {
                point.buckets.len()
            } else {
                within
            };
            point.buckets[..upto].iter().sum::<u64>() as f64
        } else if point.kind == "gauge" {
            // Live state (open connections) may move between the scrape and the export:
            // a gauge must arrive, its value is not the push's to keep.
            expected += 1;
            continue;
        } else {
            expected += 1;
            point.value
        };
        assert!(
            (pushed - sample.value).abs() < 1e-9,
            "{} {labels:?}: pushed {pushed}, /metrics {}",
            sample.name,
            sample.value
        );
    }
    let histograms = points
        .iter()
        .filter(|p| compared(&p.metric) && p.kind == "histogram")
        .count();
    let series = points.iter().filter(|p| compared(&p.metric)).count();
    let counted = samples
        .iter()
        .filter(|s| compared(&s.name) && s.name.ends_with("_count"))
        .count();
    assert_eq!(counted, histograms);
    assert_eq!(
        series,
        expected + histograms,
        "a pushed series /metrics does not serve"
    );
}

/// The last export once two more have arrived after this call: read after everything before it.
fn settled_export(receiver: &Peer) -> Vec<Point> {
    let seen = exports(receiver).len();
    wait_until("two more exports", || exports(receiver).len() >= seen + 2);
    points(exports(receiver).last().unwrap())
}

async fn traffic(statuscope: &Statuscope) -> u64 {
    let client = client();
    let url = format!("http://{}/reply", statuscope.listen);
    for status in ["200", "200", "200", "503", "503", "404", "429"] {
        let received = send(&client, "GET", &url, &[("x-reply-status", status)], b"").await;
        assert_eq!(received.status.to_string(), status);
    }
    // Two Host fields: statuscope refuses the request itself (400, origin proxy).
    let refused = raw_exchange(
        statuscope.listen,
        b"GET /reply HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    );
    assert!(refused.starts_with("HTTP/1.1 400"), "{refused}");
    statuscope.wait_idle();
    8
}

#[tokio::test(flavor = "multi_thread")]
async fn what_is_pushed_equals_metrics_and_is_named_by_the_semantic_conventions() {
    let receiver = receiver(0);
    let upstream = Upstream::start();
    let env = vec![
        ("OTEL_SERVICE_NAME", "shop".to_string()),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "k8s.pod.name=shop-7d9f,k8s.namespace.name=prod".to_string(),
        ),
    ];
    let statuscope = launch(&upstream, receiver.addr, "200ms", "", env);
    let sent = traffic(&statuscope).await;
    let samples = statuscope.metrics();
    let points = settled_export(&receiver);
    assert_equal_to_metrics(&points, &samples);
    assert_eq!(
        total(&points, "statuscope_responses_total", |p| p.value),
        sent as f64
    );

    let conventions = receiver_get(&receiver, "/conventions");
    let export = exports(&receiver).last().unwrap().clone();
    let resource = attributes(&export["request"]["resource_metrics"][0]["resource"]);
    assert_eq!(resource["service.name"], "shop");
    assert_eq!(resource["k8s.pod.name"], "shop-7d9f");
    assert_eq!(resource["k8s.namespace.name"], "prod");
    let schema = export["request"]["resource_metrics"][0]["scope_metrics"][0]["schema_url"].clone();
    assert!(
        conventions["schema_urls"]
            .as_array()
            .unwrap()
            .contains(&schema),
        "{schema}"
    );

    let http_name = conventions["metrics"]["http_server_request_duration"]
        .as_str()
        .unwrap();
    let http: Vec<&Point> = points.iter().filter(|p| p.metric == http_name).collect();
    assert!(http.iter().all(|p| p.kind == "histogram" && p.unit == "s"));
    assert!(http
        .iter()
        .all(|p| p.temporality == "AGGREGATION_TEMPORALITY_CUMULATIVE"));
    assert_eq!(http.iter().map(|p| p.count).sum::<u64>(), sent, "{http:?}");
    let known = attribute_names(&conventions);
    let methods = &conventions["values"]["http.request.method"];
    for point in &http {
        for key in point.attributes.keys() {
            assert!(
                known.contains(&key.as_str()),
                "{key} is not a semantic-conventions attribute"
            );
        }
        assert!(methods.as_array().unwrap().contains(&Value::from(
            point.attributes["http.request.method"].clone()
        )));
        assert_eq!(point.attributes["url.scheme"], "http");
        assert_eq!(point.attributes["network.protocol.name"], "http");
        assert_eq!(point.attributes["network.protocol.version"], "1.1");
    }
    let count_where = |pairs: &[(&str, &str)]| -> u64 {
        http.iter()
            .filter(|p| {
                pairs
                    .iter()
                    .all(|(k, v)| p.attributes.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|p| p.count)
            .sum()
    };
    assert_eq!(
        count_where(&[
            ("http.response.status_code", "int:503"),
            ("error.type", "503")
        ]),
        2
    );
    assert_eq!(
        count_where(&[
            ("http.response.status_code", "int:200"),
            ("http.route", "/reply")
        ]),
        3
    );
    assert_eq!(
        count_where(&[
            ("http.response.status_code", "int:400"),
            ("error.type", "statuscope.proxy")
        ]),
        1
    );
    assert_eq!(count_where(&[("http.response.status_code", "int:404")]), 1);
    assert!(http
        .iter()
        .filter(|p| p
            .attributes
            .get("http.response.status_code")
            .is_some_and(|c| c == "int:200" || c == "int:404"))
        .all(|p| !p.attributes.contains_key("error.type")));

    let findings: Vec<&Point> = points
        .iter()
        .filter(|p| p.metric == "statuscope.findings")
        .collect();
    let retry_after = findings
        .iter()
        .find(|p| p.attributes["statuscope.rule"] == "missing-retry-after")
        .expect("the 429's finding");
    assert_eq!(retry_after.value, 1.0);
    assert_eq!(retry_after.attributes["statuscope.severity"], "warning");
    assert_eq!(
        retry_after.attributes["http.response.status_code"],
        "int:429"
    );
    assert_eq!(
        total(&points, "statuscope.findings", |p| p.value),
        statuscope.total("statuscope_findings_total", &[])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_calls_are_pushed_as_rpc_server_call_duration_with_the_string_status() {
    let receiver = receiver(0);
    let server = grpc_server();
    let config = format!(
        "otlp:\n  endpoint: http://{}\n  interval: 200ms\n",
        receiver.addr
    );
    let statuscope = launch_h2c(Engine::Fast, server.addr, "otlp-grpc.yaml", &config);
    call(statuscope.listen, "unary", "1,1,404,500");
    statuscope.wait_idle();
    let points = settled_export(&receiver);
    let conventions = receiver_get(&receiver, "/conventions");
    let name = conventions["metrics"]["rpc_server_call_duration"]
        .as_str()
        .unwrap();
    let rpc: Vec<&Point> = points.iter().filter(|p| p.metric == name).collect();
    assert!(rpc.iter().all(|p| p.kind == "histogram" && p.unit == "s"));
    let known = attribute_names(&conventions);
    let count = |code: &str| {
        rpc.iter()
            .filter(|p| p.attributes["rpc.response.status_code"] == code)
            .map(|p| p.count)
            .sum::<u64>()
    };
    assert_eq!(
        (count("OK"), count("NOT_FOUND"), count("INTERNAL")),
        (2, 1, 1),
        "{rpc:?}"
    );
    for point in &rpc {
        assert_eq!(
            point.attributes["rpc.method"],
            "statuscope.test.Shop/GetItem"
        );
        assert!(conventions["values"]["rpc.system.name"]
            .as_array()
            .unwrap()
            .contains(&Value::from(point.attributes["rpc.system.name"].clone())));
        assert!(point
            .attributes
            .keys()
            .all(|key| known.contains(&key.as_str())));
        // The replaced names are not sent.
        assert!(
            !point.attributes.contains_key("rpc.grpc.status_code")
                && !point.attributes.contains_key("rpc.system")
        );
        let server_error = point.attributes["rpc.response.status_code"] == "INTERNAL";
        assert_eq!(
            point.attributes.contains_key("error.type"),
            server_error,
            "{point:?}"
        );
    }
    assert!(!points.iter().any(|p| p.metric == "rpc.server.duration"));
    // HTTP/2 calls are HTTP requests too, spoken in version 2.
    let http = points
        .iter()
        .filter(|p| p.metric == "http.server.request.duration");
    assert!(http
        .clone()
        .all(|p| p.attributes["network.protocol.version"] == "2"));
    assert_eq!(http.map(|p| p.count).sum::<u64>(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_down_for_ten_seconds_costs_no_cumulative_count_and_no_request() {
    let port = crate::support::free_port();
    let first = receiver(port);
    let upstream = Upstream::start();
    let statuscope = launch(&upstream, first.addr, "500ms", "", Vec::new());
    let client = client();
    for _ in 0..5 {
        assert_eq!(get(&client, &statuscope, "/ok").await.status, 200);
    }
    statuscope.wait_idle();
    wait_until("an export with the first requests", || {
        exports(&first)
            .last()
            .is_some_and(|e| total(&points(e), "statuscope_responses_total", |p| p.value) == 5.0)
    });
    drop(first);
    let down = Instant::now();
    // The proxy answers while the collector is away, and the push says it is retrying.
    while down.elapsed() < Duration::from_secs(10) {
        assert_eq!(get(&client, &statuscope, "/ok").await.status, 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    statuscope.wait_idle();
    assert!(statuscope.total("statuscope_otlp_exports_total", &[("outcome", "retried")]) > 0.0);
    let answered = statuscope.total("statuscope_responses_total", &[]);
    let back = receiver(port);
    wait_until("an export with every request", || {
        exports(&back).last().is_some_and(|e| {
            total(&points(e), "statuscope_responses_total", |p| p.value) == answered
        })
    });
    assert!(
        statuscope
            .stderr()
            .contains("OTLP: export failed, retrying"),
        "{}",
        statuscope.stderr()
    );
    let warnings = statuscope.stderr().matches("OTLP: ").count();
    assert!(
        warnings <= 2,
        "the warning is rate-limited: {warnings} lines"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_is_not_retried_and_429_or_503_are_after_their_retry_after() {
    let receiver = receiver(0);
    script_answers(&receiver, r#"[{"status": 400}]"#);
    let upstream = Upstream::start();
    let statuscope = launch(&upstream, receiver.addr, "300ms", "", Vec::new());
    wait_until("an export taken after the refused one", || {
        statuscope.total("statuscope_otlp_exports_total", &[("outcome", "success")]) >= 1.0
    });
    assert_eq!(
        statuscope.total("statuscope_otlp_exports_total", &[("outcome", "rejected")]),
        1.0
    );
    assert_eq!(
        statuscope.total("statuscope_otlp_exports_total", &[("outcome", "retried")]),
        0.0
    );

    let receiver = self::receiver(0);
    script_answers(
        &receiver,
        r#"[{"status": 429, "retry_after": "2"}, {"status": 503, "retry_after": "2"}]"#,
    );
    // A queue of one: each read while the collector asks to wait replaces the one queued.
    let statuscope = launch(
        &upstream,
        receiver.addr,
        "300ms",
        "  queue: 1\n",
        Vec::new(),
    );
    let started = Instant::now();
    wait_until("an export taken after two waits", || {
        !exports(&receiver).is_empty()
    });
    // Two Retry-After waits of 2 s: no sooner (a bound, which a slow machine cannot break).
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        statuscope.total("statuscope_otlp_exports_total", &[("outcome", "retried")]),
        2.0
    );
    assert!(statuscope.total("statuscope_otlp_exports_total", &[("outcome", "dropped")]) >= 1.0);
    // Every try after the two refusals is taken.
    wait_until("every try but two taken", || {
        let attempts = receiver_get(&receiver, "/attempts").as_u64().unwrap();
        attempts == exports(&receiver).len() as u64 + 2
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_sends_a_last_export_with_every_request() {
    let receiver = receiver(0);
    let upstream = Upstream::start();
    // No export is due for an hour: the only one is the last.
    let mut statuscope = launch(&upstream, receiver.addr, "1h", "", Vec::new());
    let client = client();
    for _ in 0..7 {
        assert_eq!(get(&client, &statuscope, "/ok").await.status, 200);
    }
    statuscope.wait_idle();
    assert!(exports(&receiver).is_empty());
    statuscope.signal(libc::SIGTERM);
    assert!(statuscope.wait_exit().success());
    let exports = exports(&receiver);
    assert_eq!(exports.len(), 1);
    assert_eq!(
        total(&points(&exports[0]), "statuscope_responses_total", |p| p
            .value),
        7.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn delta_exports_add_up_to_the_cumulative_tallies() {
    let receiver = receiver(0);
    let upstream = Upstream::start();
    let statuscope = launch(
        &upstream,
        receiver.addr,
        "200ms",
        "  temporality: delta\n",
        Vec::new(),
    );
    let client = client();
    for round in 0..3 {
        for _ in 0..=round {
            assert_eq!(get(&client, &statuscope, "/ok").await.status, 200);
        }
        statuscope.wait_idle();
        let seen = exports(&receiver).len();
        wait_until("an export after the round", || {
            exports(&receiver).len() > seen
        });
    }
    settled_export(&receiver);
    let all: Vec<Point> = exports(&receiver).iter().flat_map(points).collect();
    assert!(all
        .iter()
        .filter(|p| p.kind != "gauge")
        .all(|p| p.temporality == "AGGREGATION_TEMPORALITY_DELTA"));
    assert_eq!(total(&all, "statuscope_responses_total", |p| p.value), 6.0);
    assert_eq!(
        total(&all, "http.server.request.duration", |p| p.count as f64),
        6.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_and_a_token_file_are_sent_gzipped_and_never_logged() {
    let receiver = receiver(0);
    script_answers(&receiver, r#"[{"status": 401}]"#);
    let token = config_file("otlp-token", "Bearer s3cr3t-token\n");
    let config = format!(
        "  headers: [\"X-Scope-OrgID=shop\"]\n  header_files: [\"Authorization={}\"]\n  compression: gzip\n",
        token.display()
    );
    let upstream = Upstream::start();
    let statuscope = launch(&upstream, receiver.addr, "200ms", &config, Vec::new());
    wait_until("an export taken", || !exports(&receiver).is_empty());
    let export = &exports(&receiver)[0];
    assert_eq!(export["headers"]["x-scope-orgid"], "shop");
    assert_eq!(export["headers"]["authorization"], "Bearer s3cr3t-token");
    assert_eq!(export["headers"]["content-encoding"], "gzip");
    // A rotated token is used from the next export on, without a reload.
    std::fs::write(&token, "Bearer rotated\n").unwrap();
    wait_until("an export with the rotated token", || {
        exports(&receiver).last().unwrap()["headers"]["authorization"] == "Bearer rotated"
    });
    let log = statuscope.stderr();
    assert!(log.contains("401"), "the refusal is logged: {log}");
    assert!(
        !log.contains("s3cr3t") && !log.contains("rotated") && !log.contains("shop"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_changes_what_the_next_exports_carry() {
    let receiver = receiver(0);
    let upstream = Upstream::start();
    let config = |tenant: &str| {
        format!(
            "otlp:\n  endpoint: http://{}\n  interval: 200ms\n  headers: [\"X-Scope-OrgID={tenant}\"]\n  resource: [\"deployment.environment.name={tenant}\"]\n",
            receiver.addr
        )
    };
    let file = config_file("otlp-reload.yaml", &config("before"));
    let statuscope = launch_with(&upstream, &file, Vec::new());
    assert!(statuscope
        .stderr()
        .contains(&format!("otlp=http://{}/v1/metrics", receiver.addr)));
    wait_until("an export", || !exports(&receiver).is_empty());
    std::fs::write(&file, config("after")).unwrap();
    statuscope.signal(libc::SIGHUP);
    wait_until("an export with the reloaded header and resource", || {
        let last = exports(&receiver).last().cloned().unwrap();
        let resource = attributes(&last["request"]["resource_metrics"][0]["resource"]);
        last["headers"]["x-scope-orgid"] == "after"
            && resource
                .get("deployment.environment.name")
                .map(String::as_str)
                == Some("after")
    });
    assert_eq!(
        statuscope.total("statuscope_config_reloads_total", &[("result", "success")]),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_that_never_answers_costs_no_request_and_does_not_hold_up_exit() {
    let receiver = receiver(0);
    script_answers(
        &receiver,
        &format!("[{}]", vec![r#"{"hang": 60}"#; 50].join(",")),
    );
    let upstream = Upstream::start();
    let mut statuscope = launch(
        &upstream,
        receiver.addr,
        "200ms",
        "  timeout: 500ms\n",
        Vec::new(),
    );
    let client = client();
    wait_until("tries cut short by otlp.timeout", || {
        statuscope.total("statuscope_otlp_exports_total", &[("outcome", "retried")]) >= 2.0
    });
    for _ in 0..20 {
        assert_eq!(get(&client, &statuscope, "/ok").await.status, 200);
    }
    statuscope.wait_idle();
    assert!(
        statuscope.stderr().contains("no answer within 500ms"),
        "{}",
        statuscope.stderr()
    );
    // The last export at exit meets the same silence and gives up at otlp.timeout.
    statuscope.signal(libc::SIGTERM);
    assert!(statuscope.wait_exit().success());
    assert!(exports(&receiver).is_empty());
}
