//! Typed configuration, layered as built-in defaults < file < environment < command-line flags.
//!
//! [`keys`] defines every key once (path, kind with default and bounds, meaning, when it
//! applies) as a constant the code reads it through; [`reference`](mod@reference) generates its docs;
//! `sources` merges the layers; `validate` checks them section by section and reports every invalid
//! key at once, each naming the key and the source its value came from (the file's path, `the
//! environment`, `a command-line flag`), before any port is bound.

pub(crate) mod error;
mod key;
pub mod keys;
pub(crate) mod reference;
mod sources;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::classify::route::{RouteTable, RouteTemplate};
use crate::contract::Contract;
use crate::export::otlp::OtlpSettings;
pub use crate::logs::LogFormat;
use crate::record::observed::{Observed, ObservedLimits};
use crate::record::Recorder;
use crate::rules::rule_set::{RouteRules, RuleSet, RuleSetting};
pub use crate::sample::MAX_BODY_SAMPLE_BYTES;
pub use error::{ConfigError, ConfigErrors};
pub use validate::{choose, name_of};

/// Prefix of the environment variables that configure statuscope (`STATUSCOPE_UPSTREAM`, ...).
/// Nested keys use a double underscore: `STATUSCOPE_TIMEOUTS__CONNECT=2s`.
pub const ENV_PREFIX: &str = "STATUSCOPE";

/// Room in a request line for the method and version around the longest accepted target:
/// `downstream.max_target_bytes` must stay this far below `downstream.max_header_bytes`.
pub const REQUEST_LINE_SLACK: usize = 64;

/// The validated configuration statuscope runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address of the proxy listener (`listen`).
    pub listen: SocketAddr,
    /// Address of the admin listener serving `/metrics`, `/healthz`, `/readyz` (`admin`).
    pub admin: SocketAddr,
    /// The service behind the proxy (`upstream`); required by `statuscope run`.
    pub upstream: Option<Upstream>,
    /// Worker threads of the proxy (`threads`).
    pub threads: usize,
    /// Requests proxied at once before new ones get a 503 (`max_in_flight`).
    pub max_in_flight: usize,
    /// How long SIGTERM waits for in-flight requests before exiting (`drain_timeout`).
    pub drain_timeout: Duration,
    /// Idle upstream connections kept for reuse (`upstream_keepalive_pool_size`).
    pub upstream_keepalive_pool_size: usize,
    /// Accept HTTP/2 over cleartext (prior knowledge) on the proxy port (`h2c`).
    pub h2c: bool,
    /// Which HTTP statuscope speaks to the upstream (`upstream_protocol`).
    pub upstream_protocol: UpstreamProtocol,
    /// Which engine carries HTTP/1 exchanges (`proxy.engine`).
    pub engine: Engine,
    /// Limits on client connections and request heads (`downstream.*`).
    pub downstream: Downstream,
    /// Upstream timeouts (`timeouts.*`).
    pub timeouts: Timeouts,
    /// Route templating (`routes.*`).
    pub routes: Routes,
    /// Logging (`log.*`).
    pub log: Log,
    /// The duration histograms' bucket bounds in seconds, ascending (`metrics.duration_buckets`).
    pub duration_buckets: Vec<f64>,
    /// Bytes of each response body kept for the rules; 0 turns sampling off (`body_sample_bytes`).
    pub body_sample_bytes: usize,
    /// Top-level JSON fields that make an error body structured (`error_fields`).
    pub error_fields: Vec<String>,
    /// Findings: evaluation, the `/findings` endpoint and their logging (`findings.*`).
    pub findings: Findings,
    /// Per-rule switches and severity overrides (`rules.<id>.*`).
    pub rule_settings: Vec<RuleSetting>,
    /// Per-route exceptions (`route_rules`).
    pub route_rules: Vec<RouteRules>,
    /// The service's OpenAPI document, loaded and compiled (`contract.openapi`).
    pub contract: Option<Arc<Contract>>,
    /// How far the observed contract is learnt; `None` when it is not (`observed.*`).
    pub observed: Option<ObservedLimits>,
    /// The OTLP push; `None` when no endpoint is configured (`otlp.*`).
    pub otlp: Option<OtlpSettings>,
}

/// How findings are produced and shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Findings {
    /// Evaluate the rule catalogue at all (`findings.enabled`).
    pub enabled: bool,
    /// Serve `GET /findings` on the admin port (`findings.endpoint`).
    pub endpoint: bool,
    /// Recent findings kept per rule for `/findings` (`findings.keep_per_rule`).
    pub keep_per_rule: usize,
    /// At most one log line per rule and route per this interval (`findings.log_interval`).
    pub log_interval: Duration,
    /// `/findings` requires `Authorization: Bearer <token>` with the token read from this file
    /// (`findings.token_file`); unset, `/findings` is open to whoever reaches the admin port.
    pub token: Option<Secret>,
}

/// A secret read from a file: compared, never printed (its `Debug` hides it).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for comparison.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The engine that carries HTTP/1 exchanges (`proxy.engine`); both tally and judge alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// statuscope's own keep-alive loop on pingora-core (`fast`, the default).
    Fast,
    /// pingora-proxy's `ProxyHttp` for every request (`pingora`): the fallback.
    Pingora,
}

impl Engine {
    /// Each engine by its `proxy.engine` name.
    pub const NAMED: [(&'static str, Engine); 2] =
        [("fast", Engine::Fast), ("pingora", Engine::Pingora)];

    /// The value as written in the configuration.
    pub fn as_str(self) -> &'static str {
        name_of(&Engine::NAMED, self)
    }
}

/// The HTTP statuscope speaks to the upstream (`upstream_protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// HTTP/1.1 for every request (`http1`, the default).
    Http1,
    /// HTTP/2 with prior knowledge for every request (`h2c`), streams multiplexed over pooled
    /// connections: what a gRPC server speaks.
    H2c,
    /// The client's own (`downstream`): HTTP/2 for h2c clients, gRPC among them, HTTP/1.1 for
    /// the others — for a service that serves both on one port.
    Downstream,
}

impl UpstreamProtocol {
    /// Each protocol by its `upstream_protocol` name.
    pub const NAMED: [(&'static str, UpstreamProtocol); 3] = [
        ("http1", UpstreamProtocol::Http1),
        ("h2c", UpstreamProtocol::H2c),
        ("downstream", UpstreamProtocol::Downstream),
    ];

    /// The value as written in the configuration.
    pub fn as_str(self) -> &'static str {
        name_of(&UpstreamProtocol::NAMED, self)
    }
}

impl Config {
    /// What is valid but will not work as the shipped rules and dashboards expect, one line
    /// each naming the key: `check-config` prints them, `run` logs them at start-up.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let threshold = crate::record::LATENCY_SLO_SECONDS;
        if !self.duration_buckets.contains(&threshold) {
            warnings.push(format!(
                "{} has no bound at {threshold}, the latency SLO's threshold: \
                 the statuscope:route_latency_slow_ratio series and the StatuscopeLatencyBudgetBurn \
                 alerts read le=\"{threshold}\" and stay empty; add {threshold}, or move the threshold in \
                 deploy/prometheus/statuscope-rules.yaml to one of the bounds",
                keys::DURATION_BUCKET_BOUNDS.path
            ));
        }
        warnings
    }
}

/// Limits on the client side of the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downstream {
    /// Client connections open at once; more are closed at accept (`downstream.max_connections`).
    pub max_connections: usize,
    /// Time for a request head to arrive once its connection is open or its first byte has
    /// been read; 408 after it (`downstream.header_timeout`).
    pub header_timeout: Duration,
    /// How long an idle keep-alive client connection waits for its next request
    /// (`downstream.keepalive_timeout`).
    pub keepalive_timeout: Duration,
    /// Size limits on request heads (`downstream.max_header_bytes`, `downstream.max_headers`,
    /// `downstream.max_target_bytes`).
    pub head: HeadLimits,
    /// HTTP/2's limits (`h2.*`).
    pub h2: H2Limits,
}

/// HTTP/2's limits (`h2.*`); the header list limit is `downstream.max_header_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H2Limits {
    /// Streams a client connection may have open at once (`h2.max_concurrent_streams`).
    pub max_concurrent_streams: u32,
    /// Each stream's receive window, toward statuscope (`h2.stream_window`).
    pub stream_window: u32,
    /// A client connection's receive window (`h2.connection_window`).
    pub connection_window: u32,
}

/// The limits a request head must stay within (`downstream.max_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Bytes of the whole head, request line and header fields (431 beyond).
    pub max_header_bytes: usize,
    /// Header fields (431 beyond).
    pub max_headers: usize,
    /// Bytes of the request target (414 beyond).
    pub max_target_bytes: usize,
}

/// The upstream as configured (`host:port`) and the socket address it resolved to at start-up.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The text the user gave, kept for logs.
    pub authority: String,
    /// The resolved address the proxy connects to.
    pub addr: SocketAddr,
}

/// Upstream timeouts. Each bounds one step of talking to the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing a TCP connection (`timeouts.connect`).
    pub connect: Duration,
    /// Each read from the upstream, headers or body (`timeouts.read`).
    pub read: Duration,
    /// Each write to the upstream (`timeouts.write`).
    pub write: Duration,
    /// How long an unused pooled upstream connection is kept (`timeouts.idle`).
    pub idle: Duration,
    /// The whole upstream response, from the request's arrival to the body's last byte;
    /// bounds an upstream that trickles (`timeouts.response`). `None` when set to 0.
    pub response: Option<Duration>,
}

/// Route templating and the cap on distinct routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes {
    /// Templates such as `/users/{id}`, matched in order before automatic normalisation.
    pub templates: Vec<RouteTemplate>,
    /// Distinct automatically normalised routes before spilling into `__other__` (`routes.max`).
    pub max: usize,
    /// Where the kubelet's probes are tallied (`routes.probes`).
    pub probes: Probes,
}

/// Where the kubelet's probes (`User-Agent: kube-probe/…`) are tallied (`routes.probes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probes {
    /// Under `route="__probe__"`, out of every route's ratios and latencies (`separate`, the
    /// default).
    Separate,
    /// Under their own paths' routes, like any request (`mixed`).
    Mixed,
}

impl Probes {
    /// Each choice by its `routes.probes` name.
    pub const NAMED: [(&'static str, Probes); 2] =
        [("separate", Probes::Separate), ("mixed", Probes::Mixed)];
}

/// Log output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    /// `human` or `json` (`log.format`).
    pub format: LogFormat,
    /// A `tracing` filter directive such as `info` or `statuscope=debug` (`log.level`).
    pub level: String,
    /// One line per request (route, method, status, origin, duration); off by default.
    pub access: bool,
}

/// Values given on the command line; they override the file and the environment.
#[derive(Debug, Default, Clone)]
pub struct FlagValues {
    /// `--listen`
    pub listen: Option<String>,
    /// `--admin`
    pub admin: Option<String>,
    /// `--upstream`
    pub upstream: Option<String>,
}

/// Where the configuration came from, for the start-up log line.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration, every key checked.
    pub config: Config,
    /// A human description of the sources in effect.
    pub source: String,
}

/// Loads the layers (file, then `STATUSCOPE_*` environment, then flags) and validates them.
pub fn load(file: Option<&Path>, overrides: &FlagValues) -> Result<Loaded, ConfigErrors> {
    load_from(file, overrides, None)
}

/// Like [`load`], with an explicit environment instead of the process's (for tests).
pub fn load_from(
    file: Option<&Path>,
    overrides: &FlagValues,
    env: Option<config::Map<String, String>>,
) -> Result<Loaded, ConfigErrors> {
    let sources = sources::Sources::read(file, overrides, env)?;
    let config = validate::validate(&sources)?;
    let source = match file {
        Some(path) => format!("{} + environment + flags", path.display()),
        None => "defaults + environment + flags".to_string(),
    };
    Ok(Loaded { config, source })
}

impl Config {
    /// The keys whose values differ from `running`'s and that a reload cannot apply: they are
    /// read once at start (listeners, threads, logging, the findings store and endpoint).
    pub fn keys_needing_restart(&self, running: &Config) -> Vec<&'static str> {
        keys::needing_restart(self, running)
    }

    /// Every route template, in the order they are matched: the contract's paths first, then
    /// `routes.templates`.
    pub fn route_templates(&self) -> Vec<RouteTemplate> {
        let mut templates = self
            .contract
            .as_ref()
            .map(|contract| contract.templates())
            .unwrap_or_default();
        templates.extend(self.routes.templates.iter().cloned());
        templates
    }

    /// The route table the templates and `routes.max` describe, with no route learnt yet.
    pub fn route_table(&self) -> RouteTable {
        RouteTable::new(self.route_templates(), self.routes.max)
    }

    /// The rule set `rules.*`, `error_fields` and `route_rules` describe, judging against
    /// `contract` (this configuration's, or a running one with the same text, whose coverage
    /// counts go on).
    pub fn rule_set(&self, contract: Option<Arc<Contract>>) -> RuleSet {
        RuleSet::new(
            &self.rule_settings,
            &self.error_fields,
            &self.route_rules,
            contract,
        )
    }

    /// The recorder this configuration asks for: its findings store, duration buckets and
    /// the observed contract's learner.
    pub fn recorder(&self) -> Recorder {
        let mut recorder = Recorder::new(
            self.findings.keep_per_rule,
            self.findings.log_interval,
            &self.duration_buckets,
        );
        recorder.observed = self.observed.map(|limits| Arc::new(Observed::new(limits)));
        recorder
    }

    /// The upstream, or an error naming the key when `run` was started without one.
    pub fn require_upstream(&self) -> Result<&Upstream, ConfigError> {
        self.upstream.as_ref().ok_or_else(|| ConfigError {
            key: Some(keys::UPSTREAM.path.to_string()),
            source: "the built-in default, which is unset".to_string(),
            problem: "is required: give --upstream host:port, STATUSCOPE_UPSTREAM or `upstream:` in the file".to_string(),
        })
    }
}

#[cfg(test)]
mod tests;
