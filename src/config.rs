//! Typed configuration, layered as built-in defaults < file < environment < command-line flags.
//!
//! Every key is validated before any port is bound; an error names the key and the source it
//! came from (the file's path, `the environment`, or `a command-line flag`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Environment, File, Value, ValueKind};
use serde::Deserialize;

use crate::classify::route::RouteTemplate;
use crate::proxy::request_head::{HeadLimits, REQUEST_LINE_SLACK};
use crate::rules::engine::{RouteRules, RuleSetting};
use crate::rules::Severity;

/// Prefix of the environment variables that configure statuscope (`STATUSCOPE_UPSTREAM`, ...).
/// Nested keys use a double underscore: `STATUSCOPE_TIMEOUTS__CONNECT=2s`.
pub const ENV_PREFIX: &str = "STATUSCOPE";

/// Every key a configuration source may set. Anything else is rejected by name.
const KNOWN_KEYS: &[&str] = &[
    "listen",
    "admin",
    "upstream",
    "threads",
    "max_in_flight",
    "drain_timeout",
    "upstream_keepalive_pool_size",
    "h2c",
    "proxy.engine",
    "downstream.max_connections",
    "downstream.header_timeout",
    "downstream.keepalive_timeout",
    "downstream.max_header_bytes",
    "downstream.max_headers",
    "downstream.max_target_bytes",
    "timeouts.connect",
    "timeouts.read",
    "timeouts.write",
    "timeouts.idle",
    "timeouts.response",
    "routes.templates",
    "routes.max",
    "log.format",
    "log.level",
    "log.access",
    "body_sample_bytes",
    "error_fields",
    "findings.enabled",
    "findings.endpoint",
    "findings.keep_per_rule",
    "findings.log_interval",
    "findings.token_file",
    "rules.*.enabled",
    "rules.*.severity",
    "route_rules",
];

pub use crate::sample::MAX_BODY_SAMPLE_BYTES;

/// Does `path` name a known key? A `*` in a known key stands for any one segment.
fn is_known_key(path: &str) -> bool {
    KNOWN_KEYS
        .iter()
        .any(|known| segments_match(known, path, false))
}

/// Does some known key continue below `path`?
fn is_known_table(path: &str) -> bool {
    path.is_empty()
        || KNOWN_KEYS
            .iter()
            .any(|known| segments_match(known, path, true))
}

fn segments_match(known: &str, path: &str, prefix_only: bool) -> bool {
    let mut known = known.split('.');
    for part in path.split('.') {
        match known.next() {
            Some(k) if k == "*" || k == part => {}
            _ => return false,
        }
    }
    known.next().is_some() == prefix_only
}

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
    /// The value as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Fast => "fast",
            Engine::Pingora => "pingora",
        }
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

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// A configuration error: the key, where its value came from, and what is wrong.
#[derive(Debug)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    fn at(key: &str, origin: &str, problem: impl fmt::Display) -> Self {
        ConfigError(format!(
            "configuration key `{key}` (from {origin}): {problem}"
        ))
    }
}

/// Values given on the command line; they override the file and the environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
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
    /// The validated configuration.
    pub config: Config,
    /// A human description of the sources in effect.
    pub source: String,
}

/// Loads the layers (file, then `STATUSCOPE_*` environment, then flags) and validates them.
pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Loaded, ConfigError> {
    load_from(file, overrides, None)
}

/// Like [`load`], with an explicit environment instead of the process's (for tests).
pub fn load_from(
    file: Option<&Path>,
    overrides: &Overrides,
    env: Option<config::Map<String, String>>,
) -> Result<Loaded, ConfigError> {
    let mut builder = config::Config::builder();
    if let Some(path) = file {
        if !path.exists() {
            return Err(ConfigError(format!(
                "configuration file {} does not exist",
                path.display()
            )));
        }
        builder = builder.add_source(File::from(PathBuf::from(path)));
    }
    let environment = Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("_")
        .separator("__")
        .list_separator(",")
        .with_list_parse_key("routes.templates")
        .try_parsing(true)
        .source(env);
    builder = builder.add_source(environment);
    for (key, value) in [
        ("listen", &overrides.listen),
        ("admin", &overrides.admin),
        ("upstream", &overrides.upstream),
    ] {
        if let Some(value) = value {
            builder = builder
                .set_override(key, value.as_str())
                .map_err(|e| ConfigError(e.to_string()))?;
        }
    }
    let merged = builder.build().map_err(|e| ConfigError(e.to_string()))?;
    reject_unknown_keys(&merged)?;
    let raw: RawConfig = merged
        .clone()
        .try_deserialize()
        .map_err(|e| ConfigError(format!("invalid configuration: {e}")))?;
    let config = raw.validate(&merged)?;
    let source = match file {
        Some(path) => format!("{} + environment + flags", path.display()),
        None => "defaults + environment + flags".to_string(),
    };
    Ok(Loaded { config, source })
}

/// Names the source a merged value came from; overrides carry no origin in the `config` crate.
fn origin_of(merged: &config::Config, key: &str) -> String {
    // Walk the merged tree itself: `Config::get` returns copies that have lost their origin.
    let mut value = &merged.cache;
    for part in key.split('.') {
        match &value.kind {
            ValueKind::Table(table) => match table.get(part) {
                Some(child) => value = child,
                None => return "the built-in default".to_string(),
            },
            _ => return "the built-in default".to_string(),
        }
    }
    describe_origin(value)
}

fn describe_origin(value: &Value) -> String {
    match value.origin() {
        Some(origin) => origin.to_string(),
        None => "a command-line flag".to_string(),
    }
}

fn reject_unknown_keys(merged: &config::Config) -> Result<(), ConfigError> {
    let mut path = String::new();
    check_keys(&merged.cache, &mut path)
}

fn check_keys(value: &Value, path: &mut String) -> Result<(), ConfigError> {
    let ValueKind::Table(table) = &value.kind else {
        return if path.is_empty() || is_known_key(path) {
            Ok(())
        } else {
            Err(ConfigError::at(
                path,
                &describe_origin(value),
                "unknown key; see the configuration reference in README.md",
            ))
        };
    };
    if !is_known_table(path) {
        let problem = if is_known_key(path) {
            "expected a single value, found a table"
        } else {
            "unknown key; see the configuration reference in README.md"
        };
        return Err(ConfigError::at(path, &describe_origin(value), problem));
    }
    for (name, child) in table {
        let before = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(name);
        check_keys(child, path)?;
        path.truncate(before);
    }
    Ok(())
}

/// The configuration as deserialised, before addresses, durations and templates are checked.
#[derive(Debug, Deserialize)]
struct RawConfig {
    #[serde(default = "defaults::listen")]
    listen: String,
    #[serde(default = "defaults::admin")]
    admin: String,
    #[serde(default)]
    upstream: Option<String>,
    #[serde(default = "defaults::threads")]
    threads: i64,
    #[serde(default = "defaults::max_in_flight")]
    max_in_flight: i64,
    #[serde(default)]
    drain_timeout: Option<RawDuration>,
    #[serde(default = "defaults::upstream_keepalive_pool_size")]
    upstream_keepalive_pool_size: i64,
    #[serde(default = "defaults::h2c")]
    h2c: bool,
    #[serde(default)]
    proxy: RawProxy,
    #[serde(default)]
    downstream: RawDownstream,
    #[serde(default)]
    timeouts: RawTimeouts,
    #[serde(default)]
    routes: RawRoutes,
    #[serde(default)]
    log: RawLog,
    #[serde(default = "defaults::body_sample_bytes")]
    body_sample_bytes: i64,
    #[serde(default = "defaults::error_fields")]
    error_fields: Vec<String>,
    #[serde(default)]
    findings: RawFindings,
    #[serde(default)]
    rules: BTreeMap<String, RawRule>,
    #[serde(default)]
    route_rules: Vec<RawRouteRules>,
}

#[derive(Debug, Default, Deserialize)]
struct RawFindings {
    enabled: Option<bool>,
    endpoint: Option<bool>,
    keep_per_rule: Option<i64>,
    log_interval: Option<RawDuration>,
    token_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
struct RawProxy {
    engine: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawDownstream {
    max_connections: Option<i64>,
    header_timeout: Option<RawDuration>,
    keepalive_timeout: Option<RawDuration>,
    max_header_bytes: Option<i64>,
    max_headers: Option<i64>,
    max_target_bytes: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
struct RawRule {
    enabled: Option<bool>,
    severity: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouteRules {
    route: String,
    #[serde(default)]
    disable: Vec<String>,
    #[serde(default)]
    error_fields: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawTimeouts {
    connect: Option<RawDuration>,
    read: Option<RawDuration>,
    write: Option<RawDuration>,
    idle: Option<RawDuration>,
    response: Option<RawDuration>,
}

#[derive(Debug, Default, Deserialize)]
struct RawRoutes {
    #[serde(default)]
    templates: Vec<String>,
    max: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
struct RawLog {
    format: Option<String>,
    level: Option<String>,
    access: Option<bool>,
}

/// A duration as written: a number of seconds or a human duration such as `1500ms` or `2s`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawDuration {
    Seconds(f64),
    Text(String),
}

mod defaults {
    pub fn listen() -> String {
        "0.0.0.0:7070".into()
    }
    pub fn admin() -> String {
        "0.0.0.0:9070".into()
    }
    pub fn threads() -> i64 {
        1
    }
    pub fn max_in_flight() -> i64 {
        1024
    }
    // Every request in flight holds an upstream connection: a pool as large as the in-flight
    // limit never closes one that the next request would have reused (at 256 concurrent
    // requests, a pool of 128 cost a new upstream connection per second request). Idle pooled
    // connections hold no buffer, and expire after `timeouts.idle`.
    pub fn upstream_keepalive_pool_size() -> i64 {
        max_in_flight()
    }
    pub fn h2c() -> bool {
        true
    }
    pub const DRAIN_TIMEOUT: &str = "10s";
    pub const CONNECT_TIMEOUT: &str = "2s";
    pub const READ_TIMEOUT: &str = "30s";
    pub const WRITE_TIMEOUT: &str = "30s";
    // Below the 60-75 s keep-alive timeouts common web servers use, so a pooled connection is
    // dropped here before the upstream closes it under a request.
    pub const IDLE_TIMEOUT: &str = "50s";
    // Long enough for any API response and most downloads; 0 lifts it for streaming routes.
    pub const RESPONSE_TIMEOUT: &str = "300s";
    pub const MAX_ROUTES: i64 = 200;
    pub fn body_sample_bytes() -> i64 {
        8 * 1024
    }
    pub fn error_fields() -> Vec<String> {
        ["code", "error", "type", "title", "message"]
            .map(String::from)
            .to_vec()
    }
    pub const KEEP_PER_RULE: i64 = 20;
    // A pod's file descriptor limit is commonly 65,536 or more; each client connection also
    // costs an upstream connection while a request is in flight.
    pub const MAX_CONNECTIONS: i64 = 10_000;
    // nginx allows 60 s; a sidecar's clients are in the same cluster and send heads at once.
    pub const HEADER_TIMEOUT: &str = "10s";
    pub const KEEPALIVE_TIMEOUT: &str = "60s";
    // Above the 8-16 KiB most servers accept, below anything that needs a second look.
    pub const MAX_HEADER_BYTES: i64 = 32 * 1024;
    pub const MAX_HEADERS: i64 = 100;
    pub const MAX_TARGET_BYTES: i64 = 8 * 1024;
    pub const LOG_INTERVAL: &str = "60s";
}

impl RawConfig {
    fn validate(self, merged: &config::Config) -> Result<Config, ConfigError> {
        let origin = |key: &str| origin_of(merged, key);
        let socket = |key: &str, text: &str| -> Result<SocketAddr, ConfigError> {
            resolve(text).map_err(|problem| ConfigError::at(key, &origin(key), problem))
        };
        let listen = socket("listen", &self.listen)?;
        let admin = socket("admin", &self.admin)?;
        if listen == admin {
            return Err(ConfigError::at(
                "admin",
                &origin("admin"),
                "must differ from `listen`: metrics never share the proxy port",
            ));
        }
        let upstream = match self.upstream {
            None => None,
            Some(text) => {
                let addr = socket("upstream", &text)?;
                if addr.port() == 0 {
                    return Err(ConfigError::at(
                        "upstream",
                        &origin("upstream"),
                        format!("`{text}` needs a port from 1 to 65535"),
                    ));
                }
                Some(Upstream {
                    addr,
                    authority: text,
                })
            }
        };
        let positive = |key: &str, n: i64| -> Result<usize, ConfigError> {
            if n < 1 {
                Err(ConfigError::at(
                    key,
                    &origin(key),
                    format!("must be at least 1, got {n}"),
                ))
            } else {
                Ok(n as usize)
            }
        };
        let duration = |key: &str, raw: Option<RawDuration>, default: &str| {
            let raw = raw.unwrap_or(RawDuration::Text(default.to_string()));
            parse_duration(&raw).map_err(|problem| ConfigError::at(key, &origin(key), problem))
        };
        let timeouts = Timeouts {
            connect: duration(
                "timeouts.connect",
                self.timeouts.connect,
                defaults::CONNECT_TIMEOUT,
            )?,
            read: duration("timeouts.read", self.timeouts.read, defaults::READ_TIMEOUT)?,
            write: duration(
                "timeouts.write",
                self.timeouts.write,
                defaults::WRITE_TIMEOUT,
            )?,
            idle: duration("timeouts.idle", self.timeouts.idle, defaults::IDLE_TIMEOUT)?,
            response: Some(duration(
                "timeouts.response",
                self.timeouts.response,
                defaults::RESPONSE_TIMEOUT,
            )?)
            .filter(|limit| !limit.is_zero()),
        };
        for (key, value) in [
            ("timeouts.connect", timeouts.connect),
            ("timeouts.read", timeouts.read),
            ("timeouts.write", timeouts.write),
        ] {
            if value.is_zero() {
                return Err(ConfigError::at(
                    key,
                    &origin(key),
                    "must be greater than zero",
                ));
            }
        }
        let templates = self
            .routes
            .templates
            .iter()
            .map(|text| {
                RouteTemplate::parse(text).map_err(|problem| {
                    ConfigError::at("routes.templates", &origin("routes.templates"), problem)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let format = match self.log.format.as_deref().unwrap_or("human") {
            "human" => LogFormat::Human,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::at(
                    "log.format",
                    &origin("log.format"),
                    format!("`{other}` is neither `human` nor `json`"),
                ))
            }
        };
        let engine = match self.proxy.engine.as_deref().unwrap_or("fast") {
            "fast" => Engine::Fast,
            "pingora" => Engine::Pingora,
            other => {
                return Err(ConfigError::at(
                    "proxy.engine",
                    &origin("proxy.engine"),
                    format!("`{other}` is neither `fast` nor `pingora`"),
                ))
            }
        };
        let level = self.log.level.unwrap_or_else(|| "info".to_string());
        if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
            return Err(ConfigError::at(
                "log.level",
                &origin("log.level"),
                format!("`{level}` is not a log filter such as `info` or `statuscope=debug`"),
            ));
        }
        if let Some(directive) = level.split(',').find(|directive| {
            crate::telemetry::names_pingora(directive)
                && ["=debug", "=trace"]
                    .iter()
                    .any(|verbose| directive.trim().to_ascii_lowercase().ends_with(verbose))
        }) {
            return Err(ConfigError::at(
                "log.level",
                &origin("log.level"),
                format!(
                    "`{directive}`: pingora's debug and trace output prints whole headers and \
                     bodies, credentials included; allow it at most `info`"
                ),
            ));
        }
        let body_sample_bytes = usize::try_from(self.body_sample_bytes)
            .ok()
            .filter(|n| *n <= MAX_BODY_SAMPLE_BYTES)
            .ok_or_else(|| {
                ConfigError::at(
                    "body_sample_bytes",
                    &origin("body_sample_bytes"),
                    format!(
                        "must be from 0 to {MAX_BODY_SAMPLE_BYTES}, got {}",
                        self.body_sample_bytes
                    ),
                )
            })?;
        let rule_index = |key: &str, id: &str| {
            crate::rules::find(id)
                .map(|(index, _)| index)
                .ok_or_else(|| {
                    ConfigError::at(
                        key,
                        &origin(key),
                        format!("unknown rule id `{id}`; `statuscope rules` lists them"),
                    )
                })
        };
        let mut rule_settings = Vec::with_capacity(self.rules.len());
        for (id, raw) in &self.rules {
            let key = format!("rules.{id}");
            let rule = rule_index(&key, id)?;
            let severity = match raw.severity.as_deref() {
                None => None,
                Some(text) => Some(Severity::parse(text).ok_or_else(|| {
                    let key = format!("{key}.severity");
                    ConfigError::at(
                        &key,
                        &origin(&key),
                        format!("`{text}` is not one of error, warning, info"),
                    )
                })?),
            };
            rule_settings.push(RuleSetting {
                rule,
                enabled: raw.enabled.unwrap_or(true),
                severity,
            });
        }
        let route_rules = self
            .route_rules
            .into_iter()
            .enumerate()
            .map(|(i, raw)| {
                let disabled = raw
                    .disable
                    .iter()
                    .map(|id| {
                        rule_index("route_rules", id).map_err(|_| {
                            ConfigError::at(
                                &format!("route_rules[{i}].disable"),
                                &origin("route_rules"),
                                format!("unknown rule id `{id}`; `statuscope rules` lists them"),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(RouteRules {
                    route: raw.route,
                    disabled,
                    error_fields: raw.error_fields,
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let token = match self.findings.token_file {
            None => None,
            Some(path) => Some(read_token(&path).map_err(|problem| {
                ConfigError::at(
                    "findings.token_file",
                    &origin("findings.token_file"),
                    problem,
                )
            })?),
        };
        let header_timeout = duration(
            "downstream.header_timeout",
            self.downstream.header_timeout,
            defaults::HEADER_TIMEOUT,
        )?;
        if header_timeout.is_zero() {
            return Err(ConfigError::at(
                "downstream.header_timeout",
                &origin("downstream.header_timeout"),
                "must be greater than zero",
            ));
        }
        let downstream = Downstream {
            max_connections: positive(
                "downstream.max_connections",
                self.downstream
                    .max_connections
                    .unwrap_or(defaults::MAX_CONNECTIONS),
            )?,
            header_timeout,
            keepalive_timeout: duration(
                "downstream.keepalive_timeout",
                self.downstream.keepalive_timeout,
                defaults::KEEPALIVE_TIMEOUT,
            )?,
            head: HeadLimits {
                max_header_bytes: positive(
                    "downstream.max_header_bytes",
                    self.downstream
                        .max_header_bytes
                        .unwrap_or(defaults::MAX_HEADER_BYTES),
                )?,
                max_headers: positive(
                    "downstream.max_headers",
                    self.downstream.max_headers.unwrap_or(defaults::MAX_HEADERS),
                )?,
                max_target_bytes: positive(
                    "downstream.max_target_bytes",
                    self.downstream
                        .max_target_bytes
                        .unwrap_or(defaults::MAX_TARGET_BYTES),
                )?,
            },
        };
        // A request line that fits `max_target_bytes` must fit the head, or which limit
        // refuses a long line would depend on how its bytes arrived.
        let head = &downstream.head;
        if head.max_target_bytes + REQUEST_LINE_SLACK >= head.max_header_bytes {
            return Err(ConfigError::at(
                "downstream.max_target_bytes",
                &origin("downstream.max_target_bytes"),
                format!(
                    "must be below downstream.max_header_bytes ({}) by more than {REQUEST_LINE_SLACK}, got {}",
                    head.max_header_bytes, head.max_target_bytes
                ),
            ));
        }
        let findings = Findings {
            token,
            enabled: self.findings.enabled.unwrap_or(true),
            endpoint: self.findings.endpoint.unwrap_or(true),
            keep_per_rule: positive(
                "findings.keep_per_rule",
                self.findings
                    .keep_per_rule
                    .unwrap_or(defaults::KEEP_PER_RULE),
            )?,
            log_interval: duration(
                "findings.log_interval",
                self.findings.log_interval,
                defaults::LOG_INTERVAL,
            )?,
        };
        Ok(Config {
            body_sample_bytes,
            error_fields: self.error_fields,
            findings,
            rule_settings,
            route_rules,
            listen,
            admin,
            upstream,
            threads: positive("threads", self.threads)?,
            max_in_flight: positive("max_in_flight", self.max_in_flight)?,
            drain_timeout: duration("drain_timeout", self.drain_timeout, defaults::DRAIN_TIMEOUT)?,
            upstream_keepalive_pool_size: positive(
                "upstream_keepalive_pool_size",
                self.upstream_keepalive_pool_size,
            )?,
            h2c: self.h2c,
            engine,
            downstream,
            timeouts,
            routes: Routes {
                templates,
                max: positive(
                    "routes.max",
                    self.routes.max.unwrap_or(defaults::MAX_ROUTES),
                )?,
            },
            log: Log {
                format,
                level,
                access: self.log.access.unwrap_or(false),
            },
        })
    }
}

/// Reads a bearer token: the file's content without surrounding whitespace, never empty.
fn read_token(path: &Path) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{} must hold one token of visible ASCII characters",
            path.display()
        ));
    }
    Ok(Secret(token.to_string()))
}

impl Config {
    /// The keys whose values differ from `running`'s and that a reload cannot apply: they are
    /// read once at start (listeners, threads, logging, the findings store and endpoint).
    pub fn keys_needing_restart(&self, running: &Config) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let mut check = |key, changed| {
            if changed {
                keys.push(key);
            }
        };
        check("listen", self.listen != running.listen);
        check("admin", self.admin != running.admin);
        check("threads", self.threads != running.threads);
        check("drain_timeout", self.drain_timeout != running.drain_timeout);
        check(
            "upstream_keepalive_pool_size",
            self.upstream_keepalive_pool_size != running.upstream_keepalive_pool_size,
        );
        check("h2c", self.h2c != running.h2c);
        check("proxy.engine", self.engine != running.engine);
        check("log", self.log != running.log);
        check(
            "findings.endpoint",
            self.findings.endpoint != running.findings.endpoint,
        );
        check(
            "findings.keep_per_rule",
            self.findings.keep_per_rule != running.findings.keep_per_rule,
        );
        check(
            "findings.log_interval",
            self.findings.log_interval != running.findings.log_interval,
        );
        check(
            "findings.token_file",
            self.findings.token != running.findings.token,
        );
        keys
    }
}

/// Resolves `host:port` (an IP or a name, resolved once, here) to its first socket address.
fn resolve(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("`{text}` is not host:port"))?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(format!(
            "`{text}` is not host:port with a port from 0 to 65535"
        ));
    }
    text.to_socket_addrs()
        .map_err(|e| format!("`{text}` does not resolve: {e}"))?
        .next()
        .ok_or_else(|| format!("`{text}` resolves to no address"))
}

fn parse_duration(raw: &RawDuration) -> Result<Duration, String> {
    match raw {
        RawDuration::Seconds(seconds) if *seconds < 0.0 || !seconds.is_finite() => {
            Err(format!("must be a non-negative duration, got {seconds}"))
        }
        RawDuration::Seconds(seconds) => Ok(Duration::from_secs_f64(*seconds)),
        RawDuration::Text(text) if text.trim_start().starts_with('-') => {
            Err(format!("must be a non-negative duration, got `{text}`"))
        }
        RawDuration::Text(text) => humantime::parse_duration(text)
            .map_err(|e| format!("`{text}` is not a duration such as `500ms` or `2s`: {e}")),
    }
}

impl Config {
    /// The upstream, or an error naming the key when `run` was started without one.
    pub fn require_upstream(&self) -> Result<&Upstream, ConfigError> {
        self.upstream.as_ref().ok_or_else(|| {
            ConfigError(
                "configuration key `upstream` is required: give --upstream host:port, \
                 STATUSCOPE_UPSTREAM or `upstream:` in the file"
                    .to_string(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Option<config::Map<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn defaults_apply_without_any_source() {
        let loaded = load_from(None, &Overrides::default(), env(&[])).unwrap();
        let config = loaded.config;
        assert_eq!(config.listen, "0.0.0.0:7070".parse().unwrap());
        assert_eq!(config.admin, "0.0.0.0:9070".parse().unwrap());
        assert!(config.upstream.is_none());
        assert_eq!(config.drain_timeout, Duration::from_secs(10));
        assert_eq!(config.routes.max, 200);
        assert_eq!(config.timeouts.connect, Duration::from_secs(2));
    }

    #[test]
    fn environment_sets_nested_keys_and_flags_win() {
        let overrides = Overrides {
            upstream: Some("127.0.0.1:9999".into()),
            ..Overrides::default()
        };
        let loaded = load_from(
            None,
            &overrides,
            env(&[
                ("STATUSCOPE_UPSTREAM", "127.0.0.1:8080"),
                ("STATUSCOPE_TIMEOUTS__READ", "1500ms"),
                ("STATUSCOPE_ROUTES__TEMPLATES", "/users/{id},/orders/{id}"),
            ]),
        )
        .unwrap();
        let config = loaded.config;
        assert_eq!(config.upstream.unwrap().addr.port(), 9999);
        assert_eq!(config.timeouts.read, Duration::from_millis(1500));
        assert_eq!(config.routes.templates.len(), 2);
    }

    #[test]
    fn unknown_environment_key_is_named_with_its_source() {
        let err = load_from(
            None,
            &Overrides::default(),
            env(&[("STATUSCOPE_LISTNE", "x")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`listne`"), "{err}");
        assert!(err.contains("the environment"), "{err}");
    }

    #[test]
    fn negative_timeout_is_rejected() {
        let err = load_from(
            None,
            &Overrides::default(),
            env(&[("STATUSCOPE_TIMEOUTS__CONNECT", "-1")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`timeouts.connect`"), "{err}");
        assert!(err.contains("non-negative"), "{err}");
        assert!(err.contains("the environment"), "{err}");
    }

    #[test]
    fn the_engine_is_fast_unless_pingora_is_asked_for() {
        let engine = |pairs: &[(&str, &str)]| {
            load_from(None, &Overrides::default(), env(pairs)).map(|loaded| loaded.config.engine)
        };
        assert_eq!(engine(&[]).unwrap(), Engine::Fast);
        assert_eq!(
            engine(&[("STATUSCOPE_PROXY__ENGINE", "pingora")]).unwrap(),
            Engine::Pingora
        );
        let err = engine(&[("STATUSCOPE_PROXY__ENGINE", "hyper")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`proxy.engine`") && err.contains("`hyper`"),
            "{err}"
        );
    }

    #[test]
    fn verbose_pingora_logging_is_refused_and_modest_levels_are_not() {
        let level = |text: &str| {
            load_from(
                None,
                &Overrides::default(),
                env(&[("STATUSCOPE_LOG__LEVEL", text)]),
            )
        };
        for verbose in [
            "pingora_proxy=debug",
            "info,pingora=TRACE",
            "pingora_core::server=debug",
        ] {
            let err = level(verbose).unwrap_err().to_string();
            assert!(
                err.contains("`log.level`") && err.contains("headers"),
                "{err}"
            );
        }
        for modest in [
            "debug",
            "statuscope=trace,pingora_core=warn",
            "pingora=info",
        ] {
            assert!(level(modest).is_ok(), "{modest}");
        }
    }

    #[test]
    fn a_target_limit_that_does_not_fit_the_head_limit_is_refused() {
        let err = load_from(
            None,
            &Overrides::default(),
            env(&[
                ("STATUSCOPE_DOWNSTREAM__MAX_HEADER_BYTES", "4096"),
                ("STATUSCOPE_DOWNSTREAM__MAX_TARGET_BYTES", "4064"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`downstream.max_target_bytes`"), "{err}");
    }

    #[test]
    fn rule_settings_accept_underscored_ids_from_the_environment() {
        let loaded = load_from(
            None,
            &Overrides::default(),
            env(&[
                ("STATUSCOPE_RULES__ERROR_BODY_ON_SUCCESS__ENABLED", "false"),
                ("STATUSCOPE_RULES__MISSING_RETRY_AFTER__SEVERITY", "error"),
            ]),
        )
        .unwrap();
        let settings = loaded.config.rule_settings;
        assert_eq!(settings.len(), 2);
        assert!(settings.iter().any(|s| !s.enabled));
        assert!(settings.iter().any(|s| s.severity == Some(Severity::Error)));
    }

    #[test]
    fn unknown_rule_ids_are_named() {
        let err = load_from(
            None,
            &Overrides::default(),
            env(&[("STATUSCOPE_RULES__NO_SUCH_RULE__ENABLED", "false")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown rule id `no_such_rule`"), "{err}");
        let err = load_from(
            None,
            &Overrides::default(),
            env(&[("STATUSCOPE_RULES__MISSING_RETRY_AFTER__LOUDNESS", "9")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`rules.missing_retry_after.loudness`"),
            "{err}"
        );
    }

    #[test]
    fn route_rules_are_read_from_a_file_and_their_ids_checked() {
        let dir = std::env::temp_dir().join(format!("statuscope-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.yaml");
        std::fs::write(&good, "route_rules:\n  - route: /graphql\n    disable: [error-body-on-success]\n    error_fields: [errors]\n").unwrap();
        let loaded = load_from(Some(&good), &Overrides::default(), env(&[])).unwrap();
        assert_eq!(loaded.config.route_rules[0].route, "/graphql");
        assert_eq!(loaded.config.route_rules[0].error_fields, ["errors"]);
        let bad = dir.join("bad.yaml");
        std::fs::write(
            &bad,
            "route_rules:\n  - route: /graphql\n    disable: [no-such-rule]\n",
        )
        .unwrap();
        let err = load_from(Some(&bad), &Overrides::default(), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`route_rules[0].disable`") && err.contains("`no-such-rule`"),
            "{err}"
        );
    }

    #[test]
    fn body_sample_bytes_is_bounded() {
        let err = load_from(
            None,
            &Overrides::default(),
            env(&[("STATUSCOPE_BODY_SAMPLE_BYTES", "-1")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`body_sample_bytes`"), "{err}");
        let zero = load_from(
            None,
            &Overrides::default(),
            env(&[("STATUSCOPE_BODY_SAMPLE_BYTES", "0")]),
        )
        .unwrap();
        assert_eq!(zero.config.body_sample_bytes, 0);
    }

    #[test]
    fn bad_flag_address_names_the_flag() {
        let overrides = Overrides {
            listen: Some("nowhere".into()),
            ..Overrides::default()
        };
        let err = load_from(None, &overrides, env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`listen`"), "{err}");
        assert!(err.contains("command-line flag"), "{err}");
    }
}
