//! Generates the files users import or apply, from their single sources:
//!
//! - `dashboards/*.json`: the Grafana dashboards (the Misuse dashboard takes each rule's
//!   description from the rule catalogue in `src/rules/`);
//! - `deploy/kubernetes/base/grafana-dashboards.yaml`: those dashboards in a ConfigMap for
//!   Grafana's dashboard sidecar;
//! - `deploy/kubernetes/base/prometheusrule.yaml` and
//!   `deploy/kubernetes/injector-monitoring/prometheusrule.yaml`:
//!   `deploy/prometheus/statuscope-rules.yaml` and `statuscope-injector-rules.yaml` as
//!   Prometheus Operator `PrometheusRule`s.
//!
//! `make generate` (`cargo run --example generate`) writes them; the test below fails when a
//! committed file differs from what this program makes.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use statuscope::classify::grpc::GrpcCode;
use statuscope::record::LATENCY_SLO_SECONDS;
use statuscope::rules::CATALOGUE;

/// Every dashboard's selector: the template variables that narrow it to one deployment.
const SELECTOR: &str = r#"namespace=~"$namespace", job=~"$job""#;
/// Every panel's selector: the chosen deployments and routes, never the kubelet's probes
/// (`route="__probe__"`), which would dilute every ratio and latency.
const ROUTE_SELECTOR: &str =
    r#"namespace=~"$namespace", job=~"$job", route=~"$route", route!="__probe__""#;

fn datasource() -> Value {
    json!({ "type": "prometheus", "uid": "${datasource}" })
}

/// A query; `legend` is Grafana's legend format.
struct Query {
    expr: String,
    legend: String,
    /// Instant table query rather than a time series.
    table: bool,
}

fn series(expr: impl Into<String>, legend: impl Into<String>) -> Query {
    Query {
        expr: expr.into(),
        legend: legend.into(),
        table: false,
    }
}

fn instant(expr: impl Into<String>, legend: impl Into<String>) -> Query {
    Query {
        expr: expr.into(),
        legend: legend.into(),
        table: true,
    }
}

/// Lays panels out left to right, top to bottom, on Grafana's 24-column grid.
struct Board {
    panels: Vec<Value>,
    x: u32,
    y: u32,
    row_height: u32,
}

impl Board {
    fn new() -> Self {
        Board {
            panels: Vec::new(),
            x: 0,
            y: 0,
            row_height: 0,
        }
    }

    fn place(&mut self, mut panel: Value, width: u32, height: u32) {
        if self.x + width > 24 {
            self.x = 0;
            self.y += self.row_height;
            self.row_height = 0;
        }
        panel["id"] = json!(self.panels.len() + 1);
        panel["gridPos"] = json!({ "x": self.x, "y": self.y, "w": width, "h": height });
        self.x += width;
        self.row_height = self.row_height.max(height);
        self.panels.push(panel);
    }

    fn row(&mut self, title: &str) {
        self.x = 24;
        self.place(
            json!({ "type": "row", "title": title, "collapsed": false, "panels": [] }),
            24,
            1,
        );
        self.x = 24;
    }

    fn panel(
        &mut self,
        kind: &str,
        title: &str,
        description: &str,
        unit: &str,
        queries: Vec<Query>,
        (width, height): (u32, u32),
    ) {
        let targets: Vec<Value> = queries
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let mut target = json!({
                    "refId": ((b'A' + i as u8) as char).to_string(),
                    "datasource": datasource(),
                    "expr": q.expr,
                    "legendFormat": q.legend,
                });
                if q.table {
                    target["format"] = json!("table");
                    target["instant"] = json!(true);
                } else if kind == "heatmap" {
                    target["format"] = json!("heatmap");
                }
                target
            })
            .collect();
        let mut panel = json!({
            "type": kind,
            "title": title,
            "description": description,
            "datasource": datasource(),
            "targets": targets,
            "fieldConfig": { "defaults": { "unit": unit }, "overrides": [] },
        });
        match kind {
            "timeseries" => {
                panel["fieldConfig"]["defaults"]["custom"] =
                    json!({ "fillOpacity": 10, "lineWidth": 1 });
                panel["options"] = json!({
                    "legend": { "displayMode": "list", "placement": "bottom", "showLegend": true },
                    "tooltip": { "mode": "multi", "sort": "desc" },
                });
            }
            "stat" => {
                panel["options"] =
                    json!({ "reduceOptions": { "calcs": ["lastNotNull"] }, "colorMode": "value" })
            }
            "table" => {
                panel["transformations"] = json!([
                    { "id": "merge", "options": {} },
                    { "id": "organize", "options": { "excludeByName": { "Time": true } } },
                ]);
            }
            "heatmap" => {
                panel["options"] = json!({
                    "calculate": false,
                    "yAxis": { "unit": "s" },
                    "cellGap": 1,
                    "color": { "mode": "scheme", "scheme": "Oranges" },
                });
            }
            _ => {}
        }
        self.place(panel, width, height);
    }

    fn stacked(
        &mut self,
        title: &str,
        description: &str,
        unit: &str,
        queries: Vec<Query>,
        size: (u32, u32),
    ) {
        self.panel("timeseries", title, description, unit, queries, size);
        let last = self.panels.last_mut().expect("just placed");
        last["fieldConfig"]["defaults"]["custom"]["stacking"] = json!({ "mode": "normal" });
        last["fieldConfig"]["defaults"]["custom"]["fillOpacity"] = json!(40);
    }

    fn text(&mut self, title: &str, markdown: &str, size: (u32, u32)) {
        let panel = json!({ "type": "text", "title": title, "options": { "mode": "markdown", "content": markdown } });
        self.place(panel, size.0, size.1);
    }
}

/// A `label_values` query variable over one of statuscope's metrics.
fn variable(name: &str, label: &str, query: &str) -> Value {
    json!({
        "name": name,
        "label": label,
        "type": "query",
        "datasource": datasource(),
        "query": { "query": query, "refId": "StandardVariableQuery" },
        "definition": query,
        "refresh": 2,
        "includeAll": true,
        "multi": true,
        "allValue": ".*",
        "current": { "selected": true, "text": ["All"], "value": ["$__all"] },
        "sort": 1,
    })
}

fn dashboard(
    uid: &str,
    title: &str,
    description: &str,
    extra_variables: Vec<Value>,
    board: Board,
) -> Value {
    let mut variables = vec![
        json!({
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
        }),
        variable(
            "namespace",
            "Namespace",
            "label_values(statuscope_build_info, namespace)",
        ),
        variable(
            "job",
            "Job",
            r#"label_values(statuscope_build_info{namespace=~"$namespace"}, job)"#,
        ),
    ];
    variables.extend(extra_variables);
    json!({
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["statuscope"],
        "editable": true,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "time": { "from": "now-1h", "to": "now" },
        "refresh": "30s",
        "timezone": "browser",
        "annotations": { "list": [] },
        "links": [{ "type": "dashboards", "tags": ["statuscope"], "asDropdown": true, "title": "Statuscope" }],
        "templating": { "list": variables },
        "panels": board.panels,
    })
}

fn route_variable() -> Value {
    variable(
        "route",
        "Route",
        r#"label_values(statuscope_responses_total{namespace=~"$namespace", job=~"$job", route!="__probe__"}, route)"#,
    )
}

/// The Routes table's column of the latency SLO, named by its threshold.
fn latency_slo_column() -> String {
    format!("> {} ms", (LATENCY_SLO_SECONDS * 1000.0).round())
}

fn overview() -> Value {
    let s = ROUTE_SELECTOR;
    let rate =
        |filter: &str| format!("rate(statuscope_responses_total{{{s}{filter}}}[$__rate_interval])");
    let mut b = Board::new();
    b.stacked(
        "Requests per second by class",
        "Final responses per second, by status class. 1xx are final only for protocol switches (101).",
        "reqps",
        vec![series(format!("sum by (class) ({})", rate("")), "{{class}}")],
        (12, 8),
    );
    b.panel(
        "stat",
        "Success rate",
        "Share of responses that are not 5xx. Client hang-ups (499) count neither way; their share is beside.",
        "percentunit",
        vec![series(
            format!("1 - ((sum({}) or vector(0)) / sum({}))", rate(r#", class="5xx""#), rate(r#", origin!="client""#)),
            "success",
        )],
        (6, 8),
    );
    b.panel(
        "stat",
        "Client hang-ups (499)",
        "Share of requests whose client went away before the response was complete (origin=\"client\").",
        "percentunit",
        vec![series(format!("(sum({}) or vector(0)) / sum({})", rate(r#", origin="client""#), rate("")), "499")],
        (6, 8),
    );
    b.panel(
        "timeseries",
        "Top status codes",
        "The ten most frequent status codes, with who produced them.",
        "reqps",
        vec![series(
            format!("topk(10, sum by (code, origin) ({}))", rate("")),
            "{{code}} ({{origin}})",
        )],
        (12, 8),
    );
    b.panel(
        "timeseries",
        "Errors by origin",
        "5xx and 499 per second by origin: the service itself (upstream), statuscope answering for a failed \
         upstream or overload (proxy), or clients hanging up (client).",
        "reqps",
        vec![series(format!("sum by (origin) ({})", rate(r#", code=~"5..|499""#)), "{{origin}}")],
        (12, 8),
    );
    let r = ROUTE_SELECTOR;
    b.panel(
        "table",
        "Routes",
        "Per route over the last 5 minutes, from the recording rules: requests per second, 5xx ratio, the share slower than the latency SLO's threshold, latency quantiles.",
        "short",
        vec![
            instant(format!("sum by (route) (statuscope:route_requests:rate5m{{{r}}})"), "rps"),
            instant(format!("max by (route) (statuscope:route_error_ratio:rate5m{{{r}}})"), "5xx ratio"),
            instant(
                format!("max by (route) (statuscope:route_latency_slow_ratio:rate5m{{{r}}})"),
                latency_slo_column(),
            ),
            instant(format!("max by (route) (statuscope:route_latency_seconds:p50_5m{{{r}}})"), "p50"),
            instant(format!("max by (route) (statuscope:route_latency_seconds:p95_5m{{{r}}})"), "p95"),
            instant(format!("max by (route) (statuscope:route_latency_seconds:p99_5m{{{r}}})"), "p99"),
        ],
        (24, 10),
    );
    b.panel(
        "heatmap",
        "Latency",
        "Distribution of response durations (request header received to response complete).",
        "s",
        vec![series(
            format!("sum by (le) (rate(statuscope_response_duration_seconds_bucket{{{s}}}[$__rate_interval]))"),
            "{{le}}",
        )],
        (24, 9),
    );
    b.row("gRPC");
    let grpc = |filter: &str| {
        format!("rate(statuscope_grpc_responses_total{{{s}{filter}}}[$__rate_interval])")
    };
    let server_errors: Vec<&str> = GrpcCode::SERVER_ERRORS.iter().map(|c| c.as_str()).collect();
    let server_errors = format!(r#", grpc_code=~"{}""#, server_errors.join("|"));
    let not_cancelled = r#", grpc_code!="CANCELLED""#;
    b.stacked(
        "gRPC calls per second by code",
        "Finished gRPC calls per second, per method (route) and gRPC status: the outcome a gRPC client sees, which the HTTP status (200 for almost every call) does not show.",
        "reqps",
        vec![series(format!("sum by (route, grpc_code) ({})", grpc("")), "{{route}} {{grpc_code}}")],
        (8, 8),
    );
    b.panel(
        "timeseries",
        "gRPC error ratio",
        "Per method, the share of calls ending in a server-error code — OpenTelemetry's set: UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS — of all calls but those the client cancelled; the gRPC SLO's ratio.",
        "percentunit",
        vec![series(
            format!(
                "(sum by (route) ({}) or sum by (route) ({}) * 0) / sum by (route) ({})",
                grpc(&server_errors),
                grpc(not_cancelled),
                grpc(not_cancelled)
            ),
            "{{route}}",
        )],
        (8, 8),
    );
    b.panel(
        "timeseries",
        "gRPC p95 latency per method",
        "95th percentile of gRPC call durations, from the request header to the trailers (or the call's end), per method.",
        "s",
        vec![series(
            format!("histogram_quantile(0.95, sum by (route, le) (rate(statuscope_grpc_duration_seconds_bucket{{{s}}}[$__rate_interval])))"),
            "{{route}}",
        )],
        (8, 8),
    );
    dashboard(
        "statuscope-overview",
        "Statuscope / Overview",
        "What the API really returns, per route: traffic by status class and code, success rate, errors by origin, latency, and gRPC calls by their grpc-status.",
        vec![route_variable()],
        b,
    )
}

fn misuse() -> Value {
    let s = ROUTE_SELECTOR;
    let findings =
        |filter: &str| format!("rate(statuscope_findings_total{{{s}{filter}}}[$__rate_interval])");
    let mut b = Board::new();
    b.stacked(
        "Findings per second by rule",
        "Responses breaking each misuse rule, per second. docs/rules.md explains every rule.",
        "reqps",
        vec![series(
            format!("sum by (rule) ({})", findings("")),
            "{{rule}}",
        )],
        (12, 8),
    );
    b.stacked(
        "Findings per second by severity",
        "error: breaks HTTP semantics or misleads clients and monitoring; warning: breaks a convention clients \
         rely on; info: worth knowing.",
        "reqps",
        vec![series(format!("sum by (severity) ({})", findings("")), "{{severity}}")],
        (12, 8),
    );
    b.panel(
        "timeseries",
        "HTTP hygiene per route",
        "Share of the service's responses on each route that break no misuse rule (1 - flagged / judged).",
        "percentunit",
        vec![series(
            format!(
                "1 - ((sum by (route) (rate(statuscope_flagged_responses_total{{{s}}}[$__rate_interval])) or \
                 sum by (route) (rate(statuscope_judged_responses_total{{{s}}}[$__rate_interval])) * 0) / \
                 sum by (route) (rate(statuscope_judged_responses_total{{{s}}}[$__rate_interval])))"
            ),
            "{{route}}",
        )],
        (12, 9),
    );
    b.panel(
        "table",
        "Top routes × rules",
        "Routes and rules with the most findings over the dashboard's time range.",
        "short",
        vec![instant(
            format!("topk(20, sum by (route, rule, severity) (increase(statuscope_findings_total{{{s}}}[$__range])))"),
            "findings",
        )],
        (12, 9),
    );
    b.text(
        "Examples",
        "Every finding comes with an example. On the sidecar's admin port, `GET /findings` returns the latest \
         findings of each rule, newest first, with the method, route, path (without query), status and a short \
         piece of evidence; secrets and personal data are redacted:\n\n\
         ```\nkubectl port-forward pod/<pod> 9070:9070\ncurl -s localhost:9070/findings | jq '.findings[:5]'\n```\n\n\
         `statuscope rules` lists the catalogue; docs/rules.md explains each rule and how to switch it off or \
         re-grade it, per route if needed.",
        (24, 7),
    );
    b.row("Contract");
    let contract_rules = statuscope::rules::of_kind(statuscope::rules::RuleKind::Contract)
        .map(|rule| rule.id)
        .collect::<Vec<_>>()
        .join("|");
    b.stacked(
        "Contract violations per second by route and rule",
        "Responses that break the service's own OpenAPI document (contract.openapi): undeclared codes, \
         operations, routes and content types, missing required headers, bodies that fail their schema. \
         docs/contract.md explains each.",
        "reqps",
        vec![series(
            format!(
                "sum by (route, rule) ({}) or vector(0)",
                findings(&format!(r#", rule=~"{contract_rules}""#))
            ),
            "{{route}} {{rule}}",
        )],
        (12, 8),
    );
    b.panel(
        "timeseries",
        "Contract coverage per route",
        "Share of the responses the contract declares on each route that the service has answered since the \
         document was loaded (statuscope_contract_responses_total > 0 over all declared). GET /contract on the \
         admin port lists the ones never seen.",
        "percentunit",
        vec![series(
            format!(
                "(count by (route) (statuscope_contract_responses_total{{{s}}} > 0) or \
                 count by (route) (statuscope_contract_responses_total{{{s}}}) * 0) / \
                 count by (route) (statuscope_contract_responses_total{{{s}}})"
            ),
            "{{route}}",
        )],
        (12, 8),
    );
    let operations = |state: &str| {
        format!(r#"sum(statuscope_contract_operations{{{SELECTOR}, state="{state}"}})"#)
    };
    b.panel(
        "timeseries",
        "Operations: seen but not declared, declared but not seen",
        "Operations (route and method) the service answered that contract.openapi does not have, and \
         operations it declares that no request reached since the sidecar started — learnt from live traffic \
         (the observed contract). GET /contract/drift on the admin port lists them, with the codes and media \
         types that drifted too; docs/contract.md.",
        "short",
        vec![
            series(operations("undeclared"), "seen, not declared"),
            series(operations("unseen"), "declared, not seen"),
        ],
        (24, 8),
    );
    b.row("Per rule");
    for rule in CATALOGUE {
        let description = format!(
            "{} — fires when {}. {}",
            rule.title, rule.fires_when, rule.rationale
        );
        b.panel(
            "timeseries",
            rule.id,
            &description,
            "reqps",
            vec![series(
                format!(
                    r#"sum by (route) ({}) or vector(0)"#,
                    findings(&format!(r#", rule="{}""#, rule.id))
                ),
                "{{route}}",
            )],
            (8, 6),
        );
    }
    dashboard(
        "statuscope-misuse",
        "Statuscope / Misuse",
        "Where the API breaks HTTP status-code semantics: findings of the misuse rules by rule, severity and route.",
        vec![route_variable()],
        b,
    )
}

fn sidecar() -> Value {
    let s = format!(r#"{SELECTOR}, pod=~"$pod""#);
    let rate = |metric: &str| format!("rate({metric}{{{s}}}[$__rate_interval])");
    let mut b = Board::new();
    b.panel(
        "timeseries",
        "Requests in flight",
        "Requests received and not yet answered in full, per pod. Past max_in_flight, new requests get a 503.",
        "short",
        vec![series(format!("sum by (pod, instance) (statuscope_requests_in_flight{{{s}}})"), "{{pod}} {{instance}}")],
        (12, 8),
    );
    b.panel(
        "timeseries",
        "Upstream errors by kind",
        "Failures talking to the service: refused, timed out connecting, reading, writing or over the whole \
         response, reset, body cut short (truncated), other.",
        "reqps",
        vec![series(format!("sum by (kind) ({})", rate("statuscope_upstream_errors_total")), "{{kind}}")],
        (12, 8),
    );
    b.panel(
        "timeseries",
        "Proxy-generated responses",
        "Responses statuscope made itself (origin=\"proxy\"), by code: 502/504 for a failing upstream, 503 for \
         overload, 400/408/414/431 for malformed, slow or oversized requests.",
        "reqps",
        vec![series(
            format!(
                r#"sum by (code) (rate(statuscope_responses_total{{{s}, origin="proxy"}}[$__rate_interval])) or vector(0)"#
            ),
            "{{code}}",
        )],
        (12, 8),
    );
    b.panel(
        "timeseries",
        "Route overflow and rule panics",
        "Requests tallied as route=\"__other__\" because the cap on distinct routes was reached (raise routes.max \
         or add templates), and rule evaluations that panicked (a bug: please report it).",
        "reqps",
        vec![
            series(format!("sum({})", rate("statuscope_route_overflow_total")), "route overflow"),
            series(format!("sum by (rule) ({}) > 0 or vector(0)", rate("statuscope_rule_panics_total")), "panics {{rule}}"),
        ],
        (12, 8),
    );
    b.panel(
        "timeseries",
        "Client connections",
        "Open client connections per pod, and connections closed at accept because downstream.max_connections \
         were open (a flood, or a limit set too low).",
        "short",
        vec![
            series(
                format!("sum by (pod, instance) (statuscope_downstream_connections{{{s}}})"),
                "open {{pod}} {{instance}}",
            ),
            series(
                format!("sum({}) > 0 or vector(0)", rate("statuscope_downstream_connections_refused_total")),
                "refused/s",
            ),
        ],
        (12, 8),
    );
    b.panel(
        "timeseries",
        "Configuration reloads",
        "SIGHUP reloads per pod by result; a failure means the pod still runs its previous configuration \
         (its log names the key).",
        "short",
        vec![series(
            format!("sum by (pod, result) (increase(statuscope_config_reloads_total{{{s}}}[$__range]))"),
            "{{pod}} {{result}}",
        )],
        (12, 8),
    );
    b.panel(
        "timeseries",
        "OTLP exports",
        "Exports pushed to the OpenTelemetry Collector per pod by outcome (only pods with otlp.endpoint set): \
         success is one per otlp.interval; retried, rejected or dropped mean the collector is away or refusing \
         (docs/otlp.md).",
        "ops",
        vec![series(
            format!("sum by (pod, outcome) ({})", rate("statuscope_otlp_exports_total")),
            "{{pod}} {{outcome}}",
        )],
        (12, 8),
    );
    b.panel(
        "timeseries",
        "Body sampling",
        "Cost of the rules' body samples: bytes copied per second and bodies sampled per second.",
        "Bps",
        vec![
            series(
                format!("sum({})", rate("statuscope_body_sampled_bytes_total")),
                "bytes/s",
            ),
            series(
                format!("sum({})", rate("statuscope_body_samples_total")),
                "samples/s",
            ),
        ],
        (12, 8),
    );
    b.panel(
        "timeseries",
        "Resident memory",
        "Resident set size of each sidecar.",
        "bytes",
        vec![series(
            format!("process_resident_memory_bytes{{{s}}}"),
            "{{pod}} {{instance}}",
        )],
        (12, 8),
    );
    b.panel(
        "timeseries",
        "CPU",
        "CPU seconds per second used by each sidecar.",
        "percentunit",
        vec![series(
            rate("process_cpu_seconds_total"),
            "{{pod}} {{instance}}",
        )],
        (12, 8),
    );
    b.panel(
        "timeseries",
        "Open file descriptors",
        "Open file descriptors of each sidecar (each client and upstream connection holds one).",
        "short",
        vec![series(
            format!("process_open_fds{{{s}}}"),
            "{{pod}} {{instance}}",
        )],
        (12, 8),
    );
    b.panel(
        "stat",
        "Scrape health",
        "Sidecars Prometheus scrapes successfully (up == 1) out of those it tries.",
        "short",
        vec![
            series(format!("sum(up{{{s}}})"), "up"),
            series(format!("count(up{{{s}}})"), "targets"),
        ],
        (12, 8),
    );
    dashboard(
        "statuscope-sidecar",
        "Statuscope / Sidecar",
        "The sidecar itself: in-flight requests, upstream errors, proxy-made answers, route overflow, rule panics, \
         client connections, configuration reloads, sampling cost, memory, CPU and scrape health.",
        vec![variable(
            "pod",
            "Pod",
            r#"label_values(statuscope_build_info{namespace=~"$namespace", job=~"$job"}, pod)"#,
        )],
        b,
    )
}

/// Every generated file: its path from the repository root and its content.
fn generated(root: &Path) -> Vec<(PathBuf, String)> {
    let dashboards = [
        ("statuscope-overview.json", overview()),
        ("statuscope-misuse.json", misuse()),
        ("statuscope-sidecar.json", sidecar()),
    ];
    let mut files = Vec::new();
    let mut config_map = String::from(
        "---\n# Generated by `make generate` from deploy/generate.rs: the dashboards in dashboards/, for\n\
         # Grafana's dashboard sidecar (it loads ConfigMaps labelled grafana_dashboard: \"1\").\n\
         # The JSON is kept verbatim, long lines included.\n\
         # yamllint disable rule:line-length\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: statuscope-dashboards\n  labels:\n    \
         grafana_dashboard: \"1\"\n    app.kubernetes.io/name: statuscope\ndata:\n",
    );
    for (name, dashboard) in dashboards {
        let text = serde_json::to_string_pretty(&dashboard).expect("serialisable") + "\n";
        config_map.push_str(&format!("  {name}: |\n"));
        for line in text.lines() {
            config_map.push_str(&format!("    {line}\n"));
        }
        files.push((PathBuf::from("dashboards").join(name), text));
    }
    files.push((
        PathBuf::from("deploy/kubernetes/base/grafana-dashboards.yaml"),
        config_map,
    ));

    for (source, name, target) in [
        (
            "statuscope-rules.yaml",
            "statuscope",
            "deploy/kubernetes/base/prometheusrule.yaml",
        ),
        (
            "statuscope-injector-rules.yaml",
            "statuscope-injector",
            "deploy/kubernetes/injector-monitoring/prometheusrule.yaml",
        ),
    ] {
        files.push((PathBuf::from(target), prometheus_rule(root, source, name)));
    }
    files
}

/// `deploy/prometheus/<source>`'s groups as a Prometheus Operator `PrometheusRule` named `name`.
fn prometheus_rule(root: &Path, source: &str, name: &str) -> String {
    let rules =
        std::fs::read_to_string(root.join("deploy/prometheus").join(source)).expect("rules file");
    let groups = &rules[rules.find("\ngroups:").expect("a groups key") + 1..];
    let mut rule = format!(
        "---\n# Generated by `make generate` from deploy/prometheus/{source}: edit that file.\n\
         apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: {name}\n  labels:\n    \
         app.kubernetes.io/name: {name}\nspec:\n",
    );
    for line in groups.lines() {
        if line.is_empty() {
            rule.push('\n');
        } else {
            rule.push_str(&format!("  {line}\n"));
        }
    }
    rule
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn main() {
    let root = root();
    for (path, content) in generated(&root) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create directory");
        std::fs::write(&path, content).expect("write");
        println!("wrote {}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_are_fresh() {
        let root = root();
        for (path, content) in generated(&root) {
            let committed = std::fs::read_to_string(root.join(&path)).unwrap_or_default();
            assert!(
                committed == content,
                "{} is stale: run `make generate`",
                path.display()
            );
        }
    }
}
