//! HTTP/2 on both engines: hostile clients (raw frames written by tests/tools/h2_peer.py with
//! PyPI's h2 and hyperframe) are sent away or refused while another client keeps getting its
//! answers, with memory bounded and the CPU idle again afterwards.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::deploy::root;
use crate::support::upstream::{Upstream, BYSTANDER_PATH};
use crate::support::{each_engine, python, Engine, Launch, Statuscope};

/// What a hostile client's connection came to.
struct Attacked {
    /// The GOAWAY code statuscope sent, if it sent one.
    goaway: Option<u64>,
    /// Statuscope closed the connection.
    closed: bool,
    /// RST_STREAM frames by code.
    resets: Value,
    /// Response heads by status.
    responses: Value,
}

impl Attacked {
    fn reset(&self, code: u32) -> u64 {
        self.resets[code.to_string()].as_u64().unwrap_or(0)
    }

    fn answered(&self, status: &str) -> u64 {
        self.responses[status].as_u64().unwrap_or(0)
    }

    fn any_2xx(&self) -> bool {
        self.responses
            .as_object()
            .is_some_and(|r| r.keys().any(|status| status.starts_with('2')))
    }
}

/// Runs one attack of tests/tools/h2_peer.py against `target`.
fn attack(target: SocketAddr, name: &str) -> Attacked {
    let output = Command::new(python())
        .arg(root().join("tests/tools/h2_peer.py"))
        .args(["attack", &target.to_string(), name])
        .output()
        .expect("python runs (`make test-deps` installs h2)");
    assert!(
        output.status.success(),
        "h2_peer.py attack {name} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let outcome: Value = serde_json::from_slice(&output.stdout).unwrap();
    println!("{name}: {outcome}");
    Attacked {
        goaway: outcome["goaway"].as_u64(),
        closed: outcome["closed"].as_bool().unwrap(),
        resets: outcome["resets"].clone(),
        responses: outcome["responses"].clone(),
    }
}

/// Another client, on a connection of its own, asking for answers one after another while
/// an attack goes on; counts what it got.
struct Bystander {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<()>,
}

impl Bystander {
    fn start(target: SocketAddr) -> Bystander {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let (s, a, f) = (stop.clone(), answered.clone(), failed.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let client = Client::builder(TokioExecutor::new())
                    .http2_only(true)
                    .build_http::<Full<Bytes>>();
                while !s.load(Ordering::SeqCst) {
                    let request = http::Request::get(format!("http://{target}{BYSTANDER_PATH}"))
                        .body(Full::default())
                        .unwrap();
                    let answer =
                        tokio::time::timeout(Duration::from_secs(5), client.request(request)).await;
                    match answer {
                        Ok(Ok(response)) if response.status() == 204 => {
                            let _ = response.into_body().collect().await;
                            a.fetch_add(1, Ordering::SeqCst);
                        }
                        _ => {
                            f.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            });
        });
        Bystander {
            stop,
            answered,
            failed,
            thread,
        }
    }

    /// Stops it; how many answers it got, and how many requests failed.
    fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap();
        (
            self.answered.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
        )
    }
}

/// User and system CPU time the process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may hold spaces: the fields counted after its closing parenthesis.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

const RSS_LIMIT: u64 = 64 * 1024 * 1024;

/// Runs `name` against a statuscope on `engine` in front of a test upstream while a bystander
/// keeps asking; checks what every attack must leave behind, and hands the outcome and the
/// upstream to `expect` for what this attack must come to.
fn hostile(engine: Engine, name: &str, expect: impl FnOnce(&Attacked, &Upstream)) {
    let upstream = Upstream::start();
    let statuscope = Statuscope::launch(Launch {
        engine,
        upstream: Some(upstream.addr),
        env: vec![("STATUSCOPE_UPSTREAM_PROTOCOL", "downstream".into())],
        ..Launch::default()
    });
    let bystander = Bystander::start(statuscope.listen);
    let attacked = attack(statuscope.listen, name);
    let rss_under_attack = statuscope.rss();
    let (answered, failed) = bystander.finish();
    assert!(answered > 0, "{name}: the other client got no answer");
    assert_eq!(failed, 0, "{name}: the other client's requests failed");
    assert!(
        rss_under_attack < RSS_LIMIT && statuscope.peak_rss() < RSS_LIMIT,
        "{name}: {} MiB resident, {} MiB at the peak",
        rss_under_attack >> 20,
        statuscope.peak_rss() >> 20
    );
    statuscope.wait_idle();
    // Idle again: no busy loop left behind. A second of wall time, of which the idle process
    // spends close to none on the CPU.
    let before = cpu_ticks(statuscope.pid());
    std::thread::sleep(Duration::from_secs(1));
    let spent = cpu_ticks(statuscope.pid()) - before;
    assert!(
        spent <= 10,
        "{name}: {spent} ticks of CPU in an idle second"
    );
    expect(&attacked, &upstream);
}

/// ENHANCE_YOUR_CALM.
const CALM: u64 = 0xb;

each_engine! {
    fn a_rapid_reset_ends_the_connection_and_few_of_its_streams_reach_the_upstream(engine) {
        hostile(engine, "rapid-reset", |attacked, upstream| {
            assert_eq!(attacked.goaway, Some(CALM));
            assert!(upstream.requests_but_bystander() <= 100, "{} requests reached the upstream", upstream.requests_but_bystander());
        });
    }

    fn a_continuation_flood_ends_the_connection(engine) {
        hostile(engine, "continuation-flood", |attacked, upstream| {
            assert!(attacked.goaway.is_some() && attacked.closed);
            assert_eq!(upstream.requests_but_bystander(), 0);
        });
    }

    fn a_settings_flood_ends_the_connection(engine) {
        hostile(engine, "settings-flood", |attacked, upstream| {
            assert_eq!(attacked.goaway, Some(CALM));
            assert_eq!(upstream.requests_but_bystander(), 0);
        });
    }

    fn a_ping_flood_ends_the_connection(engine) {
        hostile(engine, "ping-flood", |attacked, upstream| {
            assert_eq!(attacked.goaway, Some(CALM));
            assert_eq!(upstream.requests_but_bystander(), 0);
        });
    }

    fn an_hpack_bomb_is_refused_without_the_memory_it_expands_to(engine) {
        hostile(engine, "hpack-bomb", |attacked, upstream| {
            assert!(attacked.goaway.is_some() || attacked.answered("431") > 0);
            assert!(!attacked.any_2xx());
            assert_eq!(upstream.requests_but_bystander(), 0);
        });
    }

    fn a_header_list_over_the_limit_is_refused(engine) {
        hostile(engine, "header-list-over-limit", |attacked, upstream| {
            assert!(attacked.goaway.is_some() || attacked.answered("431") + attacked.answered("400") == 1);
            assert_eq!(upstream.requests_but_bystander(), 0);
        });
    }

    fn streams_past_the_concurrency_limit_are_refused(engine) {
        hostile(engine, "too-many-streams", |attacked, upstream| {
            assert!(attacked.reset(7) > 0 || attacked.goaway == Some(CALM));
            assert!(upstream.requests_but_bystander() <= 100, "{} requests reached the upstream", upstream.requests_but_bystander());
        });
    }

    fn a_client_that_never_opens_its_window_holds_no_more_than_its_windows(engine) {
        hostile(engine, "stalled-download", |attacked, _| {
            assert!(attacked.goaway.is_none() || attacked.goaway == Some(CALM));
        });
    }

    fn a_malformed_preface_is_refused(engine) {
        hostile(engine, "bad-preface", |attacked, upstream| {
            assert!(attacked.closed);
            assert_eq!(upstream.requests_but_bystander(), 0);
        });
    }

    fn a_preface_not_followed_by_settings_ends_the_connection(engine) {
        hostile(engine, "not-settings-first", |attacked, upstream| {
            assert!(attacked.goaway == Some(1) || attacked.closed);
            assert_eq!(upstream.requests_but_bystander(), 0);
        });
    }
}
