//! Lifecycle: start-up order, readiness, and shutdown.
//!
//! Start-up binds the admin listener, checks the proxy address is free, then hands the proxy
//! to pingora; `/readyz` turns 200 once the proxy port accepts connections. SIGTERM turns
//! `/readyz` to 503 at once, pingora stops accepting, in-flight requests finish, and the
//! process exits 0 as soon as none is left or `drain_timeout` has passed. SIGINT exits at once.
//! SIGHUP reloads the configuration from the same sources (see [`LoadConfig`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::listeners::{L4BufferSettings, ListenerConfig, TcpSocketOptions};
use pingora::proxy::{http_proxy, HttpProxy};
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::listening::Service;
use prometheus::{IntCounterVec, IntGauge};
use tokio::signal::unix::{signal, SignalKind};
use tracing::{info, warn};

use crate::admin::Health;
use crate::config::{Config, ConfigErrors, Engine};
use crate::contract::coverage::{CoverageCollector, Current};
use crate::export::otlp::{ExportMetrics, Exporter};
use crate::families::Families;
use crate::proxy::fast::FastEngine;
use crate::proxy::guard::{ConnectionGuard, ConnectionLimit};
use crate::proxy::in_flight::InFlightLimit;
use crate::proxy::pingora::StatuscopeProxy;
use crate::proxy::settings::Settings;
use crate::record::observed::operations::OperationsCollector;
use crate::record::observed::Observed;
use crate::record::{Metrics, Recorder};
use crate::report::ReportGate;

/// Loads the configuration again from the sources the process started with; called on SIGHUP.
pub type LoadConfig = Box<dyn Fn() -> Result<Config, ConfigErrors> + Send + Sync>;

/// How often readiness and drain progress are checked. Both are cheap local checks.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Why the proxy could not start.
#[derive(Debug)]
pub enum StartError {
    /// The configuration is unusable (exit status 2).
    Config(ConfigErrors),
    /// A port could not be bound or a thread started (exit status 1).
    Io(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "{e}"),
            StartError::Io(e) => f.write_str(e),
        }
    }
}

/// Runs the proxy and the admin server until a signal (or `stop_after`) ends it, and returns
/// the exit status. Without a `reload`, SIGHUP is logged and ignored. With a `gate`, its report
/// is written at the end and decides the exit status.
pub fn run(
    config: &Config,
    source: &str,
    recorder: &Recorder,
    stop_after: Option<Duration>,
    reload: Option<LoadConfig>,
    gate: Option<Arc<ReportGate>>,
) -> Result<u8, StartError> {
    let settings = Arc::new(Settings::new(config).map_err(|e| StartError::Config(e.into()))?);
    let RunFamilies {
        in_flight,
        limit,
        reloads,
        exports,
    } = RunFamilies::register(
        recorder.metrics.families(),
        current_contract(&settings),
        recorder.observed.clone(),
    );
    let proxy = StatuscopeProxy::new(settings.clone(), recorder, in_flight.clone());
    let upstream = config
        .require_upstream()
        .map_err(|e| StartError::Config(e.into()))?;
    let health = Arc::new(Health::default());
    let exporter = match &config.otlp {
        Some(otlp) => Some(Arc::new(
            Exporter::start(otlp.clone(), recorder.metrics.clone(), exports)
                .map_err(|e| StartError::Io(format!("cannot start the OTLP push: {e}")))?,
        )),
        None => None,
    };

    let admin = bind_ports(config)?;
    let findings = config.findings.endpoint.then(|| recorder.findings.clone());
    let served = crate::admin::Served {
        findings,
        findings_token: config.findings.token.clone(),
        contract: current_contract(&settings),
        observed: recorder.observed.clone(),
    };
    crate::admin::spawn(admin, recorder.metrics.clone(), health.clone(), served)
        .map_err(|e| StartError::Io(format!("cannot start the admin server: {e}")))?;

    let mut server = Server::new_with_opt_and_conf(None, server_conf(config));
    server.bootstrap();
    let engines = Engines {
        proxy: Arc::new(http_proxy(&server.configuration, proxy)),
        settings: &settings,
        recorder,
        in_flight: &in_flight,
        limit: &limit,
    };
    engines.add_to(&mut server, config);

    spawn_readiness_probe(config.listen, health.clone());
    log_start(config, &upstream.authority, source);
    let watch = SignalWatch {
        health,
        in_flight: in_flight.gauge().clone(),
        drain_timeout: config.drain_timeout,
        stop_after,
        gate: gate.clone(),
        exporter: exporter.clone(),
        reloader: reload.map(|reload| Reloader {
            reload,
            settings,
            reloads,
            started_with: config.clone(),
            exporter: exporter.clone(),
        }),
    };
    server.run(RunArgs {
        shutdown_signal: Box::new(watch),
    });
    if let Some(exporter) = &exporter {
        exporter.flush();
    }
    info!("statuscope stopped");
    Ok(gate.map_or(0, |gate| gate.finish()))
}

/// The admin listener, bound; the proxy's port checked free.
fn bind_ports(config: &Config) -> Result<TcpListener, StartError> {
    let admin = TcpListener::bind(config.admin)
        .map_err(|e| StartError::Io(format!("cannot bind admin address {}: {e}", config.admin)))?;
    // pingora retries a taken port for 30 s and then panics: fail clearly and at once instead.
    drop(TcpListener::bind(config.listen).map_err(|e| {
        StartError::Io(format!("cannot bind listen address {}: {e}", config.listen))
    })?);
    Ok(admin)
}

/// pingora's server settings for `config`.
fn server_conf(config: &Config) -> ServerConf {
    ServerConf {
        threads: config.threads,
        // The fast engine runs one current-thread runtime per worker: no work stealing.
        work_stealing: config.engine == Engine::Pingora,
        // pingora sleeps the whole grace period; the drain watcher exits earlier once idle.
        grace_period_seconds: Some(config.drain_timeout.as_secs_f64().ceil() as u64),
        graceful_shutdown_timeout_seconds: Some(1),
        upstream_keepalive_pool_size: config.upstream_keepalive_pool_size,
        // pingora's own timer thread ticks every 10 ms once any timeout has used it, waking an
        // idle sidecar 100 times a second; tokio's timers wake only when one is due. With the
        // fast engine every pingora timeout of a second or more (the listener's handshake
        // timeout on every connection among them) uses tokio's.
        fast_timeout_to_tokio_threshold_seconds: match config.engine {
            Engine::Fast => Some(0),
            Engine::Pingora => ServerConf::default().fast_timeout_to_tokio_threshold_seconds,
        },
        ..ServerConf::default()
    }
}

/// What the proxy's services are built from.
struct Engines<'a> {
    proxy: Arc<HttpProxy<StatuscopeProxy>>,
    settings: &'a Arc<Settings>,
    recorder: &'a Recorder,
    in_flight: &'a InFlightLimit,
    limit: &'a ConnectionLimit,
}

impl Engines<'_> {
    /// Adds the proxy's services, as `proxy.engine` says, to `server`.
    fn add_to(self, server: &mut Server, config: &Config) {
        match config.engine {
            Engine::Pingora => {
                let guard = ConnectionGuard::new(
                    self.proxy,
                    self.settings.clone(),
                    self.recorder,
                    self.limit.clone(),
                    config.h2c,
                );
                let mut service = Service::new("statuscope proxy".to_string(), guard);
                service.add_tcp(&config.listen.to_string());
                server.add_service(service);
            }
            Engine::Fast => {
                let pool_capacity = config.upstream_keepalive_pool_size.div_ceil(config.threads);
                // One service per worker thread, each with its own listening socket on the same
                // port (SO_REUSEPORT): the kernel spreads connections over the workers, and each
                // connection lives on the runtime whose reactor drives its socket.
                let mut socket = TcpSocketOptions::default();
                socket.so_reuseport = Some(config.threads > 1);
                for worker in 0..config.threads {
                    let engine = FastEngine::new(
                        self.proxy.clone(),
                        self.settings.clone(),
                        self.recorder,
                        self.in_flight.clone(),
                        self.limit.clone(),
                        config.h2c,
                        pool_capacity,
                    );
                    let mut service =
                        Service::new(format!("statuscope proxy worker {worker}"), engine);
                    service.threads = Some(1);
                    // The engine reads into buffers of its own: no second buffer per connection.
                    service.add_listener(
                        ListenerConfig::tcp(config.listen.to_string())
                            .tcp_socket_options(socket.clone())
                            .l4_buffer(L4BufferSettings::unbuffered()),
                    );
                    server.add_service(service);
                }
            }
        }
    }
}

/// The start-up log line, and the configuration's warnings.
fn log_start(config: &Config, upstream: &str, source: &str) {
    info!(
        listen = %config.listen,
        admin = %config.admin,
        upstream = %upstream,
        engine = config.engine.as_str(),
        upstream_protocol = config.upstream_protocol.as_str(),
        otlp = %config.otlp.as_ref().map_or("off".to_string(), |otlp| otlp.endpoint.to_string()),
        config = source,
        "statuscope starting"
    );
    for warning in config.warnings() {
        warn!("{warning}");
    }
}

/// The families of the stages that run the proxy, registered once per process beside the
/// recorder's: requests in flight (the in-flight limit), the connection cap (the guard), and reloads.
struct RunFamilies {
    in_flight: InFlightLimit,
    limit: ConnectionLimit,
    reloads: IntCounterVec,
    exports: ExportMetrics,
}

impl RunFamilies {
    fn register(families: &Families, contract: Current, observed: Option<Arc<Observed>>) -> Self {
        CoverageCollector::register(families, contract.clone());
        OperationsCollector::register(families, contract, observed);
        let in_flight = InFlightLimit::register(families);
        let limit = ConnectionLimit::register(families);
        let reloads = families.counter_vec(
            "statuscope_config_reloads_total",
            "Configuration reloads on SIGHUP, by result (success, failure).",
            &["result"],
        );
        for result in ["success", "failure"] {
            reloads.with_label_values(&[result]);
        }
        RunFamilies {
            in_flight,
            limit,
            reloads,
            exports: ExportMetrics::register(families),
        }
    }
}

/// Every family a running sidecar registers, in a registry of its own, for the reference.
pub fn registered_families() -> Families {
    let metrics = Metrics::default();
    RunFamilies::register(metrics.families(), Arc::new(|| None), None);
    metrics.families().clone()
}

/// The contract the running proxy judges against, whichever reload put it in force.
fn current_contract(settings: &Arc<Settings>) -> Current {
    let settings = settings.clone();
    Arc::new(move || settings.current().contract.clone())
}

/// Marks the proxy ready once its port accepts a connection. The probe connection sends no
/// request, so pingora closes it without a tally.
fn spawn_readiness_probe(listen: SocketAddr, health: Arc<Health>) {
    let target = SocketAddr::new(loopback_for(listen.ip()), listen.port());
    // Gives up once shutdown has begun: the listener may never come up then.
    std::thread::spawn(move || {
        while health.is_starting() {
            if TcpStream::connect_timeout(&target, Duration::from_secs(1)).is_ok() {
                health.mark_ready();
                return;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    });
}

fn loopback_for(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

/// Turns signals into pingora shutdowns, starting the drain watcher on SIGTERM, and reloads
/// the configuration on SIGHUP.
struct SignalWatch {
    health: Arc<Health>,
    /// `statuscope_requests_in_flight`, which the drain waits to see at 0.
    in_flight: IntGauge,
    drain_timeout: Duration,
    stop_after: Option<Duration>,
    gate: Option<Arc<ReportGate>>,
    /// The OTLP push, which sends its last export once the drain is done.
    exporter: Option<Arc<Exporter>>,
    reloader: Option<Reloader>,
}

/// Applies a reloaded configuration to the running proxy.
struct Reloader {
    reload: LoadConfig,
    settings: Arc<Settings>,
    /// `statuscope_config_reloads_total{result}`.
    reloads: IntCounterVec,
    /// Keys outside [`Settings`] only take effect at start; a reload that changes them says so.
    started_with: Config,
    /// The OTLP push, given the reloaded `otlp.*` settings.
    exporter: Option<Arc<Exporter>>,
}

impl Reloader {
    fn reload(&self) {
        let applied = (self.reload)().and_then(|config| {
            self.settings.replace(&config)?;
            if let (Some(exporter), Some(otlp)) = (&self.exporter, &config.otlp) {
                exporter.replace(otlp.clone());
            }
            Ok(config)
        });
        match applied {
            Ok(config) => {
                self.reloads.with_label_values(&["success"]).inc();
                let restart = config.keys_needing_restart(&self.started_with);
                if restart.is_empty() {
                    info!("SIGHUP: configuration reloaded");
                } else {
                    warn!(
                        keys = restart.join(", "),
                        "SIGHUP: configuration reloaded; these keys changed but only take effect on restart"
                    );
                }
            }
            Err(errors) => {
                self.reloads.with_label_values(&["failure"]).inc();
                for error in errors.iter() {
                    warn!(error = %error, "SIGHUP: configuration rejected; the previous one stays in force");
                }
            }
        }
    }
}

#[async_trait]
impl ShutdownSignalWatch for SignalWatch {
    async fn recv(&self) -> ShutdownSignal {
        let (Ok(mut terminate), Ok(mut interrupt), Ok(mut hangup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            warn!("cannot install signal handlers; stopping");
            return ShutdownSignal::FastShutdown;
        };
        let deadline = async {
            match self.stop_after {
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = hangup.recv() => match &self.reloader {
                    Some(reloader) => reloader.reload(),
                    None => info!("SIGHUP: this configuration is built in; nothing to reload"),
                },
                _ = terminate.recv() => {
                    info!(drain_timeout = ?self.drain_timeout, "SIGTERM: draining in-flight requests");
                    self.health.begin_drain();
                    spawn_drain_watcher(self.in_flight.clone(), self.drain_timeout, self.gate.clone(), self.exporter.clone());
                    return ShutdownSignal::GracefulTerminate;
                }
                _ = interrupt.recv() => {
                    info!("SIGINT: stopping now");
                    self.health.begin_drain();
                    return ShutdownSignal::FastShutdown;
                }
                _ = &mut deadline => {
                    self.health.begin_drain();
                    return ShutdownSignal::FastShutdown;
                }
            }
        }
    }
}

/// Exits once no request has been in flight for two polls in a row, or at the drain timeout:
/// 0, or the report gate's status. pingora itself would sleep out its whole grace period even
/// with nothing left to finish.
fn spawn_drain_watcher(
    in_flight: IntGauge,
    drain_timeout: Duration,
    gate: Option<Arc<ReportGate>>,
    exporter: Option<Arc<Exporter>>,
) {
    let started = Instant::now();
    std::thread::spawn(move || {
        let mut idle_polls = 0;
        while idle_polls < 2 && started.elapsed() < drain_timeout {
            std::thread::sleep(POLL_INTERVAL);
            idle_polls = if in_flight.get() == 0 {
                idle_polls + 1
            } else {
                0
            };
        }
        if idle_polls >= 2 {
            info!(elapsed = ?started.elapsed(), "drained; exiting");
        } else {
            warn!(
                in_flight = in_flight.get(),
                "drain timeout reached; exiting"
            );
        }
        if let Some(exporter) = exporter {
            exporter.flush();
        }
        std::process::exit(gate.map_or(0, |gate| i32::from(gate.finish())));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_registered_and_served() {
        let families = registered_families();
        let described = families.described();
        let served: Vec<String> = families
            .registry()
            .gather()
            .iter()
            .map(|family| family.name().to_string())
            .collect();
        // Families with labels are served once a child exists; the unlabelled ones at once.
        for family in described
            .iter()
            .filter(|f| f.labels.is_empty() && f.kind.is_some())
        {
            assert!(served.contains(&family.name), "{} not served", family.name);
        }
        for name in [
            "statuscope_responses_total",
            "statuscope_requests_in_flight",
            "statuscope_downstream_connections",
            "statuscope_config_reloads_total",
            "statuscope_rule_panics_total",
        ] {
            assert!(described.iter().any(|f| f.name == name), "{name} missing");
        }
    }
}
