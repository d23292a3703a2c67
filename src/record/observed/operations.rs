//! `statuscope_contract_operations`: how the declared contract and the observed one compare,
//! operation by operation, counted when Prometheus scrapes (nothing on the request path).

use std::collections::BTreeSet;
use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGaugeVec, Opts};

use super::Observed;
use crate::contract::coverage::Current;
use crate::contract::drift;
use crate::families::{Families, Kind};

const FAMILY: &str = "statuscope_contract_operations";
const HELP: &str = "Operations (route and method) by state, with contract.openapi set and the observed contract learnt: declared, observed, undeclared (observed, not declared: a route or method the document does not have) and unseen (declared, never observed since start). Computed at each scrape from /contract/drift.";
const LABELS: [&str; 1] = ["state"];

/// The collector behind [`FAMILY`].
pub struct OperationsCollector {
    current: Current,
    observed: Option<Arc<Observed>>,
    desc: Desc,
}

impl OperationsCollector {
    /// Registers the family, comparing the contract `current` holds with what `observed`
    /// learnt (nothing is exported without both).
    pub fn register(families: &Families, current: Current, observed: Option<Arc<Observed>>) {
        let labels = LABELS.iter().map(|l| l.to_string()).collect();
        let desc = Desc::new(FAMILY.into(), HELP.into(), labels, Default::default())
            .expect("a valid family");
        let collector = OperationsCollector {
            current,
            observed,
            desc,
        };
        families.collector(collector, Kind::Gauge, &LABELS);
    }
}

impl Collector for OperationsCollector {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let (Some(contract), Some(observed)) = ((self.current)(), self.observed.as_ref()) else {
            return Vec::new();
        };
        let document = observed.learnt().to_openapi("observed");
        let differences = drift::diff(&contract, &document);
        let operations = |kinds: &[&str]| -> i64 {
            let distinct: BTreeSet<(&str, &str)> = differences
                .iter()
                .filter(|d| kinds.contains(&d.kind))
                .map(|d| (d.route.as_str(), d.method.as_str()))
                .collect();
            distinct.len() as i64
        };
        let declared: usize = contract.paths().iter().map(|p| p.operations.len()).sum();
        let observed: usize = document["paths"].as_object().map_or(0, |paths| {
            paths
                .values()
                .filter_map(|item| item.as_object())
                .map(|ops| ops.len())
                .sum()
        });
        let gauges = IntGaugeVec::new(Opts::new(FAMILY, HELP), &LABELS).expect("a valid family");
        for (state, value) in [
            ("declared", declared as i64),
            ("observed", observed as i64),
            (
                "undeclared",
                operations(&["undeclared-route", "undeclared-operation"]),
            ),
            ("unseen", operations(&["unseen-operation"])),
        ] {
            gauges.with_label_values(&[state]).set(value);
        }
        gauges.collect()
    }
}
