//! `statuscope demo`: the product on an embedded service, for `make demo`.

use std::time::Duration;

use super::after_run;
use crate::config::FlagValues;

/// `demo`'s flags.
#[derive(clap::Args)]
pub(super) struct DemoArgs {
    /// Stop by itself after this long (e.g. `30s`, `2m`); runs until Ctrl-C when absent.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Proxy address of the demo.
    #[arg(long, default_value = concat!("127.0.0.1:", crate::default_proxy_port!()))]
    listen: String,
    /// Admin address of the demo (`/metrics`).
    #[arg(long, default_value = concat!("127.0.0.1:", crate::default_admin_port!()))]
    admin: String,
}

pub(super) fn execute(args: DemoArgs) -> u8 {
    let flags = FlagValues {
        listen: Some(args.listen),
        admin: Some(args.admin),
        upstream: None,
    };
    after_run(crate::demo::run(&flags, args.duration))
}
