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

mod otlp;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::error::{ConfigError, ConfigErrors};
use super::keys::{self, Key, KeyKind};
use super::sources::Sources;
use super::{
    Config, Downstream, Engine, Findings, H2Limits, HeadLimits, Log, Probes, Routes, Secret,
    Timeouts, Upstream, UpstreamProtocol, REQUEST_LINE_SLACK,
};
use crate::classify::route::RouteTemplate;
use crate::contract::{Contract, Formats};
use crate::logs::{self, LogFormat};
use crate::record::observed::ObservedLimits;
use crate::rules::rule_set::{RouteRules, RuleSetting};
use crate::rules::Severity;

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
        threads: check.count(&keys::THREADS),
        max_in_flight: check.count(&keys::MAX_IN_FLIGHT),
        drain_timeout: check.duration(&keys::DRAIN_TIMEOUT),
        upstream_keepalive_pool_size: check.count(&keys::UPSTREAM_KEEPALIVE_POOL_SIZE),
        h2c: check.switch(&keys::H2C),
        upstream_protocol: check.choice(&keys::UPSTREAM_PROTOCOL, &UpstreamProtocol::NAMED),
        engine: check.choice(&keys::PROXY_ENGINE, &Engine::NAMED),
        downstream: downstream(&mut check),
        timeouts: timeouts(&mut check),
        routes: routes(&mut check),
        log: log(&mut check),
        duration_buckets: duration_buckets(&mut check),
        body_sample_bytes: check.count(&keys::BODY_SAMPLE_BYTES),
        error_fields: check.value(&keys::ERROR_FIELDS).unwrap_or_default(),
        findings: findings(&mut check),
        rule_settings: rule_settings(&mut check),
        route_rules: route_rules(&mut check),
        contract: contract(&mut check),
        observed: observed(&mut check),
        otlp: otlp::otlp(&mut check),
    };
    if check.errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(check.errors))
    }
}

/// Reads keys through their definitions and collects what is wrong with them. Reading a key
/// as another kind than it is defined with is a bug in this file, caught by any load (every
/// key is read on every load): it panics naming the key.
struct Checker<'a> {
    sources: &'a Sources,
    errors: Vec<ConfigError>,
}

impl Checker<'_> {
    fn fail(&mut self, key: &Key, problem: impl fmt::Display) {
        self.fail_at(key.path, problem);
    }

    fn fail_at(&mut self, path: &str, problem: impl fmt::Display) {
        self.errors
            .push(ConfigError::at(path, self.sources.origin(path), problem));
    }

    /// The key's value; `None` when unset or of the wrong type (which is recorded).
    fn value<T: DeserializeOwned>(&mut self, key: &Key) -> Option<T> {
        self.value_at(key.path)
    }

    fn value_at<T: DeserializeOwned>(&mut self, path: &str) -> Option<T> {
        self.sources.get(path).unwrap_or_else(|error| {
            self.errors.push(error);
            None
        })
    }

    fn text(&mut self, key: &Key) -> String {
        assert!(
            matches!(key.kind, KeyKind::Text(_)),
            "{} is no text",
            key.path
        );
        self.value(key).unwrap_or_default()
    }

    fn switch(&mut self, key: &Key) -> bool {
        assert!(
            matches!(key.kind, KeyKind::Switch(_)),
            "{} is no switch",
            key.path
        );
        self.value(key).unwrap_or_default()
    }

    /// A whole number within the key's bounds, as the type the configuration keeps it in.
    fn count<T: TryFrom<i64>>(&mut self, key: &Key) -> T {
        let KeyKind::Count { low, high, .. } = key.kind else {
            panic!("{} is no count", key.path);
        };
        let n: i64 = self.value(key).unwrap_or(low);
        if n < low || n > high {
            let problem = if high == i64::MAX {
                format!("must be at least {low}, got {n}")
            } else {
                format!("must be from {low} to {high}, got {n}")
            };
            self.fail(key, problem);
        }
        T::try_from(n.clamp(low, high))
            .unwrap_or_else(|_| panic!("{}'s bounds fit its type", key.path))
    }

    fn duration(&mut self, key: &Key) -> Duration {
        let KeyKind::Duration { nonzero, .. } = key.kind else {
            panic!("{} is no duration", key.path);
        };
        let Some(raw) = self.value::<RawDuration>(key) else {
            return Duration::ZERO;
        };
        match parse_duration(&raw) {
            Ok(duration) if nonzero && duration.is_zero() => {
                self.fail(key, "must be greater than zero");
                duration
            }
            Ok(duration) => duration,
            Err(problem) => {
                self.fail(key, problem);
                Duration::ZERO
            }
        }
    }

    /// A `host:port` address, resolved.
    fn address(&mut self, key: &Key) -> Option<SocketAddr> {
        let text: String = self.value(key)?;
        resolve(&text)
            .map_err(|problem| self.fail(key, problem))
            .ok()
    }

    /// One of the named options; the first stands in when the value is none of them.
    fn choice<T: Copy>(&mut self, key: &Key, named: &[(&str, T)]) -> T {
        let KeyKind::Choice { options, .. } = key.kind else {
            panic!("{} is no choice", key.path);
        };
        assert!(
            named
                .iter()
                .map(|(name, _)| *name)
                .eq(options.iter().copied()),
            "{}'s options are its values' names",
            key.path
        );
        let text: String = self.value(key).unwrap_or_default();
        choose(named, &text).unwrap_or_else(|problem| {
            self.fail(key, problem);
            named[0].1
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

/// The name `value` goes by among `named` (the inverse of [`choose`]).
pub fn name_of<T: Copy + PartialEq>(named: &[(&'static str, T)], value: T) -> &'static str {
    named
        .iter()
        .find(|(_, v)| *v == value)
        .map(|(name, _)| *name)
        .expect("every value has a name")
}

fn network(check: &mut Checker<'_>) -> (SocketAddr, SocketAddr, Option<Upstream>) {
    let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
    let listen = check.address(&keys::LISTEN).unwrap_or(unspecified);
    let admin = check.address(&keys::ADMIN).unwrap_or(unspecified);
    if listen == admin && listen != unspecified {
        let problem = format!(
            "must differ from `{}`: metrics never share the proxy port",
            keys::LISTEN.path
        );
        check.fail(&keys::ADMIN, problem);
    }
    let upstream = check.value::<String>(&keys::UPSTREAM).and_then(|text| {
        let addr = resolve(&text)
            .map_err(|problem| check.fail(&keys::UPSTREAM, problem))
            .ok()?;
        if addr.port() == 0 {
            check.fail(
                &keys::UPSTREAM,
                format!("`{text}` needs a port from 1 to 65535"),
            );
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
        max_header_bytes: check.count(&keys::DOWNSTREAM_MAX_HEADER_BYTES),
        max_headers: check.count(&keys::DOWNSTREAM_MAX_HEADERS),
        max_target_bytes: check.count(&keys::DOWNSTREAM_MAX_TARGET_BYTES),
    };
    // A request line that fits `max_target_bytes` must fit the head, or which limit refuses a
    // long line would depend on how its bytes arrived.
    if head.max_target_bytes + REQUEST_LINE_SLACK >= head.max_header_bytes {
        let problem = format!(
            "must be below {} ({}) by more than {REQUEST_LINE_SLACK}, got {}",
            keys::DOWNSTREAM_MAX_HEADER_BYTES.path,
            head.max_header_bytes,
            head.max_target_bytes
        );
        check.fail(&keys::DOWNSTREAM_MAX_TARGET_BYTES, problem);
    }
    Downstream {
        max_connections: check.count(&keys::DOWNSTREAM_MAX_CONNECTIONS),
        header_timeout: check.duration(&keys::DOWNSTREAM_HEADER_TIMEOUT),
        keepalive_timeout: check.duration(&keys::DOWNSTREAM_KEEPALIVE_TIMEOUT),
        head,
        h2: H2Limits {
            max_concurrent_streams: check.count(&keys::H2_MAX_CONCURRENT_STREAMS),
            stream_window: check.count(&keys::H2_STREAM_WINDOW),
            connection_window: check.count(&keys::H2_CONNECTION_WINDOW),
        },
    }
}

fn timeouts(check: &mut Checker<'_>) -> Timeouts {
    Timeouts {
        connect: check.duration(&keys::TIMEOUTS_CONNECT),
        read: check.duration(&keys::TIMEOUTS_READ),
        write: check.duration(&keys::TIMEOUTS_WRITE),
        idle: check.duration(&keys::TIMEOUTS_IDLE),
        response: Some(check.duration(&keys::TIMEOUTS_RESPONSE)).filter(|limit| !limit.is_zero()),
    }
}

fn routes(check: &mut Checker<'_>) -> Routes {
    let texts: Vec<String> = check.value(&keys::ROUTES_TEMPLATES).unwrap_or_default();
    let templates = texts
        .iter()
        .filter_map(|text| {
            RouteTemplate::parse(text)
                .map_err(|problem| check.fail(&keys::ROUTES_TEMPLATES, problem))
                .ok()
        })
        .collect();
    Routes {
        templates,
        max: check.count(&keys::ROUTES_MAX),
        probes: check.choice(&keys::ROUTES_PROBES, &Probes::NAMED),
    }
}

/// Most bucket bounds a duration histogram may have: each is a series per route, method, code,
/// origin and HTTP version.
const MAX_DURATION_BUCKETS: usize = 32;

fn duration_buckets(check: &mut Checker<'_>) -> Vec<f64> {
    const KEY: &Key = &keys::DURATION_BUCKET_BOUNDS;
    let Some(bounds) = check.value::<Vec<f64>>(KEY) else {
        return crate::record::DURATION_BUCKETS.to_vec();
    };
    let problem = if bounds.is_empty() {
        Some("is empty: give at least one bound, in seconds".to_string())
    } else if bounds.len() > MAX_DURATION_BUCKETS {
        Some(format!(
            "has {} bounds; at most {MAX_DURATION_BUCKETS} (each is a series per route, method, code, origin and HTTP version)",
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
    let format = check.choice(&keys::LOG_FORMAT, &LogFormat::NAMED);
    let level = check.text(&keys::LOG_LEVEL);
    if let Err(problem) = logs::check_level(&level) {
        check.fail(&keys::LOG_LEVEL, problem);
    }
    Log {
        format,
        level,
        access: check.switch(&keys::LOG_ACCESS),
    }
}

fn findings(check: &mut Checker<'_>) -> Findings {
    let token = check
        .value::<PathBuf>(&keys::FINDINGS_TOKEN_FILE)
        .and_then(|path| {
            read_token(&path)
                .map_err(|problem| check.fail(&keys::FINDINGS_TOKEN_FILE, problem))
                .ok()
        });
    Findings {
        enabled: check.switch(&keys::FINDINGS_ENABLED),
        endpoint: check.switch(&keys::FINDINGS_ENDPOINT),
        keep_per_rule: check.count(&keys::FINDINGS_KEEP_PER_RULE),
        log_interval: check.duration(&keys::FINDINGS_LOG_INTERVAL),
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
    let table = keys::RULE_ENABLED.table();
    let raw: BTreeMap<String, RawRule> = check.value_at(table).unwrap_or_default();
    let mut settings = Vec::with_capacity(raw.len());
    for (id, raw) in raw {
        let key = format!("{table}.{id}");
        let Some((rule, _)) = crate::rules::find(&id) else {
            check.fail_at(&key, unknown_rule(&id));
            continue;
        };
        let severity = raw.severity.and_then(|text| {
            let parsed = Severity::parse(&text);
            if parsed.is_none() {
                check.fail_at(
                    &keys::RULE_SEVERITY.path.replace("<id>", &id),
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
    let raw: Vec<RawRouteRules> = check.value(&keys::ROUTE_RULES).unwrap_or_default();
    let origin = check.sources.origin(keys::ROUTE_RULES.path);
    let mut route_rules = Vec::with_capacity(raw.len());
    for (i, raw) in raw.into_iter().enumerate() {
        let mut disabled = Vec::with_capacity(raw.disable.len());
        for id in &raw.disable {
            match crate::rules::find(id) {
                Some((index, _)) => disabled.push(index),
                None => check.errors.push(ConfigError::at(
                    &format!("{}[{i}].disable", keys::ROUTE_RULES.path),
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
    let formats = check.choice(&keys::CONTRACT_FORMATS, &Formats::NAMED);
    let path: PathBuf = check.value(&keys::CONTRACT_OPENAPI)?;
    Contract::load_with(&path, formats)
        .map(Arc::new)
        .map_err(|problem| check.fail(&keys::CONTRACT_OPENAPI, problem))
        .ok()
}

fn observed(check: &mut Checker<'_>) -> Option<ObservedLimits> {
    let limits = ObservedLimits {
        max_depth: check.count(&keys::OBSERVED_MAX_DEPTH),
        max_properties: check.count(&keys::OBSERVED_MAX_PROPERTIES),
        max_responses: check.count(&keys::OBSERVED_MAX_RESPONSES),
        body_every: check.count(&keys::OBSERVED_BODY_EVERY),
    };
    check.switch(&keys::OBSERVED_ENABLED).then_some(limits)
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
