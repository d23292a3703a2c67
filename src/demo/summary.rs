//! The demo's live table, read back from the same registry `/metrics` serves.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use prometheus::Registry;

/// Tallies of `statuscope_responses_total`, summed three ways.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Requests per class.
    pub by_class: BTreeMap<String, u64>,
    /// Requests per (code, origin).
    pub by_code: BTreeMap<(String, String), u64>,
    /// Requests per (route, method), split by class.
    pub by_route: BTreeMap<(String, String), BTreeMap<String, u64>>,
}

impl Summary {
    /// Reads the current tallies from `registry`.
    pub fn gather(registry: &Registry) -> Summary {
        let mut summary = Summary::default();
        let families = registry.gather();
        let Some(family) = families
            .iter()
            .find(|f| f.name() == "statuscope_responses_total")
        else {
            return summary;
        };
        for metric in family.get_metric() {
            let label = |name: &str| {
                metric
                    .get_label()
                    .iter()
                    .find(|l| l.name() == name)
                    .map(|l| l.value().to_string())
                    .unwrap_or_default()
            };
            let count = metric.get_counter().get_value() as u64;
            let class = label("class");
            *summary.by_class.entry(class.clone()).or_default() += count;
            *summary
                .by_code
                .entry((label("code"), label("origin")))
                .or_default() += count;
            *summary
                .by_route
                .entry((label("route"), label("method")))
                .or_default()
                .entry(class)
                .or_default() += count;
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
            let route: String = route.chars().take(23).collect();
            let _ = write!(out, "{route:<24}{method:<8}");
            for class in classes {
                let _ = write!(out, "{:>8}", counts.get(class).copied().unwrap_or(0));
            }
            let _ = writeln!(out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Origin;
    use crate::record::{Exchange, Metrics};

    #[test]
    fn summary_sums_the_recorded_tallies() {
        let metrics = Metrics::new();
        for (code, origin) in [
            (200, Origin::Upstream),
            (200, Origin::Upstream),
            (502, Origin::Proxy),
        ] {
            metrics.record(&Exchange {
                route: "/users/{id}",
                method: "GET",
                code,
                origin,
                duration: Duration::from_millis(3),
            });
        }
        let summary = Summary::gather(metrics.registry());
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
    }
}
