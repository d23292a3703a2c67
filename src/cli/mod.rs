//! The `statuscope` command line: the subcommands (one file each, with the wiring from flags
//! to what the subcommand runs), their flags — documented once, here, and printed as
//! `docs/cli.md` — and the exit statuses every subcommand shares.

mod contract;
mod demo;
mod inject;
mod lint;
mod reference;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::config::{self, FlagValues};
use crate::lifecycle::StartError;
use crate::rules::Severity;

/// The exit statuses, one table for every subcommand (README, *Exit statuses*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// A clean stop (SIGTERM drained, SIGINT), or a command that finished.
    Clean = 0,
    /// A failure at run time (a port already taken, a runtime that would not start); for
    /// `lint` and the CI gate, a finding at or above `--fail-on`.
    Failed = 1,
    /// Unusable configuration or flags, named key by key, before any port is bound.
    Unusable = 2,
}

impl Exit {
    /// Every status, in the README's order.
    pub const ALL: [Exit; 3] = [Exit::Clean, Exit::Failed, Exit::Unusable];

    /// The status as the process exits with it.
    fn code(self) -> u8 {
        self as u8
    }

    /// Prints `error` with every line prefixed, so each of several configuration errors reads
    /// as a message of its own, and gives this status.
    fn because(self, error: &dyn std::fmt::Display) -> u8 {
        for line in error.to_string().lines() {
            eprintln!("statuscope: {line}");
        }
        self.code()
    }
}

/// The status of a subcommand that runs a proxy until it is stopped.
fn after_run(result: Result<u8, StartError>) -> u8 {
    match result {
        Ok(status) => status,
        Err(StartError::Config(e)) => Exit::Unusable.because(&e),
        Err(e) => Exit::Failed.because(&e),
    }
}

/// The command line.
#[derive(Parser)]
#[command(
    name = "statuscope",
    version,
    about = "HTTP observability sidecar: per-route status-code tallies for Prometheus"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Proxy traffic to the upstream and export metrics on the admin port.
    Run {
        #[command(flatten)]
        args: run::RunArgs,
    },
    /// Validate a configuration file (with the environment) without starting.
    CheckConfig {
        /// The YAML or TOML file to check.
        file: PathBuf,
    },
    /// Add statuscope to the workloads in Kubernetes YAML and re-target their Services (to stdout).
    Inject {
        #[command(flatten)]
        args: inject::InjectCommand,
    },
    /// Serve the mutating admission webhook that injects every new pod the API server sends.
    ///
    /// AdmissionReview (admission.k8s.io/v1) over HTTPS at POST /inject; /healthz, /readyz and
    /// /metrics on --admin-listen. The certificate files are re-read when they change.
    Injector {
        #[command(flatten)]
        args: inject::InjectorArgs,
    },
    /// Check recorded traffic (HAR files) against the misuse rules, for CI.
    ///
    /// Exit status: 0 when nothing at or above --fail-on was found, 1 when something was,
    /// 2 when an input could not be read (the other files are still linted).
    Lint {
        #[command(flatten)]
        args: lint::LintArgs,
    },
    /// Compare a declared OpenAPI contract with an observed one.
    Contract {
        #[command(subcommand)]
        command: contract::ContractCommand,
    },
    /// Print the catalogue of misuse rules.
    Rules {
        /// As JSON.
        #[arg(long, conflicts_with = "markdown")]
        json: bool,
        /// As Markdown (the text of docs/rules.md).
        #[arg(long)]
        markdown: bool,
    },
    /// Print a reference generated from the code, as Markdown (the text of docs/<topic>.md).
    Reference {
        /// Which reference.
        #[arg(value_enum)]
        topic: reference::Topic,
    },
    /// Run statuscope in front of a built-in demo service, drive traffic and print live tallies.
    Demo {
        #[command(flatten)]
        args: demo::DemoArgs,
    },
}

/// Parses the process's arguments and runs the subcommand they name.
pub fn main() -> ExitCode {
    ExitCode::from(match Cli::parse().command {
        Command::Run { args } => run::execute(args),
        Command::CheckConfig { file } => check_config(file),
        Command::Inject { args } => inject::inject(args),
        Command::Injector { args } => inject::injector(args),
        Command::Lint { args } => lint::execute(args),
        Command::Contract { command } => contract::execute(command),
        Command::Rules { json, markdown } => reference::rules(json, markdown),
        Command::Reference { topic } => reference::print(topic),
        Command::Demo { args } => demo::execute(args),
    })
}

fn check_config(file: PathBuf) -> u8 {
    match config::load(Some(&file), &FlagValues::default()) {
        Ok(loaded) => {
            for warning in loaded.config.warnings() {
                eprintln!("statuscope: warning: {warning}");
            }
            println!("{}: configuration is valid", file.display());
            Exit::Clean.code()
        }
        Err(e) => Exit::Unusable.because(&e),
    }
}

/// A `--fail-on` severity.
fn parse_severity(text: &str) -> Result<Severity, String> {
    Severity::parse(text).ok_or_else(|| format!("`{text}` is not one of error, warning, info"))
}

/// `docs/cli.md`: every subcommand's help, from the flag definitions above and in this
/// module's files.
pub fn reference_markdown() -> String {
    let mut cli = Cli::command().term_width(100);
    let mut out = String::from(
        "# Command line\n\nGenerated from the flag definitions in `src/cli/` by `statuscope \
         reference cli` (`make docs`); a test fails when this file is stale. Exit statuses: the \
         README's *Exit statuses*.\n\n```\n",
    );
    out.push_str(&cli.render_help().to_string());
    out.push_str("```\n");
    for sub in cli.get_subcommands_mut() {
        let name = sub.get_name().to_string();
        if name == "help" {
            continue;
        }
        let help = sub
            .clone()
            .bin_name(format!("statuscope {name}"))
            .render_long_help();
        out.push_str(&format!("\n## `statuscope {name}`\n\n```\n{help}```\n"));
        for nested in sub.get_subcommands_mut().filter(|n| n.get_name() != "help") {
            let full = format!("statuscope {name} {}", nested.get_name());
            let help = nested.clone().bin_name(&full).render_long_help();
            out.push_str(&format!("\n### `{full}`\n\n```\n{help}```\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_s_exit_status_table_is_this_one() {
        let readme = include_str!("../../README.md");
        let table = readme
            .split("### Exit statuses\n")
            .nth(1)
            .and_then(|rest| rest.split("\n#").next())
            .expect("the README has its Exit statuses section");
        let statuses: Vec<&str> = table
            .lines()
            .filter_map(|line| line.strip_prefix("| "))
            .filter_map(|line| line.split(' ').next())
            .filter(|status| status.chars().all(|c| c.is_ascii_digit()))
            .collect();
        let defined: Vec<String> = Exit::ALL.iter().map(|e| e.code().to_string()).collect();
        assert_eq!(statuses, defined);
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_start_error_maps_to_its_exit_status() {
        let config = StartError::Config(config::ConfigErrors(Vec::new()));
        assert_eq!(after_run(Err(config)), Exit::Unusable.code());
        assert_eq!(
            after_run(Err(StartError::Io("taken".into()))),
            Exit::Failed.code()
        );
        assert_eq!(after_run(Ok(0)), Exit::Clean.code());
    }
}
