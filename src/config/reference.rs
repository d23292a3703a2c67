//! `docs/configuration.md`, generated from the key table (`statuscope reference
//! configuration`; a test fails when the file is stale).

use super::keys::{Applies, KeyKind, KEYS, MAX_COUNT};

/// How a key's built-in value, and the values it accepts, read in the reference.
fn describe_kind(kind: &KeyKind) -> String {
    match kind {
        KeyKind::Address(text) | KeyKind::Text(text) => format!("`{text}`"),
        KeyKind::Count { default, low, high } if *high == MAX_COUNT => {
            format!("`{default}` (at least {low})")
        }
        KeyKind::Count { default, low, high } => format!("`{default}` ({low} to {high})"),
        KeyKind::Duration { default, nonzero } if *nonzero => {
            format!("`{default}` (more than 0)")
        }
        KeyKind::Duration { default, .. } => format!("`{default}`"),
        KeyKind::Switch(on) => format!("`{on}`"),
        KeyKind::Choice { default, options } => {
            let options: Vec<String> = options.iter().map(|name| format!("`{name}`")).collect();
            format!("`{default}` (one of {})", options.join(", "))
        }
        KeyKind::List(items) => format!("`[{}]`", items.join(", ")),
        KeyKind::Numbers(numbers) => {
            let shown: Vec<String> = numbers.iter().map(f64::to_string).collect();
            format!("`[{}]`", shown.join(", "))
        }
        KeyKind::Optional(meaning) => (*meaning).to_string(),
        KeyKind::Entries => "none".to_string(),
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
    out.push_str("| key | default (accepted) | on SIGHUP | meaning |\n|---|---|---|---|\n");
    for key in KEYS {
        let applies = match key.applies {
            Applies::OnReload => "reload",
            Applies::OnRestart(_) => "restart",
        };
        out.push_str(&format!(
            "| `{}` | {} | {applies} | {} |\n",
            key.path,
            describe_kind(&key.kind),
            key.meaning
        ));
    }
    out.push_str(EXAMPLE);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_bound_in_the_reference_is_the_enforced_one() {
        let line = reference_markdown()
            .lines()
            .find(|line| line.starts_with("| `body_sample_bytes` |"))
            .expect("body_sample_bytes is in the reference")
            .to_string();
        let bound = crate::sample::MAX_BODY_SAMPLE_BYTES;
        assert!(line.contains(&format!("0 to {bound}")), "{line}");
    }
}
