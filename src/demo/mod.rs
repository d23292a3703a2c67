//! `statuscope demo`: statuscope in front of a built-in service, with clients driving traffic
//! through it and a live table of the tallies in the terminal.

pub mod collector;
pub mod grpc;
pub mod service;
pub mod summary;
pub mod traffic;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{self, keys, Config, FlagValues, UpstreamProtocol};
use crate::contract::Contract;
use crate::export::otlp::settings::ENDPOINT_VARIABLES;
use crate::lifecycle::{self, StartError};
use crate::record::Recorder;
use summary::Summary;

/// How often the table is redrawn.
const REFRESH: Duration = Duration::from_secs(3);
/// Concurrent demo clients of the HTTP API.
const WORKERS: usize = 8;
/// How often the demo pushes to its stand-in collector: often enough to see on a dashboard.
const DEMO_PUSH_INTERVAL: &str = "5s";
/// Concurrent demo clients of the gRPC service.
const GRPC_WORKERS: usize = 2;

/// Runs the demo until Ctrl-C or `duration`.
pub fn run(overrides: &FlagValues, duration: Option<Duration>) -> Result<u8, StartError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| StartError::Io(format!("cannot start the demo runtime: {e}")))?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| StartError::Io(format!("cannot bind the demo service: {e}")))?;
    let service_addr = listener
        .local_addr()
        .map_err(|e| StartError::Io(e.to_string()))?;

    let mut overrides = overrides.clone();
    overrides.upstream = Some(service_addr.to_string());
    // The demo service stands in for an OpenTelemetry Collector too, unless the environment
    // names a push of its own.
    let mut env: ::config::Map<String, String> = std::env::vars().collect();
    let endpoint = keys::OTLP_ENDPOINT.env_var();
    let named = ENDPOINT_VARIABLES
        .iter()
        .any(|name| env.contains_key(*name));
    if !named && !env.contains_key(&endpoint) {
        env.insert(endpoint, format!("http://{service_addr}"));
        env.entry(keys::OTLP_INTERVAL.env_var())
            .or_insert_with(|| DEMO_PUSH_INTERVAL.to_string());
    }
    let loaded = config::load_from(None, &overrides, Some(env)).map_err(StartError::Config)?;
    let config = demo_config(loaded.config)?;
    crate::logs::init(config.log.format, &config.log.level);

    let recorder = config.recorder();
    runtime.spawn(service::serve(listener));
    runtime.spawn(traffic_when_ready(config.listen, config.admin));
    runtime.spawn(print_table(recorder.clone(), config.admin));

    let started = Instant::now();
    let status = lifecycle::run(&config, "built-in demo", &recorder, duration, None, None)?;
    let table = Summary::gather(&recorder).render(started.elapsed(), &config.admin.to_string());
    println!("{table}");
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(status)
}

/// The demo service's OpenAPI document, which it breaks in six places (see the file).
const CONTRACT: &str = include_str!("openapi.yaml");

/// The demo's settings on top of the defaults: a short read timeout so the slow route shows
/// proxy-made 504s, quiet logs so the table stays readable, the service's contract, and each
/// client's own protocol to the service (its gRPC calls go over HTTP/2).
fn demo_config(mut config: Config) -> Result<Config, StartError> {
    config.upstream_protocol = UpstreamProtocol::Downstream;
    config.timeouts.read = Duration::from_secs(2);
    config.drain_timeout = Duration::from_secs(2);
    config.log.level = "error,pingora_proxy=off,pingora_core=off".to_string();
    let dir = std::env::temp_dir().join(format!("statuscope-demo-{}", std::process::id()));
    let path = dir.join("openapi.yaml");
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, CONTRACT))
        .map_err(|e| StartError::Io(format!("cannot write the demo contract: {e}")))?;
    let contract = Contract::load(&path).expect("the demo contract is valid");
    config.contract = Some(Arc::new(contract));
    Ok(config)
}

/// Starts the clients once `/readyz` says the proxy accepts connections.
async fn traffic_when_ready(proxy: SocketAddr, admin: SocketAddr) {
    loop {
        if let Ok(stream) = tokio::net::TcpStream::connect(admin).await {
            if readyz_ok(stream).await {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::join!(
        traffic::drive(proxy, WORKERS),
        grpc::drive(proxy, GRPC_WORKERS)
    );
}

async fn readyz_ok(mut stream: tokio::net::TcpStream) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.is_ok() && &head[9..12] == b"200"
}

async fn print_table(recorder: Recorder, admin: SocketAddr) {
    let started = Instant::now();
    let clear = std::io::stdout().is_terminal();
    let admin = admin.to_string();
    loop {
        tokio::time::sleep(REFRESH).await;
        let table = Summary::gather(&recorder).render(started.elapsed(), &admin);
        if clear {
            // Clear the screen and home the cursor, so the table redraws in place.
            print!("\x1b[2J\x1b[H");
        }
        println!("{table}");
    }
}
