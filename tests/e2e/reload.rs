//! SIGHUP reloads routes, rules and limits without dropping or miscounting a request; an
//! invalid configuration is rejected with a log line and the previous one stays in force.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::support::each_engine;
use crate::support::upstream::Upstream;
use crate::support::{config_file, raw_exchange, wait_until, Launch, Statuscope};

const BEFORE: &str = "routes:
  templates: [\"/old/{id}\"]
";

const AFTER: &str = "routes:
  templates: [\"/new/{id}\"]
downstream:
  max_headers: 5
rules:
  missing-retry-after:
    enabled: false
";

fn reloads(statuscope: &Statuscope, result: &str) -> f64 {
    statuscope.total("statuscope_config_reloads_total", &[("result", result)])
}

fn reload(statuscope: &Statuscope, result: &str) {
    let before = reloads(statuscope, result);
    statuscope.signal(libc::SIGHUP);
    wait_until(&format!("a reload with result {result}"), || {
        reloads(statuscope, result) == before + 1.0
    });
}

fn status(statuscope: &Statuscope, request: &str) -> u16 {
    let response = raw_exchange(statuscope.listen, request.as_bytes());
    response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn routed(statuscope: &Statuscope, route: &str) -> f64 {
    statuscope.total("statuscope_responses_total", &[("route", route)])
}

each_engine! {
    fn sighup_applies_new_routes_rules_and_limits_and_rejects_invalid_ones(engine) {
        let upstream = Upstream::start();
        let config = config_file("reload.yaml", BEFORE);
        let statuscope = Statuscope::launch(Launch {
            engine,
            upstream: Some(upstream.addr),
            config: Some(&config),
            ..Launch::default()
        });
        let get = |path: &str, extra: &str| {
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{extra}\r\n")
        };
        let many_headers = "X-A: 1\r\nX-B: 1\r\nX-C: 1\r\nX-D: 1\r\nX-E: 1\r\nX-F: 1\r\n";
        let throttled = "x-reply-status: 429\r\n";

        assert_eq!(status(&statuscope, &get("/old/1", many_headers)), 200);
        assert_eq!(status(&statuscope, &get("/old/2", throttled)), 429);
        statuscope.wait_idle();
        assert_eq!(routed(&statuscope, "/old/{id}"), 2.0);
        let missing_retry_after = || {
            statuscope.total(
                "statuscope_findings_total",
                &[("rule", "missing-retry-after")],
            )
        };
        assert_eq!(missing_retry_after(), 1.0);

        std::fs::write(&config, AFTER).unwrap();
        reload(&statuscope, "success");
        assert_eq!(status(&statuscope, &get("/new/1", "")), 200);
        assert_eq!(
            status(&statuscope, &get("/new/2", many_headers)),
            431,
            "the new header limit applies"
        );
        assert_eq!(status(&statuscope, &get("/new/3", throttled)), 429);
        statuscope.wait_idle();
        assert_eq!(routed(&statuscope, "/new/{id}"), 3.0);
        assert_eq!(
            missing_retry_after(),
            1.0,
            "the rule is off after the reload"
        );

        // An invalid file is refused by name; the running configuration stays.
        std::fs::write(&config, "max_in_flight: 0\n").unwrap();
        reload(&statuscope, "failure");
        assert!(
            statuscope
                .stderr()
                .contains("configuration key `max_in_flight`"),
            "{}",
            statuscope.stderr()
        );
        assert_eq!(status(&statuscope, &get("/new/4", "")), 200);
        statuscope.wait_idle();
        assert_eq!(routed(&statuscope, "/new/{id}"), 4.0);
    }
}

each_engine! {
    async fn reloads_under_load_lose_and_miscount_nothing(engine) {
        let upstream = Upstream::start();
        let config = config_file("reload-load.yaml", BEFORE);
        let statuscope = Arc::new(Statuscope::launch(Launch {
            engine,
            upstream: Some(upstream.addr),
            config: Some(&config),
            ..Launch::default()
        }));
        let client = crate::support::client();
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for worker in 0..8 {
            let (client, stop, sent, listen) = (
                client.clone(),
                stop.clone(),
                sent.clone(),
                statuscope.listen,
            );
            workers.push(tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let url = format!("http://{listen}/status/200/{worker}-{n}");
                    let received = crate::support::send(&client, "GET", &url, &[], b"").await;
                    assert_eq!(received.status, 200, "a request failed during a reload");
                    sent.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            }));
        }
        let texts = [BEFORE, AFTER];
        for round in 0..6 {
            std::fs::write(&config, texts[round % 2]).unwrap();
            let handle = statuscope.clone();
            tokio::task::spawn_blocking(move || reload(&handle, "success"))
                .await
                .unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        for worker in workers {
            worker.await.unwrap();
        }
        let handle = statuscope.clone();
        tokio::task::spawn_blocking(move || handle.wait_idle())
            .await
            .unwrap();
        let sent = sent.load(Ordering::Relaxed) as f64;
        assert!(sent > 0.0);
        assert_eq!(
            statuscope.total("statuscope_responses_total", &[]),
            sent,
            "every request is tallied exactly once across reloads"
        );
        assert_eq!(upstream.requests() as f64, sent);
    }
}
