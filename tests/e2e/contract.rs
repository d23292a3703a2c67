//! Contract conformance end to end: exchanges through a real statuscope in front of a real
//! upstream, judged against an OpenAPI 3.0 YAML document (with a cross-file reference) and a
//! 3.1 JSON one describing the same API. Every contract rule fires on its violation and stays
//! silent on its look-alike; PyPI's openapi-core, given the same exchanges and documents,
//! agrees wherever the two judge the same question. `/contract` counts coverage; bad documents
//! stop start-up with exit status 2; a reload with a broken document keeps the old one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::upstream::Upstream;
use crate::support::{client, config_file, raw_get, send, Engine, Launch, Statuscope};

/// One exchange: what the client asks for, what the upstream answers, and the contract rule
/// statuscope must raise (`None`: none).
struct Case {
    method: &'static str,
    path: &'static str,
    status: u16,
    content_type: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    expected: Option<&'static str>,
    /// Where openapi-core's verdict differs for a reason written down here, that reason.
    openapi_core_differs: Option<&'static str>,
}

const fn case(
    method: &'static str,
    path: &'static str,
    status: u16,
    content_type: &'static str,
    body: &'static str,
    expected: Option<&'static str>,
) -> Case {
    Case {
        method,
        path,
        status,
        content_type,
        headers: &[],
        body,
        expected,
        openapi_core_differs: None,
    }
}

const USER: &str = r#"{"id": 7, "name": "Ada", "nickname": null, "age": 3, "manager": null}"#;

fn cases() -> Vec<Case> {
    let refusal = "statuscope judges an undeclared route or method only when the service \
                   answered 2xx or 3xx (a refusal is the right answer); openapi-core flags any";
    vec![
        case("GET", "/api/users/7", 200, "application/json", USER, None),
        case(
            "GET",
            "/api/users/7",
            200,
            "application/json",
            r#"{"id": "7", "name": "Ada"}"#,
            Some("body-schema-mismatch"),
        ),
        // exclusiveMinimum: a boolean in 3.0, a number in 3.1; 0 is out in both.
        case(
            "GET",
            "/api/users/7",
            200,
            "application/json",
            r#"{"id": 7, "name": "Ada", "age": 0}"#,
            Some("body-schema-mismatch"),
        ),
        // A chained ref to a nullable object: a manager without `href`.
        case(
            "GET",
            "/api/users/7",
            200,
            "application/json",
            r#"{"id": 7, "name": "Ada", "manager": {}}"#,
            Some("body-schema-mismatch"),
        ),
        case(
            "GET",
            "/api/users/7",
            200,
            "application/json; charset=utf-8",
            r#"{"id": 7, "name": "Ada", "manager": {"href": "/users/1"}}"#,
            None,
        ),
        case(
            "GET",
            "/api/users/7",
            200,
            "text/html",
            "<html><body>hi</body></html>",
            Some("undeclared-content-type"),
        ),
        case(
            "GET",
            "/api/users/7",
            200,
            "application/xml",
            "<user id=\"7\"/>",
            None,
        ),
        case(
            "GET",
            "/api/users/7",
            500,
            "application/json",
            "{}",
            Some("undeclared-status"),
        ),
        case(
            "GET",
            "/api/users/7",
            404,
            "application/problem+json",
            r#"{"title": "no such user"}"#,
            None,
        ),
        case(
            "GET",
            "/api/users/7",
            418,
            "application/problem+json",
            r#"{"title": "a teapot"}"#,
            None,
        ),
        // The cross-file Problem schema: `title` is required.
        case(
            "GET",
            "/api/users/7",
            404,
            "application/problem+json",
            r#"{"status": 404}"#,
            Some("body-schema-mismatch"),
        ),
        case(
            "GET",
            "/api/users/me",
            200,
            "application/json",
            r#"{"id": 1, "name": "me"}"#,
            None,
        ),
        case(
            "DELETE",
            "/api/users/7",
            200,
            "application/json",
            "{}",
            Some("undeclared-operation"),
        ),
        Case {
            openapi_core_differs: Some(refusal),
            ..case(
                "DELETE",
                "/api/users/7",
                405,
                "application/problem+json",
                r#"{"title": "no"}"#,
                None,
            )
        },
        case(
            "GET",
            "/api/internal/debug",
            200,
            "application/json",
            "{}",
            Some("undeclared-route"),
        ),
        Case {
            openapi_core_differs: Some(refusal),
            ..case(
                "GET",
                "/api/internal/debug",
                404,
                "application/problem+json",
                r#"{"title": "no"}"#,
                None,
            )
        },
        Case {
            headers: &[("location", "/api/orders/1")],
            ..case(
                "POST",
                "/api/orders",
                201,
                "application/json",
                r#"{"id": 1, "total": 9.5}"#,
                None,
            )
        },
        case(
            "POST",
            "/api/orders",
            201,
            "application/json",
            r#"{"id": 1, "total": 9.5}"#,
            Some("missing-declared-header"),
        ),
        case(
            "POST",
            "/api/orders",
            503,
            "application/problem+json",
            r#"{"title": "down"}"#,
            None,
        ),
    ]
}

fn document(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/contract")
        .join(name)
}

/// The contract rules' findings so far, by rule.
fn findings_by_rule(statuscope: &Statuscope) -> BTreeMap<String, f64> {
    // Only the contract rules are compared: the HTTP rules have suites of their own.
    statuscope::rules::of_kind(statuscope::rules::RuleKind::Contract)
        .map(|rule| rule.id)
        .map(|rule| {
            (
                rule.to_string(),
                statuscope.total("statuscope_findings_total", &[("rule", rule)]),
            )
        })
        .collect()
}

async fn exchange(statuscope: &Statuscope, case: &Case) {
    let mut headers = vec![
        ("x-reply-status".to_string(), case.status.to_string()),
        ("x-reply-body".to_string(), case.body.to_string()),
        (
            "x-reply-header".to_string(),
            format!("content-type: {}", case.content_type),
        ),
    ];
    for (name, value) in case.headers {
        headers.push(("x-reply-header".to_string(), format!("{name}: {value}")));
    }
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let url = format!("http://{}{}", statuscope.listen, case.path);
    let received = send(&client(), case.method, &url, &headers, b"").await;
    assert_eq!(
        received.status, case.status,
        "{} {}",
        case.method, case.path
    );
    statuscope.wait_idle();
}

/// Runs every case through a statuscope judging against `name`; returns what fired per case.
async fn judged(name: &str, engine: Engine) -> Vec<Option<String>> {
    let upstream = Upstream::start();
    let config = config_file(
        &format!("contract-{name}.yaml"),
        &format!("contract:\n  openapi: {}\n", document(name).display()),
    );
    let statuscope = Statuscope::launch(Launch {
        engine,
        upstream: Some(upstream.addr),
        config: Some(&config),
        ..Launch::default()
    });
    let mut fired = Vec::new();
    for case in cases() {
        let before = findings_by_rule(&statuscope);
        exchange(&statuscope, &case).await;
        let after = findings_by_rule(&statuscope);
        let rules: Vec<&String> = after
            .keys()
            .filter(|rule| after[*rule] > before[*rule])
            .collect();
        assert!(
            rules.len() <= 1,
            "{} {} -> {}: {rules:?}",
            case.method,
            case.path,
            case.status
        );
        fired.push(rules.first().map(|rule| rule.to_string()));
    }
    // Routes are the document's paths, with the servers prefix; the concrete one wins.
    for route in ["/api/users/{userId}", "/api/users/me", "/api/orders"] {
        assert!(
            statuscope.total("statuscope_responses_total", &[("route", route)]) > 0.0,
            "{route}"
        );
    }
    // Coverage: every declared response is listed; the ones these cases exercised are counted.
    let (status, body) = raw_get(statuscope.admin, "/contract").expect("/contract answers");
    assert_eq!(status, 200, "{body}");
    let coverage: serde_json::Value = serde_json::from_str(&body).unwrap();
    let seen = |route: &str, method: &str, response: &str| {
        coverage["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["route"] == route && r["method"] == method && r["response"] == response)
            .unwrap_or_else(|| panic!("{route} {method} {response} missing: {body}"))["seen"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(seen("/api/users/{userId}", "GET", "200"), 7);
    assert_eq!(seen("/api/users/{userId}", "GET", "404"), 2);
    assert_eq!(seen("/api/users/{userId}", "GET", "4XX"), 1);
    assert_eq!(seen("/api/orders", "POST", "default"), 1);
    assert_eq!(coverage["declared"], 6, "{body}");
    assert_eq!(coverage["exercised"], 6, "{body}");
    let undeclared = coverage["undeclared"].as_array().unwrap();
    assert!(
        undeclared
            .iter()
            .any(|u| u["route"] == "/api/users/{userId}" && u["code"] == 500),
        "{body}"
    );
    assert!(
        statuscope.total(
            "statuscope_contract_responses_total",
            &[
                ("route", "/api/users/{userId}"),
                ("method", "GET"),
                ("response", "200")
            ]
        ) == 7.0
    );
    fired
}

fn expected() -> Vec<Option<String>> {
    cases()
        .iter()
        .map(|c| c.expected.map(String::from))
        .collect()
}

crate::support::each_engine! {
    async fn every_contract_rule_fires_on_its_violation_and_not_on_its_look_alike_3_0(engine) {
        assert_eq!(judged("shop-3.0.yaml", engine).await, expected());
    }
}

#[tokio::test]
async fn the_3_1_document_gives_the_same_verdicts() {
    assert_eq!(judged("shop-3.1.json", Engine::Fast).await, expected());
}

#[test]
fn openapi_core_agrees_with_the_status_content_type_and_body_verdicts() {
    let exchanges: Vec<serde_json::Value> = cases()
        .iter()
        .map(|c| {
            let mut headers = serde_json::Map::new();
            for (name, value) in c.headers {
                headers.insert(name.to_string(), (*value).into());
            }
            serde_json::json!({
                "method": c.method,
                "url": format!("http://shop.internal{}", c.path),
                "status": c.status,
                "headers": headers,
                "content_type": c.content_type,
                "body": c.body,
            })
        })
        .collect();
    let input = config_file(
        "openapi-core-exchanges.json",
        &serde_json::to_string(&exchanges).unwrap(),
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/openapi_verdicts.py");
    for name in ["shop-3.0.yaml", "shop-3.1.json"] {
        // openapi-core from PyPI, which `make test-deps` installs in .tools/.
        let output = Command::new("python3")
            .arg(&script)
            .arg(document(name))
            .arg(&input)
            .output()
            .expect("python3 runs");
        assert!(
            output.status.success(),
            "openapi-core failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let verdicts: Vec<String> = serde_json::from_slice(&output.stdout).unwrap();
        for (case, verdict) in cases().iter().zip(&verdicts) {
            if case.openapi_core_differs.is_some() {
                assert_ne!(verdict, "ok", "the difference written down no longer holds");
                continue;
            }
            assert_eq!(
                verdict.as_str(),
                case.expected.unwrap_or("ok"),
                "{name}: {} {} -> {}",
                case.method,
                case.path,
                case.status
            );
        }
    }
}

#[test]
fn bad_documents_stop_start_up_naming_the_file_and_the_pointer() {
    let bad = |name: &str, text: Option<&str>, fragment: &str| {
        let path = match text {
            Some(text) => config_file(name, text),
            None => std::env::temp_dir()
                .join("statuscope-no-such-dir")
                .join(name),
        };
        let config = config_file(
            &format!("uses-{name}.yaml"),
            &format!(
                "upstream: 127.0.0.1:9\ncontract:\n  openapi: {}\n",
                path.display()
            ),
        );
        let output = Command::new(env!("CARGO_BIN_EXE_statuscope"))
            .args(["run", "--config", config.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("`contract.openapi`")
                && stderr.contains(name)
                && stderr.contains(fragment),
            "{name}: {stderr}"
        );
    };
    bad("missing.yaml", None, "cannot read");
    bad(
        "invalid.yaml",
        Some("openapi: [3.1\n"),
        "neither JSON nor YAML",
    );
    bad(
        "no-version.yaml",
        Some("info: {title: t}\npaths: {}\n"),
        "`/openapi`",
    );
    bad(
        "dangling.yaml",
        Some("openapi: 3.0.3\npaths:\n  /a:\n    get:\n      responses:\n        200: {$ref: '#/components/responses/Gone'}\n"),
        "`/paths/~1a/get/responses/200/$ref`",
    );
}

#[tokio::test]
async fn a_reload_with_a_broken_document_keeps_the_running_one() {
    let upstream = Upstream::start();
    let path = |name: &str| document(name).display().to_string();
    let config = config_file(
        "contract-reload.yaml",
        &format!("contract:\n  openapi: {}\n", path("shop-3.0.yaml")),
    );
    let statuscope = Statuscope::launch(Launch {
        upstream: Some(upstream.addr),
        config: Some(&config),
        ..Launch::default()
    });
    let undeclared = case("GET", "/api/users/7", 500, "application/json", "{}", None);
    let broken = config_file("broken-contract.yaml", "openapi: 3.0.3\npaths: [oops]\n");
    std::fs::write(
        &config,
        format!("contract:\n  openapi: {}\n", broken.display()),
    )
    .unwrap();
    let failures = statuscope.total("statuscope_config_reloads_total", &[("result", "failure")]);
    statuscope.signal(libc::SIGHUP);
    crate::support::wait_until("the broken document to be rejected", || {
        statuscope.total("statuscope_config_reloads_total", &[("result", "failure")]) > failures
    });
    assert!(
        statuscope.stderr().contains("`contract.openapi`")
            && statuscope
                .stderr()
                .contains("broken-contract.yaml at `/paths`"),
        "{}",
        statuscope.stderr()
    );
    // The old document still judges, and its coverage goes on counting.
    exchange(&statuscope, &undeclared).await;
    assert_eq!(
        statuscope.total(
            "statuscope_findings_total",
            &[("rule", "undeclared-status")]
        ),
        1.0
    );
    let (_, body) = raw_get(statuscope.admin, "/contract").unwrap();
    assert!(body.contains("shop-3.0.yaml"), "{body}");
}

#[test]
fn lint_judges_recordings_against_the_contract_and_reports_its_coverage() {
    let config = config_file(
        "contract-lint.yaml",
        &format!(
            "contract:\n  openapi: {}\n",
            document("shop-3.0.yaml").display()
        ),
    );
    let har = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lint/shop.har");
    let lint = |format: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_statuscope"))
            .args([
                "lint",
                "--config",
                config.to_str().unwrap(),
                "--format",
                format,
            ])
            .arg(&har)
            .output()
            .unwrap();
        // body-schema-mismatch on /api/users/me is an error: exit 1.
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let report: serde_json::Value = serde_json::from_str(&lint("json")).unwrap();
    let rules: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    for rule in [
        "undeclared-status",
        "missing-declared-header",
        "body-schema-mismatch",
    ] {
        assert!(rules.contains(&rule), "{rule}: {report}");
    }
    let coverage = &report["coverage"];
    assert_eq!(coverage["declared"], 6, "{coverage}");
    assert_eq!(coverage["exercised"], 3, "{coverage}");
    let table = lint("table");
    assert!(
        table.contains("contract coverage: 3 of 6 declared responses exercised")
            && table.contains("not exercised: GET /api/users/{userId} 404"),
        "{table}"
    );
    // JUnit: a coverage suite a real JUnit reader (PyPI's junitparser) sees, one case per
    // declared response, the unexercised ones skipped.
    let junit = config_file("contract-lint.xml", &lint("junit"));
    let check = "import junitparser, sys\n\
        xml = junitparser.JUnitXml.fromfile(sys.argv[1])\n\
        suite = [s for s in xml if s.name == 'statuscope contract coverage'][0]\n\
        cases = list(suite)\n\
        skipped = [c for c in cases if any(isinstance(r, junitparser.Skipped) for r in c.result)]\n\
        print(len(cases), len(skipped))\n";
    let output = Command::new("python3")
        .args(["-c", check])
        .arg(&junit)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "6 3",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
