//! The report as JUnit XML: a test case per rule, failing when it found something at the
//! threshold; the contract's coverage as a suite of its own.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::contract::coverage::Snapshot;
use crate::record::report::{Report, RuleCount};
use crate::rules::{RuleKind, Severity, CATALOGUE};

/// The XML document.
pub(super) fn render(report: &Report, threshold: Severity) -> String {
    let mut cases = String::new();
    let mut failures = 0;
    for (index, rule) in CATALOGUE.iter().enumerate() {
        let fired: Vec<(&Arc<str>, &RuleCount)> = report
            .findings()
            .iter()
            .filter(|((i, _), _)| *i == index)
            .map(|((_, route), tally)| (route, tally))
            .collect();
        let _ = write!(
            cases,
            "    <testcase classname=\"statuscope.rules\" name=\"{}\">",
            rule.id
        );
        if report.disabled.contains(&index) {
            cases.push_str("\n      <skipped message=\"disabled by configuration\"/>\n    ");
        } else if !report.judges_contract && rule.kind == RuleKind::Contract {
            cases.push_str("\n      <skipped message=\"no contract (contract.openapi) to judge against\"/>\n    ");
        } else if !report.judges_grpc && rule.kind == RuleKind::Grpc {
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
    for error in &report.input_errors {
        errors += 1;
        let _ = writeln!(
            cases,
            "    <testcase classname=\"statuscope.input\" name=\"input {errors}\">\n      \
             <error message=\"{}\"/>\n    </testcase>",
            xml_escape(error)
        );
    }
    let tests = CATALOGUE.len() + report.input_errors.len();
    let coverage = report
        .coverage
        .as_ref()
        .map_or_else(String::new, junit_coverage);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <testsuites name=\"statuscope\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">\n  \
         <testsuite name=\"statuscope rules\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">\n    \
         <properties>\n      <property name=\"summary\" value=\"{}\"/>\n    </properties>\n\
         {cases}  </testsuite>\n{coverage}</testsuites>\n",
        xml_escape(&super::summary(report))
    )
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
}
