//! Configuration: layering, and bad configuration stopping start-up with exit status 2.

use std::net::SocketAddr;
use std::process::{Command, Output};

use crate::support::upstream::Upstream;
use crate::support::{client, config_file, free_port, get, Launch, Statuscope};

fn statuscope(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_statuscope"));
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn assert_config_error(output: &Output, fragments: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for fragment in fragments {
        assert!(
            stderr.contains(fragment),
            "`{fragment}` missing from: {stderr}"
        );
    }
}

#[test]
fn unknown_key_in_a_file_names_the_key_and_the_file() {
    let path = config_file(
        "unknown.yaml",
        "upstream: 127.0.0.1:8080\ntimeouts:\n  conect: 1s\n",
    );
    let output = statuscope(&["run", "--config", path.to_str().unwrap()], &[]);
    assert_config_error(
        &output,
        &["`timeouts.conect`", path.to_str().unwrap(), "unknown key"],
    );
}

#[test]
fn bad_address_flag_is_rejected_before_binding() {
    let admin = free_port();
    let output = statuscope(
        &[
            "run",
            "--upstream",
            "127.0.0.1:8080",
            "--listen",
            "localhost",
            "--admin",
            &format!("127.0.0.1:{admin}"),
        ],
        &[],
    );
    assert_config_error(&output, &["`listen`", "command-line flag"]);
}

/// A valid configuration whose port is taken fails at run time: exit status 1, not 2.
#[test]
fn a_taken_port_exits_1_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let admin = format!("127.0.0.1:{}", free_port());
    let output = statuscope(
        &[
            "run",
            "--upstream",
            "127.0.0.1:8080",
            "--listen",
            &address,
            "--admin",
            &admin,
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&address), "{stderr}");
}

#[test]
fn negative_timeout_from_the_environment_is_rejected() {
    let output = statuscope(
        &["run", "--upstream", "127.0.0.1:8080"],
        &[("STATUSCOPE_TIMEOUTS__CONNECT", "-2s")],
    );
    assert_config_error(&output, &["`timeouts.connect`", "the environment"]);
}

#[test]
fn every_invalid_key_is_reported_before_any_port_is_bound() {
    let port = free_port();
    let path = config_file(
        "several.yaml",
        &format!(
            "upstream: 127.0.0.1:8080\nlisten: 127.0.0.1:{port}\nthreads: 0\nlog:\n  format: xml\n"
        ),
    );
    let output = statuscope(
        &["run", "--config", path.to_str().unwrap()],
        &[("STATUSCOPE_TIMEOUTS__READ", "soon")],
    );
    assert_config_error(
        &output,
        &[
            "statuscope: configuration key `threads` (from ",
            "statuscope: configuration key `log.format` (from ",
            "statuscope: configuration key `timeouts.read` (from the environment)",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 3, "{stderr}");
    // Nothing was bound: the proxy's port is still free.
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("the listen port stays free");
}

#[test]
fn an_unknown_engine_is_rejected_by_key() {
    let path = config_file(
        "engine.yaml",
        "upstream: 127.0.0.1:8080\nproxy:\n  engine: nginx\n",
    );
    let output = statuscope(&["run", "--config", path.to_str().unwrap()], &[]);
    assert_config_error(&output, &["`proxy.engine`", "engine.yaml", "`nginx`"]);
}

#[test]
fn malformed_route_template_is_rejected() {
    let path = config_file(
        "template.toml",
        "upstream = \"127.0.0.1:8080\"\n[routes]\ntemplates = [\"/users/{id\"]\n",
    );
    let output = statuscope(&["check-config", path.to_str().unwrap()], &[]);
    assert_config_error(&output, &["`routes.templates`", "closing"]);
}

#[test]
fn run_without_an_upstream_is_rejected() {
    let output = statuscope(&["run"], &[]);
    assert_config_error(&output, &["`upstream`"]);
}

#[test]
fn check_config_accepts_a_valid_file() {
    let path = config_file(
        "valid.yaml",
        "upstream: 127.0.0.1:8080\nthreads: 2\ntimeouts:\n  read: 5s\nroutes:\n  templates: [\"/users/{id}\"]\n  max: 50\nlog:\n  format: json\n",
    );
    let output = statuscope(&["check-config", path.to_str().unwrap()], &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn check_config_warns_when_the_buckets_lack_the_latency_slo_threshold() {
    let threshold = statuscope::record::LATENCY_SLO_SECONDS;
    for (buckets, warns) in [
        ("[0.1, 1, 10]".to_string(), true),
        (format!("[0.1, {threshold}, 10]"), false),
    ] {
        let path = config_file(
            "buckets.yaml",
            &format!("upstream: 127.0.0.1:8080\nmetrics:\n  duration_buckets: {buckets}\n"),
        );
        let output = statuscope(&["check-config", path.to_str().unwrap()], &[]);
        assert!(output.status.success(), "valid, if not what the SLO reads");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr.contains(&format!(
                "warning: metrics.duration_buckets has no bound at {threshold}"
            )),
            warns,
            "{buckets}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn flags_override_environment_which_overrides_the_file() {
    let upstream = Upstream::start();
    let wrong: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // The file points at a dead port and sets the read timeout; the environment overrides the
    // upstream with another dead port; the flag (from `Launch`) finally names the real one.
    let path = config_file(
        "layers.yaml",
        &format!("upstream: {wrong}\ntimeouts:\n  read: 7s\n"),
    );
    let statuscope = Statuscope::launch(Launch {
        upstream: Some(upstream.addr),
        env: vec![("STATUSCOPE_UPSTREAM", format!("127.0.0.1:{}", free_port()))],
        config: Some(&path),
        ..Launch::default()
    });
    let received = get(&client(), &statuscope, "/status/200").await;
    assert_eq!(received.status, 200);
    assert!(
        statuscope.stderr().contains(path.to_str().unwrap()),
        "start-up line names the file"
    );
}
