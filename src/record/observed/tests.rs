use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::rules::testing::case;
use crate::rules::RequestFacts;

const LIMITS: ObservedLimits = ObservedLimits {
    max_depth: 8,
    max_properties: 64,
    max_responses: 16,
    body_every: 16,
};

/// Learns `bodies` (JSON texts) as 200 `application/json` answers to `GET route`.
fn learnt(route: &str, bodies: &[&str], limits: &ObservedLimits) -> Learnt {
    let mut learnt = Learnt::default();
    let route: Arc<str> = route.into();
    for body in bodies {
        learn(
            &mut learnt,
            &route,
            200,
            body,
            &[("content-type", "application/json")],
            limits,
        );
    }
    learnt
}

fn learn(
    learnt: &mut Learnt,
    route: &Arc<str>,
    status: u16,
    body: &str,
    headers: &[(&'static str, &str)],
    limits: &ObservedLimits,
) {
    learn_request(
        learnt,
        route,
        RequestFacts::default(),
        (status, body, headers),
        limits,
    );
}

fn learn_request(
    learnt: &mut Learnt,
    route: &Arc<str>,
    request: RequestFacts<'static>,
    (status, body, headers): (u16, &str, &[(&'static str, &str)]),
    limits: &ObservedLimits,
) {
    let mut case = case(status).request(request);
    for (name, value) in headers {
        case = match *name {
            "content-type" => case.body(value, body),
            _ => case.header(name, value),
        };
    }
    case.with_exchange(route, |exchange| {
        learnt.learn(exchange, 1_765_000_000, limits)
    });
}

/// The schema learnt for `GET /things` 200 `application/json`.
fn schema(bodies: &[&str]) -> Value {
    let document = learnt("/things", bodies, &LIMITS).to_openapi("t");
    document["paths"]["/things"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        .clone()
}

#[test]
fn a_property_in_every_body_is_required_and_null_makes_it_nullable() {
    let schema = schema(&[
        r#"{"id": 1, "note": null}"#,
        r#"{"id": 2, "note": "x", "extra": true}"#,
    ]);
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["required"], json!(["id", "note"]));
    assert_eq!(schema["properties"]["id"]["type"], "integer");
    assert_eq!(
        schema["properties"]["note"]["type"],
        json!(["string", "null"])
    );
    assert_eq!(schema["properties"]["extra"]["type"], "boolean");
}

#[test]
fn integers_widen_to_number_once_a_fraction_is_seen() {
    assert_eq!(schema(&["1", "2"])["type"], "integer");
    assert_eq!(schema(&["1", "2.5"])["type"], "number");
    assert_eq!(schema(&["1.0"])["type"], "integer");
}

#[test]
fn arrays_of_mixed_objects_keep_what_every_element_had() {
    let schema = schema(&[r#"[{"a": 1, "b": "x"}, {"a": 2}]"#, "[]"]);
    assert_eq!(schema["type"], "array");
    assert_eq!(schema["items"]["required"], json!(["a"]));
    assert_eq!(schema["items"]["properties"]["b"]["type"], "string");
    assert_eq!(self::schema(&["[]"])["items"], json!({}));
}

#[test]
fn a_format_is_named_only_when_every_value_matched_it() {
    let uuid = r#""6f1c2b8e-3a5d-4c9e-8f7a-1b2c3d4e5f60""#;
    assert_eq!(schema(&[uuid])["format"], "uuid");
    assert_eq!(
        schema(&[
            r#""2026-12-05T21:00:00Z""#,
            r#""2026-12-05T21:00:00.5+01:00""#
        ])["format"],
        "date-time"
    );
    assert_eq!(schema(&[r#""2026-12-05""#])["format"], "date");
    assert_eq!(schema(&[r#""a@example.com""#])["format"], "email");
    assert_eq!(schema(&[r#""https://example.com/x""#])["format"], "uri");
    assert_eq!(
        schema(&[r#""2026-12-05""#, r#""tomorrow""#]).get("format"),
        None
    );
    assert_eq!(schema(&[r#""2026-12-05""#, "null"])["format"], "date");
}

#[test]
fn no_value_is_kept() {
    let document = learnt(
        "/things",
        &[r#"{"email": "alice@example.com", "n": 4817}"#],
        &LIMITS,
    );
    let text = serde_json::to_string(&document.to_openapi("t")).unwrap();
    assert!(!text.contains("alice"), "{text}");
    assert!(!text.contains("4817"), "{text}");
}

#[test]
fn depth_and_properties_stop_at_their_limits_and_say_so() {
    let limits = ObservedLimits {
        max_depth: 2,
        max_properties: 3,
        ..LIMITS
    };
    let document = learnt(
        "/deep",
        &[r#"{"a": {"b": {"c": {"d": 1}}}, "p": 1, "q": 2, "r": 3}"#],
        &limits,
    );
    let schema = &document.to_openapi("t")["paths"]["/deep"]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"];
    assert_eq!(schema["x-statuscope-limit"], "properties");
    assert_eq!(schema["properties"].as_object().unwrap().len(), 3);
    assert_eq!(
        schema["properties"]["a"]["properties"]["b"]["x-statuscope-limit"],
        "depth"
    );
}

#[test]
fn two_hundred_thousand_distinct_property_names_stay_bounded() {
    let route: Arc<str> = "/hostile".into();
    let mut learnt = Learnt::default();
    let json = [("content-type", "application/json")];
    for n in 0..2_000 {
        let body: String = (0..100)
            .map(|i| format!("\"k{n}_{i}\": {{\"v{n}_{i}\": [{{\"w{i}\": 1}}]}}"))
            .collect::<Vec<_>>()
            .join(",");
        learn(
            &mut learnt,
            &route,
            200,
            &format!("{{{body}}}"),
            &json,
            &LIMITS,
        );
    }
    let schema = &learnt.to_openapi("t")["paths"]["/hostile"]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"];
    let names = serde_json::to_string(schema)
        .unwrap()
        .matches("\"type\"")
        .count();
    assert!(
        names <= LIMITS.max_properties * SCHEMA_PROPERTIES + 1,
        "{names} schemas kept"
    );
    assert_eq!(schema["x-statuscope-limit"], "properties");
}

#[test]
fn responses_per_operation_and_headers_are_bounded() {
    let route: Arc<str> = "/codes".into();
    let mut learnt = Learnt::default();
    for status in 200..300 {
        learn(&mut learnt, &route, status, "{}", &[], &LIMITS);
    }
    let operation = &learnt.to_openapi("t")["paths"]["/codes"]["get"];
    assert_eq!(
        operation["responses"].as_object().unwrap().len(),
        LIMITS.max_responses
    );
    assert_eq!(operation["x-statuscope-limit"], "responses");
}

#[test]
fn a_header_in_every_response_of_a_code_is_required() {
    let route: Arc<str> = "/h".into();
    let mut learnt = Learnt::default();
    let both = [
        ("x-request-id", "1"),
        ("etag", "\"a\""),
        ("content-type", "application/json"),
    ];
    learn(&mut learnt, &route, 200, "{}", &both, &LIMITS);
    learn(&mut learnt, &route, 200, "{}", &both[..1], &LIMITS);
    let headers = &learnt.to_openapi("t")["paths"]["/h"]["get"]["responses"]["200"]["headers"];
    assert_eq!(headers["x-request-id"]["required"], true);
    assert_eq!(headers["etag"]["required"], false);
    assert!(headers.get("content-type").is_none(), "{headers}");
}

#[test]
fn request_media_types_and_query_names_are_learnt_never_their_values() {
    let route: Arc<str> = "/search".into();
    let mut learnt = Learnt::default();
    let answer = (200, "{}", &[][..]);
    for (target, media) in [
        (
            &b"/search?q=alice&limit=5"[..],
            Some(&b"application/json"[..]),
        ),
        (b"/search?q=bob&q=carol#top", None),
    ] {
        let request = RequestFacts {
            target,
            content_type: media,
            ..RequestFacts::default()
        };
        learn_request(&mut learnt, &route, request, answer, &LIMITS);
    }
    let operation = &learnt.to_openapi("t")["paths"]["/search"]["get"];
    let query: Vec<(&str, bool)> = operation["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["required"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(query, [("limit", false), ("q", true)]);
    assert_eq!(operation["requestBody"]["required"], false);
    // The fast engine leaves the field in the raw head.
    let raw = RequestFacts {
        head: b"POST /search HTTP/1.1\r\nHost: a\r\nContent-type: text/csv; charset=utf-8\r\n\r\n",
        ..RequestFacts::default()
    };
    assert_eq!(
        raw.content_type_value(),
        Some(&b"text/csv; charset=utf-8"[..])
    );
    assert_eq!(RequestFacts::default().content_type_value(), None);
    assert_eq!(
        operation["requestBody"]["content"]["application/json"]["x-statuscope-seen"],
        1
    );
    let text = operation.to_string();
    assert!(!text.contains("alice") && !text.contains("carol"), "{text}");
}

#[test]
fn repeated_parameter_names_are_numbered() {
    let document = learnt("/users/{id}/orders/{id}", &["{}"], &LIMITS).to_openapi("t");
    let item = &document["paths"]["/users/{id}/orders/{id2}"]["get"];
    let names: Vec<&str> = item["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["id", "id2"]);
}

#[test]
fn statuscope_s_own_routes_are_not_paths() {
    let document = learnt("__other__", &["{}"], &LIMITS).to_openapi("t");
    assert_eq!(document["paths"], json!({}));
}

/// A body of a few shapes, from a number.
fn body(n: u8) -> String {
    match n % 5 {
        0 => r#"{"id": 1, "tags": ["a"]}"#.into(),
        1 => r#"{"id": 2.5, "name": null}"#.into(),
        2 => r#"[{"x": "2026-12-05"}]"#.into(),
        3 => r#"{"id": "6f1c2b8e-3a5d-4c9e-8f7a-1b2c3d4e5f60", "nested": {"deep": true}}"#.into(),
        _ => "null".into(),
    }
}

fn learnt_from(bodies: &[(u8, u16)]) -> Learnt {
    let mut learnt = Learnt::default();
    for (n, status) in bodies {
        let route: Arc<str> = format!("/r{}", n % 3).into();
        let json = [("content-type", "application/json"), ("x-n", "1")];
        learn(
            &mut learnt,
            &route,
            200 + status % 4,
            &body(*n),
            &json,
            &LIMITS,
        );
    }
    learnt
}

fn without_times(mut document: Value) -> Value {
    for item in document["paths"].as_object_mut().unwrap().values_mut() {
        for operation in item.as_object_mut().unwrap().values_mut() {
            for response in operation["responses"].as_object_mut().unwrap().values_mut() {
                response["description"] = Value::Null;
                response["x-statuscope-last-seen"] = Value::Null;
            }
        }
    }
    document
}

proptest! {
    #[test]
    fn merging_is_associative_and_commutative(
        a in proptest::collection::vec((any::<u8>(), any::<u16>()), 0..12),
        b in proptest::collection::vec((any::<u8>(), any::<u16>()), 0..12),
        c in proptest::collection::vec((any::<u8>(), any::<u16>()), 0..12),
    ) {
        let (a, b, c) = (learnt_from(&a), learnt_from(&b), learnt_from(&c));
        let mut ab_c = a.clone();
        ab_c.merge(&b, &LIMITS);
        ab_c.merge(&c, &LIMITS);
        let mut bc = b.clone();
        bc.merge(&c, &LIMITS);
        let mut a_bc = a.clone();
        a_bc.merge(&bc, &LIMITS);
        let mut cba = c.clone();
        cba.merge(&b, &LIMITS);
        cba.merge(&a, &LIMITS);
        let doc = |l: &Learnt| without_times(l.to_openapi("t"));
        prop_assert_eq!(doc(&ab_c), doc(&a_bc));
        prop_assert_eq!(doc(&ab_c), doc(&cba));
    }

    #[test]
    fn learning_in_two_shards_and_merging_is_learning_in_one(
        a in proptest::collection::vec((any::<u8>(), any::<u16>()), 0..12),
        b in proptest::collection::vec((any::<u8>(), any::<u16>()), 0..12),
    ) {
        let mut merged = learnt_from(&a);
        merged.merge(&learnt_from(&b), &LIMITS);
        let one = learnt_from(&[a, b].concat());
        prop_assert_eq!(without_times(merged.to_openapi("t")), without_times(one.to_openapi("t")));
    }
}

proptest! {
    #[test]
    fn documents_read_back_merge_like_the_learning_they_were_written_from(
        a in proptest::collection::vec((any::<u8>(), any::<u16>()), 1..12),
        b in proptest::collection::vec((any::<u8>(), any::<u16>()), 1..12),
    ) {
        let read = |learnt: &Learnt| Learnt::from_openapi(&learnt.to_openapi("t"), &LIMITS).unwrap();
        let mut merged = read(&learnt_from(&a));
        merged.merge(&read(&learnt_from(&b)), &LIMITS);
        let one = learnt_from(&[a, b].concat());
        prop_assert_eq!(without_times(merged.to_openapi("t")), without_times(one.to_openapi("t")));
    }
}
