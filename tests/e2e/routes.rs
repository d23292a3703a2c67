//! Route labels: configured templates, automatic id normalisation, and the cardinality cap.

use crate::support::each_engine;
use crate::support::upstream::Upstream;
use crate::support::{client, config_file, get, Launch, Statuscope};

each_engine! {
    async fn templates_normalisation_and_the_cap_bound_the_route_label(engine) {
        let upstream = Upstream::start();
        let path = config_file(
            "routes.yaml",
            "routes:\n  templates:\n    - /users/{name}/profile\n    - /static/{path*}\n  max: 3\n",
        );
        let statuscope = Statuscope::launch(Launch {
            engine,
            upstream: Some(upstream.addr),
            config: Some(&path),
            ..Launch::default()
        });
        let client = client();
        for path in [
            "/users/alice/profile",
            "/users/bob/profile",
            "/static/css/site.css",
            "/orders/12345",
            "/orders/3f2c1a9e-4b7d-4e8a-9c1b-2d3e4f5a6b7c",
            "/carts/deadbeefdeadbeef00",
            "/health",
        ] {
            assert_eq!(get(&client, &statuscope, path).await.status, 200);
        }
        // The cap (3 normalised routes) is full: unique paths spill into `__other__`.
        for i in 0..50 {
            assert_eq!(
                get(&client, &statuscope, &format!("/unique-{i}-page"))
                    .await
                    .status,
                200
            );
        }
        statuscope.wait_idle();
        let metrics = statuscope.metrics();
        let count = |route: &str| {
            crate::support::exposition::total(
                &metrics,
                "statuscope_responses_total",
                &[("route", route)],
            )
        };
        assert_eq!(count("/users/{name}/profile"), 2.0);
        assert_eq!(count("/static/{path*}"), 1.0);
        assert_eq!(count("/orders/{id}"), 2.0);
        assert_eq!(count("/carts/{id}"), 1.0);
        assert_eq!(count("/health"), 1.0);
        assert_eq!(count("__other__"), 50.0);
        assert_eq!(
            crate::support::exposition::total(&metrics, "statuscope_route_overflow_total", &[]),
            50.0
        );
        let routes: std::collections::BTreeSet<_> = metrics
            .iter()
            .filter(|s| s.name == "statuscope_responses_total")
            .map(|s| s.labels["route"].clone())
            .collect();
        assert_eq!(routes.len(), 6, "{routes:?}");
    }
}

each_engine! {
    async fn kubelet_probes_are_tallied_apart_by_default_and_with_their_route_when_mixed(engine) {
        let upstream = Upstream::start();
        let probe = [("user-agent", "kube-probe/1.31")];
        let url = |statuscope: &Statuscope, path: &str| format!("http://{}{path}", statuscope.listen);
        let separate = Statuscope::start(engine, upstream.addr);
        let client = client();
        for path in ["/status/200", "/status/503"] {
            crate::support::send(&client, "GET", &url(&separate, path), &probe, b"").await;
        }
        get(&client, &separate, "/status/200").await;
        separate.wait_idle();
        let responses = |statuscope: &Statuscope, labels: &[(&str, &str)]| {
            statuscope.total("statuscope_responses_total", labels)
        };
        assert_eq!(responses(&separate, &[("route", "__probe__")]), 2.0);
        assert_eq!(responses(&separate, &[("route", "__probe__"), ("code", "503")]), 1.0);
        // The application's own traffic on the same path keeps its route, undiluted.
        assert_eq!(responses(&separate, &[("route", "/status/{id}")]), 1.0);
        // Judged like any response: a 503 without Retry-After is a finding, on the probe route.
        assert_eq!(
            separate.total(
                "statuscope_findings_total",
                &[("route", "__probe__"), ("rule", "missing-retry-after")]
            ),
            1.0
        );

        let config = config_file("probes-mixed.yaml", "routes:\n  probes: mixed\n");
        let mixed = Statuscope::launch(Launch {
            engine,
            upstream: Some(upstream.addr),
            config: Some(&config),
            ..Launch::default()
        });
        crate::support::send(&client, "GET", &url(&mixed, "/status/200"), &probe, b"").await;
        mixed.wait_idle();
        assert_eq!(responses(&mixed, &[("route", "/status/{id}")]), 1.0);
        assert_eq!(responses(&mixed, &[("route", "__probe__")]), 0.0);
    }
}
