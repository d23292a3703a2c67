//! The report as one JSON document.

use serde::Serialize;

use crate::record::report::{Example, Report};
use crate::rules::{Severity, CATALOGUE};

#[derive(Serialize)]
struct FindingJson<'a> {
    rule: &'static str,
    severity: Severity,
    route: &'a str,
    count: u64,
    example: &'a Example,
}

/// The document: a summary, the findings by rule and route, unreadable input, coverage.
pub(super) fn render(report: &Report, threshold: Severity) -> String {
    let findings: Vec<FindingJson<'_>> = report
        .findings()
        .iter()
        .map(|((index, route), tally)| FindingJson {
            rule: CATALOGUE[*index].id,
            severity: tally.severity,
            route,
            count: tally.count,
            example: &tally.example,
        })
        .collect();
    let mut document = serde_json::json!({
        "summary": {
            "exchanges": report.exchanges,
            "judged": report.judged,
            "without_body": report.without_body,
            "skipped": report.skipped,
            "findings": report.total(),
            "fail_on": threshold,
            "failing": report.at_or_above(threshold),
        },
        "findings": findings,
        "input_errors": report.input_errors,
    });
    if let Some(coverage) = &report.coverage {
        document["coverage"] = serde_json::to_value(coverage).expect("serialisable");
    }
    let mut text = serde_json::to_string_pretty(&document).expect("serialisable");
    text.push('\n');
    text
}
