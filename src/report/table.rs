//! The report as a table grouped by rule and route, for people.

use std::fmt::Write as _;

use crate::record::report::Report;
use crate::rules::{Severity, CATALOGUE};

/// The table, ending with the summary and the verdict at `threshold`.
pub(super) fn render(report: &Report, threshold: Severity) -> String {
    let mut out = String::new();
    let mut current = None;
    for ((index, route), tally) in report.findings() {
        let rule = &CATALOGUE[*index];
        if current != Some(*index) {
            current = Some(*index);
            let count: u64 = report
                .findings()
                .iter()
                .filter(|((i, _), _)| i == index)
                .map(|(_, t)| t.count)
                .sum();
            let _ = writeln!(out, "{} ({}): {count}", rule.id, tally.severity);
        }
        let example = &tally.example;
        let _ = writeln!(out, "  {route}: {}", tally.count);
        let _ = writeln!(
            out,
            "    e.g. {} {} -> {}: {}",
            example.method, example.path, example.status, example.evidence
        );
        if let Some(source) = &example.source {
            let _ = writeln!(out, "    at {source}");
        }
    }
    if let Some(coverage) = &report.coverage {
        let _ = writeln!(
            out,
            "contract coverage: {} of {} declared responses exercised ({})",
            coverage.exercised, coverage.declared, coverage.document
        );
        for row in coverage.responses.iter().filter(|row| row.seen == 0) {
            let _ = writeln!(
                out,
                "  not exercised: {} {} {}",
                row.method, row.route, row.response
            );
        }
        for row in &coverage.undeclared {
            let _ = writeln!(
                out,
                "  undeclared: {} {} {} ({} seen)",
                row.method, row.route, row.code, row.seen
            );
        }
    }
    for error in &report.input_errors {
        let _ = writeln!(out, "unreadable: {error}");
    }
    let _ = writeln!(out, "{}", super::summary(report));
    let failing = report.at_or_above(threshold);
    let verdict = if !report.input_errors.is_empty() {
        format!("UNREADABLE: {} input problems", report.input_errors.len())
    } else if failing > 0 {
        format!("FAIL: {failing} at or above {threshold}")
    } else {
        format!("ok: nothing at or above {threshold}")
    };
    let _ = writeln!(out, "{verdict}");
    out
}
