//! `statuscope inject` (manifests in, manifests out) and `statuscope injector` (the admission
//! webhook): the injection options both take, validated before anything is read or bound.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::Exit;
use crate::config::{self, keys};
use crate::logs::{self, LogFormat};
use crate::{inject, injector};

/// How to inject, for `inject` and `injector` alike.
#[derive(clap::Args)]
pub(super) struct InjectArgs {
    /// The statuscope image.
    #[arg(long, default_value = concat!("ghcr.io/statuscope/statuscope:", env!("CARGO_PKG_VERSION")))]
    image: String,
    /// The sidecar's proxy port, which takes over the application port's name.
    #[arg(long, default_value_t = keys::PROXY_PORT)]
    proxy_port: u16,
    /// The sidecar's admin port (probes and /metrics).
    #[arg(long, default_value_t = keys::ADMIN_PORT)]
    admin_port: u16,
    /// The application's port (number or name) when its pods declare several; a pod's
    /// statuscope.io/app-port annotation wins.
    #[arg(long)]
    app_port: Option<String>,
    /// A ConfigMap with statuscope.yaml to mount at /etc/statuscope; a pod's
    /// statuscope.io/config-map annotation wins.
    #[arg(long)]
    config_map: Option<String>,
    /// An OpenTelemetry Collector's base URL (`http://collector:4318`) every sidecar pushes
    /// its tallies to over OTLP, set as `OTEL_EXPORTER_OTLP_ENDPOINT`; a ConfigMap's
    /// `otlp.endpoint` wins.
    #[arg(long)]
    otlp_endpoint: Option<String>,
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
            otlp_endpoint: self.otlp_endpoint,
        };
        options.validate().map(|()| options)
    }
}

/// `inject`'s flags.
#[derive(clap::Args)]
pub(super) struct InjectCommand {
    /// YAML files or folders of them; `-` or nothing reads standard input.
    paths: Vec<PathBuf>,
    #[command(flatten)]
    options: InjectArgs,
}

/// `injector`'s flags.
#[derive(clap::Args)]
pub(super) struct InjectorArgs {
    /// The HTTPS address the API server calls.
    #[arg(long, default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// The injector's own admin address (plain HTTP: /healthz, /readyz, /metrics); not the
    /// sidecar's --admin-port.
    #[arg(long, default_value = "0.0.0.0:9443")]
    admin_listen: SocketAddr,
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
    log_format: LogFormat,
    #[command(flatten)]
    options: InjectArgs,
}

/// A `--log-level` [`logs::check_level`] accepts.
fn log_level(text: &str) -> Result<String, String> {
    logs::check_level(text).map(|()| text.to_string())
}

/// A `--log-format` by its `log.format` name.
fn log_format(text: &str) -> Result<LogFormat, String> {
    config::choose(&LogFormat::NAMED, text)
}

pub(super) fn inject(args: InjectCommand) -> u8 {
    let injection = args
        .options
        .options()
        .and_then(|options| Ok((read_inputs(&args.paths)?, options)))
        .and_then(|(input, options)| inject::inject(&input, &options).map_err(|e| e.to_string()));
    match injection {
        Ok(injection) => {
            for warning in &injection.warnings {
                eprintln!("statuscope: {warning}");
            }
            print!("{}", injection.output);
            Exit::Clean.code()
        }
        Err(e) => Exit::Unusable.because(&e),
    }
}

pub(super) fn injector(args: InjectorArgs) -> u8 {
    logs::init(args.log_format, &args.log_level);
    let options = match args.options.options() {
        Ok(options) => options,
        Err(e) => return Exit::Unusable.because(&e),
    };
    let setup = injector::Setup {
        listen: args.listen,
        admin_listen: args.admin_listen,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        drain: args.drain,
        options,
    };
    match injector::run(setup) {
        Ok(()) => Exit::Clean.code(),
        Err(e) => exit_for(&e).because(&e),
    }
}

/// The status an injector that could not run exits with.
fn exit_for(error: &injector::RunError) -> Exit {
    match error {
        injector::RunError::Flags(_) => Exit::Unusable,
        injector::RunError::Io(_) => Exit::Failed,
    }
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
    let mut input = String::new();
    for file in yaml_files(paths)? {
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

/// The files `paths` name, a folder standing for its YAML files in name order.
fn yaml_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_reads_as_its_yaml_files_in_name_order_each_a_document() {
        let dir = std::env::temp_dir().join(format!("statuscope-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b.yml"), "kind: B").unwrap();
        std::fs::write(dir.join("a.yaml"), "kind: A\n").unwrap();
        std::fs::write(dir.join("notes.txt"), "not yaml").unwrap();
        let input = read_inputs(std::slice::from_ref(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(input.unwrap(), "---\nkind: A\n---\nkind: B\n");
        let missing = read_inputs(&[dir.join("gone.yaml")]).unwrap_err();
        assert!(missing.contains("gone.yaml"), "{missing}");
    }

    #[test]
    fn an_unusable_flag_is_a_configuration_error_and_a_taken_port_a_failure() {
        let flags = injector::RunError::Flags("bad key".into());
        assert_eq!(exit_for(&flags), Exit::Unusable);
        assert_eq!(
            exit_for(&injector::RunError::Io("taken".into())),
            Exit::Failed
        );
    }
}
