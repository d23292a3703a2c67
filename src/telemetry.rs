//! Logs: `tracing` to standard error, human or JSON, with pingora's `log` output bridged in.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{Log, LogFormat};

/// pingora logs whole request and response headers and bodies at `debug` and `trace`:
/// credentials, cookies and personal data. It is held at `info`, whatever the global level;
/// configuration validation refuses a `log.level` that names a pingora target more verbosely.
/// (A directive, not a filter function: the filter's level hint lets pingora's disabled log
/// calls return at once, which matters on the request path.)
const PINGORA_CAP: &str = "pingora=info";

/// Does this `log.level` directive name a pingora target?
pub fn names_pingora(directive: &str) -> bool {
    directive.trim().starts_with("pingora")
}

/// Installs the global subscriber; the `log` crate's records (pingora's) flow into it too.
pub fn init(log: &Log) {
    let mut filter = EnvFilter::try_new(&log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    // A directive for exactly `pingora` (validated to be at most `info`) is the user's own cap;
    // a filter no more verbose than `info` caps pingora by itself (a cap directive would raise
    // pingora to `info` under a `warn` filter).
    let verbose = filter
        .max_level_hint()
        .is_some_and(|level| level > tracing_subscriber::filter::LevelFilter::INFO);
    if verbose
        && !log
            .level
            .split(',')
            .any(|d| d.split('=').next() == Some("pingora"))
    {
        filter = filter.add_directive(PINGORA_CAP.parse().expect("a valid directive"));
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // `try_init` also installs the `log` → `tracing` bridge (tracing-subscriber's tracing-log
    // feature). It fails only if a subscriber exists already, which then keeps logging.
    let _ = match log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Human => builder.try_init(),
    };
}
