//! Findings reports written for CI: `statuscope lint` prints one, `statuscope run --report`
//! writes one at exit ([`ReportGate`]). The counts are gathered by `record::report`; this
//! module writes them as a human table, JSON, or JUnit XML (each rule a test case).

mod json;
mod junit;
mod table;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tracing::{error, info};

use crate::record::report::Report;
use crate::rules::Severity;

/// A report's output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table grouped by rule and route, for people.
    Table,
    /// One JSON document.
    Json,
    /// JUnit XML: one test case per rule, failing when it found something at the threshold.
    Junit,
}

impl Format {
    /// The format a report file's name suggests: `.json` → JSON, `.xml` → JUnit, else table.
    pub fn for_path(path: &std::path::Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Format::Json,
            Some("xml") => Format::Junit,
            _ => Format::Table,
        }
    }
}

/// `report` written as `format`, failing at `threshold`.
pub fn render(report: &Report, format: Format, threshold: Severity) -> String {
    match format {
        Format::Table => table::render(report, threshold),
        Format::Json => json::render(report, threshold),
        Format::Junit => junit::render(report, threshold),
    }
}

/// One line: exchanges, judged, findings by severity, what could not be judged.
fn summary(report: &Report) -> String {
    let mut text = format!(
        "{} exchanges, {} judged, {} findings",
        report.exchanges,
        report.judged,
        report.total()
    );
    let by_severity: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .map(|s| {
            let n: u64 = report
                .findings()
                .values()
                .filter(|t| t.severity == *s)
                .map(|t| t.count)
                .sum();
            (s, n)
        })
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    if !by_severity.is_empty() {
        let _ = write!(text, " ({})", by_severity.join(", "));
    }
    if report.without_body > 0 {
        let _ = write!(
            text,
            "; {} without a recorded body (body rules could not judge them)",
            report.without_body
        );
    }
    if report.skipped > 0 {
        let _ = write!(text, "; {} skipped (no response recorded)", report.skipped);
    }
    text
}

/// `statuscope run --report`: findings gathered while a test suite runs against the proxy,
/// written when the process stops, deciding its exit status.
pub struct ReportGate {
    /// The findings so far, fed by the proxy.
    pub report: Arc<Mutex<Report>>,
    /// Where the report goes.
    pub path: PathBuf,
    /// How it is written.
    pub format: Format,
    /// The least severity that fails the run.
    pub fail_on: Severity,
}

impl ReportGate {
    /// Writes the report and returns the exit status: 1 when a finding reached `fail_on`,
    /// 2 when the report could not be written, else 0.
    pub fn finish(&self) -> u8 {
        let report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        let text = render(&report, self.format, self.fail_on);
        if let Err(e) = std::fs::write(&self.path, text) {
            error!(path = %self.path.display(), "cannot write the report: {e}");
            return 2;
        }
        let failing = report.at_or_above(self.fail_on);
        info!(
            path = %self.path.display(),
            findings = report.total(),
            failing,
            fail_on = self.fail_on.as_str(),
            "report written"
        );
        report.exit_status(self.fail_on)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_follows_the_file_name() {
        assert_eq!(Format::for_path("r.json".as_ref()), Format::Json);
        assert_eq!(Format::for_path("r.xml".as_ref()), Format::Junit);
        assert_eq!(Format::for_path("r.txt".as_ref()), Format::Table);
    }
}
