//! The `statuscope` command: `run`, `check-config`, `lint`, `inject`, `injector`, `rules` and
//! `demo`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Parser, Subcommand};

use statuscope::config::{self, FlagValues};
use statuscope::lifecycle::{self, StartError};
use statuscope::lint::Linter;
use statuscope::record::report::{Format, Report, ReportGate};
use statuscope::record::Recorder;
use statuscope::rules::describe;
use statuscope::rules::Severity;
use statuscope::{admin, demo, inject, injector, logs};

/// Exit status for a configuration or usage error (as clap uses for bad flags).
const EXIT_CONFIG: u8 = 2;
/// Exit status for a failure at run time, such as a port already in use.
const EXIT_RUNTIME: u8 = 1;

#[derive(Parser)]
#[command(
    name = "statuscope",
    version,
    about = "HTTP observability sidecar: per-route status-code tallies for Prometheus"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Proxy traffic to the upstream and export metrics on the admin port.
    Run {
        #[command(flatten)]
        args: RunArgs,
    },
    /// Validate a configuration file (with the environment) without starting.
    CheckConfig {
        /// The YAML or TOML file to check.
        file: PathBuf,
    },
    /// Add statuscope to the workloads in Kubernetes YAML and re-target their Services (to stdout).
    Inject {
        /// YAML files or folders of them; `-` or nothing reads standard input.
        paths: Vec<PathBuf>,
        #[command(flatten)]
        options: InjectArgs,
    },
    /// Serve the mutating admission webhook that injects every new pod the API server sends.
    ///
    /// AdmissionReview (admission.k8s.io/v1) over HTTPS at POST /inject; /healthz, /readyz and
    /// /metrics on --admin-listen. The certificate files are re-read when they change.
    Injector {
        /// The HTTPS address the API server calls.
        #[arg(long, default_value = "0.0.0.0:8443")]
        listen: std::net::SocketAddr,
        /// The injector's own admin address (plain HTTP: /healthz, /readyz, /metrics); not the
        /// sidecar's --admin-port.
        #[arg(long, default_value = "0.0.0.0:9443")]
        admin_listen: std::net::SocketAddr,
        /// The serving certificate chain (PEM).
        #[arg(long)]
        tls_cert: PathBuf,
        /// The serving certificate's private key (PEM).
        #[arg(long)]
        tls_key: PathBuf,
        /// How long to keep answering after SIGTERM, with /readyz at 503.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        drain: Duration,
        /// What to log: a filter such as `info` or `statuscope=debug` (pingora at most `info`),
        /// as the sidecar's `log.level`.
        #[arg(long, default_value = "info", value_parser = log_level)]
        log_level: String,
        /// `json` (one object per line, for the cluster's log pipeline) or `human`.
        #[arg(long, default_value = "json", value_parser = log_format)]
        log_format: logs::LogFormat,
        #[command(flatten)]
        options: InjectArgs,
    },
    /// Check recorded traffic (HAR files) against the misuse rules, for CI.
    ///
    /// Exit status: 0 when nothing at or above --fail-on was found, 1 when something was,
    /// 2 when an input could not be read (the other files are still linted).
    Lint {
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
        topic: Topic,
    },
    /// Run statuscope in front of a built-in demo service, drive traffic and print live tallies.
    Demo {
        /// Stop by itself after this long (e.g. `30s`, `2m`); runs until Ctrl-C when absent.
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// Proxy address of the demo.
        #[arg(long, default_value = concat!("127.0.0.1:", statuscope::default_proxy_port!()))]
        listen: String,
        /// Admin address of the demo (`/metrics`).
        #[arg(long, default_value = concat!("127.0.0.1:", statuscope::default_admin_port!()))]
        admin: String,
    },
}

/// How to inject, for `inject` and `injector` alike.
#[derive(clap::Args)]
struct InjectArgs {
    /// The statuscope image.
    #[arg(long, default_value = concat!("ghcr.io/statuscope/statuscope:", env!("CARGO_PKG_VERSION")))]
    image: String,
    /// The sidecar's proxy port, which takes over the application port's name.
    #[arg(long, default_value_t = config::keys::PROXY_PORT)]
    proxy_port: u16,
    /// The sidecar's admin port (probes and /metrics).
    #[arg(long, default_value_t = config::keys::ADMIN_PORT)]
    admin_port: u16,
    /// The application's port (number or name) when its pods declare several; a pod's
    /// statuscope.io/app-port annotation wins.
    #[arg(long)]
    app_port: Option<String>,
    /// A ConfigMap with statuscope.yaml to mount at /etc/statuscope; a pod's
    /// statuscope.io/config-map annotation wins.
    #[arg(long)]
    config_map: Option<String>,
}

impl InjectArgs {
    /// The options, validated (the error names the flag).
    fn options(self) -> Result<inject::Options, String> {
        let options = inject::Options {
            image: self.image,
            proxy_port: self.proxy_port,
            admin_port: self.admin_port,
            app_port: self.app_port,
            config_map: self.config_map,
        };
        options.validate().map(|()| options)
    }
}

/// The references `statuscope reference` prints, each the whole of a file in `docs/`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Topic {
    /// Every configuration key (docs/configuration.md).
    Configuration,
    /// Every metric family, with its type, labels and help (docs/metrics.md).
    Metrics,
    /// The misuse rules (docs/rules.md).
    Rules,
    /// The pod annotations `inject` and `injector` read (docs/annotations.md).
    Annotations,
    /// The answers statuscope makes itself instead of the service (docs/answers.md).
    Answers,
}

#[derive(clap::Args)]
struct RunArgs {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { args } => {
            let overrides = FlagValues {
                listen: args.listen,
                admin: args.admin,
                upstream: args.upstream,
            };
            let file = args.config.clone();
            let loaded = match config::load(file.as_deref(), &overrides) {
                Ok(loaded) => loaded,
                Err(e) => return fail(EXIT_CONFIG, &e),
            };
            if let Err(e) = loaded.config.require_upstream() {
                return fail(EXIT_CONFIG, &e);
            }
            logs::init(loaded.config.log.format, &loaded.config.log.level);
            let mut recorder = Recorder::new(
                loaded.config.findings.keep_per_rule,
                loaded.config.findings.log_interval,
                &loaded.config.duration_buckets,
            );
            let gate = args.report.map(|path| {
                let report = Arc::new(Mutex::new(Report::for_rules(
                    &loaded.config.rule_settings,
                    loaded.config.contract.is_some(),
                )));
                recorder.report = Some(report.clone());
                Arc::new(ReportGate {
                    report,
                    format: args
                        .report_format
                        .unwrap_or_else(|| Format::for_path(&path)),
                    path,
                    fail_on: args.fail_on,
                })
            });
            let reload: lifecycle::LoadConfig = Box::new(move || {
                config::load(file.as_deref(), &overrides).map(|loaded| loaded.config)
            });
            finish(lifecycle::run(
                &loaded.config,
                &loaded.source,
                &recorder,
                None,
                Some(reload),
                gate,
            ))
        }
        Command::CheckConfig { file } => match config::load(Some(&file), &FlagValues::default()) {
            Ok(loaded) => {
                for warning in loaded.config.warnings() {
                    eprintln!("statuscope: warning: {warning}");
                }
                println!("{}: configuration is valid", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail(EXIT_CONFIG, &e),
        },
        Command::Inject { paths, options } => {
            let options = match options.options() {
                Ok(options) => options,
                Err(e) => return fail(EXIT_CONFIG, &e),
            };
            let input = match read_inputs(&paths) {
                Ok(input) => input,
                Err(e) => return fail(EXIT_CONFIG, &e),
            };
            match inject::inject(&input, &options) {
                Ok(injection) => {
                    for warning in &injection.warnings {
                        eprintln!("statuscope: {warning}");
                    }
                    print!("{}", injection.output);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(EXIT_CONFIG, &e),
            }
        }
        Command::Injector {
            listen,
            admin_listen,
            tls_cert,
            tls_key,
            drain,
            log_level,
            log_format,
            options,
        } => {
            logs::init(log_format, &log_level);
            let options = match options.options() {
                Ok(options) => options,
                Err(e) => return fail(EXIT_CONFIG, &e),
            };
            let settings = injector::Setup {
                listen,
                admin_listen,
                tls_cert,
                tls_key,
                drain,
                options,
            };
            match injector::run(settings) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e @ injector::RunError::Flags(_)) => fail(EXIT_CONFIG, &e),
                Err(e @ injector::RunError::Io(_)) => fail(EXIT_RUNTIME, &e),
            }
        }
        Command::Lint {
            files,
            config,
            format,
            fail_on,
        } => {
            let loaded = match config::load(config.as_deref(), &FlagValues::default()) {
                Ok(loaded) => loaded,
                Err(e) => return fail(EXIT_CONFIG, &e),
            };
            let mut report = Report::for_rules(
                &loaded.config.rule_settings,
                loaded.config.contract.is_some(),
            );
            // HAR records no trailers, where gRPC calls carry their status.
            report.judges_grpc = false;
            let linter = Linter::new(&loaded.config);
            linter.lint_paths(&files, &mut report);
            report.coverage = linter.coverage();
            print!("{}", report.render(format, fail_on));
            for error in &report.input_errors {
                eprintln!("statuscope: cannot read {error}");
            }
            ExitCode::from(report.exit_status(fail_on))
        }
        Command::Rules { json, markdown } => {
            let text = if json {
                describe::json()
            } else if markdown {
                describe::markdown()
            } else {
                describe::table()
            };
            print!("{text}");
            ExitCode::SUCCESS
        }
        Command::Reference { topic } => {
            let text = match topic {
                Topic::Configuration => config::reference::reference_markdown(),
                Topic::Metrics => admin::reference::markdown(
                    &lifecycle::registered_families(),
                    &injector::registered_families(),
                ),
                Topic::Rules => describe::markdown(),
                Topic::Annotations => inject::overrides::reference_markdown(),
                Topic::Answers => statuscope::proxy::error_response::reference_markdown(),
            };
            print!("{text}");
            ExitCode::SUCCESS
        }
        Command::Demo {
            duration,
            listen,
            admin,
        } => {
            let overrides = FlagValues {
                listen: Some(listen),
                admin: Some(admin),
                upstream: None,
            };
            finish(demo::run(&overrides, duration))
        }
    }
}

fn parse_severity(text: &str) -> Result<Severity, String> {
    Severity::parse(text).ok_or_else(|| format!("`{text}` is not one of error, warning, info"))
}

/// A `--log-level` [`logs::check_level`] accepts.
fn log_level(text: &str) -> Result<String, String> {
    logs::check_level(text).map(|()| text.to_string())
}

/// A `--log-format` by its `log.format` name.
fn log_format(text: &str) -> Result<logs::LogFormat, String> {
    statuscope::config::choose(&logs::LogFormat::NAMED, text)
}

/// Reads the files named (folders: their `.yaml` and `.yml` files, in name order), or stdin.
fn read_inputs(paths: &[PathBuf]) -> Result<String, String> {
    use std::io::Read;
    if paths.is_empty() || paths.iter().any(|p| p.as_os_str() == "-") {
        let mut input = String::new();
        std::io::stdin()
            .read_to_string(&mut input)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        return Ok(input);
    }
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let mut input = String::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        input.push_str("---\n");
        input.push_str(&text);
        if !text.ends_with('\n') {
            input.push('\n');
        }
    }
    Ok(input)
}

fn finish(result: Result<u8, StartError>) -> ExitCode {
    match result {
        Ok(status) => ExitCode::from(status),
        Err(StartError::Config(e)) => fail(EXIT_CONFIG, &e),
        Err(e) => fail(EXIT_RUNTIME, &e),
    }
}

/// Prints `error` with every line prefixed, so each of several configuration errors reads as a
/// message of its own.
fn fail(status: u8, error: &dyn std::fmt::Display) -> ExitCode {
    for line in error.to_string().lines() {
        eprintln!("statuscope: {line}");
    }
    ExitCode::from(status)
}
