//! `statuscope inject`: adds statuscope to Kubernetes workloads, like `linkerd inject`.
//!
//! Every Deployment, StatefulSet, DaemonSet and bare Pod gets statuscope as a native sidecar
//! (an init container with `restartPolicy: Always`) proxying to the application's port, with
//! probes on the admin port and scrape annotations, by the same code the admission webhook
//! (`statuscope injector`) runs on each pod: [`pod`]. The sidecar takes over the application
//! port's name, so Services that target it by name need no change; those that target it by
//! number are re-targeted to the sidecar's port. Documents it does not change are written back
//! byte for byte; injecting twice is the same as injecting once; pods that opt out
//! (`statuscope.io/inject: disabled`) are left alone. What it cannot do safely (host
//! networking, an ambiguous or unresolvable port, a port clash, an invalid annotation) is
//! refused with a message naming the document, and nothing is written.

pub mod overrides;
pub mod pod;

use std::fmt;

use serde_yaml::{Mapping, Value};

/// The sidecar container's name; its presence marks a pod as injected.
pub const CONTAINER: &str = "statuscope";
/// Name of the sidecar's proxy port when the application's port has no name of its own to take
/// over.
pub const PROXY_PORT_NAME: &str = "scope-http";
/// Name of the sidecar's admin port (probes, metrics).
pub const ADMIN_PORT_NAME: &str = "scope-admin";

/// How to inject.
#[derive(Debug, Clone)]
pub struct Options {
    /// The statuscope image.
    pub image: String,
    /// The sidecar's proxy port (its number; its name is the application port's).
    pub proxy_port: u16,
    /// The sidecar's admin port.
    pub admin_port: u16,
    /// The application port to proxy to (a number or a port name), when the pod has several.
    pub app_port: Option<String>,
    /// A ConfigMap holding `statuscope.yaml`, mounted at `/etc/statuscope`.
    pub config_map: Option<String>,
    /// An OpenTelemetry Collector's base URL every sidecar pushes to (as
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, which a ConfigMap's `otlp.endpoint` overrides).
    pub otlp_endpoint: Option<String>,
}

impl Options {
    /// Checks the options as flags, naming the flag at fault: each ends up in every pod.
    pub fn validate(&self) -> Result<(), String> {
        if self.image.trim().is_empty() || self.image.contains(char::is_whitespace) {
            return Err(format!("--image `{}`: not an image reference", self.image));
        }
        if self.proxy_port == 0 || self.admin_port == 0 || self.proxy_port == self.admin_port {
            return Err(format!(
                "--proxy-port {} and --admin-port {}: two different ports from 1 to 65535",
                self.proxy_port, self.admin_port
            ));
        }
        if let Some(port) = &self.app_port {
            if !(overrides::is_port_number(port) || overrides::is_port_name(port)) {
                return Err(format!(
                    "--app-port `{port}`: neither a port number nor a port name"
                ));
            }
        }
        if let Some(name) = &self.config_map {
            if !overrides::is_dns_subdomain(name) {
                return Err(format!("--config-map `{name}`: not a ConfigMap name (lower-case letters, digits, `-` and `.`)"));
            }
        }
        if let Some(url) = &self.otlp_endpoint {
            crate::export::otlp::settings::metrics_url_of_base(url)
                .map_err(|problem| format!("--otlp-endpoint {problem}"))?;
        }
        Ok(())
    }
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

/// A workload whose pods carry the sidecar, for re-targeting Services.
struct Workload {
    namespace: Option<String>,
    labels: Mapping,
    app_port: u16,
    proxy_port_name: String,
    /// Names of every port the pod's containers declare, once injected.
    port_names: Vec<String>,
}

/// What `inject` made: the manifests, and what their owner should know.
#[derive(Debug, Default)]
pub struct Injection {
    /// The manifests, injected.
    pub output: String,
    /// One line per remark, each starting with the document it is about.
    pub warnings: Vec<String>,
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

/// A workload's pod template (a mapping with `metadata` and `spec`; a Pod is its own).
fn pod_template(value: &mut Value) -> Option<&mut Value> {
    let kind = value["kind"].as_str()?;
    let template = match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" => value.get_mut("spec")?.get_mut("template")?,
        "Pod" => value,
        _ => return None,
    };
    template.get("spec")?.is_mapping().then_some(template)
}

fn key(name: &str) -> Value {
    Value::String(name.to_string())
}

/// Injects every workload and re-targets the Services that select them by port number.
pub fn inject(input: &str, options: &Options) -> Result<Injection, InjectError> {
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
    let mut workloads = Vec::new();
    let mut warnings = Vec::new();
    for document in &mut documents {
        if let Some(workload) = inject_workload(document, options, &mut warnings)? {
            workloads.push(workload);
        }
    }
    for document in &mut documents {
        let Some(value) = document.value.as_mut() else {
            continue;
        };
        if value["kind"].as_str() != Some("Service") {
            continue;
        }
        let name = name_of(value);
        document.changed |= retarget(value, &workloads)
            .map_err(|problem| InjectError(format!("{name}: {problem}")))?;
    }
    Ok(Injection {
        output: render(documents)?,
        warnings,
    })
}

/// Injects the workload `document` holds, if it holds one; what Services must know of it.
fn inject_workload(
    document: &mut Document,
    options: &Options,
    warnings: &mut Vec<String>,
) -> Result<Option<Workload>, InjectError> {
    let Some(value) = document.value.as_mut() else {
        return Ok(None);
    };
    let name = name_of(value);
    let namespace = namespace_of(value);
    let Some(template) = pod_template(value) else {
        return Ok(None);
    };
    let labels = template["metadata"]["labels"]
        .as_mapping()
        .cloned()
        .unwrap_or_default();
    let (app_port, proxy_port_name) = match pod::inject(template, options) {
        Ok(injected) => {
            document.changed = true;
            warnings.push(format!("{name}: {}", injected.warning));
            (injected.app_port, injected.proxy_port_name)
        }
        Err(skipped) => match skipped.skip {
            pod::Skip::AlreadyInjected => match pod::sidecar_ports(&template["spec"]) {
                Some(ports) => ports,
                None => return Ok(None),
            },
            pod::Skip::OptedOut => {
                warnings.push(format!("{name}: not injected: {}", skipped.message));
                return Ok(None);
            }
            _ => {
                let message = format!("{name}: {}; not injected", skipped.message);
                return Err(InjectError(message));
            }
        },
    };
    Ok(Some(Workload {
        namespace,
        labels,
        app_port,
        proxy_port_name,
        port_names: pod::port_names(&template["spec"]),
    }))
}

/// The documents again, those changed written anew and the others as they came.
fn render(documents: Vec<Document>) -> Result<String, InjectError> {
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

/// Re-targets a Service's ports that reach an injected application's port by number to the
/// sidecar's proxy port (those naming it already land on the sidecar, which took the name).
fn retarget(service: &mut Value, workloads: &[Workload]) -> Result<bool, String> {
    let Some(selector) = service["spec"]["selector"].as_mapping().cloned() else {
        return Ok(false);
    };
    let namespace = namespace_of(service);
    let selects = |w: &&Workload| {
        w.namespace == namespace
            && !selector.is_empty()
            && selector.iter().all(|(k, v)| w.labels.get(k) == Some(v))
    };
    let Some(workload) = workloads.iter().find(selects) else {
        return Ok(false);
    };
    let mut changed = false;
    for port in service["spec"]["ports"]
        .as_sequence_mut()
        .into_iter()
        .flatten()
    {
        let target = port.get("targetPort").or(port.get("port")).cloned();
        let by_number = match &target {
            Some(Value::Number(n)) => n.as_u64() == Some(u64::from(workload.app_port)),
            // The sidecar's port, or another port of the pod (metrics, say).
            Some(Value::String(name)) if workload.port_names.contains(name) => false,
            Some(Value::String(name)) => {
                return Err(format!(
                    "targetPort `{name}` names no port of the pods it selects, so it cannot be resolved; not re-targeted"
                ))
            }
            _ => false,
        };
        if by_number {
            port.as_mapping_mut()
                .ok_or("a port is not a mapping")?
                .insert(key("targetPort"), key(&workload.proxy_port_name));
            changed = true;
        }
    }
    Ok(changed)
}
