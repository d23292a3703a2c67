//! `statuscope lint`: HAR files judged by the same rules as live traffic, for CI.

use std::path::PathBuf;

use super::{parse_severity, Exit};
use crate::config::{self, FlagValues};
use crate::lint::Linter;
use crate::record::report::Report;
use crate::report::{self, Format};
use crate::rules::Severity;

/// `lint`'s flags.
#[derive(clap::Args)]
pub(super) struct LintArgs {
    /// HAR 1.2 files; `-` reads standard input.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The sidecar's configuration (route templates, rule settings).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// The least severity that fails the run: error, warning or info.
    #[arg(long, default_value = "error", value_parser = parse_severity)]
    fail_on: Severity,
}

pub(super) fn execute(args: LintArgs) -> u8 {
    let loaded = match config::load(args.config.as_deref(), &FlagValues::default()) {
        Ok(loaded) => loaded,
        Err(e) => return Exit::Unusable.because(&e),
    };
    let report = lint(&loaded.config, &args.files);
    print!("{}", report::render(&report, args.format, args.fail_on));
    for error in &report.input_errors {
        eprintln!("statuscope: cannot read {error}");
    }
    report.exit_status(args.fail_on)
}

/// The report of linting `files` under `config`.
fn lint(config: &config::Config, files: &[PathBuf]) -> Report {
    let mut report = Report::for_rules(&config.rule_settings, config.contract.is_some());
    // HAR records no trailers, where gRPC calls carry their status.
    report.judges_grpc = false;
    let linter = Linter::new(config);
    linter.lint_paths(files, &mut report);
    report.coverage = linter.coverage();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_named_and_fails_as_unreadable_input() {
        let config = config::load_from(None, &FlagValues::default(), Some(Default::default()))
            .unwrap()
            .config;
        let report = lint(&config, &[PathBuf::from("/nonexistent/recording.har")]);
        assert_eq!(report.input_errors.len(), 1);
        assert!(report.input_errors[0].contains("recording.har"));
        assert_eq!(report.exit_status(Severity::Error), Exit::Unusable.code());
        assert!(!report.judges_grpc);
    }
}
