//! Logs: the start-up line, JSON format, and access lines that never carry secrets.

use crate::support::each_engine;
use crate::support::upstream::Upstream;
use crate::support::{client, send, Launch, Statuscope};

each_engine! {
    async fn json_access_log_names_the_route_but_never_the_query_or_credentials(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::launch(Launch {
            engine,
            upstream: Some(upstream.addr),
            env: vec![
                ("STATUSCOPE_LOG__FORMAT", "json".into()),
                ("STATUSCOPE_LOG__ACCESS", "true".into()),
            ],
            ..Launch::default()
        });
        let url = format!("http://{}/users/42?api_key=sekrit-query", statuscope.listen);
        let headers = [
            ("authorization", "Bearer sekrit-token"),
            ("cookie", "session=sekrit-cookie"),
        ];
        assert_eq!(
            send(&client(), "POST", &url, &headers, b"sekrit-body")
                .await
                .status,
            200
        );
        statuscope.wait_idle();
        let logs = statuscope.stderr();
        let lines: Vec<serde_json::Value> = logs
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
            .collect();
        let start = lines
            .iter()
            .find(|l| l["message"] == "statuscope starting")
            .expect("start-up line");
        assert_eq!(start["upstream"], upstream.addr.to_string());
        assert_eq!(start["listen"], statuscope.listen.to_string());
        assert_eq!(start["admin"], statuscope.admin.to_string());
        let access = lines
            .iter()
            .find(|l| l["target"] == "statuscope::access")
            .expect("an access line");
        assert_eq!(access["route"], "/users/{id}");
        assert_eq!(access["method"], "POST");
        assert_eq!(access["code"], 200);
        assert_eq!(access["origin"], "upstream");
        assert!(!logs.contains("sekrit"), "{logs}");
    }
}

each_engine! {
    async fn access_log_is_off_by_default(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::start(engine, upstream.addr);
        assert_eq!(
            send(
                &client(),
                "GET",
                &format!("http://{}/x", statuscope.listen),
                &[],
                b""
            )
            .await
            .status,
            200
        );
        statuscope.wait_idle();
        assert!(!statuscope.stderr().contains("statuscope::access"));
    }
}
