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

/// The rule files, `deploy/prometheus/*-rules.yaml`, by name without `.yaml`; each has its
/// unit tests in `tests/<name>.test.yaml`.
pub fn rule_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("deploy/prometheus"))
        .unwrap()
        .filter_map(|entry| {
            let file = entry.unwrap().file_name().into_string().unwrap();
            file.strip_suffix("-rules.yaml")
                .map(|stem| format!("{stem}-rules"))
        })
        .collect();
    names.sort();
    assert!(names.len() >= 2, "{names:?}");
    names
}

/// Every rule, alert or recording, of the rule file `name`.
pub fn rules_of(name: &str) -> Vec<serde_yaml::Value> {
    let path = root().join(format!("deploy/prometheus/{name}.yaml"));
    let file: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    file["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_sequence().unwrap().clone())
        .collect()
}

#[test]
fn promtool_checks_and_unit_tests_the_rules() {
    let dir = root().join("deploy/prometheus");
    for name in rule_files() {
        let (file, test_file) = (format!("{name}.yaml"), format!("tests/{name}.test.yaml"));
        assert_success(
            &run("promtool", &["check", "rules", &file], &dir),
            &format!("promtool check rules {file}"),
        );
        assert_success(
            &run("promtool", &["test", "rules", &test_file], &dir),
            &format!("promtool test rules {test_file}"),
        );
        // Every alert and recording rule has a test.
        let tests = std::fs::read_to_string(dir.join(&test_file)).unwrap();
        for rule in rules_of(&name) {
            let name = rule["alert"].as_str().or(rule["record"].as_str()).unwrap();
            assert!(tests.contains(name), "{name} has no promtool test");
        }
    }
}

#[test]
fn the_latency_slo_reads_the_bucket_of_the_threshold_check_config_knows() {
    let rules =
        std::fs::read_to_string(root().join("deploy/prometheus/statuscope-rules.yaml")).unwrap();
    let bounds: Vec<&str> = rules
        .match_indices("{le=\"")
        .map(|(at, _)| {
            let value = &rules[at + 5..];
            &value[..value.find('"').unwrap()]
        })
        .collect();
    assert!(bounds.len() >= 7, "one per window: {bounds:?}");
    let threshold = statuscope::record::LATENCY_SLO_SECONDS.to_string();
    assert!(
        bounds.iter().all(|b| *b == threshold),
        "{bounds:?} vs {threshold}"
    );
    // The default buckets serve it.
    assert!(statuscope::record::DURATION_BUCKETS.contains(&statuscope::record::LATENCY_SLO_SECONDS));
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
        // No cert-manager schema ships offline: the injector test checks those objects' fields.
        if api_version.starts_with("cert-manager.io/") {
            continue;
        }
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

/// The rendered documents of a kustomization, as JSON values.
fn render(dir: &str) -> (String, Vec<Value>) {
    let output = run("kubectl", &["kustomize", dir], &root());
    assert_success(&output, &format!("kubectl kustomize {dir}"));
    let rendered = String::from_utf8(output.stdout).unwrap();
    let documents = serde_yaml::Deserializer::from_str(&rendered)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect();
    (rendered, documents)
}

fn find<'a>(documents: &'a [Value], kind: &str, name: &str) -> &'a Value {
    documents
        .iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name}"))
}

#[test]
fn the_injector_manifests_render_validate_and_agree_with_each_other() {
    let (rendered, documents) = render("deploy/kubernetes/injector");
    validate_manifests(&rendered, "injector");
    let name = "statuscope-injector";
    let deployment = find(&documents, "Deployment", name);
    let service = find(&documents, "Service", name);
    let webhooks = find(&documents, "MutatingWebhookConfiguration", name);
    find(&documents, "PodDisruptionBudget", name);
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"];
    assert_eq!(
        pod["metadata"]["labels"]["statuscope.io/inject"], "disabled",
        "never injects itself"
    );
    assert_eq!(
        pod["spec"]["automountServiceAccountToken"], false,
        "it reads nothing from the API"
    );
    for kind in ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"] {
        assert!(
            !documents.iter().any(|d| d["kind"] == kind),
            "no RBAC: {kind}"
        );
    }
    let container = &pod["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "injector");
    // The sidecars get the injector's own image, wherever `images` points it.
    let image = container["image"].as_str().unwrap();
    assert!(
        args.contains(&format!("--image={image}").as_str()),
        "{args:?}"
    );
    let copy =
        std::env::temp_dir().join(format!("statuscope-injector-copy-{}", std::process::id()));
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(root().join("deploy/kubernetes/injector")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let kustomization = copy.join("kustomization.yaml");
    let edited = std::fs::read_to_string(&kustomization)
        .unwrap()
        .replace(
            "newName: ghcr.io/statuscope/statuscope",
            "newName: registry.example/statuscope",
        )
        .replace("newTag: 0.1.0", "newTag: 9.9.9");
    std::fs::write(&kustomization, edited).unwrap();
    let (_, moved) = render(copy.to_str().unwrap());
    let moved_args = find(&moved, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        ["args"]
        .to_string();
    assert!(
        moved_args.contains("\"--image=registry.example/statuscope:9.9.9\""),
        "{moved_args}"
    );
    let _ = std::fs::remove_dir_all(&copy);
    // The Service reaches the port the injector listens on.
    let https = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == service["spec"]["ports"][0]["targetPort"])
        .expect("the Service's targetPort names a container port");
    assert!(
        args.contains(&format!("--listen=0.0.0.0:{}", https["containerPort"]).as_str()),
        "{args:?}"
    );
    let secret = pod["spec"]["volumes"][0]["secret"]["secretName"]
        .as_str()
        .unwrap();
    assert_eq!(secret, "statuscope-injector-tls");
    let entries = webhooks["webhooks"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for entry in entries {
        assert_eq!(entry["sideEffects"], "None");
        assert_eq!(entry["failurePolicy"], "Ignore");
        assert_eq!(entry["reinvocationPolicy"], "IfNeeded");
        assert!(entry["timeoutSeconds"].as_u64().unwrap() <= 5);
        assert_eq!(entry["admissionReviewVersions"], serde_json::json!(["v1"]));
        let target = &entry["clientConfig"]["service"];
        assert_eq!(target["name"], name);
        assert_eq!(target["namespace"], service["metadata"]["namespace"]);
        assert_eq!(target["port"], service["spec"]["ports"][0]["port"]);
        assert_eq!(target["path"], "/inject");
        assert_eq!(
            entry["rules"][0]["operations"],
            serde_json::json!(["CREATE"])
        );
        assert_eq!(entry["rules"][0]["resources"], serde_json::json!(["pods"]));
    }
    // One entry per way in: the namespace label, and the pod label elsewhere.
    assert_eq!(
        entries[0]["namespaceSelector"]["matchExpressions"][0]["operator"],
        "In"
    );
    assert_eq!(
        entries[1]["namespaceSelector"]["matchExpressions"][0]["operator"],
        "NotIn"
    );
    assert_eq!(
        entries[1]["objectSelector"]["matchLabels"]["statuscope.io/inject"],
        "enabled"
    );

    // make-certs.sh's caBundle patch, applied by PyPI's jsonpatch, fills both entries.
    let dir = std::env::temp_dir().join(format!("statuscope-ca-bundle-{}", std::process::id()));
    let made = Command::new(root().join("deploy/kubernetes/injector/make-certs.sh"))
        .arg(&dir)
        .output()
        .unwrap();
    assert_success(&made, "make-certs.sh");
    let config_path = dir.join("webhook.json");
    std::fs::write(&config_path, serde_json::to_vec(webhooks).unwrap()).unwrap();
    let applied = run(
        "python3",
        &["-c", "import json, sys, jsonpatch; print(json.dumps(jsonpatch.JsonPatch(json.load(open(sys.argv[2]))).apply(json.load(open(sys.argv[1])))))",
          config_path.to_str().unwrap(), dir.join("ca-bundle-patch.json").to_str().unwrap()],
        &root(),
    );
    assert_success(&applied, "jsonpatch");
    let patched: Value = serde_json::from_slice(&applied.stdout).unwrap();
    let bundle = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(dir.join("ca.crt")).unwrap())
    };
    for entry in patched["webhooks"].as_array().unwrap() {
        assert_eq!(entry["clientConfig"]["caBundle"], bundle.as_str());
    }
    validate_manifests(
        &serde_yaml::to_string(&patched).unwrap(),
        "injector-patched",
    );
    let _ = std::fs::remove_dir_all(&dir);

    // The cert-manager variant: the same objects, plus a Certificate for the Secret the
    // injector mounts, named by the annotation cert-manager's CA injector reads.
    let (rendered, with_cert_manager) = render("deploy/kubernetes/injector-cert-manager");
    validate_manifests(&rendered, "injector-cert-manager");
    let certificate = find(&with_cert_manager, "Certificate", name);
    assert_eq!(certificate["spec"]["secretName"], secret);
    let dns = format!(
        "{name}.{}.svc",
        service["metadata"]["namespace"].as_str().unwrap()
    );
    assert!(certificate["spec"]["dnsNames"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == dns.as_str()));
    let issuer = certificate["spec"]["issuerRef"]["name"].as_str().unwrap();
    let ca_issuer = find(&with_cert_manager, "Issuer", issuer);
    find(
        &with_cert_manager,
        "Certificate",
        ca_issuer["spec"]["ca"]["secretName"].as_str().unwrap(),
    );
    assert_eq!(
        find(&with_cert_manager, "MutatingWebhookConfiguration", name)["metadata"]["annotations"]
            ["cert-manager.io/inject-ca-from"],
        format!(
            "{}/{name}",
            certificate["metadata"]["namespace"].as_str().unwrap()
        )
        .as_str()
    );

    // Its monitoring: the PodMonitor selects the injector's pods in its namespace and scrapes
    // the port the annotations for plain Prometheus name too.
    let (rendered, monitoring) = render("deploy/kubernetes/injector-monitoring");
    validate_manifests(&rendered, "injector-monitoring");
    let monitor = find(&monitoring, "PodMonitor", name);
    assert_eq!(
        monitor["metadata"]["namespace"],
        deployment["metadata"]["namespace"]
    );
    let wanted = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap();
    assert!(!wanted.is_empty());
    for (label, value) in wanted {
        assert_eq!(&pod["metadata"]["labels"][label], value, "{label}");
    }
    let endpoint = &monitor["spec"]["podMetricsEndpoints"][0];
    let admin = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == endpoint["port"])
        .expect("the PodMonitor names a container port");
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/port"],
        admin["containerPort"].to_string().as_str()
    );
    assert!(
        args.contains(&format!("--admin-listen=0.0.0.0:{}", admin["containerPort"]).as_str()),
        "{args:?}"
    );
    find(&monitoring, "PrometheusRule", name);
}

#[test]
fn every_alert_has_its_runbook_in_the_deploy_guide() {
    let guide = std::fs::read_to_string(root().join("docs/deploy.md")).unwrap();
    for rule in rule_files().iter().flat_map(|name| rules_of(name)) {
        let Some(alert) = rule["alert"].as_str() else {
            continue;
        };
        assert_eq!(
            rule["annotations"]["runbook_url"].as_str(),
            Some(format!("docs/deploy.md#{}", alert.to_lowercase()).as_str()),
            "{alert}"
        );
        assert!(
            guide.contains(&format!("\n### {alert}\n")),
            "docs/deploy.md has no runbook for {alert}"
        );
    }
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
