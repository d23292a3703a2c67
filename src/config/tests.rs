//! Loading and validating configuration from files, the environment and flags.

use std::time::Duration;

use super::keys::KeyKind;
use super::*;
use crate::export::otlp::{Compression, OtlpSettings, Temporality};
use crate::rules::Severity;

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
    let loaded = load_from(None, &FlagValues::default(), env(&[])).unwrap();
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
    let overrides = FlagValues {
        upstream: Some("127.0.0.1:9999".into()),
        ..FlagValues::default()
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
        &FlagValues::default(),
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
        &FlagValues::default(),
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
        load_from(None, &FlagValues::default(), env(pairs)).map(|loaded| loaded.config.engine)
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
fn duration_buckets_default_to_1ms_to_30s_and_must_be_positive_and_ascending() {
    let buckets = |value: Option<&str>| {
        let pairs: Vec<(&str, &str)> = value
            .map(|v| ("STATUSCOPE_METRICS__DURATION_BUCKETS", v))
            .into_iter()
            .collect();
        load_from(None, &FlagValues::default(), env(&pairs))
            .map(|loaded| loaded.config.duration_buckets)
            .map_err(|e| e.to_string())
    };
    assert_eq!(buckets(None).unwrap(), crate::record::DURATION_BUCKETS);
    assert_eq!(
        buckets(Some("0.0001,0.001,60,300")).unwrap(),
        [0.0001, 0.001, 60.0, 300.0]
    );
    for (value, problem) in [
        (
            "0.5,0.1",
            "is not strictly ascending: `0.5` comes before `0.1`",
        ),
        ("0.1,0.1", "is not strictly ascending"),
        (
            "0,1",
            "holds `0`: every bound is a positive number of seconds",
        ),
        ("-1,1", "holds `-1`"),
        ("fast", "metrics.duration_buckets"),
    ] {
        let err = buckets(Some(value)).unwrap_err();
        assert!(
            err.contains("`metrics.duration_buckets`") && err.contains(problem),
            "{value}: {err}"
        );
    }
    let many: Vec<String> = (1..=33).map(|n| n.to_string()).collect();
    let err = buckets(Some(&many.join(","))).unwrap_err();
    assert!(err.contains("has 33 bounds; at most 32"), "{err}");
}

#[test]
fn upstream_protocol_is_read_by_name_and_leaves_the_engine_alone() {
    let config = |pairs: &[(&str, &str)]| {
        load_from(None, &FlagValues::default(), env(pairs))
            .map(|loaded| loaded.config)
            .map_err(|e| e.to_string())
    };
    let default = config(&[]).unwrap();
    assert_eq!(default.upstream_protocol, UpstreamProtocol::Http1);
    assert_eq!(default.engine, Engine::Fast);
    let h2c = config(&[("STATUSCOPE_UPSTREAM_PROTOCOL", "h2c")]).unwrap();
    assert_eq!(h2c.upstream_protocol, UpstreamProtocol::H2c);
    assert_eq!(h2c.engine, Engine::Fast);
    let both = config(&[("STATUSCOPE_UPSTREAM_PROTOCOL", "downstream")]).unwrap();
    assert_eq!(both.upstream_protocol, UpstreamProtocol::Downstream);
    let err = config(&[("STATUSCOPE_UPSTREAM_PROTOCOL", "http2")]).unwrap_err();
    assert!(
        err.contains("`upstream_protocol`")
            && err.contains("`http2` is not one of `http1`, `h2c`, `downstream`"),
        "{err}"
    );
}

#[test]
fn verbose_pingora_logging_is_refused_and_modest_levels_are_not() {
    let level = |text: &str| {
        load_from(
            None,
            &FlagValues::default(),
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
        &FlagValues::default(),
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
        &FlagValues::default(),
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
        &FlagValues::default(),
        env(&[("STATUSCOPE_RULES__NO_SUCH_RULE__ENABLED", "false")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown rule id `no_such_rule`"), "{err}");
    let err = load_from(
        None,
        &FlagValues::default(),
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
    let loaded = load_from(Some(&good), &FlagValues::default(), env(&[])).unwrap();
    assert_eq!(loaded.config.route_rules[0].route, "/graphql");
    assert_eq!(loaded.config.route_rules[0].error_fields, ["errors"]);
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "route_rules:\n  - route: /graphql\n    disable: [no-such-rule]\n",
    )
    .unwrap();
    let err = load_from(Some(&bad), &FlagValues::default(), env(&[]))
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
        &FlagValues::default(),
        env(&[("STATUSCOPE_BODY_SAMPLE_BYTES", "-1")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("`body_sample_bytes`"), "{err}");
    let zero = load_from(
        None,
        &FlagValues::default(),
        env(&[("STATUSCOPE_BODY_SAMPLE_BYTES", "0")]),
    )
    .unwrap();
    assert_eq!(zero.config.body_sample_bytes, 0);
}

#[test]
fn bad_flag_address_names_the_flag() {
    let overrides = FlagValues {
        listen: Some("nowhere".into()),
        ..FlagValues::default()
    };
    let err = load_from(None, &overrides, env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`listen`"), "{err}");
    assert!(err.contains("command-line flag"), "{err}");
}

#[test]
fn every_invalid_key_is_reported_at_once() {
    let errors = load_from(
        None,
        &FlagValues::default(),
        env(&[
            ("STATUSCOPE_THREADS", "0"),
            ("STATUSCOPE_TIMEOUTS__CONNECT", "soon"),
            ("STATUSCOPE_LOG__FORMAT", "xml"),
            ("STATUSCOPE_LISTNE", "x"),
            ("STATUSCOPE_MAX_IN_FLIGHT", "many"),
        ]),
    )
    .unwrap_err();
    let mut keys: Vec<_> = errors.iter().map(|e| e.key.clone().unwrap()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "listne",
            "log.format",
            "max_in_flight",
            "threads",
            "timeouts.connect"
        ],
        "{errors}"
    );
    assert!(
        errors.iter().all(|e| e.source == "the environment"),
        "{errors}"
    );
    assert_eq!(errors.to_string().lines().count(), 5, "{errors}");
}

/// A value other than the built-in one for `key`, from its kind; `None` for the keys that
/// name files, which the e2e reload tests change.
fn other_value(key: &keys::Key) -> Option<String> {
    Some(match key.kind {
        KeyKind::Address(default) => {
            let port: u16 = default.rsplit_once(':').unwrap().1.parse().unwrap();
            format!("127.0.0.1:{}", port + 1)
        }
        KeyKind::Count { default, low, high } => {
            (if default < high { default + 1 } else { low }).to_string()
        }
        KeyKind::Duration { default, .. } => if default == "3s" { "4s" } else { "3s" }.to_string(),
        KeyKind::Switch(on) => (!on).to_string(),
        // A choice of one (`otlp.protocol`) has no other value.
        KeyKind::Choice { default, options } => {
            options.iter().find(|o| **o != default)?.to_string()
        }
        KeyKind::Numbers(_) => "0.1,1,60".to_string(),
        // Free text, lists and values with no default: one example each, by key.
        KeyKind::Text(_) | KeyKind::List(_) | KeyKind::Optional(_) => [
            (&keys::UPSTREAM, "127.0.0.1:8081"),
            (&keys::LOG_LEVEL, "warn"),
            (&keys::ROUTES_TEMPLATES, "/users/{id}"),
            (&keys::ERROR_FIELDS, "problem"),
            (&keys::RULE_SEVERITY, "info"),
            (&keys::OTLP_ENDPOINT, "http://127.0.0.1:4318"),
            (&keys::OTLP_HEADERS, "X-Scope-OrgID=shop"),
            (&keys::OTLP_RESOURCE, "service.name=shop"),
        ]
        .iter()
        .find(|(known, _)| known.path == key.path)
        .map(|(_, value)| value.to_string())?,
        KeyKind::Entries => return None,
    })
}

#[test]
fn a_reload_names_exactly_the_changed_keys_the_table_marks_restart_only() {
    let load_with = |pairs: &[(&str, &str)]| {
        load_from(None, &FlagValues::default(), env(pairs))
            .unwrap_or_else(|e| panic!("{pairs:?}: {e}"))
            .config
    };
    let running = load_with(&[]);
    // The keys that name files are changed by the e2e reload tests.
    let files = [
        &keys::FINDINGS_TOKEN_FILE,
        &keys::CONTRACT_OPENAPI,
        &keys::OTLP_HEADER_FILES,
    ];
    for key in keys::KEYS {
        let Some(value) = other_value(key) else {
            assert!(
                matches!(
                    key.kind,
                    KeyKind::Entries | KeyKind::Choice { options: [_], .. }
                ) || files.iter().any(|f| f.path == key.path),
                "no other value for `{}`",
                key.path
            );
            continue;
        };
        let var = key.env_var().replace("<ID>", "MISSING_RETRY_AFTER");
        let changed = load_with(&[(&var, &value)]);
        let expected: Vec<&str> = match key.applies {
            keys::Applies::OnRestart(_) => vec![key.path],
            keys::Applies::OnReload => vec![],
        };
        assert_eq!(changed.keys_needing_restart(&running), expected, "{var}");
    }
}

#[test]
fn a_bad_contract_is_named_by_file_and_pointer() {
    let dir = std::env::temp_dir().join(format!("statuscope-contract-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let load = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let var = ("STATUSCOPE_CONTRACT__OPENAPI", path.to_str().unwrap());
        load_from(None, &FlagValues::default(), env(&[var])).map(|loaded| loaded.config)
    };
    let cases = [
        ("missing.yaml", "info: {title: t}\n", "`/openapi`"),
        ("version.yaml", "openapi: 2.0\n", "neither 3.0.x nor 3.1.x"),
        ("yaml.yaml", "openapi: [3.1\n", "neither JSON nor YAML"),
        (
            "dangling.json",
            r##"{"openapi": "3.1.0", "paths": {"/a": {"get": {"responses": {"200": {"$ref": "#/components/responses/Gone"}}}}}}"##,
            "`/paths/~1a/get/responses/200/$ref`",
        ),
    ];
    for (name, text, fragment) in cases {
        let err = load(name, text).unwrap_err().to_string();
        assert!(
            err.contains("`contract.openapi`") && err.contains(name) && err.contains(fragment),
            "{name}: {err}"
        );
    }
    let good = load(
        "good.yaml",
        "openapi: 3.1.0\nservers: [{url: /api}]\npaths:\n  /users/{id}:\n    get:\n      responses: {200: {description: ok}}\n",
    )
    .unwrap();
    let table = good.route_table();
    assert_eq!(&*table.resolve("/api/users/7").label, "/api/users/{id}");
}

#[test]
fn every_key_the_security_limits_table_names_exists() {
    let security = include_str!("../../docs/security.md");
    let table = security
        .split("## Limits\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/security.md has its Limits section");
    let mut named = 0;
    for row in table.lines().filter(|line| line.starts_with("| `")) {
        let first = row.split('|').nth(1).unwrap();
        for path in first.split('`').skip(1).step_by(2) {
            assert!(
                keys::find(path).is_some(),
                "docs/security.md names `{path}`"
            );
            named += 1;
        }
    }
    assert!(named >= 10, "only {named} keys found in the table");
}

fn otlp_with(pairs: &[(&str, &str)]) -> Result<Option<OtlpSettings>, ConfigErrors> {
    load_from(None, &FlagValues::default(), env(pairs)).map(|loaded| loaded.config.otlp)
}

#[test]
fn the_push_is_off_unless_an_endpoint_is_set_by_key_or_by_opentelemetry_s_variables() {
    assert!(otlp_with(&[]).unwrap().is_none());
    let by_key = otlp_with(&[("STATUSCOPE_OTLP__ENDPOINT", "http://collector:4318")]).unwrap();
    assert_eq!(by_key.unwrap().endpoint, "http://collector:4318/v1/metrics");
    let general = otlp_with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/base")]).unwrap();
    assert_eq!(general.unwrap().endpoint, "http://c:4318/base/v1/metrics");
    let both = otlp_with(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://general:4318"),
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "http://signal:4318/as/is",
        ),
    ])
    .unwrap();
    assert_eq!(both.unwrap().endpoint, "http://signal:4318/as/is");
    let key_wins = otlp_with(&[
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "http://signal:4318/v1/metrics",
        ),
        ("STATUSCOPE_OTLP__ENDPOINT", "http://key:4318"),
    ])
    .unwrap();
    assert_eq!(key_wins.unwrap().endpoint, "http://key:4318/v1/metrics");
}

#[test]
fn opentelemetry_s_variables_fill_the_keys_no_source_set() {
    let settings = otlp_with(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "x-scope-orgid=shop,authorization=Bearer%20abc",
        ),
        ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "2500"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "9000"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
        ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "Delta"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=env,k8s.pod.name=p-1",
        ),
        ("OTEL_SERVICE_NAME", "shop"),
        ("STATUSCOPE_OTLP__RESOURCE", "k8s.namespace.name=prod"),
        ("STATUSCOPE_OTLP__INTERVAL", "5s"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(settings.headers.len(), 2);
    assert_eq!(settings.headers[1].1, "Bearer abc");
    assert_eq!(settings.timeout, Duration::from_millis(2500));
    assert_eq!(settings.interval, Duration::from_secs(5), "the key wins");
    assert_eq!(settings.temporality, Temporality::Delta);
    assert_eq!(settings.compression, Compression::None);
    let resource: Vec<(&str, &str)> = settings
        .resource
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        resource,
        [
            ("k8s.pod.name", "p-1"),
            ("service.name", "shop"),
            ("k8s.namespace.name", "prod")
        ]
    );
    let unnamed = otlp_with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]);
    assert_eq!(
        unnamed.unwrap().unwrap().resource,
        [(
            "service.name".to_string(),
            "unknown_service:statuscope".to_string()
        )]
    );
}

#[test]
fn a_bad_push_setting_names_its_key_or_its_variable_and_never_a_header_value() {
    let errors = otlp_with(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4318"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=secret-token\n"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "soon"),
        (
            "STATUSCOPE_OTLP__HEADER_FILES",
            "authorization=/nonexistent/token",
        ),
    ])
    .unwrap_err();
    let text = errors.to_string();
    for (key, source) in [
        ("otlp.endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ("otlp.protocol", "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ("otlp.interval", "OTEL_METRIC_EXPORT_INTERVAL"),
        ("otlp.header_files", "the environment"),
    ] {
        assert!(
            errors
                .iter()
                .any(|e| e.key.as_deref() == Some(key) && e.source.contains(source)),
            "{key} from {source}: {text}"
        );
    }
    assert!(text.contains("4318"), "{text}");
    assert!(!text.contains("secret-token"), "{text}");
}

#[test]
fn opentelemetry_s_off_switches_stop_a_push_the_variables_ask_for_but_not_the_key() {
    let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
    for off in [
        ("OTEL_SDK_DISABLED", "true"),
        ("OTEL_METRICS_EXPORTER", "none"),
        ("OTEL_METRICS_EXPORTER", "prometheus"),
    ] {
        assert!(otlp_with(&[endpoint, off]).unwrap().is_none(), "{off:?}");
    }
    let listed = otlp_with(&[endpoint, ("OTEL_METRICS_EXPORTER", "console, otlp")]);
    assert!(listed.unwrap().is_some());
    let key = otlp_with(&[
        ("STATUSCOPE_OTLP__ENDPOINT", "http://key:4318"),
        ("OTEL_SDK_DISABLED", "true"),
    ]);
    assert!(key.unwrap().is_some(), "a key outranks the variables");
}
