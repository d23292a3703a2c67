//! One `AdmissionReview` (`admission.k8s.io/v1`) answered: a Pod CREATE gets the sidecar by
//! [`crate::inject::pod`], the code `statuscope inject` runs, as a base64 JSON Patch; anything
//! else is allowed unchanged with the reason in `warnings`. The webhook never refuses a pod:
//! the worst it does is leave one alone.

use base64::Engine as _;
use serde_json::{json, Value};

use super::patch;
use crate::inject::pod::{self, Skip};
use crate::inject::Options;

/// How a request was answered: the label of `statuscope_injector_admissions_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The sidecar was added.
    Injected,
    /// A pod allowed unchanged, and why.
    Skipped(Skip),
    /// Not a Pod CREATE (the webhook configuration should not send one).
    Ignored,
    /// A Pod CREATE whose object is not a pod this code understands.
    NotUnderstood,
    /// Not an AdmissionReview: answered 400.
    BadRequest,
}

impl Decision {
    /// Every result, for exporting each at 0 from start-up.
    pub fn all() -> impl Iterator<Item = Decision> {
        [Decision::Injected]
            .into_iter()
            .chain(Skip::ALL.map(Decision::Skipped))
            .chain([
                Decision::Ignored,
                Decision::NotUnderstood,
                Decision::BadRequest,
            ])
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Injected => "injected",
            Decision::Skipped(skip) => skip.as_str(),
            Decision::Ignored => "ignored",
            Decision::NotUnderstood => "not_understood",
            Decision::BadRequest => "bad_request",
        }
    }
}

/// An answered review: the response body, and what to tally and log.
#[derive(Debug)]
pub struct Answer {
    /// The response `AdmissionReview`, as JSON.
    pub body: Vec<u8>,
    /// How the request was answered.
    pub result: Decision,
    /// The request's uid, namespace and pod name, for the log line.
    pub subject: String,
    /// Why, for the log line and the response's `warnings`.
    pub reason: Option<String>,
}

/// The API server shows warnings to the client and may cut those over 256 characters.
const WARNING_MAX: usize = 256;

/// Answers the review in `body`; `Err` (with the reason) when it is not one, for a 400.
pub fn answer(body: &[u8], options: &Options) -> Result<Answer, String> {
    let review: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if review["apiVersion"] != "admission.k8s.io/v1" || review["kind"] != "AdmissionReview" {
        return Err("not an admission.k8s.io/v1 AdmissionReview".to_string());
    }
    let request = &review["request"];
    let Some(uid) = request["uid"].as_str() else {
        return Err("an AdmissionReview without request.uid".to_string());
    };
    let object = &request["object"];
    let name = object["metadata"]["name"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            object["metadata"]["generateName"]
                .as_str()
                .map(|prefix| format!("{prefix}*"))
        })
        .unwrap_or_else(|| "?".to_string());
    let namespace = request["namespace"].as_str().unwrap_or("?");
    let subject = format!("{uid} {namespace}/{name}");
    let is_pod_create = request["kind"]["kind"] == "Pod"
        && request["kind"]["group"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
        && request["operation"] == "CREATE";
    let (result, reason, patch) = if !is_pod_create {
        (
            Decision::Ignored,
            Some("only Pod CREATE requests are injected".to_string()),
            None,
        )
    } else {
        mutate(object, options)
    };
    let mut response = json!({"uid": uid, "allowed": true});
    if let Some(patch) = patch {
        response["patchType"] = "JSONPatch".into();
        response["patch"] = base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_vec(&patch).expect("JSON values serialise"))
            .into();
    }
    let remark = match (result, &reason) {
        (_, None) => None,
        (Decision::Injected, Some(remark)) => Some(format!("statuscope: {remark}")),
        (_, Some(reason)) => Some(format!("statuscope: not injected: {reason}")),
    };
    if let Some(remark) = remark {
        response["warnings"] = json!([warning(&remark)]);
    }
    let body = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    });
    Ok(Answer {
        body: serde_json::to_vec(&body).expect("JSON values serialise"),
        result,
        subject,
        reason,
    })
}

/// Injects the pod `object`; the result, its reason, and the patch when it changed.
fn mutate(object: &Value, options: &Options) -> (Decision, Option<String>, Option<Vec<Value>>) {
    let not_understood = |why: String| (Decision::NotUnderstood, Some(why), None);
    if !object.is_object() || !object["spec"].is_object() {
        return not_understood("the request's object is not a pod with a spec".to_string());
    }
    let mut template: serde_yaml::Value = match serde_yaml::to_value(object) {
        Ok(template) => template,
        Err(e) => return not_understood(format!("the pod cannot be read: {e}")),
    };
    match pod::inject(&mut template, options) {
        Ok(injected) => match serde_json::to_value(&template) {
            Ok(after) => (
                Decision::Injected,
                Some(injected.warning),
                Some(patch::diff(object, &after)),
            ),
            Err(e) => not_understood(format!("the injected pod cannot be written: {e}")),
        },
        Err(skipped) => (Decision::Skipped(skipped.skip), Some(skipped.message), None),
    }
}

/// A warning the API server passes on whole: at most [`WARNING_MAX`] characters, one line.
fn warning(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match line.char_indices().nth(WARNING_MAX) {
        Some((at, _)) => line[..at].to_string(),
        None => line,
    }
}
