//! `statuscope injector`: the mutating admission webhook that adds statuscope to every new pod
//! the API server sends it, by the code `statuscope inject` runs ([`crate::inject::pod`]).
//!
//! HTTPS on `--listen` (the API server calls webhooks over TLS only; pingora is built without
//! TLS here, so this server is hyper on rustls), `POST /inject`; `/healthz`, `/readyz` and
//! `/metrics` on `--admin-listen`, plain HTTP. Stateless: it reads nothing from the API, so it
//! needs no RBAC. The certificate is re-read when its files change. On SIGTERM `/readyz` turns
//! 503 while the webhook keeps answering for `--drain`, so the Service stops routing to it
//! before it stops.

pub mod patch;
pub mod review;
pub mod tls;

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use prometheus::{IntCounter, IntCounterVec};
use tokio::signal::unix::{signal, SignalKind};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::admin::{self, Health};
use crate::families::Families;
use crate::inject::Options;
use review::Decision;
use tls::{Certificate, Reload};

/// How often the certificate files are looked at again. A Secret update takes the kubelet up
/// to a minute to project, so a second is prompt without costing anything measurable.
const RELOAD_INTERVAL: Duration = Duration::from_secs(1);
/// A TLS handshake or request head that takes longer is abandoned (the API server's own
/// webhook timeout is at most 30 s).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest AdmissionReview read: a pod is at most 1.5 MiB in etcd, and the review carries
/// it once for CREATE.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// How to run the webhook.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The HTTPS address the API server calls.
    pub listen: SocketAddr,
    /// The plain-HTTP address of `/healthz`, `/readyz` and `/metrics`.
    pub admin_listen: SocketAddr,
    /// PEM certificate chain, re-read when it changes.
    pub tls_cert: PathBuf,
    /// PEM private key, re-read when it changes.
    pub tls_key: PathBuf,
    /// How long to keep answering after SIGTERM, with `/readyz` at 503.
    pub drain: Duration,
    /// How to inject, as `statuscope inject` takes it.
    pub options: Options,
}

/// The injector's own metric families, registered beside the code that records them.
struct Tally {
    admissions: IntCounterVec,
    reloads: IntCounterVec,
    handshake_failures: IntCounter,
}

impl Tally {
    fn register(families: &Families) -> Self {
        let admissions = families.counter_vec(
            "statuscope_injector_admissions_total",
            "AdmissionReview requests answered, by result: injected; a reason the pod was allowed unchanged (opted_out, already_injected, host_network, unresolvable_port, port_conflict, invalid_annotation); ignored (not a Pod CREATE); not_understood; bad_request (not an AdmissionReview, answered 400).",
            &["result"],
        );
        for result in Decision::all() {
            admissions.with_label_values(&[result.as_str()]);
        }
        let reloads = families.counter_vec(
            "statuscope_injector_certificate_reloads_total",
            "Changes of the certificate files seen, by outcome: loaded (the new pair is served), failed (the previous pair stays; the log says why).",
            &["outcome"],
        );
        for outcome in ["loaded", "failed"] {
            reloads.with_label_values(&[outcome]);
        }
        let handshake_failures = families.counter(
            "statuscope_injector_tls_handshake_failures_total",
            "TLS handshakes on the webhook port that failed or timed out.",
        );
        Self {
            admissions,
            reloads,
            handshake_failures,
        }
    }
}

/// The injector's metric families, as `/metrics` serves them (for the metrics reference).
pub fn registered_families() -> Families {
    let families = Families::new();
    Tally::register(&families);
    families.process();
    families
}

/// Why the webhook did not run, which decides the exit status as for `statuscope run`.
#[derive(Debug)]
pub enum RunError {
    /// A flag's value is unusable (a certificate or key that does not load): exit status 2,
    /// like an invalid configuration.
    Flags(String),
    /// The system refused (a port taken, a runtime that would not start): exit status 1.
    Io(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Flags(e) | RunError::Io(e) => f.write_str(e),
        }
    }
}

/// Runs the webhook until SIGTERM or SIGINT (and `--drain`); the error names the flag at fault.
pub fn run(settings: Setup) -> Result<(), RunError> {
    let certificate = Certificate::load(settings.tls_cert.clone(), settings.tls_key.clone())
        .map_err(RunError::Flags)?;
    let acceptor = TlsAcceptor::from(Arc::new(
        certificate.server_config().map_err(RunError::Flags)?,
    ));
    let bind = |address: SocketAddr, flag: &str| {
        TcpListener::bind(address).map_err(|e| RunError::Io(format!("{flag} {address}: {e}")))
    };
    let listener = bind(settings.listen, "--listen")?;
    let admin_listener = bind(settings.admin_listen, "--admin-listen")?;
    let families = Families::new();
    let tally = Arc::new(Tally::register(&families));
    families.process();
    let health = Arc::new(Health::default());
    let admin_health = health.clone();
    admin::spawn_server(
        admin_listener,
        "statuscope-injector-admin",
        move |request| admin_response(request, &families, &admin_health),
    )
    .map_err(|e| RunError::Io(format!("--admin-listen: {e}")))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("statuscope-injector")
        .enable_all()
        .build()
        .map_err(|e| RunError::Io(format!("cannot start the runtime: {e}")))?;
    info!(
        listen = %settings.listen,
        admin = %settings.admin_listen,
        "statuscope injector answering AdmissionReviews at POST /inject"
    );
    runtime
        .block_on(serve(
            listener,
            acceptor,
            certificate,
            tally,
            health,
            settings,
        ))
        .map_err(RunError::Io)
}

async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    certificate: Arc<Certificate>,
    tally: Arc<Tally>,
    health: Arc<Health>,
    settings: Setup,
) -> Result<(), String> {
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("--listen: {e}"))?;
    let listener =
        tokio::net::TcpListener::from_std(listener).map_err(|e| format!("--listen: {e}"))?;
    let signals = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    let (Ok(mut terminate), Ok(mut interrupt)) = signals else {
        return Err("cannot install the signal handlers".to_string());
    };
    let options = Arc::new(settings.options);
    let mut reload = tokio::time::interval(RELOAD_INTERVAL);
    health.mark_ready();
    // Set on the first signal: the end of the drain.
    let mut stop_at: Option<tokio::time::Instant> = None;
    loop {
        let stop = async {
            match stop_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, acceptor.clone(), options.clone(), tally.clone()));
                }
                Err(e) => warn!("accept failed: {e}"),
            },
            _ = reload.tick() => match certificate.reload() {
                Reload::Unchanged => {}
                Reload::Loaded => {
                    tally.reloads.with_label_values(&["loaded"]).inc();
                    info!("certificate reloaded");
                }
                Reload::Failed(why) => {
                    tally.reloads.with_label_values(&["failed"]).inc();
                    warn!("certificate not reloaded, the previous one stays: {why}");
                }
            },
            _ = terminate.recv(), if stop_at.is_none() => {
                stop_at = Some(begin_drain(&health, settings.drain));
            }
            _ = interrupt.recv(), if stop_at.is_none() => {
                stop_at = Some(begin_drain(&health, settings.drain));
            }
            () = stop => {
                info!("drained; stopping");
                return Ok(());
            }
        }
    }
}

fn begin_drain(health: &Health, drain: Duration) -> tokio::time::Instant {
    health.begin_drain();
    info!(
        "shutting down: /readyz says 503, answering for {}",
        humantime::format_duration(drain)
    );
    tokio::time::Instant::now() + drain
}

async fn connection(
    stream: tokio::net::TcpStream,
    acceptor: TlsAcceptor,
    options: Arc<Options>,
    tally: Arc<Tally>,
) {
    let tls = match tokio::time::timeout(CLIENT_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tally.handshake_failures.inc();
            debug!("TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            tally.handshake_failures.inc();
            debug!("TLS handshake timed out");
            return;
        }
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    let service = service_fn(move |request| {
        let (options, tally) = (options.clone(), tally.clone());
        async move { Ok::<_, Infallible>(handle(request, &options, &tally).await) }
    });
    // Errors here are a client hanging up mid-request; its next try gets a fresh connection.
    let _ = if h2 {
        hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .serve_connection(io, service)
            .await
    } else {
        hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(CLIENT_TIMEOUT)
            .serve_connection(io, service)
            .await
    };
}

async fn handle(
    request: Request<Incoming>,
    options: &Options,
    tally: &Tally,
) -> Response<Full<Bytes>> {
    if request.uri().path() != "/inject" {
        return admin::plain(
            StatusCode::NOT_FOUND,
            "not found: AdmissionReviews go to POST /inject\n",
        );
    }
    if request.method() != Method::POST {
        let mut response = admin::plain(StatusCode::METHOD_NOT_ALLOWED, "only POST\n");
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        return response;
    }
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            tally
                .admissions
                .with_label_values(&[Decision::BadRequest.as_str()])
                .inc();
            return admin::plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "an AdmissionReview is at most 4 MiB\n",
            );
        }
        Err(e) => {
            debug!("reading a review failed: {e}");
            return admin::plain(StatusCode::BAD_REQUEST, "the body could not be read\n");
        }
    };
    match review::answer(&body, options) {
        Ok(answer) => {
            tally
                .admissions
                .with_label_values(&[answer.result.as_str()])
                .inc();
            let reason = answer.reason.as_deref().unwrap_or("");
            match answer.result {
                Decision::NotUnderstood => {
                    warn!(review = %answer.subject, reason, "allowed unchanged: not understood")
                }
                result => {
                    info!(review = %answer.subject, result = result.as_str(), reason, "admission answered")
                }
            }
            admin::with_type(answer.body, "application/json")
        }
        Err(why) => {
            tally
                .admissions
                .with_label_values(&[Decision::BadRequest.as_str()])
                .inc();
            warn!("refused a request that is not an AdmissionReview: {why}");
            let mut response = admin::with_type(
                format!("not an AdmissionReview: {why}\n").into_bytes(),
                "text/plain; charset=utf-8",
            );
            *response.status_mut() = StatusCode::BAD_REQUEST;
            response
        }
    }
}

fn admin_response(
    request: &Request<Incoming>,
    families: &Families,
    health: &Health,
) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    if !matches!(path, "/metrics" | "/healthz" | "/readyz") {
        return admin::plain(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz or /readyz\n",
        );
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return admin::plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    match path {
        "/metrics" => admin::metrics_response(families.registry()),
        "/healthz" => admin::plain(StatusCode::OK, "ok\n"),
        _ => admin::readiness_response(health),
    }
}
