//! The demo's live table, read back from the same registry `/metrics` serves and the same
//! store `/findings` serves.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use prometheus::proto::Metric;

use crate::record::Recorder;

/// Width of the terminal the table is laid out for.
const WIDTH: usize = 80;

/// Tallies of `statuscope_responses_total` summed three ways, and the findings per rule.
#[derive(Debug, Default, PartialEq)]
pub struct Summary {
    /// Requests per class.
    pub by_class: BTreeMap<String, u64>,
    /// Requests per (code, origin).
    pub by_code: BTreeMap<(String, String), u64>,
    /// Requests per (route, method), split by class.
    pub by_route: BTreeMap<(String, String), BTreeMap<String, u64>>,
    /// gRPC calls per (route, grpc_code, origin), from `statuscope_grpc_responses_total`: the
    /// outcomes the HTTP table shows as 200s.
    pub grpc: BTreeMap<(String, String, String), u64>,
    /// Findings per (rule, severity).
    pub by_rule: BTreeMap<(String, String), u64>,
    /// The latest finding of each rule, as one line: method, path, status and evidence.
    pub examples: BTreeMap<String, String>,
}

fn label(metric: &Metric, name: &str) -> String {
    metric
        .get_label()
        .iter()
        .find(|l| l.name() == name)
        .map(|l| l.value().to_string())
        .unwrap_or_default()
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut clipped: String = text.chars().take(width - 1).collect();
    clipped.push('…');
    clipped
}

impl Summary {
    /// Reads the current tallies and findings.
    pub fn gather(recorder: &Recorder) -> Summary {
        let mut summary = Summary::default();
        for family in recorder.metrics.registry().gather() {
            for metric in family.get_metric() {
                let count = metric.get_counter().get_value() as u64;
                match family.name() {
                    "statuscope_responses_total" => {
                        let class = label(metric, "class");
                        *summary.by_class.entry(class.clone()).or_default() += count;
                        let code = (label(metric, "code"), label(metric, "origin"));
                        *summary.by_code.entry(code).or_default() += count;
                        let route = (label(metric, "route"), label(metric, "method"));
                        *summary
                            .by_route
                            .entry(route)
                            .or_default()
                            .entry(class)
                            .or_default() += count;
                    }
                    "statuscope_grpc_responses_total" => {
                        let call = (
                            label(metric, "route"),
                            label(metric, "grpc_code"),
                            label(metric, "origin"),
                        );
                        *summary.grpc.entry(call).or_default() += count;
                    }
                    "statuscope_findings_total" => {
                        let rule = (label(metric, "rule"), label(metric, "severity"));
                        *summary.by_rule.entry(rule).or_default() += count;
                    }
                    _ => {}
                }
            }
        }
        for finding in recorder.findings.recent() {
            summary
                .examples
                .entry(finding.rule.to_string())
                .or_insert_with(|| {
                    format!(
                        "{} {} → {}: {}",
                        finding.method, finding.path, finding.status, finding.evidence
                    )
                });
        }
        summary
    }

    /// The table, at most 80 columns wide.
    pub fn render(&self, elapsed: Duration, admin: &str) -> String {
        let total: u64 = self.by_class.values().sum();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "statuscope demo · {}s · {} responses",
            elapsed.as_secs(),
            total
        );
        let _ = writeln!(out, "metrics: curl http://{admin}/metrics");
        let _ = writeln!(out);
        let _ = writeln!(out, "{:<8}{:>10}{:>9}", "class", "responses", "share");
        for (class, count) in &self.by_class {
            let share = if total == 0 {
                0.0
            } else {
                *count as f64 * 100.0 / total as f64
            };
            let _ = writeln!(out, "{class:<8}{count:>10}{share:>8.1}%");
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "{:<6}{:<10}{:>10}", "code", "origin", "responses");
        for ((code, origin), count) in &self.by_code {
            let _ = writeln!(out, "{code:<6}{origin:<10}{count:>10}");
        }
        let _ = writeln!(out);
        let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
        let _ = write!(out, "{:<24}{:<8}", "route", "method");
        for class in classes {
            let _ = write!(out, "{class:>8}");
        }
        let _ = writeln!(out);
        for ((route, method), counts) in &self.by_route {
            let _ = write!(out, "{:<24}{method:<8}", clip(route, 23));
            for class in classes {
                let _ = write!(out, "{:>8}", counts.get(class).copied().unwrap_or(0));
            }
            let _ = writeln!(out);
        }
        if !self.grpc.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "{:<30}{:<20}{:<10}{:>8}",
                "gRPC method", "grpc_code", "origin", "calls"
            );
            for ((route, code, origin), count) in &self.grpc {
                let _ = writeln!(
                    out,
                    "{:<30}{code:<20}{origin:<10}{count:>8}",
                    clip(route, 29)
                );
            }
        }
        let _ = writeln!(out);
        let findings: u64 = self.by_rule.values().sum();
        let _ = writeln!(
            out,
            "{:<34}{:<9}{:>8}   latest example",
            "findings", "severity", findings
        );
        for ((rule, severity), count) in &self.by_rule {
            let _ = writeln!(out, "{rule:<34}{severity:<9}{count:>8}");
            if let Some(example) = self.examples.get(rule) {
                let _ = writeln!(out, "  {}", clip(example, WIDTH - 2));
            }
        }
        let _ = writeln!(out, "\nexamples of each: curl http://{admin}/findings");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Origin;
    use crate::config::{load_from, FlagValues};
    use crate::record::Tally;

    #[test]
    fn summary_sums_the_recorded_tallies() {
        let config = load_from(None, &FlagValues::default(), Some(Default::default()))
            .unwrap()
            .config;
        let recorder = config.recorder();
        let metrics = &recorder.metrics;
        for (code, origin) in [
            (200, Origin::Upstream),
            (200, Origin::Upstream),
            (502, Origin::Proxy),
        ] {
            metrics.record(&Tally {
                route: "/users/{id}",
                method: "GET",
                code,
                origin,
                version: crate::classify::HttpVersion::Http11,
                duration: Duration::from_millis(3),
            });
        }
        metrics.record_grpc(
            "/shop.Items/Get",
            crate::classify::grpc::GrpcCode::NotFound,
            Origin::Upstream,
            Duration::from_millis(2),
        );
        let summary = Summary::gather(&recorder);
        let call = (
            "/shop.Items/Get".into(),
            "NOT_FOUND".into(),
            "upstream".into(),
        );
        assert_eq!(summary.grpc[&call], 1);
        assert_eq!(summary.by_class["2xx"], 2);
        assert_eq!(summary.by_class["5xx"], 1);
        assert_eq!(
            summary.by_code[&("502".to_string(), "proxy".to_string())],
            1
        );
        let table = summary.render(Duration::from_secs(5), "127.0.0.1:9070");
        assert!(
            table.lines().all(|line| line.chars().count() <= 80),
            "{table}"
        );
        assert!(table.contains("/users/{id}"));
        assert!(table.contains("NOT_FOUND"));
    }
}
