//! One pod (or pod template) injected: the code both `statuscope inject` and the admission
//! webhook run, so both give the same pod.
//!
//! The sidecar takes over the application's named port: the application container's port is
//! renamed (`http` → `app-http`, its probes' and lifecycle hooks' references with it, so the
//! kubelet still reaches the application directly) and the sidecar's proxy port takes the
//! original name. Every Service with `targetPort: http` then lands on statuscope without being
//! touched, which is what lets a webhook, that sees pods and never Services, inject.

use std::sync::LazyLock;

use serde_yaml::{Mapping, Value};

use super::overrides::{self, Invalid, Overrides};
use super::{Options, ADMIN_PORT_NAME, CONTAINER, PROXY_PORT_NAME};

/// Prefix of the application port's new name when the sidecar takes over its name.
pub const RENAMED_PREFIX: &str = "app-";

/// Why a pod was left as it was; the label value of the injector's admission tally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// `statuscope.io/inject: disabled`, as a label or an annotation.
    OptedOut,
    /// The pod already has the sidecar.
    AlreadyInjected,
    /// `hostNetwork: true`: the sidecar's ports would be the node's.
    HostNetwork,
    /// No application port could be chosen, or its name cannot be taken over.
    UnresolvablePort,
    /// The sidecar's ports are already used in the pod.
    PortConflict,
    /// A `statuscope.io/` annotation is invalid.
    InvalidAnnotation,
}

impl Skip {
    /// Every reason, in the order the tally exports them.
    pub const ALL: [Skip; 6] = [
        Skip::OptedOut,
        Skip::AlreadyInjected,
        Skip::HostNetwork,
        Skip::UnresolvablePort,
        Skip::PortConflict,
        Skip::InvalidAnnotation,
    ];

    /// The reason in snake case, as metrics and logs give it.
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::OptedOut => "opted_out",
            Skip::AlreadyInjected => "already_injected",
            Skip::HostNetwork => "host_network",
            Skip::UnresolvablePort => "unresolvable_port",
            Skip::PortConflict => "port_conflict",
            Skip::InvalidAnnotation => "invalid_annotation",
        }
    }
}

/// A pod left unchanged, and why in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The reason's kind.
    pub skip: Skip,
    /// The reason, for a person.
    pub message: String,
}

fn skipped(skip: Skip, message: impl Into<String>) -> Skipped {
    Skipped {
        skip,
        message: message.into(),
    }
}

/// What injecting a pod changed, for re-targeting the Services of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    /// The application's port number.
    pub app_port: u16,
    /// The name of the sidecar's proxy port: the application port's original name, or
    /// [`PROXY_PORT_NAME`] when it had none.
    pub proxy_port_name: String,
    /// What the pod's owner should know: a Service that targets the port by number bypasses
    /// statuscope.
    pub warning: String,
}

/// The application port as found: its number and its name.
struct AppPort {
    number: u16,
    name: Option<String>,
}

/// Injects the sidecar into a pod `template` (a Pod, or a workload's `spec.template`: a mapping
/// with `metadata` and `spec`). On `Err` the template is unchanged.
pub fn inject(template: &mut Value, options: &Options) -> Result<Injected, Skipped> {
    if !template["spec"].is_mapping() {
        return Err(skipped(Skip::UnresolvablePort, "the pod has no spec"));
    }
    let overrides = overrides::read(&template["metadata"])
        .map_err(|Invalid(message)| skipped(Skip::InvalidAnnotation, message))?;
    let spec = &template["spec"];
    check_injectable(spec, &overrides)?;
    let wanted = overrides.app_port.as_ref().or(options.app_port.as_ref());
    let app = app_port(spec, wanted).map_err(|m| skipped(Skip::UnresolvablePort, m))?;
    let renamed = renamed_app_port(spec, &app)?;
    check_ports_free(spec, options)?;
    let proxy_port_name = app.name.clone().unwrap_or(PROXY_PORT_NAME.to_string());
    let warning = match &app.name {
        Some(name) => format!("Services that target port {} by number reach the application directly, not statuscope; use targetPort: {name}", app.number),
        None => format!("port {} has no name, so Services target it by number and bypass statuscope; name it, or target {PROXY_PORT_NAME}", app.number),
    };
    // Past every refusal: from here on the template changes.
    let spec = &mut template["spec"];
    if let (Some(name), Some(renamed)) = (&app.name, &renamed) {
        rename_port(spec, name, renamed);
    }
    let config_map = overrides
        .config_map
        .as_ref()
        .or(options.config_map.as_ref());
    let sidecar = sidecar(
        options,
        &overrides,
        app.number,
        &proxy_port_name,
        config_map,
    );
    if let Some(config_map) = config_map {
        push(spec, "volumes", config_volume(config_map), false);
    }
    // First, so the sidecar is ready before any other init container or the application runs.
    push(spec, "initContainers", sidecar, true);
    annotate(&mut template["metadata"], options);
    Ok(Injected {
        app_port: app.number,
        proxy_port_name,
        warning,
    })
}

/// Refuses a pod that opted out, already has statuscope, or shares the node's network.
fn check_injectable(spec: &Value, overrides: &Overrides) -> Result<(), Skipped> {
    if overrides.opted_out {
        return Err(skipped(
            Skip::OptedOut,
            format!("{}: disabled", overrides::INJECT),
        ));
    }
    if is_injected(spec) {
        return Err(skipped(
            Skip::AlreadyInjected,
            "statuscope is already there",
        ));
    }
    if spec["hostNetwork"].as_bool() == Some(true) {
        return Err(skipped(
            Skip::HostNetwork,
            "the pod uses hostNetwork, so the sidecar's ports would be the node's",
        ));
    }
    Ok(())
}

/// The name the application's port takes when the sidecar takes over its own; `None` for an
/// unnamed port.
fn renamed_app_port(spec: &Value, app: &AppPort) -> Result<Option<String>, Skipped> {
    let Some(name) = &app.name else {
        return Ok(None);
    };
    let renamed = format!("{RENAMED_PREFIX}{name}");
    if !overrides::is_port_name(&renamed) || port_names(spec).contains(&renamed) {
        return Err(skipped(
            Skip::UnresolvablePort,
            format!("the application port `{name}` cannot be renamed `{renamed}` (a port name has at most 15 characters and is unique in the pod); rename it"),
        ));
    }
    Ok(Some(renamed))
}

/// Refuses a pod that already uses the sidecar's ports.
fn check_ports_free(spec: &Value, options: &Options) -> Result<(), Skipped> {
    let taken: Vec<u64> = container_ports(spec)
        .filter_map(|p| p["containerPort"].as_u64())
        .collect();
    for wanted in [options.proxy_port, options.admin_port] {
        if taken.contains(&u64::from(wanted)) {
            return Err(skipped(
                Skip::PortConflict,
                format!("port {wanted} is already used in the pod; choose others with --proxy-port/--admin-port"),
            ));
        }
    }
    Ok(())
}

/// An injected pod's application port and sidecar proxy port name, read back from its sidecar.
pub fn sidecar_ports(spec: &Value) -> Option<(u16, String)> {
    let sidecar = spec["initContainers"]
        .as_sequence()?
        .iter()
        .find(|c| c["name"].as_str() == Some(CONTAINER))?;
    let upstream = sidecar["env"]
        .as_sequence()?
        .iter()
        .find(|e| e["name"].as_str() == Some("STATUSCOPE_UPSTREAM"))?;
    let app_port = upstream["value"]
        .as_str()?
        .rsplit(':')
        .next()?
        .parse()
        .ok()?;
    let proxy_port_name = sidecar["ports"][0]["name"].as_str()?.to_string();
    Some((app_port, proxy_port_name))
}

/// Does the pod spec already carry the sidecar?
fn is_injected(spec: &Value) -> bool {
    spec["initContainers"]
        .as_sequence()
        .into_iter()
        .flatten()
        .any(|c| c["name"].as_str() == Some(CONTAINER))
}

/// The application's port: the one named or numbered in `wanted`, else the port named `http`,
/// else the only port.
fn app_port(spec: &Value, wanted: Option<&String>) -> Result<AppPort, String> {
    let ports: Vec<AppPort> = app_container_ports(spec)
        .filter(|p| p["protocol"].as_str().unwrap_or("TCP") == "TCP")
        .filter_map(|p| {
            Some(AppPort {
                number: u16::try_from(p["containerPort"].as_u64()?).ok()?,
                name: p["name"].as_str().map(str::to_string),
            })
        })
        .collect();
    if let Some(wanted) = wanted {
        return ports
            .into_iter()
            .find(|p| p.name.as_ref() == Some(wanted) || p.number.to_string() == *wanted)
            .ok_or_else(|| format!("no container port named or numbered `{wanted}` (--app-port, or the annotation statuscope.io/app-port)"));
    }
    let http = ports.iter().position(|p| p.name.as_deref() == Some("http"));
    match (http, ports.len()) {
        (Some(at), _) => Ok(ports.into_iter().nth(at).expect("found")),
        (None, 1) => Ok(ports.into_iter().next().expect("one")),
        (None, 0) => Err("its containers declare no TCP containerPort to proxy to; give --app-port".to_string()),
        (None, n) => Err(format!(
            "its containers declare {n} TCP ports and none is named `http`; choose one with --app-port or the annotation statuscope.io/app-port"
        )),
    }
}

/// The application containers.
fn app_containers(spec: &Value) -> impl Iterator<Item = &Value> {
    spec["containers"].as_sequence().into_iter().flatten()
}

/// The ports of the pod's application containers.
fn app_container_ports(spec: &Value) -> impl Iterator<Item = &Value> {
    app_containers(spec).flat_map(|c| c["ports"].as_sequence().into_iter().flatten())
}

/// The ports of every container of the pod, init containers included.
fn container_ports(spec: &Value) -> impl Iterator<Item = &Value> {
    let init = spec["initContainers"].as_sequence().into_iter().flatten();
    app_containers(spec)
        .chain(init)
        .flat_map(|c| c["ports"].as_sequence().into_iter().flatten())
}

/// Names of every port the pod's containers declare.
pub fn port_names(spec: &Value) -> Vec<String> {
    container_ports(spec)
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect()
}

/// Renames the application's port, and every probe and lifecycle hook that names it.
fn rename_port(spec: &mut Value, from: &str, to: &str) {
    let Some(containers) = spec.get_mut("containers").and_then(Value::as_sequence_mut) else {
        return;
    };
    for container in containers {
        for port in container
            .get_mut("ports")
            .and_then(Value::as_sequence_mut)
            .into_iter()
            .flatten()
        {
            if port["name"].as_str() == Some(from) {
                port["name"] = to.into();
            }
        }
        let handlers = ["livenessProbe", "readinessProbe", "startupProbe"]
            .map(|probe| vec![probe])
            .into_iter()
            .chain(["postStart", "preStop"].map(|hook| vec!["lifecycle", hook]));
        for path in handlers {
            let mut handler = Some(&mut *container);
            for step in path {
                handler = handler.and_then(|v| v.get_mut(step));
            }
            let Some(handler) = handler else { continue };
            for action in ["httpGet", "tcpSocket"] {
                if let Some(port) = handler.get_mut(action).and_then(|a| a.get_mut("port")) {
                    if port.as_str() == Some(from) {
                        *port = to.into();
                    }
                }
            }
        }
    }
}

/// What the sidecar container is whatever the pod, parsed once: the per-pod values
/// (image, addresses, port numbers and name, resources) are set on a copy, never formatted
/// into YAML text, so no value can change the document's structure. (Parsing the template for
/// each pod was 45 % of the webhook's instructions per review.)
static SIDECAR: LazyLock<Value> = LazyLock::new(|| {
    yaml(&format!(
        r#"
name: {CONTAINER}
image: set per pod
restartPolicy: Always
args: ["run"]
env:
  - {{name: STATUSCOPE_UPSTREAM, value: set per pod}}
  - {{name: STATUSCOPE_LISTEN, value: set per pod}}
  - {{name: STATUSCOPE_ADMIN, value: set per pod}}
  # The OTLP push's resource attributes (docs/otlp.md), from the Downward API.
  - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
  - {{name: POD_NAMESPACE, valueFrom: {{fieldRef: {{fieldPath: metadata.namespace}}}}}}
  - {{name: NODE_NAME, valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}}}
  - {{name: OTEL_SERVICE_NAME, valueFrom: {{fieldRef: {{fieldPath: "metadata.labels['app.kubernetes.io/name']"}}}}}}
  - {{name: OTEL_RESOURCE_ATTRIBUTES, value: "k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE),k8s.node.name=$(NODE_NAME)"}}
ports:
  - {{name: set per pod, containerPort: 0}}
  - {{name: {ADMIN_PORT_NAME}, containerPort: 0}}
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
resources: set per pod
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: {{drop: ["ALL"]}}
"#
    ))
});

/// Where the ConfigMap is mounted, and the arguments that read it.
const CONFIG_DIR: &str = "/etc/statuscope";

/// The sidecar container.
fn sidecar(
    options: &Options,
    overrides: &Overrides,
    app_port: u16,
    proxy_port_name: &str,
    config_map: Option<&String>,
) -> Value {
    let mut sidecar = SIDECAR.clone();
    sidecar["image"] = options.image.as_str().into();
    let addresses = [
        format!("127.0.0.1:{app_port}"),
        format!("0.0.0.0:{}", options.proxy_port),
        format!("0.0.0.0:{}", options.admin_port),
    ];
    for (at, address) in addresses.into_iter().enumerate() {
        sidecar["env"][at]["value"] = address.into();
    }
    sidecar["ports"][0]["name"] = proxy_port_name.into();
    sidecar["ports"][0]["containerPort"] = Value::Number(options.proxy_port.into());
    sidecar["ports"][1]["containerPort"] = Value::Number(options.admin_port.into());
    sidecar["resources"] = overrides.resources.clone();
    if let (Some(url), Value::Sequence(env)) = (&options.otlp_endpoint, &mut sidecar["env"]) {
        let mut variable = Mapping::new();
        variable.insert("name".into(), "OTEL_EXPORTER_OTLP_ENDPOINT".into());
        variable.insert("value".into(), url.as_str().into());
        env.push(variable.into());
    }
    if config_map.is_some() {
        let config = format!("{CONFIG_DIR}/statuscope.yaml");
        sidecar["args"] = Value::Sequence(vec!["run".into(), "--config".into(), config.into()]);
        let mut mount = Mapping::new();
        mount.insert("name".into(), CONFIG_VOLUME.into());
        mount.insert("mountPath".into(), CONFIG_DIR.into());
        mount.insert("readOnly".into(), true.into());
        sidecar["volumeMounts"] = Value::Sequence(vec![mount.into()]);
    }
    sidecar
}

/// The name of the volume holding the ConfigMap.
const CONFIG_VOLUME: &str = "statuscope-config";

/// The pod volume of the ConfigMap `name`.
fn config_volume(name: &str) -> Value {
    let mut config_map = Mapping::new();
    config_map.insert("name".into(), name.into());
    let mut volume = Mapping::new();
    volume.insert("name".into(), CONFIG_VOLUME.into());
    volume.insert("configMap".into(), config_map.into());
    volume.into()
}

/// Adds `item` to the list at `spec[field]` (made when missing), first or last.
fn push(spec: &mut Value, field: &str, item: Value, first: bool) {
    let Value::Mapping(spec) = spec else { return };
    let list = spec
        .entry(field.into())
        .or_insert_with(|| Value::Sequence(Vec::new()));
    if let Value::Sequence(list) = list {
        let at = if first { 0 } else { list.len() };
        list.insert(at, item);
    }
}

/// Adds the scrape annotations to a pod template's metadata, keeping any already there.
fn annotate(metadata: &mut Value, options: &Options) {
    if !metadata.is_mapping() {
        *metadata = Value::Mapping(Mapping::new());
    }
    let Value::Mapping(metadata) = metadata else {
        return;
    };
    let annotations = metadata
        .entry("annotations".into())
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    if let Value::Mapping(annotations) = annotations {
        for (name, value) in [
            ("prometheus.io/scrape", "true".to_string()),
            ("prometheus.io/port", options.admin_port.to_string()),
            ("prometheus.io/path", "/metrics".to_string()),
        ] {
            annotations
                .entry(name.into())
                .or_insert(Value::String(value));
        }
    }
}

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).expect("valid built-in YAML")
}
