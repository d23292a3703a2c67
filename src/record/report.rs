//! Findings reports for CI: what `statuscope lint` prints and what `statuscope run --report`
//! writes at exit. Findings are counted by rule and route, with one redacted example each, and
//! rendered as a human table, JSON, or JUnit XML (each rule a test case).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tracing::{error, info};

use super::findings::Place;
use super::redact;
use crate::contract::coverage::Snapshot;
use crate::rules::rule_set::{Finding, RuleSetting};
use crate::rules::{RuleKind, Severity, CATALOGUE};

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

#[derive(Debug, Clone)]
struct RuleCount {
    severity: Severity,
    count: u64,
    example: Example,
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

#[derive(Serialize)]
struct FindingJson<'a> {
    rule: &'static str,
    severity: Severity,
    route: &'a str,
    count: u64,
    example: &'a Example,
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

    /// Renders the report.
    pub fn render(&self, format: Format, threshold: Severity) -> String {
        match format {
            Format::Table => self.table(threshold),
            Format::Json => self.json(threshold),
            Format::Junit => self.junit(threshold),
        }
    }

    fn summary(&self) -> String {
        let mut text = format!(
            "{} exchanges, {} judged, {} findings",
            self.exchanges,
            self.judged,
            self.total()
        );
        let by_severity: Vec<String> = Severity::ALL
            .iter()
            .rev()
            .map(|s| {
                let n: u64 = self
                    .findings
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
        if self.without_body > 0 {
            let _ = write!(
                text,
                "; {} without a recorded body (body rules could not judge them)",
                self.without_body
            );
        }
        if self.skipped > 0 {
            let _ = write!(text, "; {} skipped (no response recorded)", self.skipped);
        }
        text
    }

    fn table(&self, threshold: Severity) -> String {
        let mut out = String::new();
        let mut current = None;
        for ((index, route), tally) in &self.findings {
            let rule = &CATALOGUE[*index];
            if current != Some(*index) {
                current = Some(*index);
                let count: u64 = self
                    .findings
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
        if let Some(coverage) = &self.coverage {
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
        for error in &self.input_errors {
            let _ = writeln!(out, "unreadable: {error}");
        }
        let _ = writeln!(out, "{}", self.summary());
        let failing = self.at_or_above(threshold);
        let verdict = if !self.input_errors.is_empty() {
            format!("UNREADABLE: {} input problems", self.input_errors.len())
        } else if failing > 0 {
            format!("FAIL: {failing} at or above {threshold}")
        } else {
            format!("ok: nothing at or above {threshold}")
        };
        let _ = writeln!(out, "{verdict}");
        out
    }

    fn json(&self, threshold: Severity) -> String {
        let findings: Vec<FindingJson<'_>> = self
            .findings
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
                "exchanges": self.exchanges,
                "judged": self.judged,
                "without_body": self.without_body,
                "skipped": self.skipped,
                "findings": self.total(),
                "fail_on": threshold,
                "failing": self.at_or_above(threshold),
            },
            "findings": findings,
            "input_errors": self.input_errors,
        });
        if let Some(coverage) = &self.coverage {
            document["coverage"] = serde_json::to_value(coverage).expect("serialisable");
        }
        let mut text = serde_json::to_string_pretty(&document).expect("serialisable");
        text.push('\n');
        text
    }

    fn junit(&self, threshold: Severity) -> String {
        let mut cases = String::new();
        let mut failures = 0;
        for (index, rule) in CATALOGUE.iter().enumerate() {
            let fired: Vec<(&Arc<str>, &RuleCount)> = self
                .findings
                .iter()
                .filter(|((i, _), _)| *i == index)
                .map(|((_, route), tally)| (route, tally))
                .collect();
            let _ = write!(
                cases,
                "    <testcase classname=\"statuscope.rules\" name=\"{}\">",
                rule.id
            );
            if self.disabled.contains(&index) {
                cases.push_str("\n      <skipped message=\"disabled by configuration\"/>\n    ");
            } else if !self.judges_contract && rule.kind == RuleKind::Contract {
                cases.push_str("\n      <skipped message=\"no contract (contract.openapi) to judge against\"/>\n    ");
            } else if !self.judges_grpc && rule.kind == RuleKind::Grpc {
                cases.push_str("\n      <skipped message=\"no trailers recorded, where gRPC calls carry their status\"/>\n    ");
            } else if let Some((_, first)) = fired.first() {
                let count: u64 = fired.iter().map(|(_, t)| t.count).sum();
                let mut details = String::new();
                for (route, tally) in &fired {
                    let e = &tally.example;
                    let _ = writeln!(
                        details,
                        "{route}: {} (e.g. {} {} -> {}: {})",
                        tally.count, e.method, e.path, e.status, e.evidence
                    );
                }
                let message = format!("{count} {} findings: {}", first.severity, rule.title);
                if first.severity >= threshold {
                    failures += 1;
                    let _ = write!(
                        cases,
                        "\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    ",
                        first.severity,
                        xml_escape(&message),
                        xml_escape(&details)
                    );
                } else {
                    let _ = write!(
                        cases,
                        "\n      <system-out>{}</system-out>\n    ",
                        xml_escape(&format!(
                            "{message} (below --fail-on {threshold})\n{details}"
                        ))
                    );
                }
            }
            cases.push_str("</testcase>\n");
        }
        let mut errors = 0;
        for error in &self.input_errors {
            errors += 1;
            let _ = writeln!(
                cases,
                "    <testcase classname=\"statuscope.input\" name=\"input {errors}\">\n      \
                 <error message=\"{}\"/>\n    </testcase>",
                xml_escape(error)
            );
        }
        let tests = CATALOGUE.len() + self.input_errors.len();
        let coverage = self
            .coverage
            .as_ref()
            .map_or_else(String::new, junit_coverage);
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <testsuites name=\"statuscope\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">\n  \
             <testsuite name=\"statuscope rules\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">\n    \
             <properties>\n      <property name=\"summary\" value=\"{}\"/>\n    </properties>\n\
             {cases}  </testsuite>\n{coverage}</testsuites>\n",
            xml_escape(&self.summary())
        )
    }
}

/// The coverage as a JUnit suite: a case per declared response, skipped when no exchange
/// exercised it (a gap to know of, not a failure of the service).
fn junit_coverage(coverage: &Snapshot) -> String {
    let mut cases = String::new();
    for row in &coverage.responses {
        let name = xml_escape(&format!("{} {} {}", row.method, row.route, row.response));
        if row.seen == 0 {
            let _ = writeln!(
                cases,
                "    <testcase classname=\"statuscope.contract\" name=\"{name}\">\n      \
                 <skipped message=\"not exercised by any recorded exchange\"/>\n    </testcase>"
            );
        } else {
            let _ = writeln!(
                cases,
                "    <testcase classname=\"statuscope.contract\" name=\"{name}\">\n      \
                 <system-out>{} responses</system-out>\n    </testcase>",
                row.seen
            );
        }
    }
    format!(
        "  <testsuite name=\"statuscope contract coverage\" tests=\"{}\" failures=\"0\" errors=\"0\" skipped=\"{}\">\n{cases}  </testsuite>\n",
        coverage.declared,
        coverage.declared - coverage.exercised
    )
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
        let text = report.render(self.format, self.fail_on);
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

/// Escapes text for XML content and attributes; drops the control characters XML 1.0 forbids.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escape_keeps_markup_out_and_drops_forbidden_characters() {
        assert_eq!(
            xml_escape("<a href=\"x\">&'\u{1}"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;"
        );
    }

    #[test]
    fn the_format_follows_the_file_name() {
        assert_eq!(Format::for_path("r.json".as_ref()), Format::Json);
        assert_eq!(Format::for_path("r.xml".as_ref()), Format::Junit);
        assert_eq!(Format::for_path("r.txt".as_ref()), Format::Table);
    }
}
