//! Recording: the Prometheus metrics statuscope exports, in a registry of its own, and the
//! recent findings behind `/findings`.
//!
//! The metric and label names here are a contract with the dashboards and alerts; the README's
//! metrics reference lists them.

pub mod findings;
pub mod handles;
pub mod redact;
pub mod report;
pub mod verdict;

use std::sync::Arc;
use std::time::Duration;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::classify::{status_class, Origin, UpstreamErrorKind};
use crate::rules::engine::Finding;
use crate::rules::CATALOGUE;

/// Histogram buckets from 1 ms to 30 s: fine where APIs answer, coarse where they time out.
pub const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// All of statuscope's metrics and the registry that exports them.
pub struct Metrics {
    registry: Registry,
    responses: IntCounterVec,
    duration: HistogramVec,
    in_flight: IntGauge,
    upstream_errors: IntCounterVec,
    route_overflow: IntCounter,
    findings: IntCounterVec,
    judged: IntCounterVec,
    flagged: IntCounterVec,
    sampled_bytes: IntCounter,
    samples: IntCounter,
    rule_panics: IntCounterVec,
    connections: IntGauge,
    connections_refused: IntCounter,
    reloads: IntCounterVec,
    handles: handles::HandleCache,
}

/// One finished exchange as it is counted: the labels and the duration, nothing the rules read.
#[derive(Debug, Clone, Copy)]
pub struct Tally<'a> {
    /// The route template.
    pub route: &'a str,
    /// The method label.
    pub method: &'static str,
    /// The status the client saw (499 when it went away first).
    pub code: u16,
    /// Who produced that status.
    pub origin: Origin,
    /// From the request header's arrival to the end of the response.
    pub duration: Duration,
}

impl Metrics {
    /// Creates the metrics and registers them, with the process metrics, in a fresh registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        let responses = IntCounterVec::new(
            Opts::new(
                "statuscope_responses_total",
                "Final responses by route, method, status code, status class and origin.",
            ),
            &["route", "method", "code", "class", "origin"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "statuscope_response_duration_seconds",
                "Time from the request header's arrival to the end of the response.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["route", "method", "class"],
        )
        .expect("valid metric");
        let in_flight = IntGauge::new(
            "statuscope_requests_in_flight",
            "Requests received and not yet answered in full.",
        )
        .expect("valid metric");
        let upstream_errors = IntCounterVec::new(
            Opts::new(
                "statuscope_upstream_errors_total",
                "Failures talking to the upstream, by kind.",
            ),
            &["kind"],
        )
        .expect("valid metric");
        let route_overflow = IntCounter::new(
            "statuscope_route_overflow_total",
            "Requests tallied under route=\"__other__\" because the cap on distinct routes was reached.",
        )
        .expect("valid metric");
        let build_info = IntGaugeVec::new(
            Opts::new(
                "statuscope_build_info",
                "Always 1; the version label names the build.",
            ),
            &["version"],
        )
        .expect("valid metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let findings = IntCounterVec::new(
            Opts::new(
                "statuscope_findings_total",
                "Responses that broke a misuse rule, by rule, severity, route, method and status code.",
            ),
            &["rule", "severity", "route", "method", "code"],
        )
        .expect("valid metric");
        let judged = IntCounterVec::new(
            Opts::new(
                "statuscope_judged_responses_total",
                "Responses from the upstream checked against the misuse rules, by route and method.",
            ),
            &["route", "method"],
        )
        .expect("valid metric");
        let flagged = IntCounterVec::new(
            Opts::new(
                "statuscope_flagged_responses_total",
                "Judged responses that broke at least one misuse rule, by route and method.",
            ),
            &["route", "method"],
        )
        .expect("valid metric");
        let sampled_bytes = IntCounter::new(
            "statuscope_body_sampled_bytes_total",
            "Response body bytes copied into samples for the rules.",
        )
        .expect("valid metric");
        let samples = IntCounter::new(
            "statuscope_body_samples_total",
            "Response bodies sampled for the rules.",
        )
        .expect("valid metric");
        let rule_panics = IntCounterVec::new(
            Opts::new(
                "statuscope_rule_panics_total",
                "Rule evaluations that panicked (the exchange is unaffected), by rule.",
            ),
            &["rule"],
        )
        .expect("valid metric");
        let connections = IntGauge::new(
            "statuscope_downstream_connections",
            "Client connections open on the proxy port.",
        )
        .expect("valid metric");
        let connections_refused = IntCounter::new(
            "statuscope_downstream_connections_refused_total",
            "Client connections closed at accept because downstream.max_connections were open.",
        )
        .expect("valid metric");
        let reloads = IntCounterVec::new(
            Opts::new(
                "statuscope_config_reloads_total",
                "Configuration reloads on SIGHUP, by result (success, failure).",
            ),
            &["result"],
        )
        .expect("valid metric");
        for result in ["success", "failure"] {
            reloads.with_label_values(&[result]);
        }
        for kind in UpstreamErrorKind::ALL {
            upstream_errors.with_label_values(&[kind.as_str()]);
        }
        for rule in CATALOGUE {
            rule_panics.with_label_values(&[rule.id]);
        }
        for collector in [
            Box::new(responses.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(duration.clone()),
            Box::new(in_flight.clone()),
            Box::new(upstream_errors.clone()),
            Box::new(route_overflow.clone()),
            Box::new(findings.clone()),
            Box::new(judged.clone()),
            Box::new(flagged.clone()),
            Box::new(sampled_bytes.clone()),
            Box::new(samples.clone()),
            Box::new(rule_panics.clone()),
            Box::new(connections.clone()),
            Box::new(connections_refused.clone()),
            Box::new(reloads.clone()),
            Box::new(build_info),
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Metrics {
            registry,
            responses,
            duration,
            in_flight,
            upstream_errors,
            route_overflow,
            findings,
            judged,
            flagged,
            sampled_bytes,
            samples,
            rule_panics,
            connections,
            connections_refused,
            reloads,
            handles: handles::HandleCache::default(),
        }
    }

    /// The registry to expose on `/metrics`.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The gauge of requests in flight.
    pub fn in_flight(&self) -> &IntGauge {
        &self.in_flight
    }

    /// Tallies one final response.
    pub fn record(&self, tally: &Tally<'_>) {
        let key = (tally.method, tally.code, tally.origin as u8);
        let resolve = || {
            let class = status_class(tally.code);
            let mut code_buf = itoa::Buffer::new();
            let code = code_buf.format(tally.code);
            let labels = [
                tally.route,
                tally.method,
                code,
                class,
                tally.origin.as_str(),
            ];
            handles::ResponseHandles {
                responses: self.responses.with_label_values(&labels),
                duration: self.duration.with_label_values(&[
                    tally.route,
                    tally.method,
                    class,
                ]),
            }
        };
        self.handles
            .responses(tally.route, key, resolve, |handles| {
                handles.responses.inc();
                handles.duration.observe(tally.duration.as_secs_f64());
            });
    }

    /// Counts one failure talking to the upstream.
    pub fn record_upstream_error(&self, kind: UpstreamErrorKind) {
        self.upstream_errors
            .with_label_values(&[kind.as_str()])
            .inc();
    }

    /// Counts one finding.
    pub fn record_finding(&self, finding: &Finding, route: &str, method: &'static str, code: u16) {
        let key = (finding.index, finding.severity as u8, method, code);
        let resolve = || {
            let mut code_buf = itoa::Buffer::new();
            self.findings.with_label_values(&[
                finding.rule.id,
                finding.severity.as_str(),
                route,
                method,
                code_buf.format(code),
            ])
        };
        self.handles
            .findings(route, key, resolve, |counter| counter.inc());
    }

    /// Counts one response checked against the rules, and whether it broke any.
    pub fn record_judged(&self, route: &str, method: &'static str, flagged: bool) {
        let resolve = || handles::JudgedHandles {
            judged: self.judged.with_label_values(&[route, method]),
            flagged: self.flagged.with_label_values(&[route, method]),
        };
        self.handles.judged(route, method, resolve, |handles| {
            handles.judged.inc();
            if flagged {
                handles.flagged.inc();
            }
        });
    }

    /// Counts one body sample of `bytes` raw bytes.
    pub fn record_sample(&self, bytes: usize) {
        self.samples.inc();
        self.sampled_bytes.inc_by(bytes as u64);
    }

    /// Counts one panic of the rule at `index` in the catalogue.
    pub fn record_rule_panic(&self, index: usize) {
        self.rule_panics
            .with_label_values(&[CATALOGUE[index].id])
            .inc();
    }

    /// Counts one request spilled into `route="__other__"`.
    pub fn record_route_overflow(&self) {
        self.route_overflow.inc();
    }

    /// The gauge of open client connections.
    pub fn connections(&self) -> &IntGauge {
        &self.connections
    }

    /// Counts one client connection closed at accept for lack of room.
    pub fn record_connection_refused(&self) {
        self.connections_refused.inc();
    }

    /// Counts one configuration reload attempt.
    pub fn record_reload(&self, success: bool) {
        let result = if success { "success" } else { "failure" };
        self.reloads.with_label_values(&[result]).inc();
    }
}

/// Everything statuscope records: the metrics and the recent findings, shared by the proxy,
/// the admin server and the demo.
#[derive(Clone)]
pub struct Recorder {
    /// The Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The recent findings behind `/findings`.
    pub findings: Arc<findings::FindingsStore>,
    /// The CI report findings also go to, when `run --report` asked for one.
    pub report: Option<Arc<std::sync::Mutex<report::Report>>>,
}

impl Recorder {
    /// A recorder keeping `keep_per_rule` recent findings per rule and logging a rule's
    /// findings on a route at most once per `log_interval` (`findings.*`).
    pub fn new(keep_per_rule: usize, log_interval: Duration) -> Self {
        Recorder {
            metrics: Arc::new(Metrics::new()),
            findings: Arc::new(findings::FindingsStore::new(keep_per_rule, log_interval)),
            report: None,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
