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
