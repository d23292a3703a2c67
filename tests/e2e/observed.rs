//! The observed contract end to end: traffic through a real statuscope is learnt into an
//! OpenAPI 3.1 document (`/contract/observed`) that PyPI's openapi-spec-validator accepts,
//! that a second statuscope loads as its `contract.openapi` and replays the same traffic
//! against without a contract finding, and that `statuscope lint --observed` learns the same
//! from a HAR recording of that traffic; `contract merge` combines two such documents and
//! `contract diff` names how a lagging declared contract differs.

use std::process::Command;

use serde_json::{json, Value};

use crate::support::upstream::Upstream;
use crate::support::{
    client, config_file, each_engine, raw_get, run_statuscope, send, Launch, Statuscope,
};

/// One exchange of a small API: the request, and what the upstream answers.
struct Exchange {
    method: &'static str,
    path: &'static str,
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
}

const JSON: (&str, &str) = ("content-type", "application/json");

fn traffic() -> Vec<Exchange> {
    let user = |path, body| Exchange {
        method: "GET",
        path,
        status: 200,
        headers: &[JSON, ("etag", "\"v1\""), ("x-request-id", "r1")],
        body,
    };
    vec![
        user(
            "/api/users/7?expand=manager",
            r#"{"id": 7, "name": "Ada", "email": "ada@example.com", "created": "2026-12-05T10:00:00Z", "manager": null}"#,
        ),
        user(
            "/api/users/8",
            r#"{"id": 8, "name": "Bo", "email": "bo@example.com", "created": "2026-12-04T09:30:00Z", "manager": 7, "nickname": "b"}"#,
        ),
        Exchange {
            method: "GET",
            path: "/api/users/9",
            status: 404,
            headers: &[JSON],
            body: r#"{"code": "NOT_FOUND"}"#,
        },
        Exchange {
            method: "POST",
            path: "/api/users",
            status: 201,
            headers: &[JSON, ("location", "/api/users/10")],
            body: r#"{"id": 10}"#,
        },
        Exchange {
            method: "GET",
            path: "/api/orders",
            status: 200,
            headers: &[JSON],
            body: r#"[{"id": 1, "total": 9.5, "items": [{"sku": "a-1"}]}, {"id": 2, "total": 3, "items": []}]"#,
        },
        Exchange {
            method: "GET",
            path: "/api/orders",
            status: 429,
            headers: &[JSON, ("retry-after", "5")],
            body: r#"{"code": "RATE_LIMITED"}"#,
        },
        Exchange {
            method: "DELETE",
            path: "/api/users/7",
            status: 204,
            headers: &[],
            body: "",
        },
    ]
}

/// The contract the team committed some time ago: no orders, no DELETE, no 404 yet, a user
/// without a nickname (and no other property allowed), and a PUT the service no longer
/// answers.
const DECLARED: &str = r#"
openapi: 3.1.0
info: {title: users, version: "1"}
paths:
  /api/users/{userId}:
    get:
      responses:
        "200":
          description: a user
          content:
            application/json:
              schema:
                type: object
                additionalProperties: false
                properties: {id: {type: integer}, name: {}, email: {}, created: {}, manager: {}}
    put:
      responses:
        "200": {description: updated}
  /api/users:
    post:
      responses:
        "201": {description: created}
"#;

const ROUTES: &str = "routes:\n  templates: [\"/api/users/{id}\"]\n";

async fn replay(statuscope: &Statuscope) {
    for exchange in traffic() {
        let mut headers = vec![
            ("x-reply-status".to_string(), exchange.status.to_string()),
            ("x-reply-body".to_string(), exchange.body.to_string()),
        ];
        for (name, value) in exchange.headers {
            headers.push(("x-reply-header".to_string(), format!("{name}: {value}")));
        }
        let mut headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        // A POST sends a JSON body, as a client creating a user would.
        let body: &[u8] = if exchange.method == "POST" {
            br#"{"name": "Cy"}"#
        } else {
            b""
        };
        if !body.is_empty() {
            headers.push(("content-type", "application/json"));
        }
        let url = format!("http://{}{}", statuscope.listen, exchange.path);
        let received = send(&client(), exchange.method, &url, &headers, body).await;
        assert_eq!(
            received.status, exchange.status,
            "{} {}",
            exchange.method, exchange.path
        );
    }
    statuscope.wait_idle();
}

/// `/contract/observed` in `format`.
fn observed(statuscope: &Statuscope, format: &str) -> String {
    let (status, body) = raw_get(
        statuscope.admin,
        &format!("/contract/observed?format={format}"),
    )
    .expect("the admin port answers");
    assert_eq!(status, 200, "{body}");
    body
}

/// What two documents must agree on: paths, methods, codes, media types with their schemas,
/// headers with whether they are required — not counts or times.
fn shape_of(document: &Value) -> Value {
    let mut shape = json!({});
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (code, response) in operation["responses"].as_object().unwrap() {
                let media: Value = response["content"]
                    .as_object()
                    .map(|content| {
                        content
                            .iter()
                            .map(|(m, c)| (m.clone(), c["schema"].clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                let headers: Value = response["headers"]
                    .as_object()
                    .map(|h| {
                        h.iter()
                            .map(|(n, v)| (n.clone(), v["required"].clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                shape[format!("{method} {path} {code}")] =
                    json!({"content": media, "headers": headers});
            }
        }
    }
    shape
}

/// The traffic as a HAR 1.2 recording.
fn har() -> Value {
    let entries: Vec<Value> = traffic()
        .iter()
        .map(|e| {
            let headers: Vec<Value> = e.headers.iter().map(|(n, v)| json!({"name": n, "value": v})).collect();
            let mime = e.headers.iter().find(|(n, _)| *n == "content-type").map_or("", |(_, v)| v);
            json!({
                "startedDateTime": "2026-12-05T10:00:00Z",
                "time": 1,
                "request": {"method": e.method, "url": format!("http://api.test{}", e.path), "httpVersion": "HTTP/1.1", "headers": [], "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
                "response": {"status": e.status, "statusText": "", "httpVersion": "HTTP/1.1", "headers": headers, "cookies": [], "content": {"size": e.body.len(), "mimeType": mime, "text": e.body}, "redirectURL": "", "headersSize": -1, "bodySize": e.body.len()},
                "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 0}
            })
        })
        .collect();
    json!({"log": {"version": "1.2", "creator": {"name": "statuscope tests", "version": "1"}, "entries": entries}})
}

each_engine! {
    async fn traffic_is_learnt_into_a_valid_document_that_reloads_and_replays_clean(engine) {
        let upstream = Upstream::start();
        let config = config_file("observed.yaml", ROUTES);
        let learner = Statuscope::launch(Launch { engine, upstream: Some(upstream.addr), config: Some(&config), ..Launch::default() });
        replay(&learner).await;
        let document: Value = serde_json::from_str(&observed(&learner, "json")).unwrap();
        let yaml: Value = serde_yaml::from_str(&observed(&learner, "yaml")).unwrap();
        let (status, _) = raw_get(learner.admin, "/contract/observed?format=xml").unwrap();
        assert_eq!(status, 400, "an unknown format is refused");
        assert_eq!(shape_of(&yaml), shape_of(&document), "YAML and JSON differ");
        let users = &document["paths"]["/api/users/{id}"]["get"]["responses"];
        assert_eq!(users["200"]["x-statuscope-seen"], 2);
        let user = &users["200"]["content"]["application/json"]["schema"];
        assert_eq!(user["required"], json!(["created", "email", "id", "manager", "name"]));
        assert_eq!(user["properties"]["manager"]["type"], json!(["integer", "null"]));
        assert_eq!(user["properties"]["created"]["format"], "date-time");
        assert_eq!(users["200"]["headers"]["x-request-id"]["required"], true);
        let orders = &document["paths"]["/api/orders"]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(orders["items"]["properties"]["total"]["type"], "number");
        assert!(document["paths"]["/api/users/{id}"]["delete"]["responses"]["204"].get("content").is_none());
        let get_user = &document["paths"]["/api/users/{id}"]["get"]["parameters"];
        assert_eq!(get_user[1]["name"], "expand", "{get_user}");
        assert_eq!(get_user[1]["in"], "query");
        let create = &document["paths"]["/api/users"]["post"]["requestBody"];
        assert_eq!(create["required"], true, "{create}");
        assert!(create["content"]["application/json"].is_object(), "{create}");

        let file = config_file("observed-contract.json", &serde_json::to_string_pretty(&document).unwrap());
        crate::support::validate_with_openapi_spec_validator(&file);
        let contract = config_file("observed-replay.yaml", &format!("{ROUTES}contract:\n  openapi: {}\n", file.display()));
        let judge = Statuscope::launch(Launch { engine, upstream: Some(upstream.addr), config: Some(&contract), ..Launch::default() });
        replay(&judge).await;
        let contract_rules = statuscope::rules::of_kind(statuscope::rules::RuleKind::Contract);
        for rule in contract_rules {
            let fired = judge.total("statuscope_findings_total", &[("rule", rule.id)]);
            assert_eq!(fired, 0.0, "{} fired replaying the observed traffic", rule.id);
        }
        assert_eq!(judge.total("statuscope_judged_responses_total", &[]), traffic().len() as f64);
        // Judged against what it was learnt from, the traffic drifts nowhere.
        let (status, drift) = raw_get(judge.admin, "/contract/drift").unwrap();
        assert_eq!(status, 200, "{drift}");
        assert_eq!(serde_json::from_str::<Value>(&drift).unwrap(), json!({"differences": []}));

        // A declared contract that lags behind: `contract diff` names what changed and fails.
        let declared = config_file("observed-declared.yaml", DECLARED);
        let args = ["contract", "diff", declared.to_str().unwrap(), file.to_str().unwrap(), "--format", "json"];
        let output = run_statuscope(&args, None);
        assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        let found: Vec<String> = report["differences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| format!("{} {} {} {}", d["kind"].as_str().unwrap(), d["method"].as_str().unwrap(), d["route"].as_str().unwrap(), d["response"].as_str().unwrap_or("")).trim().to_string())
            .collect();
        assert_eq!(
            found,
            [
                "undeclared-operation DELETE /api/users/{userId}",
                "undeclared-route GET /api/orders",
                "undeclared-status GET /api/users/{userId} 404",
                "undeclared-property GET /api/users/{userId} 200",
                "unseen-operation PUT /api/users/{userId}",
            ]
        );
        let itself = ["contract", "diff", file.to_str().unwrap(), file.to_str().unwrap(), "--fail-on", "info"];
        let output = run_statuscope(&itself, None);
        assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stdout));
        assert_eq!(String::from_utf8_lossy(&output.stdout), "0 differences\n");

        // The same traffic recorded as HAR, learnt offline.
        let recording = config_file("observed.har", &har().to_string());
        let written = std::env::temp_dir().join(format!("statuscope-{}-{engine:?}-observed.json", std::process::id()));
        let args = ["lint", recording.to_str().unwrap(), "--config", config.to_str().unwrap(), "--observed", written.to_str().unwrap()];
        let output = run_statuscope(&args, None);
        assert!(output.status.code().is_some_and(|c| c <= 1), "{}", String::from_utf8_lossy(&output.stderr));
        let offline: Value = serde_json::from_slice(&std::fs::read(&written).unwrap()).unwrap();
        assert_eq!(shape_of(&offline), shape_of(&document), "the HAR's document differs from the live one");
        let recorded = &offline["paths"]["/api/users/{id}"]["get"]["responses"]["200"];
        assert_eq!(recorded["x-statuscope-last-seen"], "2026-12-05T10:00:00Z", "the recording's own time");

        // Two replicas' documents (here the live one and the HAR's) merge into one: the same
        // shape, the counts added.
        let merged_path = written.with_extension("merged.json");
        let args = ["contract", "merge", file.to_str().unwrap(), written.to_str().unwrap(), "--output", merged_path.to_str().unwrap()];
        let output = run_statuscope(&args, None);
        assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
        let merged: Value = serde_json::from_slice(&std::fs::read(&merged_path).unwrap()).unwrap();
        assert_eq!(shape_of(&merged), shape_of(&document), "merging changed the shape");
        assert_eq!(merged["paths"]["/api/users/{id}"]["get"]["responses"]["200"]["x-statuscope-seen"], 4);
        let _ = std::fs::remove_file(written);
        let _ = std::fs::remove_file(merged_path);
    }
}

/// mitmproxy2swagger of `.tools-mitmproxy2swagger/` (`make test-deps`) on `har`, both passes:
/// the first lists path templates to choose from, every concrete one (a numeric segment) is
/// dropped and the others chosen, the second writes the paths.
fn mitmproxy2swagger(har: &std::path::Path) -> Value {
    let tool = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".tools-mitmproxy2swagger/bin/mitmproxy2swagger");
    let spec = har.with_extension("m2s.yaml");
    let _ = std::fs::remove_file(&spec);
    let run = || {
        let output = Command::new(&tool)
            .args([
                "-i",
                har.to_str().unwrap(),
                "-o",
                spec.to_str().unwrap(),
                "-p",
                "http://api.test",
                "-f",
                "har",
            ])
            .output()
            .expect("mitmproxy2swagger runs (`make test-deps` installs it)");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run();
    let first = std::fs::read_to_string(&spec).unwrap();
    let chosen: Vec<String> = first
        .lines()
        .filter_map(|line| match line.strip_prefix("- ignore:") {
            Some(path)
                if path
                    .split('/')
                    .any(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())) =>
            {
                None
            }
            Some(path) => Some(format!("- {path}")),
            None => Some(line.to_string()),
        })
        .collect();
    std::fs::write(&spec, chosen.join("\n")).unwrap();
    run();
    let document = serde_yaml::from_str(&std::fs::read_to_string(&spec).unwrap()).unwrap();
    let _ = std::fs::remove_file(&spec);
    document
}

/// Every (method, path, code) a document lists, its path parameters' names dropped.
fn operations_and_codes(document: &Value) -> std::collections::BTreeSet<(String, String, String)> {
    let mut found = std::collections::BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        let path: String = path
            .split('/')
            .map(|s| if s.starts_with('{') { "{}" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for (method, operation) in item.as_object().unwrap() {
            for code in operation["responses"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(c, _)| c)
            {
                found.insert((method.clone(), path.clone(), code.clone()));
            }
        }
    }
    found
}

#[test]
fn mitmproxy2swagger_finds_the_same_operations_and_codes_in_the_same_recording() {
    let recording = config_file("cross-check.har", &har().to_string());
    let config = config_file("cross-check.yaml", ROUTES);
    let written = recording.with_extension("observed.json");
    let args = [
        "lint",
        recording.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--observed",
        written.to_str().unwrap(),
    ];
    let output = run_statuscope(&args, None);
    assert!(
        output.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ours: Value = serde_json::from_slice(&std::fs::read(&written).unwrap()).unwrap();
    let _ = std::fs::remove_file(&written);
    let theirs = mitmproxy2swagger(&recording);
    // The one difference, explained in docs/contract.md: mitmproxy2swagger files a response
    // without a body (the 204 to DELETE) under 200; statuscope keeps the code the service sent.
    let expected: std::collections::BTreeSet<_> = operations_and_codes(&ours)
        .into_iter()
        .map(|(method, path, code)| {
            let bodiless = code == "204";
            (
                method,
                path,
                if bodiless { "200".to_string() } else { code },
            )
        })
        .collect();
    assert_eq!(operations_and_codes(&theirs), expected);
}

#[test]
fn ten_thousand_distinct_paths_leave_the_document_as_bounded_as_the_route_table_and_probes_out() {
    let upstream = Upstream::start();
    let config = config_file(
        "observed-routes.yaml",
        "routes:\n  max: 50\n  probes: mixed\n",
    );
    let statuscope = Statuscope::launch(Launch {
        upstream: Some(upstream.addr),
        config: Some(&config),
        ..Launch::default()
    });
    // Distinct paths with no identifier to normalise: each a new route until `routes.max`,
    // then `__other__`, which is not a path of the document.
    let (mut writer, mut reader) = crate::support::raw_connection(statuscope.listen);
    for n in 0..10_000 {
        let request = format!("GET /catalogue/page-{n}/items HTTP/1.1\r\nHost: t\r\nx-reply-header: content-type: application/json\r\nx-reply-body: {{\"k{n}\": 1}}\r\n\r\n");
        std::io::Write::write_all(&mut writer, request.as_bytes()).unwrap();
        let head = crate::support::read_head(&mut reader);
        assert!(head.status.contains("200"), "{}", head.status);
        crate::support::read_body(&mut reader, &head);
    }
    // The kubelet's probes are never learnt, whatever `routes.probes` says.
    let probe = "GET /probed HTTP/1.1\r\nHost: t\r\nUser-Agent: kube-probe/1.31\r\n\r\n";
    std::io::Write::write_all(&mut writer, probe.as_bytes()).unwrap();
    let head = crate::support::read_head(&mut reader);
    crate::support::read_body(&mut reader, &head);
    statuscope.wait_idle();
    let document: Value = serde_json::from_str(&observed(&statuscope, "json")).unwrap();
    assert!(
        document["paths"].get("/probed").is_none(),
        "a probe was learnt"
    );
    let paths = document["paths"].as_object().unwrap().len();
    assert!(paths <= 50, "{paths} paths for a route table of 50");
    assert!(paths >= 40, "only {paths} paths learnt");
    let rss = statuscope.peak_rss();
    assert!(rss < 64 << 20, "peak resident memory {} MiB", rss >> 20);
}
