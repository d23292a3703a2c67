//! Findings reports for CI, as gathered: what `statuscope lint` and `statuscope run
//! --report` count — exchanges, and findings by rule and route with one redacted example
//! each. How a report is written (table, JSON, JUnit) is the `report` module's.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::findings::Place;
use super::redact;
use crate::contract::coverage::Snapshot;
use crate::rules::rule_set::{Finding, RuleSetting};
use crate::rules::Severity;

/// One example of a rule firing on a route, redacted like `/findings`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Example {
    /// The request method.
    pub method: &'static str,
    /// The request path, without its query, redacted.
    pub path: String,
    /// The status the service sent.
    pub status: u16,
    /// What the rule saw, redacted.
    pub evidence: String,
    /// Where the exchange came from (`file.har entry 12`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// One rule's findings on one route.
#[derive(Debug, Clone)]
pub struct RuleCount {
    /// Their severity.
    pub severity: Severity,
    /// How many.
    pub count: u64,
    /// The first one.
    pub example: Example,
}

/// Exchanges judged and findings counted, by rule and route.
#[derive(Debug, Default)]
pub struct Report {
    /// Exchanges read (HAR entries, or responses proxied).
    pub exchanges: u64,
    /// Exchanges the rules judged.
    pub judged: u64,
    /// Judged exchanges whose response body was not available, so body rules could not judge.
    pub without_body: u64,
    /// Exchanges skipped: no response was recorded (a failed or aborted request).
    pub skipped: u64,
    /// Input that could not be read, each naming its file and entry.
    pub input_errors: Vec<String>,
    /// Rules switched off by configuration (by catalogue index), shown as skipped in JUnit.
    pub disabled: Vec<usize>,
    /// The contract's coverage by the exchanges judged, when `contract.openapi` is set.
    pub coverage: Option<Snapshot>,
    /// The run judges against a contract (`contract.openapi`); without one, JUnit reports the
    /// contract rules as skipped rather than passed.
    pub judges_contract: bool,
    /// The run can judge gRPC calls: live traffic can, HAR files (which record no trailers)
    /// cannot, and JUnit reports the gRPC rules as skipped then.
    pub judges_grpc: bool,
    findings: BTreeMap<(usize, Arc<str>), RuleCount>,
}

impl Report {
    /// An empty report that knows which rules `settings` (`rules.<id>.enabled`) switch off,
    /// and whether a contract is judged against.
    pub fn for_rules(settings: &[RuleSetting], judges_contract: bool) -> Report {
        Report {
            judges_contract,
            judges_grpc: true,
            disabled: settings
                .iter()
                .filter(|setting| !setting.enabled)
                .map(|setting| setting.rule)
                .collect(),
            ..Report::default()
        }
    }

    /// The exit status of a CI run: 2 when some input could not be read, 1 when something
    /// at or above `threshold` was found, else 0.
    pub fn exit_status(&self, threshold: Severity) -> u8 {
        if !self.input_errors.is_empty() {
            2
        } else if self.at_or_above(threshold) > 0 {
            1
        } else {
            0
        }
    }

    /// Counts one finding; the first of each rule and route is kept as its example, with the
    /// `source` it came from (asked for only then).
    pub fn add(
        &mut self,
        finding: &Finding,
        place: Place<'_>,
        source: impl FnOnce() -> Option<String>,
    ) {
        self.findings
            .entry((finding.index, place.route.clone()))
            .or_insert_with(|| RuleCount {
                severity: finding.severity,
                count: 0,
                example: Example {
                    method: place.method,
                    path: redact::evidence(place.path),
                    status: place.status,
                    evidence: redact::evidence(&finding.evidence),
                    source: source(),
                },
            })
            .count += 1;
    }

    /// Findings in all.
    pub fn total(&self) -> u64 {
        self.findings.values().map(|t| t.count).sum()
    }

    /// Findings at `threshold` or above.
    pub fn at_or_above(&self, threshold: Severity) -> u64 {
        self.findings
            .values()
            .filter(|t| t.severity >= threshold)
            .map(|t| t.count)
            .sum()
    }

    /// The findings by rule (catalogue index) and route, in that order.
    pub fn findings(&self) -> &BTreeMap<(usize, Arc<str>), RuleCount> {
        &self.findings
    }

    /// Findings of exactly `severity`.
    pub fn of_severity(&self, severity: Severity) -> u64 {
        self.findings
            .values()
            .filter(|t| t.severity == severity)
            .map(|t| t.count)
            .sum()
    }
}
