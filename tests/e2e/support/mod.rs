//! Shared test parts: a real statuscope process, a real upstream, real clients, and a strict
//! parser for the Prometheus text format.

pub mod exposition;
pub mod upstream;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub use exposition::Sample;

/// How long a test waits for something that a readiness probe or a process exit signals.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `condition` (every 10 ms) until it holds, failing the test after `PATIENCE`. For
/// waiting on observable state (a metric, a port), never on time.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The python of the tools' virtualenv (`make test-deps` puts grpcio and h2 there), or the
/// one on the path.
pub fn python() -> String {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/python");
    if tools.exists() {
        tools.display().to_string()
    } else {
        "python3".into()
    }
}

/// A peer process of `tests/tools/` serving on 127.0.0.1 (an upstream, a recorder, a gRPC
/// server), stopped by its PID when dropped.
pub struct Peer {
    child: Child,
    /// Where it serves.
    pub addr: SocketAddr,
}

impl Peer {
    /// Starts `tests/tools/<script>` with `args`; returns once it prints `READY <port>` (the
    /// readiness signal).
    pub fn start(script: &str, args: &[&str]) -> Peer {
        let mut child = Command::new(python())
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/tools")
                    .join(script),
            )
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python runs (`make test-deps` installs the tools' packages)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("{script} did not start: {line:?}"))
            .trim();
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        Peer { child, addr }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails the test unless PyPI's openapi-spec-validator accepts the OpenAPI document at `path`.
pub fn validate_with_openapi_spec_validator(path: &std::path::Path) {
    let output = Command::new(python())
        .args(["-c", "import sys; from openapi_spec_validator import validate; from openapi_spec_validator.readers import read_from_filename; validate(read_from_filename(sys.argv[1])[0]); print('valid')"])
        .arg(path)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "openapi-spec-validator refused the observed document:\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(path).unwrap()
    );
}

/// Runs `statuscope <args>` to completion from the repository root, feeding `stdin` when given.
pub fn run_statuscope(args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_statuscope"));
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG");
    let Some(input) = stdin else {
        return command.output().unwrap();
    };
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Compares `produced` with the golden file, rewriting the file first when `UPDATE_GOLDEN` is
/// set (after a deliberate change; review the diff before committing it).
pub fn assert_golden(golden: &Path, produced: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(golden, produced).unwrap();
    }
    let expected = std::fs::read_to_string(golden).unwrap_or_default();
    assert!(
        produced == expected,
        "{} differs from what was produced:\n{produced}",
        golden.display()
    );
}

/// A port nobody listens on right now (bound and released by the kernel's ephemeral choice),
/// and never handed out before in this run: the kernel may offer a port it just released
/// again, and two tests (or one test's `listen` and `admin`) would then share it before
/// either has bound it.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap();
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// Writes a configuration file for one test into the temporary directory, at a path of its
/// own: the two engines' runs of one test write the same `name` at the same time.
pub fn config_file(name: &str, text: &str) -> std::path::PathBuf {
    static WRITTEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = WRITTEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("statuscope-{}-{n}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

/// A statuscope process started by this test; killed (by its PID) when dropped.
pub struct Statuscope {
    child: Child,
    /// The proxy address.
    pub listen: SocketAddr,
    /// The admin address.
    pub admin: SocketAddr,
    stderr_path: std::path::PathBuf,
}

/// A proxy engine (`proxy.engine`); the suites that exercise the proxy run against each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Engine {
    /// statuscope's own loop, the default.
    #[default]
    Fast,
    /// pingora-proxy's `ProxyHttp`.
    Pingora,
}

impl Engine {
    /// The `proxy.engine` value.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Fast => "fast",
            Engine::Pingora => "pingora",
        }
    }
}

/// Declares each test inside once per engine, as `name::fast` and `name::pingora`; the body
/// gets the engine as the argument it names. Write the tests without `#[test]`: an `async fn`
/// runs on a multi-threaded tokio runtime.
macro_rules! each_engine {
    () => {};
    ($(#[$doc:meta])* async fn $name:ident($engine:ident) $body:block $($rest:tt)*) => {
        $(#[$doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn with_engine($engine: $crate::support::Engine) $body
            #[tokio::test(flavor = "multi_thread")]
            async fn fast() {
                with_engine($crate::support::Engine::Fast).await
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn pingora() {
                with_engine($crate::support::Engine::Pingora).await
            }
        }
        $crate::support::each_engine! { $($rest)* }
    };
    ($(#[$doc:meta])* fn $name:ident($engine:ident) $body:block $($rest:tt)*) => {
        $(#[$doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn with_engine($engine: $crate::support::Engine) $body
            #[test]
            fn fast() {
                with_engine($crate::support::Engine::Fast)
            }
            #[test]
            fn pingora() {
                with_engine($crate::support::Engine::Pingora)
            }
        }
        $crate::support::each_engine! { $($rest)* }
    };
}
pub(crate) use each_engine;

/// How to start statuscope.
#[derive(Default)]
pub struct Launch<'a> {
    /// The engine (`proxy.engine`).
    pub engine: Engine,
    /// `--upstream`
    pub upstream: Option<SocketAddr>,
    /// Extra environment (`STATUSCOPE_*`).
    pub env: Vec<(&'a str, String)>,
    /// A configuration file.
    pub config: Option<&'a Path>,
    /// The interface the admin port binds to (default 127.0.0.1).
    pub admin_ip: Option<&'a str>,
    /// More arguments for `statuscope run`.
    pub args: Vec<String>,
}

impl Statuscope {
    /// Starts `statuscope run` on `engine` in front of `upstream` and waits for `/readyz`.
    pub fn start(engine: Engine, upstream: SocketAddr) -> Statuscope {
        Self::launch(Launch {
            engine,
            upstream: Some(upstream),
            ..Launch::default()
        })
    }

    /// Starts `statuscope run` as described and waits for `/readyz`.
    pub fn launch(launch: Launch<'_>) -> Statuscope {
        let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let admin_ip = launch.admin_ip.unwrap_or("127.0.0.1");
        let admin: SocketAddr = format!("{admin_ip}:{}", free_port()).parse().unwrap();
        let stderr_path = std::env::temp_dir().join(format!(
            "statuscope-test-{}-{}.log",
            std::process::id(),
            listen.port()
        ));
        let mut command = Command::new(env!("CARGO_BIN_EXE_statuscope"));
        command
            .arg("run")
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--admin")
            .arg(admin.to_string())
            .env_remove("RUST_LOG")
            .env("STATUSCOPE_PROXY__ENGINE", launch.engine.name())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        if let Some(upstream) = launch.upstream {
            command.arg("--upstream").arg(upstream.to_string());
        }
        if let Some(config) = launch.config {
            command.arg("--config").arg(config);
        }
        command.args(&launch.args);
        for (key, value) in &launch.env {
            command.env(key, value);
        }
        let child = command.spawn().expect("statuscope starts");
        let mut statuscope = Statuscope {
            child,
            listen,
            admin,
            stderr_path,
        };
        statuscope.wait_ready();
        statuscope
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "statuscope exited during start-up ({status}):\n{}",
                    self.stderr()
                );
            }
            if raw_get(self.admin, "/readyz").is_some_and(|(status, _)| status == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("statuscope never became ready:\n{}", self.stderr());
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything statuscope logged so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends a signal to the process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the PID of a child this test spawned and has not reaped.
        let result = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(result, 0, "kill({signal}) failed");
    }

    /// Waits for the process to exit, failing the test after `PATIENCE`.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("statuscope did not exit:\n{}", self.stderr());
    }

    /// The raw `/metrics` text.
    pub fn metrics_text(&self) -> String {
        let (status, body) = raw_get(self.admin, "/metrics").expect("admin answers");
        assert_eq!(status, 200);
        body
    }

    /// `/metrics`, parsed strictly.
    pub fn metrics(&self) -> Vec<Sample> {
        exposition::parse(&self.metrics_text())
    }

    /// The sum of the samples of `name` whose labels include all of `labels`.
    pub fn total(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        exposition::total(&self.metrics(), name, labels)
    }

    /// Waits until `statuscope_requests_in_flight` is 0 — every sent request has been tallied.
    pub fn wait_idle(&self) {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if self.total("statuscope_requests_in_flight", &[]) == 0.0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("requests still in flight:\n{}", self.metrics_text());
    }

    /// Peak resident memory of the process in bytes (`VmHWM`).
    pub fn peak_rss(&self) -> u64 {
        self.memory("VmHWM:")
    }

    /// Resident memory of the process now, in bytes (`VmRSS`).
    pub fn rss(&self) -> u64 {
        self.memory("VmRSS:")
    }

    fn memory(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }
}

impl Drop for Statuscope {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr_path);
    }
}

/// A raw connection to `addr` with a read timeout, as a writer and a buffered reader.
pub fn raw_connection(addr: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let writer = stream.try_clone().unwrap();
    (writer, BufReader::new(stream))
}

/// Writes `request` on a new raw connection and reads until the server closes it.
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let (mut writer, mut reader) = raw_connection(addr);
    writer.write_all(request).unwrap();
    let mut response = Vec::new();
    // A reset after the response still leaves what arrived before it.
    let _ = reader.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

/// A minimal blocking HTTP/1.0 GET (so no server answers with chunked framing) with `Connection: close`: status and body, or `None` if nobody answers.
pub fn raw_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(PATIENCE)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.get(9..12)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// A keep-alive HTTP/1.1 client.
pub type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// A keep-alive HTTP/1.1 client pool.
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A response as the client received it.
pub struct Received {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: http::HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

/// Sends one request and reads the whole response.
pub async fn send(
    client: &HttpClient,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Received {
    let mut builder = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap();
    let response = client.request(request).await.expect("response");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Received {
        status,
        headers,
        body,
    }
}

/// A GET through `statuscope`'s proxy port.
pub async fn get(client: &HttpClient, statuscope: &Statuscope, path: &str) -> Received {
    send(
        client,
        "GET",
        &format!("http://{}{path}", statuscope.listen),
        &[],
        b"",
    )
    .await
}

/// The head of a response read off a raw connection.
pub struct Head {
    /// The status line.
    pub status: String,
    /// `Content-Length`, if given.
    pub content_length: Option<usize>,
    /// Whether the body uses chunked transfer coding.
    pub chunked: bool,
}

/// Reads a response head (status line and headers) from a raw connection.
pub fn read_head(reader: &mut impl BufRead) -> Head {
    let mut head = Head {
        status: String::new(),
        content_length: None,
        chunked: false,
    };
    reader.read_line(&mut head.status).unwrap();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            return head;
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                head.content_length = Some(value.parse().unwrap());
            }
            if name.eq_ignore_ascii_case("transfer-encoding")
                && value.eq_ignore_ascii_case("chunked")
            {
                head.chunked = true;
            }
        }
    }
}

/// Reads the body after `head`: chunked, by length, or to the connection's end.
pub fn read_body(reader: &mut impl BufRead, head: &Head) -> Vec<u8> {
    let mut body = Vec::new();
    if head.chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let size = usize::from_str_radix(size.trim_end(), 16).unwrap();
            let mut chunk = vec![0u8; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                return body;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    match head.content_length {
        Some(length) => {
            body.resize(length, 0);
            reader.read_exact(&mut body).unwrap();
        }
        None => {
            reader.read_to_end(&mut body).unwrap();
        }
    }
    body
}
