//! The raw layers: built-in defaults (from the key table) < file < `STATUSCOPE_*` environment
//! < command-line flags, merged by the `config` crate, and read back one key at a time so that
//! each problem names its key and the source its value came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use config::{Environment, File, Value, ValueKind};
use serde::de::DeserializeOwned;

use super::error::{ConfigError, ConfigErrors};
use super::keys::{self, KeyKind, KEYS};
use super::{FlagValues, ENV_PREFIX};

const UNKNOWN_KEY: &str = "unknown key; see docs/configuration.md";

/// How [`Sources::origin`] names a value no source set.
const BUILT_IN: &str = "the built-in default";

/// The prefix of OpenTelemetry's own variables, read for the `otlp.*` keys no source set.
const OTEL_PREFIX: &str = "OTEL_";

/// The merged layers, before any value is checked.
pub(super) struct Sources {
    merged: config::Config,
    /// The keys a command-line flag set: the `config` crate records no origin for them.
    flags: Vec<&'static str>,
    /// OpenTelemetry's `OTEL_*` variables that hold a value.
    otel: BTreeMap<String, String>,
}

impl Sources {
    /// Merges the layers. Fails only when a source cannot be read at all (a missing or
    /// unparsable file); problems with single keys are left to [`Sources::unknown_keys`] and
    /// the typed reads.
    pub(super) fn read(
        file: Option<&Path>,
        overrides: &FlagValues,
        env: Option<config::Map<String, String>>,
    ) -> Result<Sources, ConfigErrors> {
        let mut builder = config::Config::builder();
        for key in KEYS.iter().filter(|key| !key.is_pattern()) {
            let result = match &key.kind {
                KeyKind::Address(text)
                | KeyKind::Text(text)
                | KeyKind::Duration { default: text, .. }
                | KeyKind::Choice { default: text, .. } => builder.set_default(key.path, *text),
                KeyKind::Count { default, .. } => builder.set_default(key.path, *default),
                KeyKind::Switch(on) => builder.set_default(key.path, *on),
                KeyKind::List(items) => builder.set_default(key.path, items.to_vec()),
                KeyKind::Numbers(numbers) => builder.set_default(key.path, numbers.to_vec()),
                KeyKind::Entries => builder.set_default(key.path, Vec::<String>::new()),
                KeyKind::Optional(_) => Ok(builder),
            };
            builder = result.expect("key table paths are valid config paths");
        }
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::whole(
                    path.display().to_string(),
                    "the file does not exist",
                )
                .into());
            }
            builder = builder.add_source(File::from(PathBuf::from(path)));
        }
        let otel = match &env {
            Some(vars) => otel_variables(vars.clone()),
            None => otel_variables(std::env::vars()),
        };
        let mut environment = Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("_")
            .separator("__")
            .list_separator(",")
            .try_parsing(true)
            .source(env);
        for key in KEYS {
            if matches!(key.kind, KeyKind::List(_) | KeyKind::Numbers(_)) {
                environment = environment.with_list_parse_key(key.path);
            }
        }
        builder = builder.add_source(environment);
        let mut flags = Vec::new();
        for (key, value) in [
            (keys::LISTEN.path, &overrides.listen),
            (keys::ADMIN.path, &overrides.admin),
            (keys::UPSTREAM.path, &overrides.upstream),
        ] {
            if let Some(value) = value {
                builder = builder
                    .set_override(key, value.as_str())
                    .expect("flag keys are valid config paths");
                flags.push(key);
            }
        }
        let merged = builder.build().map_err(|e| {
            let source = file.map_or("the environment".to_string(), |p| p.display().to_string());
            ConfigError::whole(source, e)
        })?;
        Ok(Sources {
            merged,
            flags,
            otel,
        })
    }

    /// Did a source (a file, `STATUSCOPE_*`, a flag) set `key`, rather than its built-in value?
    pub(super) fn is_set(&self, key: &str) -> bool {
        self.origin(key) != BUILT_IN
    }

    /// The first of OpenTelemetry's variables `names` that holds a value, and its name.
    pub(super) fn otel(&self, names: &[&'static str]) -> Option<(&'static str, &str)> {
        names
            .iter()
            .find_map(|name| Some((*name, self.otel.get(*name)?.as_str())))
    }

    /// Names the source the value at `key` came from.
    pub(super) fn origin(&self, key: &str) -> String {
        // Walk the merged tree itself: `Config::get` returns copies that have lost their origin.
        let mut value = &self.merged.cache;
        for part in key.split('.') {
            match &value.kind {
                ValueKind::Table(table) => match table.get(part) {
                    Some(child) => value = child,
                    None => return self.describe(key, None),
                },
                _ => return self.describe(key, None),
            }
        }
        self.describe(key, Some(value))
    }

    fn describe(&self, key: &str, value: Option<&Value>) -> String {
        match value.and_then(Value::origin) {
            Some(origin) => origin.to_string(),
            None if self.flags.contains(&key) => "a command-line flag".to_string(),
            None => BUILT_IN.to_string(),
        }
    }

    /// Every key a source set that the key table does not define.
    pub(super) fn unknown_keys(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        self.check_keys(&self.merged.cache, &mut String::new(), &mut errors);
        errors
    }

    fn check_keys(&self, value: &Value, path: &mut String, errors: &mut Vec<ConfigError>) {
        let known = || KEYS.iter().any(|key| key.matches(path));
        let ValueKind::Table(table) = &value.kind else {
            if !path.is_empty() && !known() {
                errors.push(ConfigError::at(
                    path,
                    self.describe(path, Some(value)),
                    UNKNOWN_KEY,
                ));
            }
            return;
        };
        if !KEYS.iter().any(|key| key.is_below(path)) {
            let problem = if known() {
                "expected a single value, found a table"
            } else {
                UNKNOWN_KEY
            };
            errors.push(ConfigError::at(
                path,
                self.describe(path, Some(value)),
                problem,
            ));
            return;
        }
        for (name, child) in table {
            let before = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(name);
            self.check_keys(child, path, errors);
            path.truncate(before);
        }
    }

    /// The value at `key` as a `T`; `None` when no source sets it (a key with a built-in value
    /// is always set, and `key` is a path from the key table or below it).
    pub(super) fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        match self.merged.get::<T>(key) {
            Ok(value) => Ok(Some(value)),
            Err(config::ConfigError::NotFound(_)) => Ok(None),
            Err(config::ConfigError::Type {
                unexpected,
                expected,
                ..
            }) => Err(ConfigError::at(
                key,
                self.origin(key),
                format!("expected {expected}, found {unexpected}"),
            )),
            Err(e) => Err(ConfigError::at(key, self.origin(key), e)),
        }
    }
}

/// The `OTEL_*` variables among `vars` that hold a value (OpenTelemetry reads an empty one as
/// unset).
fn otel_variables(vars: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, String> {
    vars.into_iter()
        .filter(|(name, value)| name.starts_with(OTEL_PREFIX) && !value.trim().is_empty())
        .collect()
}
