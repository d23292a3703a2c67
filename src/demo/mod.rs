//! The demo: statuscope in front of a built-in service, with traffic and a live table.

use std::time::Duration;

use crate::config::Overrides;
use crate::lifecycle::StartError;

/// Runs the demo until Ctrl-C or `duration`.
pub fn run(_overrides: &Overrides, _duration: Option<Duration>) -> Result<(), StartError> {
    Ok(())
}
