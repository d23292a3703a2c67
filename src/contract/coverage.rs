//! Coverage: how many responses each declared response has answered since the contract was
//! loaded, and which undeclared (route, method, code) combinations the service answered.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, Opts};
use serde::Serialize;

use crate::families::{Families, Kind};

use super::{Contract, Declared};

/// Undeclared combinations kept; past it, they are only counted in `undeclared_dropped`. Route
/// labels are bounded by the route cap, so this bounds a service answering every code.
const MAX_UNDECLARED: usize = 1_000;

/// An undeclared (route, method label, code) combination.
type Undeclared = (Arc<str>, &'static str, u16);

/// Counters of what has been seen.
#[derive(Debug)]
pub struct Coverage {
    seen: Vec<AtomicU64>,
    undeclared: Mutex<BTreeMap<Undeclared, u64>>,
    undeclared_dropped: AtomicU64,
}

impl Coverage {
    /// Counters for `responses` declared responses.
    pub fn new(responses: usize) -> Coverage {
        Coverage {
            seen: (0..responses).map(|_| AtomicU64::new(0)).collect(),
            undeclared: Mutex::default(),
            undeclared_dropped: AtomicU64::new(0),
        }
    }

    pub(super) fn observe(
        &self,
        declared: &Declared<'_>,
        route: &Arc<str>,
        method: &'static str,
        status: u16,
    ) {
        match declared {
            Declared::Response(_, response) => {
                self.seen[response.index].fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                let mut undeclared = self.undeclared.lock().unwrap_or_else(|e| e.into_inner());
                // An `Arc` clone, not a copy of the label: no allocation once a combination is known.
                let key = (route.clone(), method, status);
                if let Some(count) = undeclared.get_mut(&key) {
                    *count += 1;
                } else if undeclared.len() < MAX_UNDECLARED {
                    undeclared.insert(key, 1);
                } else {
                    self.undeclared_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// One declared response and how often it was seen.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeclaredRow {
    /// The route label.
    pub route: String,
    /// The method.
    pub method: String,
    /// The response key as declared (`200`, `4XX`, `default`).
    pub response: String,
    /// Responses it answered.
    pub seen: u64,
}

/// One undeclared combination the service answered.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UndeclaredRow {
    /// The route label.
    pub route: String,
    /// The method label.
    pub method: &'static str,
    /// The status code.
    pub code: u16,
    /// Responses seen.
    pub seen: u64,
}

/// Coverage at one moment: the body of `GET /contract`, and `lint`'s coverage table.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Snapshot {
    /// The document.
    pub document: String,
    /// Declared responses.
    pub declared: usize,
    /// Declared responses seen at least once.
    pub exercised: usize,
    /// Every declared response, in the document's order.
    pub responses: Vec<DeclaredRow>,
    /// The undeclared combinations seen, by route, method and code.
    pub undeclared: Vec<UndeclaredRow>,
    /// Undeclared responses not listed, once `undeclared` held its maximum.
    pub undeclared_dropped: u64,
}

impl Contract {
    /// The coverage counted so far.
    pub fn snapshot(&self) -> Snapshot {
        let coverage = &self.coverage;
        let mut responses = Vec::with_capacity(coverage.seen.len());
        for path in &self.paths {
            for operation in &path.operations {
                for response in &operation.responses {
                    responses.push(DeclaredRow {
                        route: path.route.clone(),
                        method: operation.method.to_string(),
                        response: response.key.label(),
                        seen: coverage.seen[response.index].load(Ordering::Relaxed),
                    });
                }
            }
        }
        let undeclared = coverage
            .undeclared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|((route, method, code), seen)| UndeclaredRow {
                route: route.to_string(),
                method,
                code: *code,
                seen: *seen,
            })
            .collect();
        Snapshot {
            document: self.file.display().to_string(),
            declared: responses.len(),
            exercised: responses.iter().filter(|row| row.seen > 0).count(),
            responses,
            undeclared,
            undeclared_dropped: coverage.undeclared_dropped.load(Ordering::Relaxed),
        }
    }
}

/// Reads the contract in force now (it changes on SIGHUP); `None` without `contract.openapi`.
pub type Current = std::sync::Arc<dyn Fn() -> Option<std::sync::Arc<Contract>> + Send + Sync>;

const COVERAGE_FAMILY: &str = "statuscope_contract_responses_total";
const COVERAGE_HELP: &str = "Responses the service answered per response its contract declares (every declared response exported, at 0 until seen), by route, method and declared response (200, 4XX, default); count(> 0) / count() is the contract's coverage.";
const COVERAGE_LABELS: [&str; 3] = ["route", "method", "response"];

/// Exports the coverage of the contract in force as `statuscope_contract_responses_total`,
/// read from its counters at each scrape: the request path counts nothing twice.
pub struct CoverageCollector {
    current: Current,
    desc: Desc,
}

impl CoverageCollector {
    /// Registers the coverage family, reading the contract through `current`.
    pub fn register(families: &Families, current: Current) {
        let desc = Desc::new(
            COVERAGE_FAMILY.into(),
            COVERAGE_HELP.into(),
            COVERAGE_LABELS.iter().map(|l| l.to_string()).collect(),
            Default::default(),
        )
        .expect("a valid family");
        families.collector(
            CoverageCollector { current, desc },
            Kind::Counter,
            &COVERAGE_LABELS,
        );
    }
}

impl Collector for CoverageCollector {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Some(contract) = (self.current)() else {
            return Vec::new();
        };
        let counters =
            IntCounterVec::new(Opts::new(COVERAGE_FAMILY, COVERAGE_HELP), &COVERAGE_LABELS)
                .expect("a valid family");
        for row in contract.snapshot().responses {
            counters
                .with_label_values(&[&row.route, &row.method, &row.response])
                .inc_by(row.seen);
        }
        counters.collect()
    }
}
