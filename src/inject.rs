//! `statuscope inject`: adds statuscope to Kubernetes workloads, like `linkerd inject`.
//!
//! Every Deployment, StatefulSet, DaemonSet and bare Pod gets statuscope as a native sidecar
//! (an init container with `restartPolicy: Always`) proxying to the application's port, with
//! probes on the admin port and scrape annotations; every Service selecting those pods is
//! re-targeted from the application's port to the sidecar's. Documents it does not change are
//! written back byte for byte; injecting twice is the same as injecting once. What it cannot do
//! safely (host networking, an ambiguous or unresolvable port, a port clash) is refused with a
//! message naming the document, and nothing is written.

use std::fmt;

use serde_yaml::{Mapping, Value};

/// The sidecar container's name; its presence marks a pod as injected.
pub const CONTAINER: &str = "statuscope";
/// Name of the sidecar's proxy port, which Services are re-targeted to.
pub const PROXY_PORT_NAME: &str = "scope-http";
/// Name of the sidecar's admin port (probes, metrics).
pub const ADMIN_PORT_NAME: &str = "scope-admin";

/// How to inject.
#[derive(Debug, Clone)]
pub struct Options {
    /// The statuscope image.
    pub image: String,
    /// The sidecar's proxy port.
    pub proxy_port: u16,
    /// The sidecar's admin port.
    pub admin_port: u16,
    /// The application port to proxy to (a number or a port name), when the pod has several.
    pub app_port: Option<String>,
    /// A ConfigMap holding `statuscope.yaml`, mounted at `/etc/statuscope`.
    pub config_map: Option<String>,
}

/// Why a document could not be injected.
#[derive(Debug)]
pub struct InjectError(String);

impl fmt::Display for InjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InjectError {}

/// One YAML document of the input: its text, and its parsed value when it parsed.
struct Document {
    text: String,
    value: Option<Value>,
    changed: bool,
}

/// A workload whose pods were injected, for re-targeting Services.
struct Injected {
    namespace: Option<String>,
    labels: Mapping,
    app_port: u16,
    app_port_name: Option<String>,
    /// Names of every port the pod's containers declare.
    port_names: Vec<String>,
}

/// Splits a YAML stream into documents at `---` lines, keeping each document's text.
fn split(input: &str) -> Vec<String> {
    let mut documents = vec![String::new()];
    for line in input.split_inclusive('\n') {
        if line.trim_end() == "---" {
            documents.push(String::new());
        } else {
            documents.last_mut().expect("never empty").push_str(line);
        }
    }
    documents.retain(|d| !d.trim().is_empty());
    documents
}

fn name_of(value: &Value) -> String {
    let kind = value["kind"].as_str().unwrap_or("?");
    let name = value["metadata"]["name"].as_str().unwrap_or("?");
    format!("{kind}/{name}")
}

fn namespace_of(value: &Value) -> Option<String> {
    value["metadata"]["namespace"].as_str().map(str::to_string)
}

/// Where a workload keeps its pod template: (labels, pod spec).
fn pod_parts(value: &mut Value) -> Option<(Mapping, &mut Value)> {
    let kind = value["kind"].as_str()?.to_string();
    let template = match kind.as_str() {
        "Deployment" | "StatefulSet" | "DaemonSet" => value.get_mut("spec")?.get_mut("template")?,
        "Pod" => value,
        _ => return None,
    };
    let labels = template["metadata"]["labels"]
        .as_mapping()
        .cloned()
        .unwrap_or_default();
    Some((labels, template.get_mut("spec")?))
}

fn key(name: &str) -> Value {
    Value::String(name.to_string())
}

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).expect("valid built-in YAML")
}

/// Injects every workload and re-targets the Services selecting them.
pub fn inject(input: &str, options: &Options) -> Result<String, InjectError> {
    let mut documents: Vec<Document> = split(input)
        .into_iter()
        .map(|text| {
            let value = serde_yaml::from_str::<Value>(&text)
                .ok()
                .filter(Value::is_mapping);
            Document {
                text,
                value,
                changed: false,
            }
        })
        .collect();
    let mut injected = Vec::new();
    for document in &mut documents {
        let Some(value) = document.value.as_mut() else {
            continue;
        };
        let name = name_of(value);
        let namespace = namespace_of(value);
        let Some((labels, spec)) = pod_parts(value) else {
            continue;
        };
        let port_names = container_ports(spec)
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect();
        let (app_port, app_port_name, changed) = inject_pod(spec, options)
            .map_err(|problem| InjectError(format!("{name}: {problem}; not injected")))?;
        if changed {
            annotate(value, options);
            document.changed = true;
        }
        injected.push(Injected {
            namespace,
            labels,
            app_port,
            app_port_name,
            port_names,
        });
    }
    for document in &mut documents {
        let Some(value) = document.value.as_mut() else {
            continue;
        };
        if value["kind"].as_str() != Some("Service") {
            continue;
        }
        let name = name_of(value);
        document.changed |= retarget(value, &injected)
            .map_err(|problem| InjectError(format!("{name}: {problem}")))?;
    }
    let mut output = String::new();
    for document in documents {
        output.push_str("---\n");
        match (document.changed, document.value) {
            (true, Some(value)) => output
                .push_str(&serde_yaml::to_string(&value).map_err(|e| InjectError(e.to_string()))?),
            _ => output.push_str(&document.text),
        }
        if !output.ends_with('\n') {
            output.push('\n');
        }
    }
    Ok(output)
}

/// The application's port: the one named or numbered in `options.app_port`, else the port named
/// `http`, else the only port.
fn app_port(spec: &Value, options: &Options) -> Result<(u16, Option<String>), String> {
    let ports: Vec<(u16, Option<String>)> = app_container_ports(spec)
        .filter(|p| p["protocol"].as_str().unwrap_or("TCP") == "TCP")
        .filter_map(|p| {
            Some((
                p["containerPort"].as_u64()? as u16,
                p["name"].as_str().map(str::to_string),
            ))
        })
        .collect();
    if let Some(wanted) = &options.app_port {
        return ports
            .into_iter()
            .find(|(number, name)| name.as_deref() == Some(wanted) || number.to_string() == *wanted)
            .ok_or_else(|| format!("no container port named or numbered `{wanted}` (--app-port)"));
    }
    if let Some(http) = ports
        .iter()
        .find(|(_, name)| name.as_deref() == Some("http"))
    {
        return Ok(http.clone());
    }
    match ports.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err("its containers declare no TCP containerPort to proxy to; give --app-port".to_string()),
        _ => Err(format!(
            "its containers declare {} TCP ports and none is named `http`; choose one with --app-port",
            ports.len()
        )),
    }
}

/// The ports of the pod's application containers.
fn app_container_ports(spec: &Value) -> impl Iterator<Item = &Value> {
    spec["containers"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_sequence().into_iter().flatten())
}

/// The ports of every container of the pod, init containers included.
fn container_ports(spec: &Value) -> impl Iterator<Item = &Value> {
    let init = spec["initContainers"].as_sequence().into_iter().flatten();
    spec["containers"]
        .as_sequence()
        .into_iter()
        .flatten()
        .chain(init)
        .flat_map(|c| c["ports"].as_sequence().into_iter().flatten())
}

/// Adds the sidecar to a pod spec; returns the application port and whether anything changed.
fn inject_pod(spec: &mut Value, options: &Options) -> Result<(u16, Option<String>, bool), String> {
    if spec["hostNetwork"].as_bool() == Some(true) {
        return Err(
            "the pod uses hostNetwork, so the sidecar's ports would be the node's".to_string(),
        );
    }
    let (port, port_name) = app_port(spec, options)?;
    let already = spec["initContainers"]
        .as_sequence()
        .into_iter()
        .flatten()
        .any(|c| c["name"].as_str() == Some(CONTAINER));
    if already {
        return Ok((port, port_name, false));
    }
    let taken: Vec<u64> = container_ports(spec)
        .filter_map(|p| p["containerPort"].as_u64())
        .collect();
    for wanted in [options.proxy_port, options.admin_port] {
        if taken.contains(&u64::from(wanted)) {
            return Err(format!("port {wanted} is already used in the pod; choose others with --proxy-port/--admin-port"));
        }
    }
    let mut sidecar = yaml(&format!(
        r#"
name: {CONTAINER}
image: {image}
restartPolicy: Always
args: ["run"]
env:
  - name: STATUSCOPE_UPSTREAM
    value: "127.0.0.1:{port}"
  - name: STATUSCOPE_LISTEN
    value: "0.0.0.0:{proxy}"
  - name: STATUSCOPE_ADMIN
    value: "0.0.0.0:{admin}"
ports:
  - name: {PROXY_PORT_NAME}
    containerPort: {proxy}
  - name: {ADMIN_PORT_NAME}
    containerPort: {admin}
readinessProbe:
  httpGet: {{path: /readyz, port: {ADMIN_PORT_NAME}}}
  periodSeconds: 5
livenessProbe:
  httpGet: {{path: /healthz, port: {ADMIN_PORT_NAME}}}
  periodSeconds: 10
startupProbe:
  httpGet: {{path: /readyz, port: {ADMIN_PORT_NAME}}}
  periodSeconds: 1
  failureThreshold: 30
resources:
  requests: {{cpu: 50m, memory: 32Mi}}
  limits: {{cpu: "1", memory: 128Mi}}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: {{drop: ["ALL"]}}
"#,
        image = options.image,
        proxy = options.proxy_port,
        admin = options.admin_port,
    ));
    if let Some(config_map) = &options.config_map {
        sidecar["args"] = yaml(r#"["run", "--config", "/etc/statuscope/statuscope.yaml"]"#);
        sidecar.as_mapping_mut().expect("a mapping").insert(
            key("volumeMounts"),
            yaml("[{name: statuscope-config, mountPath: /etc/statuscope, readOnly: true}]"),
        );
        let volume = yaml(&format!(
            "{{name: statuscope-config, configMap: {{name: {config_map}}}}}"
        ));
        let spec_map = spec
            .as_mapping_mut()
            .ok_or("the pod spec is not a mapping")?;
        let volumes = spec_map
            .entry(key("volumes"))
            .or_insert_with(|| Value::Sequence(Vec::new()));
        volumes
            .as_sequence_mut()
            .ok_or("`volumes` is not a list")?
            .push(volume);
    }
    let spec_map = spec
        .as_mapping_mut()
        .ok_or("the pod spec is not a mapping")?;
    let init = spec_map
        .entry(key("initContainers"))
        .or_insert_with(|| Value::Sequence(Vec::new()));
    // First, so the sidecar is ready before any other init container or the application runs.
    init.as_sequence_mut()
        .ok_or("`initContainers` is not a list")?
        .insert(0, sidecar);
    Ok((port, port_name, true))
}

/// Adds the scrape annotations to a workload's pod template, keeping any already there.
fn annotate(value: &mut Value, options: &Options) {
    let kind = value["kind"].as_str().unwrap_or_default().to_string();
    let metadata = match kind.as_str() {
        "Pod" => value.get_mut("metadata"),
        _ => value
            .get_mut("spec")
            .and_then(|s| s.get_mut("template"))
            .and_then(|t| t.get_mut("metadata")),
    };
    let Some(Value::Mapping(metadata)) = metadata else {
        return;
    };
    let annotations = metadata
        .entry(key("annotations"))
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    if let Value::Mapping(annotations) = annotations {
        for (name, value) in [
            ("prometheus.io/scrape", "true".to_string()),
            ("prometheus.io/port", options.admin_port.to_string()),
            ("prometheus.io/path", "/metrics".to_string()),
        ] {
            annotations.entry(key(name)).or_insert(Value::String(value));
        }
    }
}

/// Re-targets a Service's ports from an injected application's port to the sidecar's.
fn retarget(service: &mut Value, injected: &[Injected]) -> Result<bool, String> {
    let Some(selector) = service["spec"]["selector"].as_mapping().cloned() else {
        return Ok(false);
    };
    let namespace = namespace_of(service);
    let selects = |w: &&Injected| {
        w.namespace == namespace
            && !selector.is_empty()
            && selector.iter().all(|(k, v)| w.labels.get(k) == Some(v))
    };
    let Some(workload) = injected.iter().find(selects) else {
        return Ok(false);
    };
    let mut changed = false;
    for port in service["spec"]["ports"]
        .as_sequence_mut()
        .into_iter()
        .flatten()
    {
        let target = port.get("targetPort").or(port.get("port")).cloned();
        let to_app = match &target {
            Some(Value::Number(n)) => n.as_u64() == Some(u64::from(workload.app_port)),
            Some(Value::String(name)) if name == PROXY_PORT_NAME => false,
            Some(Value::String(name)) if workload.app_port_name.as_ref() == Some(name) => true,
            // Another port of the pod (metrics, say): not the application's traffic.
            Some(Value::String(name)) if workload.port_names.contains(name) => false,
            Some(Value::String(name)) => {
                return Err(format!(
                    "targetPort `{name}` names no port of the pods it selects, so it cannot be resolved; not re-targeted"
                ))
            }
            _ => false,
        };
        if to_app {
            port.as_mapping_mut()
                .ok_or("a port is not a mapping")?
                .insert(key("targetPort"), key(PROXY_PORT_NAME));
            changed = true;
        }
    }
    Ok(changed)
}
