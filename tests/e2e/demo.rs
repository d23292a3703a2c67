//! `statuscope demo`: every rule in the catalogue is broken somewhere, the correct look-alikes
//! raise nothing, and the table fits an 80-column terminal.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use crate::support::{config_file, free_port, raw_get, run_statuscope, wait_until, Sample};

/// Where the demo service breaks each rule (rule, method, route). Any other finding is a
/// false alarm on a look-alike.
const MISUSES: &[(&str, &str, &str)] = &[
    ("body-on-no-content", "DELETE", "/legacy/items/{id}"),
    ("body-schema-mismatch", "GET", "/orders"),
    ("missing-declared-header", "POST", "/users"),
    ("declared-header-mismatch", "GET", "/catalog"),
    ("undeclared-content-type", "GET", "/widgets"),
    ("undeclared-operation", "PATCH", "/orders"),
    ("undeclared-route", "GET", "/old-home"),
    ("undeclared-status", "GET", "/payments"),
    ("cacheable-server-error", "GET", "/catalog"),
    ("created-for-safe-method", "GET", "/sessions/new"),
    ("created-without-location", "POST", "/users"),
    ("error-body-on-success", "GET", "/search"),
    ("error-content-mismatch", "GET", "/widgets"),
    ("error-leaks-internals", "GET", "/search"),
    ("forbidden-without-credentials", "GET", "/billing"),
    ("invalid-retry-after", "GET", "/payments"),
    ("method-changing-redirect", "POST", "/v1/orders"),
    ("method-not-allowed-without-allow", "DELETE", "/health"),
    ("missing-retry-after", "POST", "/orders"),
    ("nonstandard-status", "GET", "/feature-flags"),
    ("redirect-without-location", "GET", "/docs"),
    ("unauthorized-without-challenge", "GET", "/admin"),
    ("unexpected-continue", "POST", "/legacy/upload"),
    ("unstructured-error-body", "GET", "/users/{id}"),
    ("unstructured-error-body", "GET", "/widgets"),
    ("grpc-invalid-status", "POST", "/demo.Legacy/Status"),
    (
        "grpc-message-leaks-internals",
        "POST",
        "/demo.Catalog/Reindex",
    ),
    ("grpc-non-200", "POST", "/demo.Legacy/Gone"),
    ("grpc-status-missing", "POST", "/demo.Legacy/Ping"),
];

fn findings(samples: &[Sample]) -> BTreeSet<(String, String, String)> {
    samples
        .iter()
        .filter(|s| s.name == "statuscope_findings_total" && s.value > 0.0)
        .map(|s| {
            (
                s.labels["rule"].clone(),
                s.labels["method"].clone(),
                s.labels["route"].clone(),
            )
        })
        .collect()
}

/// The demo process; killed (by its PID) when a failed assertion ends the test before it is
/// stopped, so no demo outlives its test.
struct Demo(Option<std::process::Child>);

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn the_demo_breaks_every_rule_raises_no_false_alarm_and_fits_80_columns() {
    let (listen, admin) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let admin_addr = admin.parse().unwrap();
    let mut demo = Demo(Some(
        Command::new(env!("CARGO_BIN_EXE_statuscope"))
            .args(["demo", "--listen", &listen, "--admin", &admin])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    let scrape = || {
        raw_get(admin_addr, "/metrics")
            .map(|(_, text)| crate::support::exposition::parse(&text))
            .unwrap_or_default()
    };
    let rules: BTreeSet<&str> = statuscope::rules::CATALOGUE.iter().map(|r| r.id).collect();
    wait_until("every rule to fire", || {
        let fired: BTreeSet<String> = findings(&scrape()).into_iter().map(|f| f.0).collect();
        rules.iter().all(|rule| fired.contains(*rule))
    });
    let allowed: BTreeSet<(String, String, String)> = MISUSES
        .iter()
        .map(|(r, m, p)| (r.to_string(), m.to_string(), p.to_string()))
        .collect();
    let false_alarms: Vec<_> = findings(&scrape()).difference(&allowed).cloned().collect();
    assert!(
        false_alarms.is_empty(),
        "findings on look-alikes: {false_alarms:?}"
    );

    // What the demo's traffic taught statuscope is a valid OpenAPI document that loads as a
    // contract.
    let (status, observed) = raw_get(admin_addr, "/contract/observed?format=json").unwrap();
    assert_eq!(status, 200, "{observed}");
    let document = config_file("demo-observed.json", &observed);
    crate::support::validate_with_openapi_spec_validator(&document);
    let config = config_file(
        "demo-observed.yaml",
        &format!("contract:\n  openapi: {}\n", document.display()),
    );
    let checked = run_statuscope(&["check-config", config.to_str().unwrap()], None);
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );

    let demo = demo.0.take().unwrap();
    // SAFETY: kill(2) on the PID of a child this test spawned and has not reaped.
    assert_eq!(unsafe { libc::kill(demo.id() as i32, libc::SIGINT) }, 0);
    let output = demo.wait_with_output().unwrap();
    let table = String::from_utf8(output.stdout).unwrap();
    let last = &table[table.rfind("statuscope demo").expect("a table was printed")..];
    for line in last.lines() {
        assert!(
            line.chars().count() <= 80,
            "wider than 80 columns: {line:?}"
        );
    }
    assert!(
        last.contains(&format!("curl http://{admin}/metrics")),
        "{last}"
    );
    assert!(
        last.contains(&format!("curl http://{admin}/findings")),
        "{last}"
    );
    for rule in &rules {
        assert!(
            last.contains(rule),
            "{rule} missing from the table:\n{last}"
        );
    }
}
