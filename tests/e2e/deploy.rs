//! What ships for deployment, checked with the real tools, offline: promtool on the rules,
//! kubectl kustomize, kubernetes-validate and the Prometheus Operator CRD schemas on the
//! manifests, yamllint on every YAML file, and the dashboards' structure.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a tool the Makefile installs; a missing tool fails the test with the way to get it.
pub fn run(program: &str, args: &[&str], dir: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}): `make deps` installs it"))
}

fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The Prometheus Operator CRDs, from the shared directory beside the repository.
fn crd_schemas() -> PathBuf {
    root().join("../shared/schemas/prometheus-operator")
}

/// The dashboards as users import them.
pub fn dashboards() -> Vec<(String, Value)> {
    let mut found: Vec<_> = std::fs::read_dir(root().join("dashboards"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                serde_json::from_str(&text).unwrap(),
            )
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

#[test]
fn promtool_checks_and_unit_tests_the_rules() {
    let dir = root().join("deploy/prometheus");
    assert_success(
        &run(
            "promtool",
            &["check", "rules", "statuscope-rules.yaml"],
            &dir,
        ),
        "promtool check rules",
    );
    let output = run(
        "promtool",
        &["test", "rules", "tests/statuscope-rules.test.yaml"],
        &dir,
    );
    assert_success(&output, "promtool test rules");
    // Every alert and recording rule has a test.
    let tests = std::fs::read_to_string(dir.join("tests/statuscope-rules.test.yaml")).unwrap();
    let rules: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("statuscope-rules.yaml")).unwrap())
            .unwrap();
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let name = rule["alert"].as_str().or(rule["record"].as_str()).unwrap();
            assert!(tests.contains(name), "{name} has no promtool test");
        }
    }
}

/// Splits rendered manifests into the core objects and the Prometheus Operator ones.
fn validate_manifests(yaml: &str, name: &str) {
    let dir = std::env::temp_dir().join(format!(
        "statuscope-manifests-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut core, mut operator) = (String::new(), String::new());
    for document in serde_yaml::Deserializer::from_str(yaml) {
        let value = serde_yaml::Value::deserialize(document).unwrap();
        if value.is_null() {
            continue;
        }
        let text = format!("---\n{}", serde_yaml::to_string(&value).unwrap());
        let api_version = value["apiVersion"].as_str().unwrap_or_default();
        if api_version.starts_with("monitoring.coreos.com/") {
            operator.push_str(&text);
        } else {
            core.push_str(&text);
        }
    }
    let core_path = dir.join("core.yaml");
    std::fs::write(&core_path, &core).unwrap();
    let output = run(
        "kubernetes-validate",
        &["--strict", core_path.to_str().unwrap()],
        &dir,
    );
    assert_success(&output, "kubernetes-validate --strict");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("WARN"),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    if !operator.is_empty() {
        let operator_path = dir.join("operator.yaml");
        std::fs::write(&operator_path, &operator).unwrap();
        let script = root().join("tests/tools/validate_crds.py");
        let output = run(
            "python3",
            &[
                script.to_str().unwrap(),
                crd_schemas().to_str().unwrap(),
                operator_path.to_str().unwrap(),
            ],
            &dir,
        );
        assert_success(&output, "validate_crds.py");
    }
}

use serde::Deserialize as _;

#[test]
fn the_kustomize_base_renders_and_validates() {
    let output = run("kubectl", &["kustomize", "deploy/kubernetes/base"], &root());
    assert_success(&output, "kubectl kustomize");
    let rendered = String::from_utf8(output.stdout).unwrap();
    for kind in [
        "Deployment",
        "Service",
        "ConfigMap",
        "PodMonitor",
        "PrometheusRule",
    ] {
        assert!(
            rendered.contains(&format!("kind: {kind}")),
            "no {kind} in the base"
        );
    }
    assert!(rendered.contains("grafana_dashboard: \"1\""));
    assert!(
        rendered.contains("restartPolicy: Always"),
        "statuscope runs as a native sidecar"
    );
    validate_manifests(&rendered, "base");
}

#[test]
fn the_crd_validation_rejects_a_misspelt_field() {
    let bad = "apiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata: {name: x}\nspec:\n  selector: {}\n  \
               podMetricsEndpoints:\n    - port: admin\n      intervall: 15s\n";
    let path = std::env::temp_dir().join(format!(
        "statuscope-bad-podmonitor-{}.yaml",
        std::process::id()
    ));
    std::fs::write(&path, bad).unwrap();
    let script = root().join("tests/tools/validate_crds.py");
    let output = run(
        "python3",
        &[
            script.to_str().unwrap(),
            crd_schemas().to_str().unwrap(),
            path.to_str().unwrap(),
        ],
        &root(),
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("intervall"));
}

#[test]
fn the_dockerfile_passes_hadolint() {
    assert_success(&run("hadolint", &["Dockerfile"], &root()), "hadolint");
}

#[test]
fn yamllint_is_clean() {
    assert_success(&run("yamllint", &["--strict", "."], &root()), "yamllint");
}

#[test]
fn dashboards_are_well_formed() {
    let dashboards = dashboards();
    assert_eq!(dashboards.len(), 3);
    let mut uids = HashSet::new();
    for (name, dashboard) in &dashboards {
        assert!(
            uids.insert(dashboard["uid"].as_str().unwrap().to_string()),
            "{name}: duplicate uid"
        );
        assert!(dashboard["title"]
            .as_str()
            .unwrap()
            .starts_with("Statuscope / "));
        let variables = dashboard["templating"]["list"].as_array().unwrap();
        let variable = |n: &str| variables.iter().find(|v| v["name"] == n);
        let source =
            variable("datasource").unwrap_or_else(|| panic!("{name}: no datasource variable"));
        assert_eq!(source["type"], "datasource");
        assert_eq!(source["query"], "prometheus");
        for needed in ["namespace", "job"] {
            let v = variable(needed).unwrap_or_else(|| panic!("{name}: no {needed} variable"));
            assert!(
                v["definition"]
                    .as_str()
                    .unwrap()
                    .starts_with("label_values(statuscope_"),
                "{name}: {needed}"
            );
        }
        assert!(
            variable("route").is_some() || variable("pod").is_some(),
            "{name}: route or pod variable"
        );
        let mut ids = HashSet::new();
        for panel in dashboard["panels"].as_array().unwrap() {
            let title = panel["title"].as_str().unwrap();
            assert!(
                ids.insert(panel["id"].as_u64().unwrap()),
                "{name}: duplicate panel id"
            );
            if matches!(panel["type"].as_str(), Some("row" | "text")) {
                continue;
            }
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{name}/{title}"
            );
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{name}/{title}: no query");
            for target in targets {
                assert_eq!(
                    target["datasource"]["uid"], "${datasource}",
                    "{name}/{title}"
                );
                assert!(!target["expr"].as_str().unwrap().is_empty());
            }
            assert!(
                !panel["description"].as_str().unwrap_or("").is_empty(),
                "{name}/{title}: no description"
            );
        }
    }
    // Each rule's panel carries the rule's description from the catalogue.
    let (_, misuse) = dashboards
        .iter()
        .find(|(n, _)| n.contains("misuse"))
        .unwrap();
    for rule in statuscope::rules::CATALOGUE {
        let panel = misuse["panels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["title"] == rule.id);
        let panel = panel.unwrap_or_else(|| panic!("no panel for {}", rule.id));
        assert!(panel["description"]
            .as_str()
            .unwrap()
            .contains(rule.rationale));
    }
}
