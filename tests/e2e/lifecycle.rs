//! Shutdown: SIGTERM drains in-flight requests and exits 0; SIGINT exits at once.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::each_engine;
use crate::support::upstream::Upstream;
use crate::support::{raw_get, wait_until, Launch, Statuscope};

each_engine! {
    fn sigterm_under_load_finishes_every_accepted_request_then_exits_zero(engine) {
        const IN_FLIGHT: usize = 20;
        let upstream = Upstream::start();
        let mut statuscope = Statuscope::launch(Launch {
            engine,
            upstream: Some(upstream.addr),
            env: vec![("STATUSCOPE_DRAIN_TIMEOUT", "20s".into())],
            ..Launch::default()
        });
        let listen = statuscope.listen;
        let slow: Vec<_> = (0..IN_FLIGHT)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut stream = TcpStream::connect(listen).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(20)))
                        .unwrap();
                    stream
                        .write_all(b"GET /slow/1500 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                        .unwrap();
                    let mut response = String::new();
                    stream.read_to_string(&mut response).unwrap();
                    response
                })
            })
            .collect();
        wait_until("every slow request to be in flight", || {
            statuscope.total("statuscope_requests_in_flight", &[]) == IN_FLIGHT as f64
        });

        statuscope.signal(libc::SIGTERM);
        wait_until("/readyz to fail", || {
            raw_get(statuscope.admin, "/readyz").is_some_and(|(s, _)| s == 503)
        });
        // The admin port keeps serving metrics while the proxy drains.
        let (status, metrics) = raw_get(statuscope.admin, "/metrics").unwrap();
        assert_eq!(status, 200);
        assert!(
            metrics.contains(&format!("statuscope_requests_in_flight {IN_FLIGHT}")),
            "{metrics}"
        );
        // New connections are no longer accepted.
        wait_until("the listener to close", || {
            TcpStream::connect(listen).is_err() || raw_get(listen, "/status/200").is_none()
        });

        for request in slow {
            let response = request.join().unwrap();
            assert!(response.starts_with("HTTP/1.1 200"), "{response}");
            assert!(response.ends_with("slow"), "{response}");
        }
        let status = statuscope.wait_exit();
        assert!(
            status.success(),
            "exit status {status}\n{}",
            statuscope.stderr()
        );
        assert!(
            statuscope.stderr().contains("drained"),
            "{}",
            statuscope.stderr()
        );
        assert_eq!(upstream.requests(), IN_FLIGHT);
    }
}

each_engine! {
    fn sigint_exits_at_once(engine) {
        let upstream = Upstream::start();
        let mut statuscope = Statuscope::start(engine, upstream.addr);
        statuscope.signal(libc::SIGINT);
        let status = statuscope.wait_exit();
        assert!(status.success(), "exit status {status}");
    }
}

/// pingora's timer thread ticks every 10 ms for the life of the process once anything has used
/// it; the fast engine never starts it, so an idle sidecar has nothing that wakes it.
#[test]
fn the_fast_engine_starts_no_ticking_timer_thread() {
    let upstream = Upstream::start();
    let statuscope = Statuscope::start(crate::support::Engine::Fast, upstream.addr);
    for path in ["/status/200", "/slow/10", "/status/404"] {
        assert!(raw_get(statuscope.listen, path).is_some());
    }
    statuscope.wait_idle();
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", statuscope.pid()))
        .unwrap()
        .map(|task| std::fs::read_to_string(task.unwrap().path().join("comm")).unwrap())
        .collect();
    assert!(
        !threads.iter().any(|name| name.trim() == "Timer thread"),
        "{threads:?}"
    );
}
