//! The key table: every configuration key, defined once — its path, default, meaning and
//! whether a SIGHUP reload applies it. The loader takes its defaults and its list of known keys
//! from here, reloads ask it which keys need a restart, and `docs/configuration.md` is
//! generated from it (`statuscope reference configuration`; a test fails when it is stale).

use super::Config;
use crate::record::DURATION_BUCKETS;

/// One configuration key.
pub struct Key {
    /// The dotted path as written in a file; a segment `<id>` stands for any one name.
    pub path: &'static str,
    /// The value in force when no source sets the key.
    pub default: DefaultValue,
    /// What the key controls, in Markdown, for the reference.
    pub meaning: &'static str,
    /// When a changed value takes effect.
    pub applies: Applies,
}

/// A key's built-in value. Typed, so the loader feeds it to the same parsing as a user's value.
pub enum DefaultValue {
    /// A string, parsed like one from a file (addresses, durations, names).
    Text(&'static str),
    /// A whole number.
    Int(i64),
    /// A switch.
    Bool(bool),
    /// A list of strings.
    List(&'static [&'static str]),
    /// A list of numbers.
    Numbers(&'static [f64]),
    /// No value: the key is optional; the text says what its absence means.
    Unset(&'static str),
}

/// When a changed value takes effect.
pub enum Applies {
    /// At the next SIGHUP, for every request that starts afterwards.
    OnReload,
    /// Only at the next start; the function says whether two configurations agree on the key,
    /// so a reload can name the keys it could not apply.
    OnRestart(fn(&Config, &Config) -> bool),
}

const fn key(path: &'static str, default: DefaultValue, meaning: &'static str) -> Key {
    Key {
        path,
        default,
        meaning,
        applies: Applies::OnReload,
    }
}

impl Key {
    const fn restart(self, same: fn(&Config, &Config) -> bool) -> Key {
        Key {
            applies: Applies::OnRestart(same),
            ..self
        }
    }

    /// Does `path` (a key as a source spelt it) name this key?
    pub fn matches(&self, path: &str) -> bool {
        segments_match(self.path, path, false)
    }

    /// Does this key continue below the table `path`?
    pub fn is_below(&self, path: &str) -> bool {
        path.is_empty() || segments_match(self.path, path, true)
    }

    /// `true` for a key with a `<name>` segment, which names a family of keys.
    pub fn is_pattern(&self) -> bool {
        self.path.contains('<')
    }
}

fn segments_match(known: &str, path: &str, prefix_only: bool) -> bool {
    let mut known = known.split('.');
    for part in path.split('.') {
        match known.next() {
            Some(k) if k.starts_with('<') || k == part => {}
            _ => return false,
        }
    }
    known.next().is_some() == prefix_only
}

/// The key `path` names, if any.
pub fn find(path: &str) -> Option<&'static Key> {
    KEYS.iter().find(|key| key.matches(path))
}

/// The keys that differ between `new` and `running` and that a reload cannot apply.
pub fn needing_restart(new: &Config, running: &Config) -> Vec<&'static str> {
    KEYS.iter()
        .filter_map(|key| match key.applies {
            Applies::OnRestart(same) if !same(new, running) => Some(key.path),
            _ => None,
        })
        .collect()
}

/// The proxy's default port, written once: a macro so `concat!` can build the constant
/// defaults from it.
#[macro_export]
macro_rules! default_proxy_port {
    () => {
        7070
    };
}

/// The admin port's default (see [`default_proxy_port!`]).
#[macro_export]
macro_rules! default_admin_port {
    () => {
        9070
    };
}

/// The default proxy port, as a number (the injector's `--proxy-port`).
pub const PROXY_PORT: u16 = default_proxy_port!();

/// The default admin port, as a number (the injector's `--admin-port`).
pub const ADMIN_PORT: u16 = default_admin_port!();

/// Every key, in the order of the reference.
pub const KEYS: &[Key] = &[
    key(
        "listen",
        DefaultValue::Text(concat!("0.0.0.0:", default_proxy_port!())),
        "proxy listener, `host:port` (a name is resolved once at start-up)",
    )
    .restart(|a, b| a.listen == b.listen),
    key(
        "admin",
        DefaultValue::Text(concat!("0.0.0.0:", default_admin_port!())),
        "admin listener (`/metrics`, `/healthz`, `/readyz`, `/findings`); must differ from `listen`",
    )
    .restart(|a, b| a.admin == b.admin),
    key(
        "upstream",
        DefaultValue::Unset("none (required by `run`)"),
        "the service, `host:port`; a host name is resolved once at start-up",
    ),
    key(
        "threads",
        DefaultValue::Int(1),
        "proxy worker threads; with the fast engine each has its own runtime and listening socket (`SO_REUSEPORT`)",
    )
    .restart(|a, b| a.threads == b.threads),
    key(
        "max_in_flight",
        DefaultValue::Int(1024),
        "requests proxied at once; past it, 503 with `Retry-After`",
    ),
    key(
        "drain_timeout",
        DefaultValue::Text("10s"),
        "how long SIGTERM waits for in-flight requests",
    )
    .restart(|a, b| a.drain_timeout == b.drain_timeout),
    // Every request in flight holds an upstream connection: a pool as large as the in-flight
    // limit never closes one that the next request would have reused (at 256 concurrent
    // requests, a pool of 128 cost a new upstream connection per second request). Idle pooled
    // connections hold no buffer, and expire after `timeouts.idle`.
    key(
        "upstream_keepalive_pool_size",
        DefaultValue::Int(1024),
        "idle upstream connections kept for reuse (the fast engine spreads them over its workers); as large as `max_in_flight`'s default, so the pool never closes a connection the next request would have reused",
    )
    .restart(|a, b| a.upstream_keepalive_pool_size == b.upstream_keepalive_pool_size),
    key(
        "h2c",
        DefaultValue::Bool(true),
        "accept HTTP/2 with prior knowledge on the proxy port",
    )
    .restart(|a, b| a.h2c == b.h2c),
    key(
        "upstream_protocol",
        DefaultValue::Text("http1"),
        "what statuscope speaks to the upstream: `http1`; `h2c`, HTTP/2 with prior knowledge, streams multiplexed over pooled connections (a gRPC server), HTTP/1 clients' requests included; or `downstream`, the client's own (HTTP/2 for h2c clients, HTTP/1.1 for the others), for a service that serves gRPC and HTTP/1 on one port; see [grpc.md](grpc.md)",
    )
    .restart(|a, b| a.upstream_protocol == b.upstream_protocol),
    key(
        "proxy.engine",
        DefaultValue::Text("fast"),
        "what carries exchanges, HTTP/1 and HTTP/2: `fast`, statuscope's own path, or `pingora`, pingora-proxy's `ProxyHttp` (the fallback); see [engines.md](engines.md)",
    )
    .restart(|a, b| a.engine == b.engine),
    // A pod's file descriptor limit is commonly 65,536 or more; each client connection also
    // costs an upstream connection while a request is in flight.
    key(
        "downstream.max_connections",
        DefaultValue::Int(10_000),
        "client connections open at once; more are closed at accept and counted",
    ),
    // nginx allows 60 s; a sidecar's clients are in the same cluster and send heads at once.
    key(
        "downstream.header_timeout",
        DefaultValue::Text("10s"),
        "a new connection must send its first bytes, and a request head must be complete once begun, within this; otherwise 408 (or a silent close when nothing came)",
    ),
    key(
        "downstream.keepalive_timeout",
        DefaultValue::Text("60s"),
        "how long an idle keep-alive client connection waits for its next request",
    ),
    // Above the 8-16 KiB most servers accept, below anything that needs a second look.
    key(
        "downstream.max_header_bytes",
        DefaultValue::Int(32 * 1024),
        "bytes of a request head; 431 beyond",
    ),
    key(
        "downstream.max_headers",
        DefaultValue::Int(100),
        "header fields in a request; 431 beyond",
    ),
    key(
        "downstream.max_target_bytes",
        DefaultValue::Int(8 * 1024),
        "bytes of the request target; 414 beyond. Must stay below `downstream.max_header_bytes` by more than 64, so which limit refuses a long request line never depends on how its bytes arrive",
    ),
    // RFC 9113 §6.5.2 recommends no fewer than 100; nginx allows 128, HAProxy 100.
    key(
        "h2.max_concurrent_streams",
        DefaultValue::Int(100),
        "streams one HTTP/2 client connection may have open at once; more are refused (RST_STREAM REFUSED_STREAM) and counted against the client (see [security.md](security.md))",
    ),
    // What one stalled stream can make statuscope hold: 100 streams of a client that never
    // reads stay near 25 MiB.
    key(
        "h2.stream_window",
        DefaultValue::Int(256 * 1024),
        "bytes an HTTP/2 stream may have in flight toward statuscope before statuscope has passed them on — a client's request body, or the upstream's response body: the most statuscope buffers for one stream. At least 65,535 (the protocol's default window), at most 16 MiB",
    ),
    key(
        "h2.connection_window",
        DefaultValue::Int(1024 * 1024),
        "bytes one HTTP/2 client connection may have in flight toward statuscope across all its streams: the most statuscope buffers for one client connection's request bodies. At least 65,535, at most 2^31-1",
    ),
    key(
        "timeouts.connect",
        DefaultValue::Text("2s"),
        "establishing a connection to the upstream",
    ),
    key(
        "timeouts.read",
        DefaultValue::Text("30s"),
        "each read from the upstream (so also the wait for the response header)",
    ),
    key(
        "timeouts.write",
        DefaultValue::Text("30s"),
        "each write to the upstream",
    ),
    // Below the 60-75 s keep-alive timeouts common web servers use, so a pooled connection is
    // dropped here before the upstream closes it under a request.
    key(
        "timeouts.idle",
        DefaultValue::Text("50s"),
        "how long an unused pooled upstream connection is kept; keep it below the service's own keep-alive timeout, or a reused connection may be closed under a request",
    ),
    // Long enough for any API response and most downloads; 0 lifts it for streaming routes.
    key(
        "timeouts.response",
        DefaultValue::Text("300s"),
        "the whole upstream response, from the request's arrival to the last body byte: bounds an upstream that trickles a byte just within `timeouts.read`; `0` lifts it (for long streams)",
    ),
    key(
        "routes.templates",
        DefaultValue::List(&[]),
        "route templates such as `/users/{id}`, matched in order before automatic normalisation (see the README's *Routes*)",
    ),
    key(
        "routes.max",
        DefaultValue::Int(200),
        "distinct automatically normalised routes before `__other__`",
    ),
    key(
        "routes.probes",
        DefaultValue::Text("separate"),
        "the kubelet's probes (`User-Agent: kube-probe/…`): `separate`, tallied and judged under `route=\"__probe__\"`, which the SLO recording rules and the dashboards' route lists leave out; or `mixed`, under their paths' routes like any request",
    ),
    key(
        "metrics.duration_buckets",
        DefaultValue::Numbers(DURATION_BUCKETS),
        "the upper bounds, in seconds and ascending, of the buckets of `statuscope_response_duration_seconds` and `statuscope_grpc_duration_seconds` (at most 32; each is one more series per route, method and class): sub-millisecond edges for a cache, minutes for an export. The dashboards' quantiles work with any set; the latency SLO's rules read the bound at its threshold (`0.5`), which `check-config` warns about when it is missing",
    )
    .restart(|a, b| a.duration_buckets == b.duration_buckets),
    key(
        "log.format",
        DefaultValue::Text("human"),
        "`human` or `json`, to standard error",
    )
    .restart(|a, b| a.log.format == b.log.format),
    key(
        "log.level",
        DefaultValue::Text("info"),
        "a filter such as `info`, `warn` or `statuscope=debug,pingora_core=warn`; pingora's own `debug` and `trace` lines are never emitted, whatever the filter, because they print whole headers and bodies",
    )
    .restart(|a, b| a.log.level == b.log.level),
    key(
        "log.access",
        DefaultValue::Bool(false),
        "one line per request: route, method, code, origin, duration — never bodies, query strings or credentials",
    ),
    key(
        "body_sample_bytes",
        DefaultValue::Int(8 * 1024),
        // The bound is MAX_BODY_SAMPLE_BYTES; a test keeps the text and the constant together.
        "bytes of each response body kept for the rules, 0 to 1048576; `0` turns sampling off (header rules still run)",
    ),
    key(
        "error_fields",
        DefaultValue::List(&["code", "error", "type", "title", "message"]),
        "top-level JSON fields that make an error body structured (`unstructured-error-body`)",
    ),
    key(
        "findings.enabled",
        DefaultValue::Bool(true),
        "evaluate the rule catalogue at all",
    ),
    key(
        "findings.endpoint",
        DefaultValue::Bool(true),
        "serve `GET /findings` on the admin port",
    )
    .restart(|a, b| a.findings.endpoint == b.findings.endpoint),
    key(
        "findings.keep_per_rule",
        DefaultValue::Int(20),
        "recent findings kept per rule for `/findings`",
    )
    .restart(|a, b| a.findings.keep_per_rule == b.findings.keep_per_rule),
    key(
        "findings.log_interval",
        DefaultValue::Text("60s"),
        "at most one log line per rule and route per interval",
    )
    .restart(|a, b| a.findings.log_interval == b.findings.log_interval),
    key(
        "findings.token_file",
        DefaultValue::Unset("none"),
        "a file holding a bearer token that `GET /findings` then requires (`Authorization: Bearer …`); mount it from a Secret. `/metrics` and the probes stay open",
    )
    .restart(|a, b| a.findings.token == b.findings.token),
    key(
        "contract.openapi",
        DefaultValue::Unset("none"),
        "the service's OpenAPI document (3.0.x or 3.1.x, YAML or JSON; `$ref`s to files beside it are followed): its paths become route templates ahead of `routes.templates`, and the contract rules judge every response against it; an unreadable or invalid document stops start-up naming the file and the JSON pointer of the problem (at reload, the running configuration stays). See [contract.md](contract.md)",
    ),
    key(
        "rules.<id>.enabled",
        DefaultValue::Bool(true),
        "switch one rule off (ids as in `statuscope rules`; `_` may stand for `-`, as environment variables need)",
    ),
    key(
        "rules.<id>.severity",
        DefaultValue::Unset("the rule's own"),
        "override a rule's severity: `error`, `warning` or `info`",
    ),
    key(
        "route_rules",
        DefaultValue::List(&[]),
        "per-route exceptions, in the file only: a list of `{route, disable: [ids], error_fields: [names]}`",
    ),
];

/// How a default reads in the reference.
fn describe_default(default: &DefaultValue) -> String {
    match default {
        DefaultValue::Text(text) => format!("`{text}`"),
        DefaultValue::Int(n) => format!("`{n}`"),
        DefaultValue::Bool(b) => format!("`{b}`"),
        DefaultValue::List(items) => format!("`[{}]`", items.join(", ")),
        DefaultValue::Numbers(numbers) => {
            let shown: Vec<String> = numbers.iter().map(f64::to_string).collect();
            format!("`[{}]`", shown.join(", "))
        }
        DefaultValue::Unset(meaning) => (*meaning).to_string(),
    }
}

const INTRODUCTION: &str = "\
# Configuration reference

Generated from the key table in `src/config/keys.rs` by `statuscope reference configuration`
(`make docs`); a test fails when this file is stale.

Layers, each overriding the one before: built-in defaults < file (`--config`, YAML or TOML) <
environment (`STATUSCOPE_…`) < command-line flags (`--listen`, `--admin`, `--upstream`).

Environment variables are the key in upper case with the prefix `STATUSCOPE_`; nested keys use
a double underscore: `STATUSCOPE_UPSTREAM=127.0.0.1:8080`, `STATUSCOPE_TIMEOUTS__READ=5s`,
`STATUSCOPE_ROUTES__TEMPLATES=/users/{id},/orders/{id}` (lists are comma-separated).

An unknown key, an address that is not `host:port`, a value of the wrong type, a negative or
malformed duration, a number out of range or a malformed route template stops start-up before
any port is bound, with exit status 2 and one line per invalid key — every one, not only the
first — naming the key and the source of its value:

```
statuscope: configuration key `timeouts.connect` (from the environment): must be a non-negative duration, got `-2s`
statuscope: configuration key `threads` (from /etc/statuscope/config.yaml): must be at least 1, got 0
```

`statuscope check-config FILE` runs the same validation without starting. Durations are written
`500ms`, `2s`, `1m`, or as a number of seconds.

On SIGHUP the configuration is read again from the same sources. Keys marked *reload* take
effect for every request that starts afterwards (a request in flight finishes under the
settings it started with); keys marked *restart* are read once at start, and a reload that
changes them logs their names. An invalid configuration at reload is rejected with a `warn`
line per invalid key, and the running one stays in force.

";

const EXAMPLE: &str = "
An example file:

```yaml
listen: 0.0.0.0:7070
admin: 0.0.0.0:9070
upstream: 127.0.0.1:8080
timeouts:
  connect: 1s
  read: 15s
routes:
  templates:
    - /users/{id}
    - /users/{id}/orders/{order}
    - /static/{path*}
  max: 300
log:
  format: json
rules:
  missing-retry-after:
    severity: error
route_rules:
  - route: /graphql
    disable: [error-body-on-success]
```
";

/// `docs/configuration.md`: generated from [`KEYS`], so it cannot drift from the loader.
pub fn reference_markdown() -> String {
    let mut out = String::from(INTRODUCTION);
    out.push_str("| key | default | on SIGHUP | meaning |\n|---|---|---|---|\n");
    for key in KEYS {
        let applies = match key.applies {
            Applies::OnReload => "reload",
            Applies::OnRestart(_) => "restart",
        };
        out.push_str(&format!(
            "| `{}` | {} | {applies} | {} |\n",
            key.path,
            describe_default(&key.default),
            key.meaning
        ));
    }
    out.push_str(EXAMPLE);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::MAX_BODY_SAMPLE_BYTES;

    #[test]
    fn docs_configuration_md_is_generated_from_the_key_table() {
        let committed = include_str!("../../docs/configuration.md");
        assert!(
            committed == reference_markdown(),
            "docs/configuration.md is stale: run `make docs`"
        );
    }

    #[test]
    fn the_sample_bound_in_the_reference_is_the_enforced_one() {
        let meaning = find("body_sample_bytes").unwrap().meaning;
        assert!(meaning.contains(&format!("0 to {MAX_BODY_SAMPLE_BYTES}")));
    }

    #[test]
    fn paths_are_unique_and_patterns_match_one_segment() {
        for (i, a) in KEYS.iter().enumerate() {
            assert!(KEYS[i + 1..].iter().all(|b| a.path != b.path), "{}", a.path);
        }
        assert!(find("rules.missing-retry-after.enabled").is_some());
        assert!(find("rules.enabled").is_none());
        assert!(find("timeouts").is_none());
        assert!(KEYS.iter().any(|key| key.is_below("timeouts")));
    }
}
