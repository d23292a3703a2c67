//! Logs: `tracing` to standard error, human or JSON, with pingora's `log` output bridged in;
//! and the policy that keeps pingora's verbose output (whole heads and bodies) out of them.

use std::io::IsTerminal;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::EnvFilter;

/// Log line format (`log.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Each format by the name `log.format` and the injector's `--log-format` take.
    pub const NAMED: [(&'static str, LogFormat); 2] =
        [("human", LogFormat::Human), ("json", LogFormat::Json)];
}

/// pingora logs whole request and response headers and bodies at `debug` and `trace`:
/// credentials, cookies and personal data. It is held at `info`, whatever the global level, and
/// [`check_level`] refuses a filter that names a pingora target more verbosely.
/// (A directive, not a filter function: the filter's level hint lets pingora's disabled log
/// calls return at once, which matters on the request path.)
const PINGORA_CAP: &str = "pingora=info";

/// Does this filter directive name a pingora target?
fn names_pingora(directive: &str) -> bool {
    directive.trim().starts_with("pingora")
}

/// Checks a `log.level` filter: it must parse, and may allow pingora at most `info`.
pub fn check_level(level: &str) -> Result<(), String> {
    if EnvFilter::try_new(level).is_err() {
        return Err(format!(
            "`{level}` is not a log filter such as `info` or `statuscope=debug`"
        ));
    }
    match level.split(',').find(|directive| {
        names_pingora(directive)
            && ["=debug", "=trace"]
                .iter()
                .any(|verbose| directive.trim().to_ascii_lowercase().ends_with(verbose))
    }) {
        Some(directive) => Err(format!(
            "`{directive}`: pingora's debug and trace output prints whole headers and bodies, \
             credentials included; allow it at most `info`"
        )),
        None => Ok(()),
    }
}

/// Installs the global subscriber with a filter [`check_level`] accepted; the `log` crate's
/// records (pingora's) flow into it too.
pub fn init(format: LogFormat, level: &str) {
    let mut filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    // A directive for exactly `pingora` (validated to be at most `info`) is the user's own cap;
    // a filter no more verbose than `info` caps pingora by itself (a cap directive would raise
    // pingora to `info` under a `warn` filter).
    let verbose = filter
        .max_level_hint()
        .is_some_and(|hint| hint > LevelFilter::INFO);
    if verbose
        && !level
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
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Human => builder.try_init(),
    };
}
