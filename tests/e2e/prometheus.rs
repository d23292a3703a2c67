//! A real Prometheus scrapes a live statuscope in front of the demo service (whose traffic
//! exercises every status class and every rule), evaluates the recording and alerting rules,
//! and answers every PromQL expression of every dashboard panel and every rule.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::deploy::{dashboards, root, rule_files, rules_of};
use crate::support::{free_port, raw_get, PATIENCE};

/// A child process this test started, killed by its PID when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn loopback() -> SocketAddr {
    format!("127.0.0.1:{}", free_port()).parse().unwrap()
}

fn wait_for(what: &str, patience: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs an instant query; `Err` carries Prometheus's error.
fn query(prometheus: SocketAddr, promql: &str) -> Result<Vec<Value>, String> {
    let (status, body) = raw_get(
        prometheus,
        &format!("/api/v1/query?query={}", encode(promql)),
    )
    .ok_or("no answer")?;
    let reply: Value = serde_json::from_str(&body).map_err(|e| format!("{status}: {e}: {body}"))?;
    if reply["status"] != "success" {
        return Err(format!("{status}: {}", reply["error"]));
    }
    Ok(reply["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

fn count(prometheus: SocketAddr, promql: &str) -> usize {
    query(prometheus, promql).map(|r| r.len()).unwrap_or(0)
}

/// A panel's expression as Grafana would send it with every variable at "All".
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__range", "5m")
        .replace("$namespace", ".*")
        .replace("$job", ".*")
        .replace("$route", ".*")
        .replace("$pod", ".*")
}

#[test]
fn every_dashboard_and_rule_expression_runs_against_real_prometheus() {
    let (listen, admin, web) = (loopback(), loopback(), loopback());
    let _demo = Process(
        Command::new(env!("CARGO_BIN_EXE_statuscope"))
            .args([
                "demo",
                "--duration",
                "300s",
                "--listen",
                &listen.to_string(),
                "--admin",
                &admin.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the demo's /readyz", PATIENCE, || {
        raw_get(admin, "/readyz").is_some_and(|(s, _)| s == 200)
    });

    let dir = std::env::temp_dir().join(format!("statuscope-prometheus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let listed: String = rule_files()
        .iter()
        .map(|name| {
            format!(
                "  - {}\n",
                root()
                    .join(format!("deploy/prometheus/{name}.yaml"))
                    .display()
            )
        })
        .collect();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n{listed}scrape_configs:\n  \
         - job_name: statuscope\n    static_configs:\n      - targets: ['{admin}']\n        labels:\n          \
         namespace: demo\n"
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let _prometheus = Process(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus is installed (`make deps` installs Debian's prometheus package)"),
    );
    wait_for("Prometheus /-/ready", PATIENCE, || {
        raw_get(web, "/-/ready").is_some_and(|(s, _)| s == 200)
    });

    // Enough data: every rule has fired, every origin shows, and the recording rules produced.
    let catalogue = statuscope::rules::CATALOGUE.len();
    wait_for(
        "findings of every rule, all origins and recorded series",
        Duration::from_secs(90),
        || {
            count(web, "count by (rule) (statuscope_findings_total)") == catalogue
                && count(web, r#"count by (origin) (statuscope_responses_total)"#) == 3
                && count(web, "statuscope:route_latency_seconds:p95_5m") > 0
                && count(web, "statuscope:route_error_ratio:rate5m") > 0
                && count(web, "rate(statuscope_responses_total[1m])") > 0
                && count(web, "statuscope:grpc_route_error_ratio:rate5m") > 0
                && count(web, "rate(statuscope_grpc_duration_seconds_bucket[1m])") > 0
        },
    );

    let mut failures = Vec::new();
    for (name, dashboard) in dashboards() {
        for variable in dashboard["templating"]["list"].as_array().unwrap() {
            let Some(definition) = variable["definition"].as_str() else {
                continue;
            };
            // label_values(metric{…}, label) as a query Prometheus can check.
            let inner = definition
                .trim_start_matches("label_values(")
                .trim_end_matches(')');
            let (selector, label) = inner.rsplit_once(',').unwrap();
            let promql = substitute(&format!(
                "group by ({}) ({})",
                label.trim(),
                selector.trim()
            ));
            if let Err(e) = query(web, &promql) {
                failures.push(format!("{name}: variable {}: {e}", variable["name"]));
            }
        }
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = substitute(target["expr"].as_str().unwrap());
                match query(web, &expr) {
                    Ok(result) if result.is_empty() => {
                        failures.push(format!("{name}: {}: no series: {expr}", panel["title"]))
                    }
                    Ok(_) => {}
                    Err(e) => failures.push(format!("{name}: {}: {e}: {expr}", panel["title"])),
                }
            }
        }
    }
    let mut in_file = 0;
    for rule in rule_files().iter().flat_map(|name| rules_of(name)) {
        in_file += 1;
        if let Err(e) = query(web, rule["expr"].as_str().unwrap()) {
            failures.push(format!(
                "rule {:?}: {e}",
                rule["alert"].as_str().or(rule["record"].as_str())
            ));
        }
    }
    // Prometheus itself evaluated every rule without error.
    let (_, body) = raw_get(web, "/api/v1/rules").unwrap();
    let loaded: Value = serde_json::from_str(&body).unwrap();
    let mut evaluated = 0;
    for group in loaded["data"]["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            evaluated += 1;
            if rule["health"] != "ok" {
                failures.push(format!(
                    "rule {} is {}: {}",
                    rule["name"], rule["health"], rule["lastError"]
                ));
            }
        }
    }
    assert_eq!(evaluated, in_file, "every rule of the files is loaded");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn dashboards_use_only_metrics_statuscope_exports_or_records() {
    let upstream = crate::support::upstream::Upstream::start();
    // With a contract, so its coverage family is exported too, and the OTLP push (to the
    // upstream, whatever it answers), so its family is.
    let config = crate::support::config_file(
        "dashboards-contract.yaml",
        &format!(
            "upstream_protocol: downstream\ncontract:\n  openapi: {}\notlp:\n  endpoint: http://{}\n",
            root().join("tests/contract/shop-3.0.yaml").display(),
            upstream.addr
        ),
    );
    let statuscope = crate::support::Statuscope::launch(crate::support::Launch {
        upstream: Some(upstream.addr),
        config: Some(&config),
        ..crate::support::Launch::default()
    });
    // A family appears in /metrics once it has a series: make a finding so they all have one.
    let error_body = [
        ("x-reply-status", "200"),
        ("x-reply-header", "content-type: application/json"),
        ("x-reply-body", r#"{"error": "x"}"#),
    ];
    let url = format!("http://{}/reply", statuscope.listen);
    // And a gRPC call, over HTTP/2 both ways, for the gRPC families.
    let grpc_call = [
        ("content-type", "application/grpc"),
        ("x-reply-status", "200"),
        ("x-reply-header", "grpc-status: 0"),
    ];
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = crate::support::client();
        crate::support::send(&client, "GET", &url, &error_body, b"").await;
        crate::support::send(&h2, "POST", &url, &grpc_call, b"").await;
    });
    statuscope.wait_idle();
    let exported: std::collections::HashSet<String> = statuscope
        .metrics_text()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    let recorded =
        std::fs::read_to_string(root().join("deploy/prometheus/statuscope-rules.yaml")).unwrap();
    let metric =
        regex::Regex::new(r"\b(?:statuscope_[a-z_]+|statuscope:[a-z0-9_:]+|process_[a-z_]+)")
            .unwrap();
    for (name, dashboard) in dashboards() {
        let text = dashboard.to_string();
        for found in metric.find_iter(&text) {
            let used = found.as_str();
            let known = if used.contains(':') {
                recorded.contains(&format!("record: {used}\n"))
            } else {
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .fold(used, |n, s| n.strip_suffix(s).unwrap_or(n));
                exported.contains(base)
            };
            assert!(
                known,
                "{name} uses {used}, which statuscope neither exports nor records"
            );
        }
    }
}
