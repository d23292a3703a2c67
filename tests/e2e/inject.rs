//! `statuscope inject`: golden files, idempotence, refusals, and valid Kubernetes output.
//!
//! `UPDATE_GOLDEN=1 cargo test --test e2e inject` rewrites the golden files after a deliberate
//! change; review the diff before committing it.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::deploy::root;

fn inject(args: &[&str], stdin: Option<&str>) -> Output {
    let mut all = vec!["inject"];
    all.extend_from_slice(args);
    crate::support::run_statuscope(&all, stdin.map(str::as_bytes))
}

fn cases() -> PathBuf {
    root().join("tests/inject")
}

fn check_golden(input: &str, golden: &Path, args: &[&str]) -> String {
    let mut all = vec![input];
    all.extend_from_slice(args);
    let output = inject(&all, None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let produced = String::from_utf8(output.stdout).unwrap();
    crate::support::assert_golden(golden, &produced);
    produced
}

#[test]
fn workloads_and_their_services_are_injected_as_the_golden_files_say() {
    for (case, args) in [
        ("shop", &[][..]),
        ("overrides", &[][..]),
        (
            "pod",
            &[
                "--config-map",
                "statuscope-config",
                "--image",
                "registry.local/statuscope:dev",
                "--otlp-endpoint",
                "http://otel-collector.observability:4318",
            ][..],
        ),
    ] {
        let input = format!("tests/inject/{case}.yaml");
        let golden = cases().join(format!("{case}.golden.yaml"));
        let produced = check_golden(&input, &golden, args);
        // Injecting the injected output changes nothing.
        let again = inject(&[], Some(&produced));
        assert!(again.status.success());
        assert_eq!(
            String::from_utf8(again.stdout).unwrap(),
            produced,
            "{case}: not idempotent"
        );
    }
}

#[test]
fn the_application_port_name_moves_to_the_sidecar_and_probes_follow() {
    let produced = String::from_utf8(inject(&["tests/inject/shop.yaml"], None).stdout).unwrap();
    let documents: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&produced)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let web = &documents[0]["spec"]["template"]["spec"];
    let app = &web["containers"][0];
    assert_eq!(app["ports"][0]["name"], "app-http");
    for probe in [
        &app["readinessProbe"]["httpGet"]["port"],
        &app["livenessProbe"]["tcpSocket"]["port"],
        &app["lifecycle"]["preStop"]["httpGet"]["port"],
    ] {
        assert_eq!(
            probe, "app-http",
            "the kubelet keeps reaching the application"
        );
    }
    let sidecar = &web["initContainers"][0];
    assert_eq!(sidecar["name"], "statuscope");
    assert_eq!(sidecar["ports"][0]["name"], "http");
    assert_eq!(sidecar["ports"][0]["containerPort"], 7070);
    // The Service naming the port is unchanged, yet lands on the sidecar.
    assert_eq!(documents[1]["spec"]["ports"][0]["targetPort"], "http");
    // The ledger's port has no name: its Service (by number) is re-targeted instead.
    let ledger_service = documents
        .iter()
        .find(|d| d["kind"] == "Service" && d["metadata"]["name"] == "ledger")
        .unwrap();
    assert_eq!(
        ledger_service["spec"]["ports"][0]["targetPort"],
        "scope-http"
    );
}

#[test]
fn opted_out_workloads_are_left_as_written_with_a_note() {
    let output = inject(&["tests/inject/overrides.yaml"], None);
    assert!(output.status.success());
    let original = std::fs::read_to_string(cases().join("overrides.yaml")).unwrap();
    let legacy = &original[original.find("# Opted out").unwrap()..];
    assert!(String::from_utf8_lossy(&output.stdout).ends_with(legacy));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Deployment/legacy: not injected: statuscope.io/inject: disabled"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Deployment/exports: Services that target port 8000 by number"),
        "{stderr}"
    );
}

#[test]
fn untouched_documents_are_kept_byte_for_byte() {
    let produced = String::from_utf8(inject(&["tests/inject/shop.yaml"], None).stdout).unwrap();
    let original = std::fs::read_to_string(cases().join("shop.yaml")).unwrap();
    for untouched in ["# Untouched: its comments and formatting survive.\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\ndata:\n  greeting: \"hello\"   # kept as written\n",
        "# A Service in another namespace with the same selector: not the shop's pods.\n"]
    {
        assert!(original.contains(untouched));
        assert!(produced.contains(untouched), "{untouched}");
    }
}

#[test]
fn what_cannot_be_injected_safely_is_refused_by_name() {
    for (case, message) in [
        (
            "host-network",
            "DaemonSet/node-agent: the pod uses hostNetwork",
        ),
        (
            "unresolvable-port",
            "Service/api: targetPort `web` names no port",
        ),
        (
            "ambiguous-ports",
            "Deployment/gateway: its containers declare 2 TCP ports",
        ),
        (
            "invalid-annotation",
            "Pod/greedy: annotation `statuscope.io/proxy-cpu-request`: the request `4` exceeds the limit `1`",
        ),
    ] {
        let output = inject(&[&format!("tests/inject/{case}.yaml")], None);
        assert_eq!(output.status.code(), Some(2), "{case}");
        assert!(
            output.stdout.is_empty(),
            "{case}: nothing is written on refusal"
        );
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(message),
            "{case}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let chosen = inject(
        &["tests/inject/ambiguous-ports.yaml", "--app-port", "8443"],
        None,
    );
    assert!(chosen.status.success());
    assert!(String::from_utf8_lossy(&chosen.stdout).contains("127.0.0.1:8443"));
}

#[test]
fn bad_flags_are_named_before_anything_is_read() {
    for (flags, message) in [
        (
            &["--config-map", "Shop_Config"][..],
            "--config-map `Shop_Config`",
        ),
        (&["--app-port", "http port"][..], "--app-port `http port`"),
        (
            &["--otlp-endpoint", "https://collector:4318"][..],
            "--otlp-endpoint `https://collector:4318`: https is not offered",
        ),
        (&["--image", "a b"][..], "--image `a b`"),
        (
            &["--proxy-port", "9070"][..],
            "--proxy-port 9070 and --admin-port 9070",
        ),
    ] {
        let mut args = vec!["tests/inject/pod.yaml"];
        args.extend_from_slice(flags);
        let output = inject(&args, None);
        assert_eq!(output.status.code(), Some(2), "{message}");
        assert!(output.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{message}: {stderr}");
    }
}

#[test]
fn injected_manifests_validate_against_kubernetes_schemas() {
    for golden in [
        "shop.golden.yaml",
        "pod.golden.yaml",
        "overrides.golden.yaml",
    ] {
        let path = cases().join(golden);
        let output = crate::deploy::run(
            "kubernetes-validate",
            &["--strict", path.to_str().unwrap()],
            &root(),
        );
        assert!(
            output.status.success(),
            "{golden}: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let yamllint =
            crate::deploy::run("yamllint", &["--strict", path.to_str().unwrap()], &root());
        assert!(
            yamllint.status.success(),
            "{golden}: {}",
            String::from_utf8_lossy(&yamllint.stdout)
        );
    }
}
