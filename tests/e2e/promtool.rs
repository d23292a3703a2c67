//! The live `/metrics` output passes Prometheus's own linter.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::upstream::Upstream;
use crate::support::{client, get, Engine, Statuscope};

#[tokio::test(flavor = "multi_thread")]
async fn promtool_check_metrics_accepts_live_metrics() {
    let upstream = Upstream::start();
    let statuscope = Statuscope::start(Engine::Fast, upstream.addr);
    let client = client();
    for path in ["/status/200", "/status/404", "/status/503", "/users/1"] {
        get(&client, &statuscope, path).await;
    }
    statuscope.wait_idle();
    let text = statuscope.metrics_text();
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (make deps installs Debian's prometheus package)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn build_info_and_process_metrics_are_exported_from_start() {
    let upstream = Upstream::start();
    let statuscope = Statuscope::start(Engine::Fast, upstream.addr);
    let metrics = statuscope.metrics();
    let version = env!("CARGO_PKG_VERSION");
    let has = |name: &str| metrics.iter().any(|s| s.name == name);
    assert!(metrics.iter().any(|s| s.name == "statuscope_build_info"
        && s.labels["version"] == version
        && s.value == 1.0));
    for name in [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "statuscope_requests_in_flight",
    ] {
        assert!(has(name), "{name} missing");
    }
    // Every upstream error kind is exported at zero before the first error, so rates work.
    for kind in [
        "connect_refused",
        "connect_timeout",
        "read_timeout",
        "write_timeout",
        "reset",
        "other",
    ] {
        assert!(metrics
            .iter()
            .any(|s| s.name == "statuscope_upstream_errors_total"
                && s.labels["kind"] == kind
                && s.value == 0.0));
    }
    assert!(
        !metrics
            .iter()
            .any(|s| s.name == "statuscope_responses_total"),
        "no traffic yet"
    );
}
