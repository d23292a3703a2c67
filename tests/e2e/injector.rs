//! `statuscope injector`: real AdmissionReviews over HTTPS from a real client (Python's ssl
//! and http.client), the returned JSON Patches applied by PyPI's `jsonpatch`, and compared with
//! what `statuscope inject` prints for the same pod; the skip reasons; the certificate rotated
//! under load; the admin port; bad flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use serde::Deserialize as _;
use serde_json::{json, Value};

use crate::deploy::{root, run};
use crate::support::{exposition, free_port, raw_get, wait_until};

/// The certificates `deploy/kubernetes/injector/make-certs.sh` makes, with `127.0.0.1` added
/// so a client on loopback verifies the host name.
fn make_certs(dir: &Path) {
    let output = Command::new(root().join("deploy/kubernetes/injector/make-certs.sh"))
        .arg(dir)
        .env("EXTRA_SANS", "IP:127.0.0.1")
        .output()
        .expect("make-certs.sh runs (it needs openssl)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("statuscope-injector-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running injector with its certificates, killed when dropped.
struct Injector {
    child: Child,
    certs: PathBuf,
    listen: SocketAddr,
    admin: SocketAddr,
}

impl Injector {
    fn start(name: &str, extra: &[&str]) -> Injector {
        let certs = temp_dir(name);
        make_certs(&certs);
        let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_statuscope"))
            .args(["injector", "--listen", &listen.to_string()])
            .args(["--admin-listen", &admin.to_string()])
            .arg("--tls-cert")
            .arg(certs.join("tls.crt"))
            .arg("--tls-key")
            .arg(certs.join("tls.key"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let injector = Injector {
            child,
            certs,
            listen,
            admin,
        };
        wait_until("the injector's /readyz", || {
            raw_get(admin, "/readyz").is_some_and(|(status, _)| status == 200)
        });
        injector
    }

    /// Sends each review (or raw body) as the API server would; the answers, patches applied.
    fn send(&self, reviews: &[Value]) -> Vec<Value> {
        let mut child = Command::new("python3")
            .arg(root().join("tests/tools/admission.py"))
            .args(["127.0.0.1", &self.listen.port().to_string()])
            .arg(self.certs.join("ca.crt"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 from .tools (`make test-deps`)");
        std::io::Write::write_all(
            child.stdin.as_mut().unwrap(),
            serde_json::to_string(reviews).unwrap().as_bytes(),
        )
        .unwrap();
        drop(child.stdin.take());
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "admission.py: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    fn total(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let (status, text) = raw_get(self.admin, "/metrics").expect("admin answers");
        assert_eq!(status, 200);
        exposition::total(&exposition::parse(&text), name, labels)
    }

    fn admissions(&self, result: &str) -> f64 {
        self.total(
            "statuscope_injector_admissions_total",
            &[("result", result)],
        )
    }
}

impl Drop for Injector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.certs);
    }
}

/// Every pod the documents of `file` describe, as the API server would send it for CREATE: a
/// bare Pod as written, a workload's template as a Pod (named, in its namespace).
fn pods_of(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    let mut pods = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value: Value = Value::deserialize(document).unwrap();
        let name = value["metadata"]["name"]
            .as_str()
            .unwrap_or("?")
            .to_string();
        let mut pod = match value["kind"].as_str() {
            Some("Pod") => value.clone(),
            Some("Deployment" | "StatefulSet" | "DaemonSet") => {
                let template = &value["spec"]["template"];
                json!({"apiVersion": "v1", "kind": "Pod",
                    "metadata": template["metadata"], "spec": template["spec"]})
            }
            _ => continue,
        };
        pod["metadata"]["name"] = format!("{name}-7d4b9").into();
        if let Some(namespace) = value["metadata"]["namespace"].as_str() {
            pod["metadata"]["namespace"] = namespace.into();
        }
        pods.push(pod);
    }
    pods
}

fn review(uid: &str, object: &Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE",
            "namespace": object["metadata"]["namespace"].as_str().unwrap_or("default"),
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": object,
            "dryRun": false,
        }
    })
}

/// What `statuscope inject` prints for `pod`, as JSON.
fn injected_by_the_cli(pod: &Value) -> Value {
    let yaml = serde_yaml::to_string(pod).unwrap();
    let output = crate::support::run_statuscope(&["inject"], Some(yaml.as_bytes()));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let documents: Vec<Value> =
        serde_yaml::Deserializer::from_str(&String::from_utf8(output.stdout).unwrap())
            .map(|d| Value::deserialize(d).unwrap())
            .collect();
    assert_eq!(documents.len(), 1);
    documents.into_iter().next().unwrap()
}

fn response(answer: &Value) -> &Value {
    assert_eq!(answer["status"], 200, "{answer}");
    &answer["review"]["response"]
}

#[test]
fn patched_pods_are_what_statuscope_inject_prints_and_valid() {
    let injector = Injector::start("same", &[]);
    let pods: Vec<Value> = [
        "tests/inject/shop.yaml",
        "tests/inject/pod.yaml",
        "tests/inject/overrides.yaml",
    ]
    .into_iter()
    .flat_map(pods_of)
    .filter(|pod| pod["metadata"]["labels"]["statuscope.io/inject"] != "disabled")
    .collect();
    assert_eq!(pods.len(), 4, "web, ledger, debug, exports");
    let reviews: Vec<Value> = pods
        .iter()
        .enumerate()
        .map(|(at, pod)| review(&format!("uid-{at}"), pod))
        .collect();
    let answers = injector.send(&reviews);
    let mut patched_pods = String::new();
    for ((pod, answer), at) in pods.iter().zip(&answers).zip(0..) {
        let response = response(answer);
        assert_eq!(response["uid"], format!("uid-{at}"), "the request's uid");
        assert_eq!(response["allowed"], true);
        assert_eq!(response["patchType"], "JSONPatch");
        assert_eq!(
            answer["patched"],
            injected_by_the_cli(pod),
            "{}: the webhook and `statuscope inject` differ",
            pod["metadata"]["name"]
        );
        // The remark about Services that target the port by number.
        let warning = response["warnings"][0].as_str().unwrap();
        assert!(warning.contains("by number"), "{warning}");
        patched_pods.push_str(&format!(
            "---\n{}",
            serde_yaml::to_string(&answer["patched"]).unwrap()
        ));
    }
    assert_eq!(injector.admissions("injected"), 4.0);
    let path = temp_dir("validate").join("patched.yaml");
    std::fs::write(&path, &patched_pods).unwrap();
    let output = run(
        "kubernetes-validate",
        &["--strict", path.to_str().unwrap()],
        &root(),
    );
    assert!(
        output.status.success() && !String::from_utf8_lossy(&output.stdout).contains("WARN"),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn pods_it_must_not_change_are_allowed_unchanged_with_the_reason() {
    let injector = Injector::start("skips", &[]);
    let web = pods_of("tests/inject/shop.yaml").remove(0);
    let injected = injector.send(&[review("first", &web)]).remove(0)["patched"].clone();
    let mut opted_out = web.clone();
    opted_out["metadata"]["annotations"]["statuscope.io/inject"] = "disabled".into();
    let legacy = pods_of("tests/inject/overrides.yaml").remove(1);
    let mut not_a_create = review("update", &web);
    not_a_create["request"]["operation"] = "UPDATE".into();
    let mut not_a_pod = review("deployment", &web);
    not_a_pod["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            review("again", &injected),
            "already_injected",
            "already there",
        ),
        // The shipped example base carries the sidecar already.
        (
            review(
                "base",
                &pods_of("deploy/kubernetes/base/deployment.yaml")[0],
            ),
            "already_injected",
            "already there",
        ),
        (review("annotated-out", &opted_out), "opted_out", "disabled"),
        (review("labelled-out", &legacy), "opted_out", "disabled"),
        (
            review("host", &pods_of("tests/inject/host-network.yaml")[0]),
            "host_network",
            "hostNetwork",
        ),
        (
            review("ports", &pods_of("tests/inject/ambiguous-ports.yaml")[0]),
            "unresolvable_port",
            "2 TCP ports",
        ),
        (
            review(
                "greedy",
                &pods_of("tests/inject/invalid-annotation.yaml")[0],
            ),
            "invalid_annotation",
            "annotation `statuscope.io/proxy-cpu-request`",
        ),
        (not_a_create, "ignored", "only Pod CREATE"),
        (not_a_pod, "ignored", "only Pod CREATE"),
        (
            review("no-spec", &json!({"metadata": {"name": "x"}})),
            "not_understood",
            "not a pod with a spec",
        ),
    ];
    let reviews: Vec<Value> = cases.iter().map(|(review, ..)| review.clone()).collect();
    let answers = injector.send(&reviews);
    for ((sent, result, reason), answer) in cases.iter().zip(&answers) {
        let response = response(answer);
        assert_eq!(response["uid"], sent["request"]["uid"]);
        assert_eq!(response["allowed"], true, "{result}: never refused");
        assert!(response.get("patch").is_none(), "{result}: {response}");
        assert_eq!(answer["patched"], sent["request"]["object"], "{result}");
        let warning = response["warnings"][0].as_str().unwrap_or_default();
        assert!(
            warning.starts_with("statuscope: not injected: ") && warning.contains(reason),
            "{result}: {warning}"
        );
    }
    for result in [
        "already_injected",
        "opted_out",
        "host_network",
        "unresolvable_port",
        "invalid_annotation",
        "ignored",
        "not_understood",
    ] {
        let expected = cases.iter().filter(|(_, r, _)| *r == result).count() as f64;
        assert_eq!(injector.admissions(result), expected, "{result}");
    }
    // Not an AdmissionReview at all: a 400, and the pod-facing tallies unchanged.
    let refused = injector.send(&[
        json!("{\"not\": \"a review\"}"),
        json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "old"}}),
        json!("<html>"),
    ]);
    for answer in &refused {
        assert_eq!(answer["status"], 400, "{answer}");
        assert!(answer["body"]
            .as_str()
            .unwrap()
            .starts_with("not an AdmissionReview"));
    }
    assert_eq!(injector.admissions("bad_request"), 3.0);
    assert_eq!(injector.admissions("injected"), 1.0);
}

/// One review over a fresh TLS connection, verified against `ca`; the certificate the server
/// presented, or why it failed.
async fn fresh_connection_review(
    listen: SocketAddr,
    connector: &tokio_rustls::TlsConnector,
    body: &[u8],
) -> Result<Vec<u8>, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = tokio::net::TcpStream::connect(listen)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let name = rustls_pki_types::ServerName::IpAddress(listen.ip().into());
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let head = format!(
        "POST /inject HTTP/1.1\r\nhost: injector\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(body).await.map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer)
        .await
        .map_err(|e| format!("read: {e}"))?;
    if !answer.starts_with(b"HTTP/1.1 200") {
        return Err(String::from_utf8_lossy(&answer).into_owned());
    }
    Ok(presented)
}

fn connector(ca: &Path) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    // Every connection a full handshake: a resumed session presents no certificate.
    config.resumption = rustls::client::Resumption::disabled();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

fn der_of(pem_file: &Path) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_file(pem_file)
        .unwrap()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_rotates_under_load_without_a_failed_handshake() {
    let injector = Injector::start("rotation", &[]);
    let connector = connector(&injector.certs.join("ca.crt"));
    let body = Arc::new(
        serde_json::to_vec(&review("load", &pods_of("tests/inject/shop.yaml")[0])).unwrap(),
    );
    let old = der_of(&injector.certs.join("tls.crt"));
    let stop = Arc::new(AtomicBool::new(false));
    let (done, fresh) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let new_cert: Arc<std::sync::Mutex<Option<Vec<u8>>>> = Arc::default();
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (connector, body, stop) = (connector.clone(), body.clone(), stop.clone());
        let (done, fresh, new_cert) = (done.clone(), fresh.clone(), new_cert.clone());
        let listen = injector.listen;
        clients.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match fresh_connection_review(listen, &connector, &body).await {
                    Ok(presented) => {
                        done.fetch_add(1, Ordering::Relaxed);
                        if new_cert.lock().unwrap().as_ref() == Some(&presented) {
                            fresh.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) => failures.push(e),
                }
            }
            failures
        }));
    }
    let wait = |what: &'static str, condition: Box<dyn Fn() -> bool + Send>| {
        tokio::task::spawn_blocking(move || wait_until(what, condition))
    };
    let started = done.clone();
    wait(
        "load before the rotation",
        Box::new(move || started.load(Ordering::Relaxed) >= 200),
    )
    .await
    .unwrap();
    // A broken pair first (a key that is not PEM): refused, the old pair stays in force.
    let key = std::fs::read(injector.certs.join("tls.key")).unwrap();
    std::fs::write(injector.certs.join("tls.key.broken"), b"not a key").unwrap();
    std::fs::rename(
        injector.certs.join("tls.key.broken"),
        injector.certs.join("tls.key"),
    )
    .unwrap();
    let admin = injector.admin;
    let failed = move || {
        let (_, text) = raw_get(admin, "/metrics").unwrap();
        exposition::total(
            &exposition::parse(&text),
            "statuscope_injector_certificate_reloads_total",
            &[("outcome", "failed")],
        ) >= 1.0
    };
    wait("the broken pair refused", Box::new(failed))
        .await
        .unwrap();
    std::fs::write(injector.certs.join("tls.key"), key).unwrap();
    // The rotation: the shipped script again, a new serving pair under the same CA.
    make_certs(&injector.certs);
    let new = der_of(&injector.certs.join("tls.crt"));
    assert_ne!(old, new);
    *new_cert.lock().unwrap() = Some(new);
    let served = fresh.clone();
    wait(
        "100 handshakes with the new certificate",
        Box::new(move || served.load(Ordering::Relaxed) >= 100),
    )
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for client in clients {
        failures.extend(client.await.unwrap());
    }
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(done.load(Ordering::Relaxed) > 300);
    assert_eq!(
        injector.total("statuscope_injector_tls_handshake_failures_total", &[]),
        0.0
    );
    assert!(
        injector.total(
            "statuscope_injector_certificate_reloads_total",
            &[("outcome", "loaded")]
        ) >= 1.0
    );
}

#[test]
fn sigterm_turns_readyz_503_while_it_keeps_answering_then_it_exits() {
    let mut injector = Injector::start("drain", &["--drain", "5s"]);
    let pod = pods_of("tests/inject/pod.yaml").remove(0);
    // SAFETY: kill(2) on the PID of a child this test spawned and has not reaped.
    assert_eq!(
        unsafe { libc::kill(injector.child.id() as i32, libc::SIGTERM) },
        0
    );
    wait_until("/readyz at 503", || {
        raw_get(injector.admin, "/readyz").is_some_and(|(status, _)| status == 503)
    });
    let answer = injector.send(&[review("late", &pod)]).remove(0);
    assert_eq!(
        response(&answer)["patchType"],
        "JSONPatch",
        "still answering while draining"
    );
    let deadline = std::time::Instant::now() + crate::support::PATIENCE;
    let status = loop {
        if let Some(status) = injector.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the injector did not exit"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

#[test]
fn bad_certificate_flags_are_named_and_stop_start_up() {
    let dir = temp_dir("flags");
    make_certs(&dir);
    let other = dir.join("other");
    make_certs(&other);
    let cert = dir.join("tls.crt");
    let missing = dir.join("missing.crt");
    let foreign_key = other.join("tls.key");
    let key = dir.join("tls.key");
    for (cert, key, message) in [
        (&missing, &key, "--tls-cert"),
        (&cert, &missing, "--tls-key"),
        (&key, &key, "--tls-cert: no certificate"),
        (&cert, &foreign_key, "do not make a pair"),
    ] {
        let output = crate::support::run_statuscope(
            &[
                "injector",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(output.status.code(), Some(2), "{message}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{message}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A port already taken is a failure at run time, exit status 1 as for `statuscope run`; a
/// flag's bad value (above) is 2.
#[test]
fn a_taken_port_exits_1_naming_the_flag() {
    let dir = temp_dir("taken");
    make_certs(&dir);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = crate::support::run_statuscope(
        &[
            "injector",
            "--listen",
            &address,
            "--admin-listen",
            "127.0.0.1:0",
            "--tls-cert",
            dir.join("tls.crt").to_str().unwrap(),
            "--tls-key",
            dir.join("tls.key").to_str().unwrap(),
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("--listen {address}")), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn its_alerts_use_only_the_metrics_and_results_it_exports() {
    let injector = Injector::start("alerts", &[]);
    let (status, text) = raw_get(injector.admin, "/metrics").expect("admin answers");
    assert_eq!(status, 200);
    let samples = exposition::parse(&text);
    let rules =
        std::fs::read_to_string(root().join("deploy/prometheus/statuscope-injector-rules.yaml"))
            .unwrap();
    let metric = regex::Regex::new(r"\bstatuscope_[a-z_]+\b").unwrap();
    let used: Vec<&str> = metric.find_iter(&rules).map(|m| m.as_str()).collect();
    assert!(used.len() >= 6, "{used:?}");
    for name in used {
        assert!(
            samples.iter().any(|sample| sample.name == name),
            "the rules use {name}, which it does not export"
        );
    }
    // Each label value a rule matches on is one the injector writes (its series start at 0).
    let matcher = regex::Regex::new(r#"\b(result|outcome)=~?"([^"]+)""#).unwrap();
    let mut values = 0;
    for found in matcher.captures_iter(&rules) {
        for value in found[2].split('|') {
            values += 1;
            let label = &found[1];
            assert!(
                samples
                    .iter()
                    .any(|sample| sample.labels.get(label).map(String::as_str) == Some(value)),
                "the rules match {label}=\"{value}\", which it never writes"
            );
        }
    }
    assert!(values >= 6, "{values} label values");
}

#[test]
fn bad_log_flags_are_named_and_stop_start_up() {
    for (flag, value, message) in [
        ("--log-level", "pingora=debug", "allow it at most `info`"),
        ("--log-level", "info,[", "is not a log filter"),
        ("--log-format", "xml", "is not one of `human`, `json`"),
    ] {
        let output = crate::support::run_statuscope(
            &[
                "injector",
                "--tls-cert",
                "unread.crt",
                "--tls-key",
                "unread.key",
                flag,
                value,
            ],
            None,
        );
        assert_eq!(output.status.code(), Some(2), "{flag} {value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(flag) && stderr.contains(message),
            "{flag} {value}: {stderr}"
        );
    }
    // And good ones start it.
    let injector = Injector::start(
        "log-flags",
        &["--log-format", "human", "--log-level", "statuscope=debug"],
    );
    assert_eq!(injector.admissions("injected"), 0.0);
}
