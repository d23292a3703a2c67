//! Logs: `tracing` to standard error, human or JSON, with pingora's `log` output bridged in.

use std::io::IsTerminal;

use tracing::{Level, Metadata};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

use crate::config::{Log, LogFormat};

/// pingora logs whole request and response headers and bodies at `debug` and `trace`:
/// credentials, cookies and personal data. Whatever `log.level` asks for, none of it is let
/// through.
fn is_safe(metadata: &Metadata<'_>) -> bool {
    !metadata.target().starts_with("pingora") || *metadata.level() <= Level::INFO
}

/// Installs the global subscriber; the `log` crate's records (pingora's) flow into it too.
pub fn init(log: &Log) {
    let filter = EnvFilter::try_new(&log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let output = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let output = match log.format {
        LogFormat::Json => output.json().flatten_event(true).boxed(),
        LogFormat::Human => output.boxed(),
    };
    // `try_init` also installs the `log` → `tracing` bridge (tracing-subscriber's tracing-log
    // feature). It fails only if a subscriber exists already, which then keeps logging.
    let _ = tracing_subscriber::registry()
        .with(output.with_filter(filter).with_filter(filter_fn(is_safe)))
        .try_init();
}
