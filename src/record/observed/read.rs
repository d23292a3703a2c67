//! An observed contract read back from the OpenAPI document it was written as, with the
//! counts its `x-statuscope-` extensions carry: how `statuscope contract merge` combines the
//! documents of several replicas with the same merge live learning uses.

use std::sync::Arc;

use serde_json::Value;

use super::shape::SchemaShape;
use super::{Learnt, Media, ObservedLimits, Operation, Response, SCHEMA_PROPERTIES};

fn count(value: &Value, key: &str) -> u64 {
    value[key].as_u64().unwrap_or(0)
}

/// `(name, count)` pairs from an object of `{name: {x-statuscope-seen: n}}`.
fn counted(object: &Value) -> Vec<(Box<str>, u64)> {
    object
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.as_str().into(), count(value, "x-statuscope-seen")))
        .collect()
}

/// The HTTP method labels OpenAPI's lower-case fields stand for.
fn method_label(field: &str) -> Option<&'static str> {
    Some(match field {
        "get" => "GET",
        "put" => "PUT",
        "post" => "POST",
        "delete" => "DELETE",
        "options" => "OPTIONS",
        "head" => "HEAD",
        "patch" => "PATCH",
        "trace" => "TRACE",
        _ => return None,
    })
}

impl Learnt {
    /// What a document statuscope wrote says was learnt; `Err` names what is not such a
    /// document.
    pub fn from_openapi(document: &Value, limits: &ObservedLimits) -> Result<Learnt, String> {
        let paths = document["paths"]
            .as_object()
            .ok_or("no `paths`: not an OpenAPI document statuscope wrote")?;
        let mut learnt = Learnt::default();
        for (route, item) in paths {
            let mut operations = Vec::new();
            for (field, operation) in item.as_object().into_iter().flatten() {
                let Some(method) = method_label(field) else {
                    continue;
                };
                operations.push(Operation::from_openapi(method, operation, limits));
            }
            learnt.routes.insert(Arc::from(route.as_str()), operations);
        }
        Ok(learnt)
    }
}

impl Operation {
    fn from_openapi(method: &'static str, operation: &Value, limits: &ObservedLimits) -> Operation {
        let query = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| Some((p["name"].as_str()?.into(), count(p, "x-statuscope-seen"))))
            .collect();
        let responses = operation["responses"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(code, r)| Some(Response::from_openapi(code.parse().ok()?, r, limits)))
            .collect();
        Operation {
            method,
            seen: count(operation, "x-statuscope-seen"),
            requests_learnt: count(operation, "x-statuscope-requests-learnt"),
            request_media: counted(&operation["requestBody"]["content"]),
            query,
            request_truncated: operation.get("x-statuscope-request-limit").is_some(),
            responses,
            truncated: operation.get("x-statuscope-limit").is_some(),
        }
    }
}

impl Response {
    fn from_openapi(status: u16, response: &Value, limits: &ObservedLimits) -> Response {
        let last_seen = response["x-statuscope-last-seen"]
            .as_str()
            .and_then(|text| humantime::parse_rfc3339(text).ok())
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_secs());
        let media = response["content"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(essence, media)| {
                let bodies = count(media, "x-statuscope-bodies-learnt");
                Media {
                    essence: essence.as_str().into(),
                    count: count(media, "x-statuscope-seen"),
                    bodies,
                    schema: media
                        .get("schema")
                        .map(|s| SchemaShape::from_schema(s, bodies)),
                    budget: limits.max_properties * SCHEMA_PROPERTIES,
                }
            })
            .collect();
        Response {
            status,
            count: count(response, "x-statuscope-seen"),
            last_seen,
            media,
            headers: counted(&response["headers"]),
            headers_learnt: count(response, "x-statuscope-headers-learnt"),
            headers_truncated: response.get("x-statuscope-limit").is_some(),
        }
    }
}
