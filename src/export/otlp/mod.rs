//! The OTLP push: every `interval`, the registry's families and OpenTelemetry's views of them
//! ([`conventions`]) are read, encoded as one `ExportMetricsServiceRequest` (the
//! `opentelemetry-proto` messages) and POSTed to the collector from a thread of their own.
//! Nothing on the request path changes: what is pushed is what `/metrics` serves, read at
//! export time.
//!
//! A collector that is down, slow or refusing never reaches the proxy: exports wait in a
//! bounded queue (the oldest dropped when full), retryable failures are tried again with
//! exponential backoff or after `Retry-After`, final ones dropped, each outcome counted in
//! `statuscope_otlp_exports_total{outcome}` and logged at most once a minute. At SIGTERM,
//! once the drain is done, one last export goes out (within `otlp.timeout`).

mod conventions;
mod delta;
mod series;
pub mod settings;
mod transport;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prometheus::IntCounterVec;
use prost::Message;
use tokio::sync::mpsc;
use tracing::warn;

pub use settings::{Compression, OtlpSettings, Protocol, Temporality};

use crate::families::Families;
use crate::record::Metrics;
use series::{AttrValue, Window};
use transport::{Sent, Transport};

/// The first wait after a failed export; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two tries of one export.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// At most one warning line per this interval; the others are counted in the next.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// What became of an export, the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The collector took it.
    Success,
    /// A try failed in a way worth trying again; the export stays queued.
    Retried,
    /// The collector refused it for good (a 4xx other than 429, a 5xx other than 502–504).
    Rejected,
    /// Dropped unsent: the queue was full, or the process exited first.
    Dropped,
}

impl Outcome {
    const ALL: [Outcome; 4] = [
        Outcome::Success,
        Outcome::Retried,
        Outcome::Rejected,
        Outcome::Dropped,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Retried => "retried",
            Outcome::Rejected => "rejected",
            Outcome::Dropped => "dropped",
        }
    }
}

/// The push's family, registered whether or not the push is configured.
#[derive(Clone)]
pub struct ExportMetrics {
    exports: IntCounterVec,
}

impl ExportMetrics {
    /// Registers `statuscope_otlp_exports_total` in `families`.
    pub fn register(families: &Families) -> Self {
        ExportMetrics {
            exports: families.counter_vec(
                "statuscope_otlp_exports_total",
                "OTLP exports by outcome: success, retried (a try failed and will be repeated), rejected (the collector refused it for good), dropped (the queue was full or the process exited first). Exported at 0 from start-up when otlp.endpoint is set.",
                &["outcome"],
            ),
        }
    }

    fn count(&self, outcome: Outcome) {
        self.exports.with_label_values(&[outcome.as_str()]).inc();
    }
}

/// A header value read from `path`: its content without surrounding whitespace. A problem
/// names the file, never what it holds.
pub fn read_header_file(path: &Path) -> Result<HeaderValue, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    HeaderValue::try_from(text.trim())
        .ok()
        .filter(|value| !value.is_empty())
        .ok_or_else(|| format!("{} must hold one header value on one line", path.display()))
}

enum Command {
    Replace(Box<OtlpSettings>),
    Flush(std::sync::mpsc::Sender<()>),
}

/// The running push: its own thread and runtime, told of reloads and of the end.
pub struct Exporter {
    commands: mpsc::UnboundedSender<Command>,
}

impl Exporter {
    /// Starts pushing `metrics`' families under `settings`, counting outcomes in `exports`.
    pub fn start(
        settings: OtlpSettings,
        metrics: Arc<Metrics>,
        exports: ExportMetrics,
    ) -> std::io::Result<Exporter> {
        Outcome::ALL.iter().for_each(|o| {
            exports.exports.with_label_values(&[o.as_str()]);
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (commands, received) = mpsc::unbounded_channel();
        let pusher = Pusher::new(settings, metrics, exports);
        std::thread::Builder::new()
            .name("statuscope-otlp".into())
            .spawn(move || runtime.block_on(pusher.run(received)))?;
        Ok(Exporter { commands })
    }

    /// Puts reloaded settings in force from the next export on.
    pub fn replace(&self, settings: OtlpSettings) {
        let _ = self.commands.send(Command::Replace(Box::new(settings)));
    }

    /// Sends one last export with everything tallied so far, and whatever is still queued;
    /// returns when they are sent or `otlp.timeout` has passed. The push stops.
    pub fn flush(&self) {
        let (done, finished) = std::sync::mpsc::channel();
        if self.commands.send(Command::Flush(done)).is_ok() {
            // Returns at once if the push's thread is gone.
            let _ = finished.recv();
        }
    }
}

/// The push's state on its own thread.
struct Pusher {
    settings: OtlpSettings,
    metrics: Arc<Metrics>,
    exports: ExportMetrics,
    transport: Transport,
    queue: VecDeque<Bytes>,
    deltas: delta::Deltas,
    /// When the process's tallies began, in Unix nanoseconds: cumulative points' start.
    started: u64,
    /// When the previous export was read: delta points' start.
    last_read: Option<u64>,
    backoff: Duration,
    retry_at: Option<Instant>,
    /// The last good value of each `otlp.header_files` entry.
    file_headers: Vec<(HeaderName, HeaderValue)>,
    warnings: Warnings,
}

impl Pusher {
    fn new(settings: OtlpSettings, metrics: Arc<Metrics>, exports: ExportMetrics) -> Self {
        Pusher {
            settings,
            metrics,
            exports,
            transport: Transport::new(),
            queue: VecDeque::new(),
            deltas: delta::Deltas::default(),
            started: unix_nanos(SystemTime::now()),
            last_read: None,
            backoff: FIRST_BACKOFF,
            retry_at: None,
            file_headers: Vec::new(),
            warnings: Warnings::default(),
        }
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut next_read = Instant::now() + self.settings.interval;
        loop {
            let wake = self.wake(next_read);
            let command = tokio::select! {
                _ = tokio::time::sleep_until(wake.into()) => None,
                command = commands.recv() => Some(command),
            };
            let command = match command {
                Some(command) => Some(command),
                None => self.act(&mut next_read, &mut commands).await,
            };
            if let Some(command) = command {
                if !self.obey(command, &mut next_read).await {
                    return;
                }
            }
        }
    }

    /// Reads the tallies when due and tries the export at the front of the queue when due; a
    /// command that arrives during a try cuts it short (the export stays queued), so a flush at
    /// exit never waits behind a try to a collector that does not answer. Returns what arrived
    /// (a command, or `None` for the sender gone), if anything did.
    async fn act(
        &mut self,
        next_read: &mut Instant,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Option<Option<Command>> {
        let now = Instant::now();
        if now >= *next_read {
            self.enqueue();
            *next_read = now + self.settings.interval;
        }
        if self.queue.is_empty() || self.retry_at.is_some_and(|at| now < at) {
            return None;
        }
        tokio::select! {
            _ = self.attempt() => None,
            command = commands.recv() => Some(command),
        }
    }

    /// Applies a command (`None`: the sender is gone); `false` when the push is to stop.
    async fn obey(&mut self, command: Option<Command>, next_read: &mut Instant) -> bool {
        match command {
            Some(Command::Replace(settings)) => {
                if settings.interval != self.settings.interval {
                    *next_read = Instant::now() + settings.interval;
                }
                if settings.temporality != self.settings.temporality {
                    self.deltas = delta::Deltas::default();
                    self.last_read = None;
                }
                self.settings = *settings;
                true
            }
            Some(Command::Flush(done)) => {
                self.last_export().await;
                let _ = done.send(());
                false
            }
            None => false,
        }
    }

    /// When to act next: a queued export's try, or the next read.
    fn wake(&self, next_read: Instant) -> Instant {
        match (self.queue.is_empty(), self.retry_at) {
            (false, Some(at)) => at.min(next_read),
            (false, None) => Instant::now(),
            (true, _) => next_read,
        }
    }

    /// Reads the tallies into an export at the back of the queue, dropping the oldest when full.
    fn enqueue(&mut self) {
        let body = self.read();
        while self.queue.len() >= self.settings.queue {
            // The collector's wait (`Retry-After`, backoff) still holds for the next one.
            self.queue.pop_front();
            self.exports.count(Outcome::Dropped);
        }
        self.queue.push_back(body);
    }

    /// Every family and its OpenTelemetry views, now, as an encoded request.
    fn read(&mut self) -> Bytes {
        let families = self.metrics.registry().gather();
        let mut all = series::of_families(&families);
        all.extend(conventions::views(&families));
        let now = unix_nanos(SystemTime::now());
        let (temporality, start) = match self.settings.temporality {
            Temporality::Cumulative => (AggregationTemporality::Cumulative, self.started),
            Temporality::Delta => {
                self.deltas.apply(&mut all);
                (
                    AggregationTemporality::Delta,
                    self.last_read.unwrap_or(self.started),
                )
            }
        };
        self.last_read = Some(now);
        let window = Window { start, now };
        let metrics = all
            .into_iter()
            .map(|one| series::to_proto(one, window, temporality))
            .collect();
        Bytes::from(self.request(metrics).encode_to_vec())
    }

    fn request(
        &self,
        metrics: Vec<opentelemetry_proto::tonic::metrics::v1::Metric>,
    ) -> ExportMetricsServiceRequest {
        let attributes = self
            .settings
            .resource
            .iter()
            .map(|(key, value)| series::key_value(key, &AttrValue::Str(value.clone())))
            .collect();
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes,
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "statuscope".to_string(),
                        version: env!("CARGO_PKG_VERSION").to_string(),
                        ..Default::default()
                    }),
                    metrics,
                    schema_url: conventions::SCHEMA_URL.to_string(),
                }],
                schema_url: conventions::SCHEMA_URL.to_string(),
            }],
        }
    }

    /// Tries the export at the front of the queue once.
    async fn attempt(&mut self) {
        let Some(body) = self.queue.front().cloned() else {
            return;
        };
        self.read_header_files();
        let sent = self
            .transport
            .send(&body, &self.settings, &self.file_headers)
            .await;
        match sent {
            Sent::Taken { rejected } => {
                self.queue.pop_front();
                self.exports.count(Outcome::Success);
                self.backoff = FIRST_BACKOFF;
                self.retry_at = None;
                if rejected > 0 {
                    self.warn(&format!(
                        "the collector took the export but rejected {rejected} data points"
                    ));
                }
            }
            Sent::Retry { reason, after } => {
                self.exports.count(Outcome::Retried);
                let wait = after.unwrap_or_else(|| jittered(self.backoff));
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                self.retry_at = Some(Instant::now() + wait);
                self.warn(&format!("export failed, retrying in {wait:.1?}: {reason}"));
            }
            Sent::Refused { status } => {
                self.queue.pop_front();
                self.exports.count(Outcome::Rejected);
                self.retry_at = None;
                self.warn(&format!(
                    "the collector refused the export with {status}; it is dropped, not retried"
                ));
            }
        }
    }

    /// Reads `otlp.header_files` again, keeping a file's last good value when it cannot be read.
    fn read_header_files(&mut self) {
        let mut headers = Vec::with_capacity(self.settings.header_files.len());
        for (name, path) in &self.settings.header_files {
            match read_header_file(path) {
                Ok(value) => headers.push((name.clone(), value)),
                Err(problem) => {
                    let last = self.file_headers.iter().find(|(n, _)| n == name).cloned();
                    headers.extend(last);
                    self.warnings.note(&self.settings, &problem);
                }
            }
        }
        self.file_headers = headers;
    }

    /// At exit: an export of everything so far, then every queued export tried until sent or
    /// `otlp.timeout` has passed; what is left is counted as dropped.
    async fn last_export(&mut self) {
        self.enqueue();
        let deadline = tokio::time::Instant::now() + self.settings.timeout;
        let _ = tokio::time::timeout_at(deadline, async {
            while !self.queue.is_empty() {
                if let Some(at) = self.retry_at {
                    tokio::time::sleep_until(at.into()).await;
                }
                self.attempt().await;
            }
        })
        .await;
        for _ in self.queue.drain(..) {
            self.exports.count(Outcome::Dropped);
        }
    }

    fn warn(&mut self, what: &str) {
        self.warnings.note(&self.settings, what);
    }
}

/// The warning lines' rate limit.
#[derive(Default)]
struct Warnings {
    last: Option<Instant>,
    suppressed: u64,
}

impl Warnings {
    fn note(&mut self, settings: &OtlpSettings, what: &str) {
        if self.last.is_some_and(|last| last.elapsed() < WARN_EVERY) {
            self.suppressed += 1;
            return;
        }
        // The endpoint without its query, which is not where credentials belong but could hold one.
        let endpoint = format!(
            "{}://{}{}",
            settings.endpoint.scheme_str().unwrap_or("http"),
            settings.endpoint.authority().map_or("", |a| a.as_str()),
            settings.endpoint.path()
        );
        warn!(endpoint, suppressed = self.suppressed, "OTLP: {what}");
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}

/// `wait` give or take a fifth, so replicas that failed together do not retry together.
fn jittered(wait: Duration) -> Duration {
    let noise = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    let factor = 0.8 + f64::from(noise % 1000) / 2500.0;
    wait.mul_f64(factor)
}

fn unix_nanos(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    })
}
