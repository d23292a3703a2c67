//! Recording: the Prometheus metrics statuscope exports, in a registry of its own, and the
//! recent findings behind `/findings`.
//!
//! The metric and label names are a contract with the dashboards and alerts; `docs/metrics.md`
//! lists every registered family, generated from the registry itself.

pub(crate) mod findings;
pub(crate) mod grpc;
pub(crate) mod handles;
pub mod observed;
pub(crate) mod redact;
pub(crate) mod report;
pub(crate) mod verdict;

use std::sync::Arc;
use std::time::Duration;

use prometheus::{HistogramVec, IntCounterVec, Registry};

use crate::classify::route::RouteMetrics;
use crate::classify::{status_class, HttpVersion, Origin, UpstreamErrorKind};
use crate::families::Families;
use crate::rules::rule_set::{Finding, RuleSetMetrics};
use crate::sample::SampleMetrics;

/// The default histogram buckets (`metrics.duration_buckets`), from 1 ms to 30 s: fine where
/// APIs answer, coarse where they time out.
pub const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The latency SLO's threshold in seconds: the shipped recording rules count a route's
/// responses within it from the bucket `le="0.5"` of `statuscope_response_duration_seconds`, so
/// it must be a bound of `metrics.duration_buckets` (`check-config` warns when it is not).
pub const LATENCY_SLO_SECONDS: f64 = 0.5;

/// The families the recording stage owns, the lower stages' families it combines, and the
/// registry (in [`Families`]) they are all exported from. The proxy and the lifecycle register
/// theirs in the same registry when they start.
pub struct Metrics {
    families: Families,
    responses: IntCounterVec,
    duration: HistogramVec,
    upstream_errors: IntCounterVec,
    findings: IntCounterVec,
    judged: IntCounterVec,
    flagged: IntCounterVec,
    handles: handles::HandleCache,
    /// The route table's family (`statuscope_route_overflow_total`).
    pub routes: RouteMetrics,
    /// The sampler's families (`statuscope_body_samples_total`, `…_sampled_bytes_total`).
    pub samples: SampleMetrics,
    /// The rule set's family (`statuscope_rule_panics_total`).
    pub rules: RuleSetMetrics,
    /// The gRPC calls' families (`statuscope_grpc_responses_total`, `…_duration_seconds`).
    grpc: grpc::GrpcMetrics,
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
    /// The HTTP version the client spoke.
    pub version: HttpVersion,
    /// From the request header's arrival to the end of the response.
    pub duration: Duration,
}

impl Metrics {
    /// Creates a registry of statuscope's own and registers the recording stage's families,
    /// the lower stages', and the process metrics in it; the duration histograms get
    /// `duration_buckets` (upper bounds in seconds, ascending).
    pub fn new(duration_buckets: &[f64]) -> Self {
        let families = Families::new();
        let responses = families.counter_vec(
            "statuscope_responses_total",
            "Final responses by route, method, status code, status class and origin; each request is counted exactly once.",
            &["route", "method", "code", "class", "origin"],
        );
        let duration = families.histogram_vec(
            "statuscope_response_duration_seconds",
            "Time from the request header's arrival to the end of the response, by route, method, status code, status class, origin and HTTP version; its count equals statuscope_responses_total's.",
            &["route", "method", "code", "class", "origin", "http_version"],
            duration_buckets,
        );
        let upstream_errors = families.counter_vec(
            "statuscope_upstream_errors_total",
            "Failures talking to the upstream, by kind.",
            &["kind"],
        );
        for kind in UpstreamErrorKind::ALL {
            upstream_errors.with_label_values(&[kind.as_str()]);
        }
        let findings = families.counter_vec(
            "statuscope_findings_total",
            "Responses that broke a misuse rule, by rule, severity, route, method and status code.",
            &["rule", "severity", "route", "method", "code"],
        );
        let judged = families.counter_vec(
            "statuscope_judged_responses_total",
            "Responses from the upstream checked against the misuse rules, by route and method.",
            &["route", "method"],
        );
        let flagged = families.counter_vec(
            "statuscope_flagged_responses_total",
            "Judged responses that broke at least one misuse rule, by route and method; 1 - flagged / judged is a route's HTTP hygiene.",
            &["route", "method"],
        );
        families
            .gauge_vec(
                "statuscope_build_info",
                "Always 1; the version label names the build.",
                &["version"],
            )
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let routes = RouteMetrics::register(&families);
        let samples = SampleMetrics::register(&families);
        let rules = RuleSetMetrics::register(&families);
        let grpc = grpc::GrpcMetrics::register(&families, duration_buckets);
        families.process();
        Metrics {
            families,
            responses,
            duration,
            upstream_errors,
            findings,
            judged,
            flagged,
            handles: handles::HandleCache::default(),
            routes,
            samples,
            rules,
            grpc,
        }
    }

    /// The registry and the description of every family in it; stages above this one
    /// register their families here.
    pub fn families(&self) -> &Families {
        &self.families
    }

    /// The registry to expose on `/metrics`.
    pub fn registry(&self) -> &Registry {
        self.families.registry()
    }

    /// Tallies one final response.
    pub fn record(&self, tally: &Tally<'_>) {
        // Code, origin and version in one word: one round of the hash instead of three.
        let key = (
            tally.method,
            u32::from(tally.code) | (tally.origin as u32) << 16 | (tally.version as u32) << 20,
        );
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
            let [route, method, code, class, origin] = labels;
            let version = tally.version.as_str();
            handles::ResponseHandles {
                responses: self.responses.with_label_values(&labels),
                duration: self
                    .duration
                    .with_label_values(&[route, method, code, class, origin, version]),
            }
        };
        self.handles
            .responses(tally.route, key, resolve, |handles| {
                handles.responses.inc();
                handles.duration.observe(tally.duration.as_secs_f64());
            });
    }

    /// Tallies one finished gRPC call on `route`.
    pub fn record_grpc(
        &self,
        route: &str,
        code: crate::classify::grpc::GrpcCode,
        origin: Origin,
        duration: std::time::Duration,
    ) {
        self.grpc
            .record(&self.handles, route, code, origin, duration);
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
}

/// Everything statuscope records: the metrics and the recent findings, shared by the proxy,
/// the admin server and the demo.
#[derive(Clone)]
pub struct Recorder {
    /// The metric families of the recording stage and of the stages below it.
    pub metrics: Arc<Metrics>,
    /// The recent findings behind `/findings`.
    pub findings: Arc<findings::FindingsStore>,
    /// The CI report findings also go to, when `run --report` asked for one.
    pub report: Option<Arc<std::sync::Mutex<report::Report>>>,
    /// The observed contract's learner, when `observed.enabled`.
    pub observed: Option<Arc<observed::Observed>>,
}

impl Recorder {
    /// A recorder keeping `keep_per_rule` recent findings per rule and logging a rule's
    /// findings on a route at most once per `log_interval` (`findings.*`), its duration
    /// histograms bucketed by `duration_buckets` (`metrics.duration_buckets`).
    pub fn new(keep_per_rule: usize, log_interval: Duration, duration_buckets: &[f64]) -> Self {
        Recorder {
            metrics: Arc::new(Metrics::new(duration_buckets)),
            findings: Arc::new(findings::FindingsStore::new(keep_per_rule, log_interval)),
            report: None,
            observed: None,
        }
    }
}

impl Default for Metrics {
    /// The metrics with the default buckets.
    fn default() -> Self {
        Self::new(DURATION_BUCKETS)
    }
}
