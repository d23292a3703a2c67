//! `statuscope lint`: HAR files judged by the same rules as live traffic, for CI.

use std::path::{Path, PathBuf};

use super::{parse_severity, Exit};
use crate::config::{self, FlagValues};
use crate::lint::Linter;
use crate::record::observed::DocumentFormat;
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
    /// Also write the observed contract learnt from the recordings to this file, as OpenAPI
    /// 3.1 (JSON for a `.json` name, else YAML): the same learning as the sidecar's
    /// `/contract/observed`.
    #[arg(long)]
    observed: Option<PathBuf>,
}

pub(super) fn execute(args: LintArgs) -> u8 {
    let loaded = match config::load(args.config.as_deref(), &FlagValues::default()) {
        Ok(loaded) => loaded,
        Err(e) => return Exit::Unusable.because(&e),
    };
    let linter = Linter::new(&loaded.config);
    let report = lint(&linter, &loaded.config, &args.files);
    if let Some(path) = &args.observed {
        if let Err(e) = write_observed(&linter, path) {
            return Exit::Unusable.because(&e);
        }
    }
    print!("{}", report::render(&report, args.format, args.fail_on));
    for error in &report.input_errors {
        eprintln!("statuscope: cannot read {error}");
    }
    report.exit_status(args.fail_on)
}

/// Writes what `linter` learnt to `path`.
fn write_observed(linter: &Linter, path: &Path) -> Result<(), String> {
    let learnt = linter
        .observed()
        .ok_or("--observed: observed.enabled is off in the configuration")?;
    let (document, _) = learnt.render("observed", DocumentFormat::for_path(path));
    std::fs::write(path, document).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The report of `linter` linting `files` under `config`.
fn lint(linter: &Linter, config: &config::Config, files: &[PathBuf]) -> Report {
    let mut report = Report::for_rules(&config.rule_settings, config.contract.is_some());
    // HAR records no trailers, where gRPC calls carry their status.
    report.judges_grpc = false;
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
        let linter = Linter::new(&config);
        let report = lint(
            &linter,
            &config,
            &[PathBuf::from("/nonexistent/recording.har")],
        );
        assert_eq!(report.input_errors.len(), 1);
        assert!(report.input_errors[0].contains("recording.har"));
        assert_eq!(report.exit_status(Severity::Error), Exit::Unusable.code());
        assert!(!report.judges_grpc);
    }
}
