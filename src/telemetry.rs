//! Logs: `tracing` to standard error, human or JSON, with pingora's `log` output bridged in.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{Log, LogFormat};

/// Installs the global subscriber; the `log` crate's records (pingora's) flow into it too.
pub fn init(log: &Log) {
    let filter = EnvFilter::try_new(&log.level).unwrap_or_else(|_| EnvFilter::new("info"));
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
