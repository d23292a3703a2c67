//! The key table: every configuration key, defined once — its path, default, meaning and
//! whether a SIGHUP reload applies it. The loader takes its defaults and its list of known keys
//! from here, reloads ask it which keys need a restart, and `docs/configuration.md` is
//! generated from it (`statuscope reference configuration`; a test fails when it is stale).

use super::key::{define_key, names};
pub use super::key::{Applies, Key, KeyKind, MAX_COUNT};
use super::{Config, Engine, Probes, UpstreamProtocol};
use crate::contract::Formats;
use crate::export::otlp::{Compression, Protocol, Temporality};
use crate::logs::LogFormat;
use crate::record::DURATION_BUCKETS;
use crate::sample::MAX_BODY_SAMPLE_BYTES;

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
    LISTEN,
    ADMIN,
    UPSTREAM,
    THREADS,
    MAX_IN_FLIGHT,
    DRAIN_TIMEOUT,
    UPSTREAM_KEEPALIVE_POOL_SIZE,
    H2C,
    UPSTREAM_PROTOCOL,
    PROXY_ENGINE,
    DOWNSTREAM_MAX_CONNECTIONS,
    DOWNSTREAM_HEADER_TIMEOUT,
    DOWNSTREAM_KEEPALIVE_TIMEOUT,
    DOWNSTREAM_MAX_HEADER_BYTES,
    DOWNSTREAM_MAX_HEADERS,
    DOWNSTREAM_MAX_TARGET_BYTES,
    H2_MAX_CONCURRENT_STREAMS,
    H2_STREAM_WINDOW,
    H2_CONNECTION_WINDOW,
    TIMEOUTS_CONNECT,
    TIMEOUTS_READ,
    TIMEOUTS_WRITE,
    TIMEOUTS_IDLE,
    TIMEOUTS_RESPONSE,
    ROUTES_TEMPLATES,
    ROUTES_MAX,
    ROUTES_PROBES,
    DURATION_BUCKET_BOUNDS,
    LOG_FORMAT,
    LOG_LEVEL,
    LOG_ACCESS,
    BODY_SAMPLE_BYTES,
    ERROR_FIELDS,
    FINDINGS_ENABLED,
    FINDINGS_ENDPOINT,
    FINDINGS_KEEP_PER_RULE,
    FINDINGS_LOG_INTERVAL,
    FINDINGS_TOKEN_FILE,
    CONTRACT_OPENAPI,
    CONTRACT_FORMATS,
    OBSERVED_ENABLED,
    OBSERVED_MAX_DEPTH,
    OBSERVED_MAX_PROPERTIES,
    OBSERVED_MAX_RESPONSES,
    OBSERVED_BODY_EVERY,
    OTLP_ENDPOINT,
    OTLP_PROTOCOL,
    OTLP_INTERVAL,
    OTLP_TIMEOUT,
    OTLP_HEADERS,
    OTLP_HEADER_FILES,
    OTLP_RESOURCE,
    OTLP_TEMPORALITY,
    OTLP_COMPRESSION,
    OTLP_QUEUE,
    RULE_ENABLED,
    RULE_SEVERITY,
    ROUTE_RULES,
];

define_key!(
    LISTEN,
    "listen",
    KeyKind::Address(concat!("0.0.0.0:", default_proxy_port!())),
    "proxy listener, `host:port` (a name is resolved once at start-up)",
    restart: |a, b| a.listen == b.listen,
);

define_key!(
    ADMIN,
    "admin",
    KeyKind::Address(concat!("0.0.0.0:", default_admin_port!())),
    "admin listener (`/metrics`, `/healthz`, `/readyz`, `/findings`); must differ from `listen`",
    restart: |a, b| a.admin == b.admin,
);

define_key!(
    UPSTREAM,
    "upstream",
    KeyKind::Optional("none (required by `run`)"),
    "the service, `host:port`; a host name is resolved once at start-up",
);

define_key!(
    THREADS,
    "threads",
    KeyKind::count(1, 1, MAX_COUNT),
    "proxy worker threads; with the fast engine each has its own runtime and listening socket (`SO_REUSEPORT`)",
    restart: |a, b| a.threads == b.threads,
);

define_key!(
    MAX_IN_FLIGHT,
    "max_in_flight",
    KeyKind::count(1024, 1, MAX_COUNT),
    "requests proxied at once; past it, 503 with `Retry-After`",
);

define_key!(
    DRAIN_TIMEOUT,
    "drain_timeout",
    KeyKind::duration("10s"),
    "how long SIGTERM waits for in-flight requests",
    restart: |a, b| a.drain_timeout == b.drain_timeout,
);

// Every request in flight holds an upstream connection: a pool as large as the in-flight
// limit never closes one that the next request would have reused (at 256 concurrent
// requests, a pool of 128 cost a new upstream connection per second request). Idle pooled
// connections hold no buffer, and expire after `timeouts.idle`.
define_key!(
    UPSTREAM_KEEPALIVE_POOL_SIZE,
    "upstream_keepalive_pool_size",
    KeyKind::count(1024, 1, MAX_COUNT),
    "idle upstream connections kept for reuse (the fast engine spreads them over its workers); as large as `max_in_flight`'s default, so the pool never closes a connection the next request would have reused",
    restart: |a, b| a.upstream_keepalive_pool_size == b.upstream_keepalive_pool_size,
);

define_key!(
    H2C,
    "h2c",
    KeyKind::Switch(true),
    "accept HTTP/2 with prior knowledge on the proxy port",
    restart: |a, b| a.h2c == b.h2c,
);

define_key!(
    UPSTREAM_PROTOCOL,
    "upstream_protocol",
    KeyKind::choice("http1", &names(UpstreamProtocol::NAMED)),
    "what statuscope speaks to the upstream: `http1`; `h2c`, HTTP/2 with prior knowledge, streams multiplexed over pooled connections (a gRPC server), HTTP/1 clients' requests included; or `downstream`, the client's own (HTTP/2 for h2c clients, HTTP/1.1 for the others), for a service that serves gRPC and HTTP/1 on one port; see [grpc.md](grpc.md)",
    restart: |a, b| a.upstream_protocol == b.upstream_protocol,
);

define_key!(
    PROXY_ENGINE,
    "proxy.engine",
    KeyKind::choice("fast", &names(Engine::NAMED)),
    "what carries exchanges, HTTP/1 and HTTP/2: `fast`, statuscope's own path, or `pingora`, pingora-proxy's `ProxyHttp` (the fallback); see [engines.md](engines.md)",
    restart: |a, b| a.engine == b.engine,
);

// A pod's file descriptor limit is commonly 65,536 or more; each client connection also
// costs an upstream connection while a request is in flight.
define_key!(
    DOWNSTREAM_MAX_CONNECTIONS,
    "downstream.max_connections",
    KeyKind::count(10_000, 1, MAX_COUNT),
    "client connections open at once; more are closed at accept and counted",
);

// nginx allows 60 s; a sidecar's clients are in the same cluster and send heads at once.
define_key!(
    DOWNSTREAM_HEADER_TIMEOUT,
    "downstream.header_timeout",
    KeyKind::nonzero_duration("10s"),
    "a new connection must send its first bytes, and a request head must be complete once begun, within this; otherwise 408 (or a silent close when nothing came)",
);

define_key!(
    DOWNSTREAM_KEEPALIVE_TIMEOUT,
    "downstream.keepalive_timeout",
    KeyKind::duration("60s"),
    "how long an idle keep-alive client connection waits for its next request",
);

// Above the 8-16 KiB most servers accept, below anything that needs a second look.
define_key!(
    DOWNSTREAM_MAX_HEADER_BYTES,
    "downstream.max_header_bytes",
    KeyKind::count(32 * 1024, 1, MAX_COUNT),
    "bytes of a request head; 431 beyond",
);

define_key!(
    DOWNSTREAM_MAX_HEADERS,
    "downstream.max_headers",
    KeyKind::count(100, 1, MAX_COUNT),
    "header fields in a request; 431 beyond",
);

define_key!(
    DOWNSTREAM_MAX_TARGET_BYTES,
    "downstream.max_target_bytes",
    KeyKind::count(8 * 1024, 1, MAX_COUNT),
    "bytes of the request target; 414 beyond. Must stay below `downstream.max_header_bytes` by more than 64, so which limit refuses a long request line never depends on how its bytes arrive",
);

// RFC 9113 §6.5.2 recommends no fewer than 100; nginx allows 128, HAProxy 100.
define_key!(
    H2_MAX_CONCURRENT_STREAMS,
    "h2.max_concurrent_streams",
    KeyKind::count(100, 1, 10_000),
    "streams one HTTP/2 client connection may have open at once; more are refused (RST_STREAM REFUSED_STREAM) and counted against the client (see [security.md](security.md))",
);

// What one stalled stream can make statuscope hold: 100 streams of a client that never
// reads stay near 25 MiB.
define_key!(
    H2_STREAM_WINDOW,
    "h2.stream_window",
    KeyKind::count(256 * 1024, 65_535, 16 << 20),
    "bytes an HTTP/2 stream may have in flight toward statuscope before statuscope has passed them on — a client's request body, or the upstream's response body: the most statuscope buffers for one stream.",
);

define_key!(
    H2_CONNECTION_WINDOW,
    "h2.connection_window",
    KeyKind::count(1024 * 1024, 65_535, (1 << 31) - 1),
    "bytes one HTTP/2 client connection may have in flight toward statuscope across all its streams: the most statuscope buffers for one client connection's request bodies.",
);

define_key!(
    TIMEOUTS_CONNECT,
    "timeouts.connect",
    KeyKind::nonzero_duration("2s"),
    "establishing a connection to the upstream",
);

define_key!(
    TIMEOUTS_READ,
    "timeouts.read",
    KeyKind::nonzero_duration("30s"),
    "each read from the upstream (so also the wait for the response header)",
);

define_key!(
    TIMEOUTS_WRITE,
    "timeouts.write",
    KeyKind::nonzero_duration("30s"),
    "each write to the upstream",
);

// Below the 60-75 s keep-alive timeouts common web servers use, so a pooled connection is
// dropped here before the upstream closes it under a request.
define_key!(
    TIMEOUTS_IDLE,
    "timeouts.idle",
    KeyKind::duration("50s"),
    "how long an unused pooled upstream connection is kept; keep it below the service's own keep-alive timeout, or a reused connection may be closed under a request",
);

// Long enough for any API response and most downloads; 0 lifts it for streaming routes.
define_key!(
    TIMEOUTS_RESPONSE,
    "timeouts.response",
    KeyKind::duration("300s"),
    "the whole upstream response, from the request's arrival to the last body byte: bounds an upstream that trickles a byte just within `timeouts.read`; `0` lifts it (for long streams)",
);

define_key!(
    ROUTES_TEMPLATES,
    "routes.templates",
    KeyKind::List(&[]),
    "route templates such as `/users/{id}`, matched in order before automatic normalisation (see the README's *Routes*)",
);

define_key!(
    ROUTES_MAX,
    "routes.max",
    KeyKind::count(200, 1, MAX_COUNT),
    "distinct automatically normalised routes before `__other__`",
);

define_key!(
    ROUTES_PROBES,
    "routes.probes",
    KeyKind::choice("separate", &names(Probes::NAMED)),
    "the kubelet's probes (`User-Agent: kube-probe/…`): `separate`, tallied and judged under `route=\"__probe__\"`, which the SLO recording rules and the dashboards' route lists leave out; or `mixed`, under their paths' routes like any request",
);

define_key!(
    DURATION_BUCKET_BOUNDS,
    "metrics.duration_buckets",
    KeyKind::Numbers(DURATION_BUCKETS),
    "the upper bounds, in seconds and ascending, of the buckets of `statuscope_response_duration_seconds` and `statuscope_grpc_duration_seconds` (at most 32; each is one more series per route, method, code, origin and HTTP version): sub-millisecond edges for a cache, minutes for an export. The dashboards' quantiles work with any set; the latency SLO's rules read the bound at its threshold (`0.5`), which `check-config` warns about when it is missing",
    restart: |a, b| a.duration_buckets == b.duration_buckets,
);

define_key!(
    LOG_FORMAT,
    "log.format",
    KeyKind::choice("human", &names(LogFormat::NAMED)),
    "how lines are written to standard error",
    restart: |a, b| a.log.format == b.log.format,
);

define_key!(
    LOG_LEVEL,
    "log.level",
    KeyKind::Text("info"),
    "a filter such as `info`, `warn` or `statuscope=debug,pingora_core=warn`; pingora's own `debug` and `trace` lines are never emitted, whatever the filter, because they print whole headers and bodies",
    restart: |a, b| a.log.level == b.log.level,
);

define_key!(
    LOG_ACCESS,
    "log.access",
    KeyKind::Switch(false),
    "one line per request: route, method, code, origin, duration — never bodies, query strings or credentials",
);

define_key!(
    BODY_SAMPLE_BYTES,
    "body_sample_bytes",
    KeyKind::count(8 * 1024, 0, MAX_BODY_SAMPLE_BYTES as i64),
    "bytes of each response body kept for the rules; `0` turns sampling off (header rules still run)",
);

define_key!(
    ERROR_FIELDS,
    "error_fields",
    KeyKind::List(&["code", "error", "type", "title", "message"]),
    "top-level JSON fields that make an error body structured (`unstructured-error-body`)",
);

define_key!(
    FINDINGS_ENABLED,
    "findings.enabled",
    KeyKind::Switch(true),
    "evaluate the rule catalogue at all",
);

define_key!(
    FINDINGS_ENDPOINT,
    "findings.endpoint",
    KeyKind::Switch(true),
    "serve `GET /findings` on the admin port",
    restart: |a, b| a.findings.endpoint == b.findings.endpoint,
);

define_key!(
    FINDINGS_KEEP_PER_RULE,
    "findings.keep_per_rule",
    KeyKind::count(20, 1, MAX_COUNT),
    "recent findings kept per rule for `/findings`",
    restart: |a, b| a.findings.keep_per_rule == b.findings.keep_per_rule,
);

define_key!(
    FINDINGS_LOG_INTERVAL,
    "findings.log_interval",
    KeyKind::duration("60s"),
    "at most one log line per rule and route per interval",
    restart: |a, b| a.findings.log_interval == b.findings.log_interval,
);

define_key!(
    FINDINGS_TOKEN_FILE,
    "findings.token_file",
    KeyKind::Optional("none"),
    "a file holding a bearer token that `GET /findings` then requires (`Authorization: Bearer …`); mount it from a Secret. `/metrics` and the probes stay open",
    restart: |a, b| a.findings.token == b.findings.token,
);

define_key!(
    CONTRACT_OPENAPI,
    "contract.openapi",
    KeyKind::Optional("none"),
    "the service's OpenAPI document (3.0.x or 3.1.x, YAML or JSON; `$ref`s to files beside it are followed): its paths become route templates ahead of `routes.templates`, and the contract rules judge every response against it; an unreadable or invalid document stops start-up naming the file and the JSON pointer of the problem (at reload, the running configuration stays). See [contract.md](contract.md)",
);

define_key!(
    CONTRACT_FORMATS,
    "contract.formats",
    KeyKind::choice("annotate", &names(Formats::NAMED)),
    "what a schema's `format` does in the contract's bodies and headers: `annotate`, JSON Schema 2020-12's default (a value that does not match its format still validates), or `assert` — `date-time`, `date`, `time`, `email`, `uuid`, `uri`, `ipv4`, `ipv6` and the other formats the validator knows are checked, and a mismatch is a `body-schema-mismatch` or `declared-header-mismatch`; see [contract.md](contract.md) for the cost",
);

define_key!(
    OBSERVED_ENABLED,
    "observed.enabled",
    KeyKind::Switch(true),
    "learn the observed contract — routes, methods, codes, media types, headers and JSON body schemas, as OpenAPI 3.1 at `GET /contract/observed` (see [contract.md](contract.md)); runs on the judging path, so only while `findings.enabled`",
    restart: |a, b| a.observed.is_some() == b.observed.is_some(),
);

define_key!(
    OBSERVED_MAX_DEPTH,
    "observed.max_depth",
    KeyKind::count(8, 1, 64),
    "nesting of a JSON body learnt; deeper values are marked `x-statuscope-limit: depth` in the schema",
    restart: |a, b| a.observed.zip(b.observed).is_none_or(|(a, b)| a.max_depth == b.max_depth),
);

define_key!(
    OBSERVED_MAX_PROPERTIES,
    "observed.max_properties",
    KeyKind::count(64, 1, 4096),
    "properties learnt per object, and eight times as many per schema in all its objects; past it the object is marked `x-statuscope-limit: properties`",
    restart: |a, b| a.observed.zip(b.observed).is_none_or(|(a, b)| a.max_properties == b.max_properties),
);

define_key!(
    OBSERVED_MAX_RESPONSES,
    "observed.max_responses",
    KeyKind::count(16, 1, 256),
    "status codes learnt per route and method, and media types per code; past it the operation is marked `x-statuscope-limit: responses`",
    restart: |a, b| a.observed.zip(b.observed).is_none_or(|(a, b)| a.max_responses == b.max_responses),
);

define_key!(
    OBSERVED_BODY_EVERY,
    "observed.body_every",
    KeyKind::count(256, 1, 1_000_000),
    "after the first 16 JSON bodies of a response (code and media type), one in this many is learnt: a stable shape needs no more, and learning a 1 KiB body costs some 20,000 instructions (see [contract.md](contract.md#the-observed-contract)); `1` learns every body",
    restart: |a, b| a.observed.zip(b.observed).is_none_or(|(a, b)| a.body_every == b.body_every),
);

define_key!(
    OTLP_ENDPOINT,
    "otlp.endpoint",
    KeyKind::Optional("none: no push (`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`, or `OTEL_EXPORTER_OTLP_ENDPOINT`, when set)"),
    "push every family and OpenTelemetry's HTTP and RPC views of them to an OpenTelemetry Collector over OTLP/HTTP: the collector's base URL, `http://collector:4318`, to which `/v1/metrics` is appended (http only: statuscope is built without TLS). See [otlp.md](otlp.md)",
    restart: |a, b| a.otlp.is_some() == b.otlp.is_some(),
);

define_key!(
    OTLP_PROTOCOL,
    "otlp.protocol",
    KeyKind::choice("http/protobuf", &names(Protocol::NAMED)),
    "the OTLP transport (`OTEL_EXPORTER_OTLP_PROTOCOL`): protobuf over HTTP, a collector's port 4318; OTLP/gRPC is not offered",
);

define_key!(
    OTLP_INTERVAL,
    "otlp.interval",
    KeyKind::nonzero_duration("15s"),
    "time between exports (`OTEL_METRIC_EXPORT_INTERVAL`, in milliseconds)",
);

define_key!(
    OTLP_TIMEOUT,
    "otlp.timeout",
    KeyKind::nonzero_duration("10s"),
    "how long one export may take, connecting included, before it counts as failed and is retried (`OTEL_EXPORTER_OTLP_TIMEOUT`, in milliseconds); also the most the final export at SIGTERM waits",
);

define_key!(
    OTLP_HEADERS,
    "otlp.headers",
    KeyKind::List(&[]),
    "header fields sent with every export, `name=value` each (`OTEL_EXPORTER_OTLP_HEADERS`'s form), such as a tenant's `X-Scope-OrgID=shop`; values are never logged",
);

define_key!(
    OTLP_HEADER_FILES,
    "otlp.header_files",
    KeyKind::List(&[]),
    "header fields whose values are read from files, `name=/path` each, such as `Authorization=/var/run/secrets/otlp/authorization` mounted from a Secret; read again at every export, so a rotated token is used without a reload",
);

define_key!(
    OTLP_RESOURCE,
    "otlp.resource",
    KeyKind::List(&[]),
    "resource attributes, `key=value` each, over those of `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_SERVICE_NAME` (the manifests set `k8s.pod.name`, `k8s.namespace.name` and `service.name` there from the Downward API); `service.name` defaults to `unknown_service:statuscope`",
);

define_key!(
    OTLP_TEMPORALITY,
    "otlp.temporality",
    KeyKind::choice("cumulative", &names(Temporality::NAMED)),
    "sums and histograms as totals since start (`cumulative`: an export lost is made good by the next) or as changes since the previous export (`delta`; `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`)",
);

define_key!(
    OTLP_COMPRESSION,
    "otlp.compression",
    KeyKind::choice("gzip", &names(Compression::NAMED)),
    "the export body's encoding, `gzip` or `none` (`OTEL_EXPORTER_OTLP_COMPRESSION`). gzip by default, unlike OpenTelemetry's exporters: an export of 500 routes is 486 KB as protobuf and 13 KB gzipped, for 0.3 ms of CPU (see [otlp.md](otlp.md#cost)), and every Collector takes it",
);

define_key!(
    OTLP_QUEUE,
    "otlp.queue",
    KeyKind::count(8, 1, 1024),
    "exports kept while the collector is down or slow; when full, the oldest is dropped and counted in `statuscope_otlp_exports_total{outcome=\"dropped\"}`",
);

define_key!(
    RULE_ENABLED,
    "rules.<id>.enabled",
    KeyKind::Switch(true),
    "switch one rule off (ids as in `statuscope rules`; `_` may stand for `-`, as environment variables need)",
);

define_key!(
    RULE_SEVERITY,
    "rules.<id>.severity",
    KeyKind::Optional("the rule's own"),
    "override a rule's severity: `error`, `warning` or `info`",
);

define_key!(
    ROUTE_RULES,
    "route_rules",
    KeyKind::Entries,
    "per-route exceptions, in the file only: a list of `{route, disable: [ids], error_fields: [names]}`",
);

#[cfg(test)]
mod tests {
    use super::*;

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
