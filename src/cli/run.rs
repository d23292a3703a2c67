//! `statuscope run`: the configuration from file, environment and flags, the recorder, the CI
//! gate's report, and the proxy until it is stopped.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::{after_run, parse_severity, Exit};
use crate::config::{self, Config, FlagValues};
use crate::lifecycle::{self, LoadConfig};
use crate::record::report::Report;
use crate::record::Recorder;
use crate::report::{Format, ReportGate};
use crate::rules::Severity;

/// `run`'s flags.
#[derive(clap::Args)]
pub(super) struct RunArgs {
    /// Configuration file (YAML or TOML).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// CI gate: gather findings while tests run against the proxy and write them here at
    /// SIGTERM or SIGINT; the exit status is then 1 when one reached --fail-on.
    #[arg(long)]
    report: Option<PathBuf>,
    /// The report's format; by default from the file name (`.json`, `.xml` for JUnit, else a table).
    #[arg(long, value_enum, requires = "report")]
    report_format: Option<Format>,
    /// With --report: the least severity that fails the run (error, warning or info).
    #[arg(long, default_value = "error", value_parser = parse_severity, requires = "report")]
    fail_on: Severity,
    /// Proxy listen address, host:port (overrides file and environment).
    #[arg(long)]
    listen: Option<String>,
    /// Admin listen address, host:port (overrides file and environment).
    #[arg(long)]
    admin: Option<String>,
    /// The service to proxy to, host:port (overrides file and environment).
    #[arg(long)]
    upstream: Option<String>,
}

pub(super) fn execute(args: RunArgs) -> u8 {
    let flags = FlagValues {
        listen: args.listen.clone(),
        admin: args.admin.clone(),
        upstream: args.upstream.clone(),
    };
    let file = args.config.clone();
    let loaded = match config::load(file.as_deref(), &flags) {
        Ok(loaded) => loaded,
        Err(e) => return Exit::Unusable.because(&e),
    };
    if let Err(e) = loaded.config.require_upstream() {
        return Exit::Unusable.because(&e);
    }
    crate::logs::init(loaded.config.log.format, &loaded.config.log.level);
    let mut recorder = loaded.config.recorder();
    let gate = args.gate(&loaded.config, &mut recorder);
    let reload: LoadConfig =
        Box::new(move || config::load(file.as_deref(), &flags).map(|loaded| loaded.config));
    after_run(lifecycle::run(
        &loaded.config,
        &loaded.source,
        &recorder,
        None,
        Some(reload),
        gate,
    ))
}

impl RunArgs {
    /// The CI gate `--report` asks for, its report fed by `recorder`.
    fn gate(&self, config: &Config, recorder: &mut Recorder) -> Option<Arc<ReportGate>> {
        let path = self.report.clone()?;
        let report = Arc::new(Mutex::new(Report::for_rules(
            &config.rule_settings,
            config.contract.is_some(),
        )));
        recorder.report = Some(report.clone());
        Some(Arc::new(ReportGate {
            report,
            format: self
                .report_format
                .unwrap_or_else(|| Format::for_path(&path)),
            path,
            fail_on: self.fail_on,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Run {
        #[command(flatten)]
        args: RunArgs,
    }

    fn gate_for(flags: &[&str]) -> Option<(Format, Severity, bool)> {
        let args = Run::try_parse_from([&["run"], flags].concat())
            .unwrap()
            .args;
        let config = config::load_from(None, &FlagValues::default(), Some(Default::default()))
            .unwrap()
            .config;
        let mut recorder = Recorder::new(1, std::time::Duration::ZERO, &[1.0]);
        let gate = args.gate(&config, &mut recorder)?;
        Some((gate.format, gate.fail_on, recorder.report.is_some()))
    }

    #[test]
    fn the_ci_gate_takes_its_format_from_the_file_name_unless_told() {
        assert!(gate_for(&[]).is_none());
        let junit = gate_for(&["--report", "out/findings.xml"]).unwrap();
        assert_eq!(junit, (Format::Junit, Severity::Error, true));
        let told = [
            "--report",
            "r.xml",
            "--report-format",
            "json",
            "--fail-on",
            "warning",
        ];
        assert_eq!(
            gate_for(&told).unwrap(),
            (Format::Json, Severity::Warning, true)
        );
    }

    #[test]
    fn report_flags_need_a_report() {
        assert!(Run::try_parse_from(["run", "--fail-on", "info"]).is_err());
    }
}
