//! `statuscope lint` over HAR files written for the tests (`tests/lint/`), and the CI gate of
//! `statuscope run --report`.
//!
//! `UPDATE_GOLDEN=1 cargo test --test e2e lint` rewrites the golden reports after a deliberate
//! change; review the diff before committing it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::deploy::root;
use crate::support::upstream::Upstream;
use crate::support::{
    assert_golden, client, config_file, each_engine, run_statuscope, send, Engine, Launch,
    Statuscope,
};

fn lint(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut all = vec!["lint"];
    all.extend_from_slice(args);
    run_statuscope(&all, stdin)
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn each_recording_matches_its_golden_report_and_exit_status() {
    let cases = [
        ("chrome", "table", "txt", 1),
        ("chrome", "json", "json", 1),
        ("firefox", "junit", "xml", 1),
        ("base64", "json", "json", 1),
        ("gzip-recorded", "json", "json", 1),
        ("missing-bodies", "table", "txt", 0),
        ("malformed", "json", "json", 2),
    ];
    for (har, format, extension, status) in cases {
        let input = format!("tests/lint/{har}.har");
        let output = lint(&[&input, "--format", format], None);
        assert_eq!(
            output.status.code(),
            Some(status),
            "{input} as {format}: {}",
            stderr(&output)
        );
        let golden = root().join(format!("tests/lint/{har}.golden.{extension}"));
        assert_golden(&golden, &stdout(&output));
    }
}

#[test]
fn bodies_recorded_every_way_are_judged_and_missing_ones_are_counted() {
    let json = |har: &str| -> serde_json::Value {
        let output = lint(
            &[&format!("tests/lint/{har}.har"), "--format", "json"],
            None,
        );
        serde_json::from_slice(&output.stdout).unwrap()
    };
    // base64, gzip bytes as recorded, and gzip already decoded by the browser: all read.
    for har in ["base64", "gzip-recorded"] {
        let report = json(har);
        let findings = report["findings"].as_array().unwrap();
        assert!(
            findings
                .iter()
                .any(|f| f["rule"] == "error-body-on-success"),
            "{har}: {report}"
        );
    }
    assert_eq!(json("gzip-recorded")["findings"][0]["count"], 2);
    // No body recorded: header rules still judge, body rules cannot, and the report says so.
    let report = json("missing-bodies");
    assert_eq!(report["summary"]["without_body"], 2);
    assert_eq!(report["findings"][0]["rule"], "missing-retry-after");
    // A browser-blocked request has no response to judge.
    assert_eq!(json("firefox")["summary"]["skipped"], 1);
}

#[test]
fn fail_on_sets_the_threshold() {
    let status = |har: &str, fail_on: &str| {
        lint(
            &[&format!("tests/lint/{har}.har"), "--fail-on", fail_on],
            None,
        )
        .status
        .code()
    };
    assert_eq!(status("missing-bodies", "error"), Some(0));
    assert_eq!(status("missing-bodies", "warning"), Some(1));
    assert_eq!(status("missing-bodies", "info"), Some(1));
    let refused = lint(&["tests/lint/chrome.har", "--fail-on", "fatal"], None);
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("fatal"), "{}", stderr(&refused));
}

#[test]
fn unreadable_input_is_named_by_file_and_entry_and_the_other_files_still_linted() {
    let output = lint(
        &[
            "tests/lint/no-such-file.har",
            "tests/lint/chrome.har",
            "tests/lint/malformed.har",
            "tests/lint/firefox.har",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    let errors = stderr(&output);
    assert!(errors.contains("tests/lint/no-such-file.har: "), "{errors}");
    assert!(
        errors.contains("tests/lint/malformed.har: entry 1: "),
        "{errors}"
    );
    let report = stdout(&output);
    assert!(report.contains("tests/lint/chrome.har entry 0"), "{report}");
    assert!(
        report.contains("tests/lint/firefox.har entry 0"),
        "{report}"
    );
    assert!(report.contains("error-leaks-internals"), "{report}");
}

#[test]
fn a_dash_reads_standard_input() {
    let har = std::fs::read(root().join("tests/lint/chrome.har")).unwrap();
    let output = lint(&["-", "--format", "json"], Some(&har));
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["summary"]["findings"], 4);
    assert_eq!(
        report["findings"][0]["example"]["source"],
        "<stdin> entry 0"
    );
}

#[test]
fn the_sidecar_configuration_applies_routes_and_rule_settings() {
    let config = config_file(
        "lint.yaml",
        "routes:\n  templates: [\"/api/{collection}\"]\nrules:\n  error-body-on-success:\n    enabled: false\n",
    );
    let output = lint(
        &[
            "tests/lint/chrome.har",
            "--config",
            config.to_str().unwrap(),
            "--format",
            "junit",
        ],
        None,
    );
    // The only error-level finding was error-body-on-success, now off.
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let junit = stdout(&output);
    assert!(
        junit.contains(
            "name=\"error-body-on-success\">\n      <skipped message=\"disabled by configuration\"/>"
        ),
        "{junit}"
    );
    assert!(junit.contains("/api/{collection}: 1"), "{junit}");
}

#[test]
fn junit_output_is_valid_junit_xml() {
    let output = lint(&["tests/lint/firefox.har", "--format", "junit"], None);
    let path = config_file("report.xml", &stdout(&output));
    // A real JUnit reader (PyPI's junitparser, which the Makefile installs).
    let check = "import junitparser, sys\n\
         xml = junitparser.JUnitXml.fromfile(sys.argv[1])\n\
         suites = list(xml) if isinstance(xml, junitparser.JUnitXml) else [xml]\n\
         cases = [c for s in suites for c in s]\n\
         failed = sorted(c.name for c in cases if any(isinstance(r, junitparser.Failure) for r in c.result))\n\
         print(len(cases), ','.join(failed))\n";
    let result = crate::deploy::run("python3", &["-c", check, path.to_str().unwrap()], &root());
    let printed = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&result.stderr)
    );
    // One case per rule of the catalogue.
    let expected = format!(
        "{} error-leaks-internals",
        statuscope::rules::CATALOGUE.len()
    );
    assert_eq!(printed.trim(), expected);
}

#[test]
fn a_large_recording_is_streamed_in_bounded_memory() {
    const ENTRIES: usize = 6_000;
    let body = format!("{{\"items\": [{}]}}", vec!["\"x\""; 2_500].join(","));
    let entry = format!(
        "{{\"request\": {{\"method\": \"GET\", \"url\": \"https://a.test/items/1\", \"headers\": []}}, \
          \"response\": {{\"status\": 200, \"headers\": [{{\"name\": \"content-type\", \"value\": \"application/json\"}}], \
          \"content\": {{\"mimeType\": \"application/json\", \"text\": {}}}}}}}",
        serde_json::to_string(&body).unwrap()
    );
    let path = std::env::temp_dir().join(format!("statuscope-{}-large.har", std::process::id()));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    write!(file, "{{\"log\": {{\"version\": \"1.2\", \"entries\": [").unwrap();
    for i in 0..ENTRIES {
        let separator = if i == 0 { "" } else { "," };
        write!(file, "{separator}{entry}").unwrap();
    }
    write!(file, "]}}}}").unwrap();
    drop(file);
    let size = std::fs::metadata(&path).unwrap().len();

    let peak_linting = |recording: &Path| {
        let child = Command::new(env!("CARGO_BIN_EXE_statuscope"))
            .args(["lint", "--format", "json"])
            .arg(recording)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_with_peak_rss(child)
    };
    // The process's own footprint (its binary, its allocator) is what a one-entry recording
    // costs; streaming means the 91 MB recording adds little to it.
    let small = root().join("tests/lint/base64.har");
    let (_, baseline) = peak_linting(&small);
    let (status, peak) = peak_linting(&path);
    assert_eq!(status, 0);
    std::fs::remove_file(&path).unwrap();
    eprintln!(
        "linted a {size}-byte recording with a peak RSS of {peak} bytes ({baseline} for one entry)"
    );
    assert!(
        peak < baseline + size / 16,
        "peak RSS {peak} bytes for a {size}-byte recording, {baseline} for one entry"
    );
}

fn wait_with_peak_rss(child: std::process::Child) -> (i32, u64) {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on the PID of a child this test spawned and has not reaped.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    (libc::WEXITSTATUS(status), usage.ru_maxrss as u64 * 1024)
}

const JSON: &str = "content-type: application/json";

/// Starts statuscope on `engine` as a CI gate writing `report` and failing on `fail_on`.
fn gate(
    engine: Engine,
    upstream: &Upstream,
    report: &std::path::Path,
    fail_on: &str,
) -> Statuscope {
    Statuscope::launch(Launch {
        engine,
        upstream: Some(upstream.addr),
        args: vec![
            "--report".into(),
            report.to_str().unwrap().into(),
            "--fail-on".into(),
            fail_on.into(),
        ],
        ..Launch::default()
    })
}

each_engine! {
    async fn the_ci_gate_reports_at_sigterm_and_fails_on_a_finding(engine) {
        for (misuse, expected_status) in [(true, 1), (false, 0)] {
            let upstream = Upstream::start();
            let report = config_file(&format!("gate-{misuse}.json"), "");
            let mut statuscope = gate(engine, &upstream, &report, "error");
            let url = format!("http://{}/api/orders/7", statuscope.listen);
            let client = client();
            send(&client, "GET", &url, &[], b"").await;
            if misuse {
                let headers = [
                    ("x-reply-status", "200"),
                    ("x-reply-header", JSON),
                    ("x-reply-body", r#"{"error": "database unavailable"}"#),
                ];
                send(&client, "GET", &url, &headers, b"").await;
            }
            statuscope.wait_idle();
            statuscope.signal(libc::SIGTERM);
            let status = statuscope.wait_exit();
            assert_eq!(
                status.code(),
                Some(expected_status),
                "{}",
                statuscope.stderr()
            );
            let written: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
            assert_eq!(written["summary"]["judged"], if misuse { 2 } else { 1 });
            assert_eq!(written["summary"]["failing"], u64::from(misuse));
            if misuse {
                assert_eq!(written["findings"][0]["rule"], "error-body-on-success");
                assert_eq!(written["findings"][0]["route"], "/api/orders/{id}");
            }
        }
    }

    async fn the_ci_gate_also_reports_at_sigint_in_junit(engine) {
        let upstream = Upstream::start();
        let report = config_file("gate.xml", "");
        let mut statuscope = gate(engine, &upstream, &report, "warning");
        let url = format!("http://{}/api/search", statuscope.listen);
        send(&client(), "GET", &url, &[("x-reply-status", "429")], b"").await;
        statuscope.wait_idle();
        statuscope.signal(libc::SIGINT);
        assert_eq!(statuscope.wait_exit().code(), Some(1));
        let junit = std::fs::read_to_string(&report).unwrap();
        assert!(
            junit.contains("name=\"missing-retry-after\">\n      <failure type=\"warning\""),
            "{junit}"
        );
    }
}
