//! Metric families, declared where they are recorded: each stage registers its own through
//! [`Families`], which puts them in statuscope's registry and keeps a description of each, so
//! the metrics reference (`docs/metrics.md`) is generated from what is really registered. A
//! leaf module: every stage may use it.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use prometheus::core::Collector;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// A family's Prometheus type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One registered family as the reference lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// The metric name (for a group of standard metrics, a pattern such as `process_*`).
    pub name: String,
    /// Its type; `None` for a group of standard metrics of several types.
    pub kind: Option<Kind>,
    /// The labels, in order.
    pub labels: Vec<String>,
    /// The help text, as `/metrics` serves it.
    pub help: String,
}

/// statuscope's registry and the description of every family in it. Cloning shares both.
#[derive(Clone, Default)]
pub struct Families {
    registry: Registry,
    described: Arc<Mutex<Vec<Described>>>,
}

impl Families {
    /// An empty registry of statuscope's own (never the process-global default registry).
    pub fn new() -> Self {
        Self::default()
    }

    /// The registry `/metrics` encodes.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every family registered so far, in registration order.
    pub fn described(&self) -> Vec<Described> {
        self.described
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn add<C: Collector + Clone + 'static>(&self, collector: C, kind: Kind, labels: &[&str]) -> C {
        self.collector(collector.clone(), kind, labels);
        collector
    }

    /// Registers a collector of one family of `kind` with `labels` that computes its values
    /// at each scrape.
    pub fn collector(&self, collector: impl Collector + 'static, kind: Kind, labels: &[&str]) {
        for desc in collector.desc() {
            self.note(Described {
                name: desc.fq_name.clone(),
                kind: Some(kind),
                labels: labels.iter().map(|l| l.to_string()).collect(),
                help: desc.help.clone(),
            });
        }
        // Names are constants of this crate: a clash is a programming error, found by any test.
        self.registry
            .register(Box::new(collector))
            .expect("metric families have unique, valid names");
    }

    fn note(&self, described: Described) {
        self.described
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(described);
    }

    /// Registers a counter without labels.
    pub fn counter(&self, name: &str, help: &str) -> IntCounter {
        let counter = IntCounter::new(name, help).expect("a valid metric name");
        self.add(counter, Kind::Counter, &[])
    }

    /// Registers a counter with `labels`.
    pub fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        let counter = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric");
        self.add(counter, Kind::Counter, labels)
    }

    /// Registers a gauge without labels.
    pub fn gauge(&self, name: &str, help: &str) -> IntGauge {
        let gauge = IntGauge::new(name, help).expect("a valid metric name");
        self.add(gauge, Kind::Gauge, &[])
    }

    /// Registers a gauge with `labels`.
    pub fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        let gauge = IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid metric");
        self.add(gauge, Kind::Gauge, labels)
    }

    /// Registers a histogram with `labels` and `buckets` (upper bounds, in seconds or units).
    pub fn histogram_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: &[f64],
    ) -> HistogramVec {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        let histogram = HistogramVec::new(opts, labels).expect("a valid metric");
        self.add(histogram, Kind::Histogram, labels)
    }

    /// Registers the standard process metrics (`process_*`: CPU, memory, descriptors, start
    /// time), listed in the reference as one group.
    pub fn process(&self) {
        self.note(Described {
            name: "process_*".to_string(),
            kind: None,
            labels: Vec::new(),
            help: "The standard process metrics: resident and virtual memory, CPU seconds, open and maximum file descriptors, threads, start time.".to_string(),
        });
        self.registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("process metrics are registered once");
    }

    /// The reference table of every registered family, in Markdown.
    pub fn reference_table(&self) -> String {
        let mut out = String::from("| metric | type | labels | meaning |\n|---|---|---|---|\n");
        for family in self.described() {
            let labels: Vec<String> = family.labels.iter().map(|l| format!("`{l}`")).collect();
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                family.name,
                family.kind.map_or("", Kind::as_str),
                labels.join(", "),
                family.help
            );
        }
        out
    }
}
