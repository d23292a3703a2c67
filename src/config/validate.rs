//! Validation, one function per section of the key table. Each reads its keys from the merged
//! sources and checks them; a problem is recorded and the check goes on with a stand-in value,
//! so one load reports every invalid key. The stand-ins never escape: a load with any problem
//! returns the problems, not a configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::error::{ConfigError, ConfigErrors};
use super::sources::Sources;
use super::{
    Config, Downstream, Engine, Findings, H2Limits, HeadLimits, Log, Probes, Routes, Secret,
    Timeouts, Upstream, UpstreamProtocol, REQUEST_LINE_SLACK,
};
use crate::classify::route::RouteTemplate;
use crate::contract::Contract;
use crate::logs::{self, LogFormat};
use crate::rules::rule_set::{RouteRules, RuleSetting};
use crate::rules::Severity;
use crate::sample::MAX_BODY_SAMPLE_BYTES;

/// Checks every key of `sources` and builds the configuration, or returns every problem.
pub(super) fn validate(sources: &Sources) -> Result<Config, ConfigErrors> {
    let mut check = Checker {
        sources,
        errors: sources.unknown_keys(),
    };
    let (listen, admin, upstream) = network(&mut check);
    let config = Config {
        listen,
        admin,
        upstream,
        threads: check.positive("threads"),
        max_in_flight: check.positive("max_in_flight"),
        drain_timeout: check.duration("drain_timeout"),
        upstream_keepalive_pool_size: check.positive("upstream_keepalive_pool_size"),
        h2c: check.flag("h2c"),
        upstream_protocol: check.choice(
            "upstream_protocol",
            [
                ("http1", UpstreamProtocol::Http1),
                ("h2c", UpstreamProtocol::H2c),
                ("downstream", UpstreamProtocol::Downstream),
            ],
        ),
        engine: check.choice(
            "proxy.engine",
            [("fast", Engine::Fast), ("pingora", Engine::Pingora)],
        ),
        downstream: downstream(&mut check),
        timeouts: timeouts(&mut check),
        routes: routes(&mut check),
        log: log(&mut check),
        duration_buckets: duration_buckets(&mut check),
        body_sample_bytes: body_sample_bytes(&mut check),
        error_fields: check.value("error_fields").unwrap_or_default(),
        findings: findings(&mut check),
        rule_settings: rule_settings(&mut check),
        route_rules: route_rules(&mut check),
        contract: contract(&mut check),
    };
    if check.errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(check.errors))
    }
}

/// Reads keys and collects what is wrong with them.
struct Checker<'a> {
    sources: &'a Sources,
    errors: Vec<ConfigError>,
}

impl Checker<'_> {
    fn fail(&mut self, key: &str, problem: impl fmt::Display) {
        self.errors
            .push(ConfigError::at(key, self.sources.origin(key), problem));
    }

    /// The key's value; `None` when unset or of the wrong type (which is recorded).
    fn value<T: DeserializeOwned>(&mut self, key: &str) -> Option<T> {
        self.sources.get(key).unwrap_or_else(|error| {
            self.errors.push(error);
            None
        })
    }

    fn text(&mut self, key: &str) -> String {
        self.value(key).unwrap_or_default()
    }

    fn flag(&mut self, key: &str) -> bool {
        self.value(key).unwrap_or_default()
    }

    fn positive(&mut self, key: &str) -> usize {
        let n: i64 = self.value(key).unwrap_or(1);
        if n < 1 {
            self.fail(key, format!("must be at least 1, got {n}"));
        }
        n.max(1) as usize
    }

    /// A whole number from `low` to `high`.
    fn between(&mut self, key: &str, low: u32, high: u32) -> u32 {
        let n: i64 = self.value(key).unwrap_or(i64::from(low));
        if n < i64::from(low) || n > i64::from(high) {
            self.fail(key, format!("must be from {low} to {high}, got {n}"));
        }
        n.clamp(i64::from(low), i64::from(high)) as u32
    }

    fn duration(&mut self, key: &str) -> Duration {
        let Some(raw) = self.value::<RawDuration>(key) else {
            return Duration::ZERO;
        };
        parse_duration(&raw).unwrap_or_else(|problem| {
            self.fail(key, problem);
            Duration::ZERO
        })
    }

    fn nonzero_duration(&mut self, key: &str) -> Duration {
        let errors = self.errors.len();
        let duration = self.duration(key);
        if duration.is_zero() && self.errors.len() == errors {
            self.fail(key, "must be greater than zero");
        }
        duration
    }

    fn socket(&mut self, key: &str) -> Option<SocketAddr> {
        let text: String = self.value(key)?;
        resolve(&text)
            .map_err(|problem| self.fail(key, problem))
            .ok()
    }

    /// One of the named options; the first stands in when the value is none of them.
    fn choice<T: Copy, const N: usize>(&mut self, key: &str, options: [(&str, T); N]) -> T {
        let text = self.text(key);
        choose(&options, &text).unwrap_or_else(|problem| {
            self.fail(key, problem);
            options[0].1
        })
    }
}

/// The value `text` names among `options` (a key's or a flag's choices); `Err` lists the names.
pub fn choose<T: Copy>(options: &[(&str, T)], text: &str) -> Result<T, String> {
    match options.iter().find(|(name, _)| *name == text) {
        Some((_, value)) => Ok(*value),
        None => {
            let names: Vec<String> = options
                .iter()
                .map(|(name, _)| format!("`{name}`"))
                .collect();
            Err(format!("`{text}` is not one of {}", names.join(", ")))
        }
    }
}

fn network(check: &mut Checker<'_>) -> (SocketAddr, SocketAddr, Option<Upstream>) {
    let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
    let listen = check.socket("listen").unwrap_or(unspecified);
    let admin = check.socket("admin").unwrap_or(unspecified);
    if listen == admin && listen != unspecified {
        check.fail(
            "admin",
            "must differ from `listen`: metrics never share the proxy port",
        );
    }
    let upstream = check.value::<String>("upstream").and_then(|text| {
        let addr = resolve(&text)
            .map_err(|problem| check.fail("upstream", problem))
            .ok()?;
        if addr.port() == 0 {
            check.fail("upstream", format!("`{text}` needs a port from 1 to 65535"));
        }
        Some(Upstream {
            addr,
            authority: text,
        })
    });
    (listen, admin, upstream)
}

fn downstream(check: &mut Checker<'_>) -> Downstream {
    let head = HeadLimits {
        max_header_bytes: check.positive("downstream.max_header_bytes"),
        max_headers: check.positive("downstream.max_headers"),
        max_target_bytes: check.positive("downstream.max_target_bytes"),
    };
    // A request line that fits `max_target_bytes` must fit the head, or which limit refuses a
    // long line would depend on how its bytes arrived.
    if head.max_target_bytes + REQUEST_LINE_SLACK >= head.max_header_bytes {
        check.fail(
            "downstream.max_target_bytes",
            format!(
                "must be below downstream.max_header_bytes ({}) by more than {REQUEST_LINE_SLACK}, got {}",
                head.max_header_bytes, head.max_target_bytes
            ),
        );
    }
    Downstream {
        max_connections: check.positive("downstream.max_connections"),
        header_timeout: check.nonzero_duration("downstream.header_timeout"),
        keepalive_timeout: check.duration("downstream.keepalive_timeout"),
        head,
        h2: H2Limits {
            max_concurrent_streams: check.between("h2.max_concurrent_streams", 1, 10_000),
            stream_window: check.between("h2.stream_window", 65_535, 16 << 20),
            connection_window: check.between("h2.connection_window", 65_535, (1 << 31) - 1),
        },
    }
}

fn timeouts(check: &mut Checker<'_>) -> Timeouts {
    Timeouts {
        connect: check.nonzero_duration("timeouts.connect"),
        read: check.nonzero_duration("timeouts.read"),
        write: check.nonzero_duration("timeouts.write"),
        idle: check.duration("timeouts.idle"),
        response: Some(check.duration("timeouts.response")).filter(|limit| !limit.is_zero()),
    }
}

fn routes(check: &mut Checker<'_>) -> Routes {
    let texts: Vec<String> = check.value("routes.templates").unwrap_or_default();
    let templates = texts
        .iter()
        .filter_map(|text| {
            RouteTemplate::parse(text)
                .map_err(|problem| check.fail("routes.templates", problem))
                .ok()
        })
        .collect();
    Routes {
        templates,
        max: check.positive("routes.max"),
        probes: check.choice(
            "routes.probes",
            [("separate", Probes::Separate), ("mixed", Probes::Mixed)],
        ),
    }
}

/// Most bucket bounds a duration histogram may have: each is a series per route, method and
/// class.
const MAX_DURATION_BUCKETS: usize = 32;

fn duration_buckets(check: &mut Checker<'_>) -> Vec<f64> {
    const KEY: &str = "metrics.duration_buckets";
    let Some(bounds) = check.value::<Vec<f64>>(KEY) else {
        return crate::record::DURATION_BUCKETS.to_vec();
    };
    let problem = if bounds.is_empty() {
        Some("is empty: give at least one bound, in seconds".to_string())
    } else if bounds.len() > MAX_DURATION_BUCKETS {
        Some(format!(
            "has {} bounds; at most {MAX_DURATION_BUCKETS} (each is a series per route, method and class)",
            bounds.len()
        ))
    } else if let Some(bad) = bounds.iter().find(|b| !b.is_finite() || **b <= 0.0) {
        Some(format!(
            "holds `{bad}`: every bound is a positive number of seconds"
        ))
    } else {
        bounds
            .windows(2)
            .find(|pair| pair[0] >= pair[1])
            .map(|pair| {
                format!(
                    "is not strictly ascending: `{}` comes before `{}`",
                    pair[0], pair[1]
                )
            })
    };
    match problem {
        Some(problem) => {
            check.fail(KEY, problem);
            crate::record::DURATION_BUCKETS.to_vec()
        }
        None => bounds,
    }
}

fn log(check: &mut Checker<'_>) -> Log {
    let format = check.choice("log.format", LogFormat::NAMED);
    let level = check.text("log.level");
    if let Err(problem) = logs::check_level(&level) {
        check.fail("log.level", problem);
    }
    Log {
        format,
        level,
        access: check.flag("log.access"),
    }
}

fn body_sample_bytes(check: &mut Checker<'_>) -> usize {
    let n: i64 = check.value("body_sample_bytes").unwrap_or(0);
    usize::try_from(n)
        .ok()
        .filter(|n| *n <= MAX_BODY_SAMPLE_BYTES)
        .unwrap_or_else(|| {
            check.fail(
                "body_sample_bytes",
                format!("must be from 0 to {MAX_BODY_SAMPLE_BYTES}, got {n}"),
            );
            0
        })
}

fn findings(check: &mut Checker<'_>) -> Findings {
    let token = check
        .value::<PathBuf>("findings.token_file")
        .and_then(|path| {
            read_token(&path)
                .map_err(|problem| check.fail("findings.token_file", problem))
                .ok()
        });
    Findings {
        enabled: check.flag("findings.enabled"),
        endpoint: check.flag("findings.endpoint"),
        keep_per_rule: check.positive("findings.keep_per_rule"),
        log_interval: check.duration("findings.log_interval"),
        token,
    }
}

/// `rules.<id>.*` as a source writes it.
#[derive(Debug, Default, Deserialize)]
struct RawRule {
    enabled: Option<bool>,
    severity: Option<String>,
}

/// One entry of `route_rules` as the file writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouteRules {
    route: String,
    #[serde(default)]
    disable: Vec<String>,
    #[serde(default)]
    error_fields: Vec<String>,
}

fn unknown_rule(id: &str) -> String {
    format!("unknown rule id `{id}`; `statuscope rules` lists them")
}

fn rule_settings(check: &mut Checker<'_>) -> Vec<RuleSetting> {
    let raw: BTreeMap<String, RawRule> = check.value("rules").unwrap_or_default();
    let mut settings = Vec::with_capacity(raw.len());
    for (id, raw) in raw {
        let key = format!("rules.{id}");
        let Some((rule, _)) = crate::rules::find(&id) else {
            check.fail(&key, unknown_rule(&id));
            continue;
        };
        let severity = raw.severity.and_then(|text| {
            let parsed = Severity::parse(&text);
            if parsed.is_none() {
                check.fail(
                    &format!("{key}.severity"),
                    format!("`{text}` is not one of error, warning, info"),
                );
            }
            parsed
        });
        settings.push(RuleSetting {
            rule,
            enabled: raw.enabled.unwrap_or(true),
            severity,
        });
    }
    settings
}

fn route_rules(check: &mut Checker<'_>) -> Vec<RouteRules> {
    let raw: Vec<RawRouteRules> = check.value("route_rules").unwrap_or_default();
    let origin = check.sources.origin("route_rules");
    let mut route_rules = Vec::with_capacity(raw.len());
    for (i, raw) in raw.into_iter().enumerate() {
        let mut disabled = Vec::with_capacity(raw.disable.len());
        for id in &raw.disable {
            match crate::rules::find(id) {
                Some((index, _)) => disabled.push(index),
                None => check.errors.push(ConfigError::at(
                    &format!("route_rules[{i}].disable"),
                    origin.clone(),
                    unknown_rule(id),
                )),
            }
        }
        route_rules.push(RouteRules {
            route: raw.route,
            disabled,
            error_fields: raw.error_fields,
        });
    }
    route_rules
}

fn contract(check: &mut Checker<'_>) -> Option<Arc<Contract>> {
    let path: PathBuf = check.value("contract.openapi")?;
    Contract::load(&path)
        .map(Arc::new)
        .map_err(|problem| check.fail("contract.openapi", problem))
        .ok()
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

/// A duration as written: a number of seconds or a human duration such as `1500ms` or `2s`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawDuration {
    Seconds(f64),
    Text(String),
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
