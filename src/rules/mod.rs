//! The misuse rules: a catalogue of checks of one completed exchange against HTTP semantics
//! (RFC 9110) and the API conventions of the reference guide.
//!
//! A rule is a pure function of an [`Exchange`]: it returns a [`Verdict`] when the exchange
//! breaks the rule. Each rule lives in a file of its own with its id, title, severity,
//! rationale and tests; [`CATALOGUE`] lists them all. One exchange yields at most one finding
//! per rule, so `statuscope_findings_total / statuscope_responses_total` is the share of
//! responses that break a rule. The contract rules (`undeclared-*`, `missing-declared-header`,
//! `body-schema-mismatch`) judge against the service's OpenAPI document and stay silent
//! without one.

pub(crate) mod describe;
pub mod parse;
pub mod rule_set;

mod body_on_no_content;
mod body_schema_mismatch;
mod cacheable_server_error;
mod created_for_safe_method;
mod created_without_location;
mod declared_header_mismatch;
mod error_body_on_success;
mod error_content_mismatch;
mod error_leaks_internals;
mod forbidden_without_credentials;
mod grpc_invalid_status;
mod grpc_message_leaks_internals;
mod grpc_non_200;
mod grpc_status_missing;
mod invalid_retry_after;
mod method_changing_redirect;
mod method_not_allowed_without_allow;
mod missing_declared_header;
mod missing_retry_after;
mod nonstandard_status;
mod redirect_without_location;
mod unauthorized_without_challenge;
mod undeclared_content_type;
mod undeclared_operation;
mod undeclared_route;
mod undeclared_status;
mod unexpected_continue;
mod unstructured_error_body;

use std::fmt;
use std::sync::Arc;

use http::Method;
use serde::{Deserialize, Serialize};

use crate::contract::Declared;
use crate::sample::Sample;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; often a matter of style.
    Info,
    /// Breaks a convention clients rely on.
    Warning,
    /// Breaks HTTP semantics or misleads clients and monitoring.
    Error,
}

impl Severity {
    /// All severities, least serious first.
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Error];

    /// The `severity` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// Parses a label value.
    pub fn parse(text: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Facts about the request that some rule, or the observed contract, needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestFacts<'a> {
    /// The request carried `Authorization`.
    pub has_authorization: bool,
    /// The request carried `Cookie`.
    pub has_cookie: bool,
    /// The request carried `Expect: 100-continue`.
    pub expects_continue: bool,
    /// The request's `Accept` value, if any.
    pub accept: Option<&'a str>,
    /// The request's `Content-Type` value as sent, if any (read only when learnt: the observed
    /// contract's request media types); the fast engine leaves it to [`RequestFacts::head`].
    pub content_type: Option<&'a [u8]>,
    /// The request head as received, where the fast engine leaves the fields no rule reads
    /// (see [`RequestFacts::content_type_value`]); empty from the other engines.
    pub head: &'a [u8],
    /// The request target as sent, its query included (read only when learnt: the observed
    /// contract's query parameter names, [`query_of`]).
    pub target: &'a [u8],
}

impl<'a> RequestFacts<'a> {
    /// The facts read from the request's `target` (path and query) and header fields;
    /// `value` looks one up by its lower-case name. (The fast engine gathers the same facts
    /// while it checks the head.)
    pub fn from_fields(target: &'a [u8], value: impl Fn(&'static str) -> Option<&'a [u8]>) -> Self {
        RequestFacts {
            has_authorization: value("authorization").is_some(),
            has_cookie: value("cookie").is_some(),
            expects_continue: value("expect")
                .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"100-continue")),
            accept: value("accept").and_then(visible_ascii),
            content_type: value("content-type"),
            head: &[],
            target,
        }
    }

    /// The `Content-Type` value: as read, or found in the raw head (a cold path: only learning
    /// asks).
    pub fn content_type_value(&self) -> Option<&'a [u8]> {
        self.content_type.or_else(|| {
            self.head.split(|&b| b == b'\n').skip(1).find_map(|line| {
                let (name, value) = line.split_at(memchr::memchr(b':', line)?);
                name.eq_ignore_ascii_case(b"content-type")
                    .then(|| value[1..].trim_ascii())
            })
        })
    }
}

/// The query of a request target, after its `?` (and before any `#`).
pub fn query_of(target: &[u8]) -> Option<&[u8]> {
    let at = memchr::memchr(b'?', target)?;
    let query = &target[at + 1..];
    Some(memchr::memchr(b'#', query).map_or(query, |end| &query[..end]))
}

/// One completed exchange, as the rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The route label.
    pub route: &'a Arc<str>,
    /// The request path, without its query.
    pub path: &'a str,
    /// Request facts.
    pub request: RequestFacts<'a>,
    /// The final status code the upstream sent.
    pub status: u16,
    /// The upstream's response headers.
    pub headers: Headers<'a>,
    /// The response's media type (`Content-Type` without parameters), looked up once by
    /// whoever builds the exchange ([`Headers::media_type`]): most rules ask for it.
    pub content_type: Option<&'a str>,
    /// The upstream sent `100 Continue` before the final response.
    pub sent_continue: bool,
    /// The sampled body, when sampling is on and the body is of a kind rules read.
    pub body: Option<&'a Sample>,
    /// The fields that make a JSON error body structured (`error_fields` plus the route's own).
    pub error_fields: &'a [String],
    /// What the service's contract declares for this response; `None` without a contract.
    /// Filled in by the engine, which looks it up once for every rule.
    pub contract: Option<Declared<'a>>,
    /// For a gRPC call (an HTTP/2 request with `content-type: application/grpc…`), the
    /// response's trailers — empty when it had none, as a trailers-only response; `None` for
    /// any other exchange, and wherever trailers are not recorded (HAR files).
    pub grpc_trailers: Option<Headers<'a>>,
}

impl<'a> Exchange<'a> {
    /// The first response header field named `name` (lower case), as text, if present and
    /// made of visible ASCII.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.get_str(name)
    }

    /// The response's `Content-Type` essence as sent (`application/json`), parameters dropped.
    pub fn content_type(&self) -> Option<&'a str> {
        self.content_type
    }

    /// For a gRPC call, the field `name` (lower case) where gRPC puts its status: see
    /// [`grpc_field`]. `None` for other exchanges.
    pub fn grpc_field(&self, name: &str) -> Option<&'a [u8]> {
        grpc_field(self.grpc_trailers?, self.headers, name)
    }

    /// True when the `Content-Type` essence is one of `types` (compared without case).
    pub fn content_type_is(&self, types: &[&str]) -> bool {
        self.content_type()
            .is_some_and(|essence| types.iter().any(|t| essence.eq_ignore_ascii_case(t)))
    }
}

/// One header field as it was received: the name in whatever case it was sent, the value's
/// raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// The field name.
    pub name: &'a [u8],
    /// The field value, without surrounding whitespace.
    pub value: &'a [u8],
}

/// Where one field's name and value lie in the head they were read from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldSpan {
    /// The name's first byte.
    pub name_start: u32,
    /// The name's length.
    pub name_len: u32,
    /// The value's first byte.
    pub value_start: u32,
    /// The value's length.
    pub value_len: u32,
}

impl FieldSpan {
    /// The field this span locates in `head`.
    pub fn of<'a>(&self, head: &'a [u8]) -> Field<'a> {
        let at = |start: u32, len: u32| &head[start as usize..(start + len) as usize];
        Field {
            name: at(self.name_start, self.name_len),
            value: at(self.value_start, self.value_len),
        }
    }
}

/// A response's header fields in the order received: a view over whatever holds them (pingora's
/// header map or a HAR entry as a list, the fast engine's head buffer and the spans it parsed),
/// so judging copies nothing. Lookups compare names without case; a response has a dozen
/// fields, so a scan beats a map.
#[derive(Debug, Clone, Copy)]
pub enum Headers<'a> {
    /// Fields already split out.
    List(&'a [Field<'a>]),
    /// Fields located in the head they were read from.
    InHead {
        /// The head's bytes.
        head: &'a [u8],
        /// Where each field is.
        spans: &'a [FieldSpan],
    },
}

impl Default for Headers<'_> {
    fn default() -> Self {
        Headers::List(&[])
    }
}

impl<'a> Headers<'a> {
    /// Every field, in order.
    pub fn iter(self) -> impl Iterator<Item = Field<'a>> {
        let (list, head, spans) = match self {
            Headers::List(list) => (list, &[][..], &[][..]),
            Headers::InHead { head, spans } => (&[][..], head, spans),
        };
        list.iter()
            .copied()
            .chain(spans.iter().map(move |span| span.of(head)))
    }

    /// Every value of the fields named `name` (lower case), in order.
    pub fn all(self, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
        self.iter()
            .filter(move |field| field.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|field| field.value)
    }

    /// The first value of the field named `name` (lower case).
    pub fn get(self, name: &str) -> Option<&'a [u8]> {
        let name = name.as_bytes();
        // Lengths first: most fields differ in length from the one sought.
        match self {
            Headers::List(list) => list
                .iter()
                .find(|field| {
                    field.name.len() == name.len() && field.name.eq_ignore_ascii_case(name)
                })
                .map(|field| field.value),
            Headers::InHead { head, spans } => spans
                .iter()
                .find(|span| {
                    span.name_len as usize == name.len()
                        && span.of(head).name.eq_ignore_ascii_case(name)
                })
                .map(|span| span.of(head).value),
        }
    }

    /// The first value of `name` as text, when it is visible ASCII (as `HeaderValue::to_str`).
    pub fn get_str(self, name: &str) -> Option<&'a str> {
        self.get(name).and_then(visible_ascii)
    }

    /// Whether a field named `name` (lower case) is present.
    pub fn contains(self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The media type of the `Content-Type` field (`application/json`), parameters dropped.
    pub fn media_type(self) -> Option<&'a str> {
        self.get_str("content-type").map(crate::sample::media_type)
    }
}

/// A gRPC call's field `name` (lower case) where gRPC puts a call's status: its `trailers`, or
/// the `head` of a trailers-only response.
pub fn grpc_field<'a>(trailers: Headers<'a>, head: Headers<'a>, name: &str) -> Option<&'a [u8]> {
    trailers.get(name).or_else(|| head.get(name))
}

/// `value` as text when every byte is visible ASCII, a space or a tab.
pub fn visible_ascii(value: &[u8]) -> Option<&str> {
    value
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
}

/// What a rule found: its severity (some rules have two) and a short piece of evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The severity before any configured override.
    pub severity: Severity,
    /// A short explanation quoting what was seen.
    pub evidence: String,
}

impl Verdict {
    /// A verdict at `severity` with `evidence`.
    pub fn new(severity: Severity, evidence: impl Into<String>) -> Verdict {
        Verdict {
            severity,
            evidence: evidence.into(),
        }
    }
}

/// What a rule judges, which decides when it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// HTTP semantics: every exchange but a gRPC call.
    Http,
    /// gRPC calls, by their trailers — the only rules a gRPC call is judged by, as the HTTP
    /// rules' conventions (JSON error bodies, `Location`, `Retry-After`) are not gRPC's.
    Grpc,
    /// The service's OpenAPI document (`contract.openapi`); silent without one.
    Contract,
}

/// A misuse rule: what the catalogue, the docs and the engine know of it.
#[derive(Debug)]
pub struct Rule {
    /// The stable id (a contract with dashboards, alerts and docs).
    pub id: &'static str,
    /// What it judges.
    pub kind: RuleKind,
    /// A one-line title.
    pub title: &'static str,
    /// The default severity (the most serious one for rules with two).
    pub severity: Severity,
    /// When it fires, in words.
    pub fires_when: &'static str,
    /// Why it matters, with the RFC 9110 or reference-guide section.
    pub rationale: &'static str,
    /// The check: a verdict when the exchange breaks the rule, `None` when it does not.
    pub evaluate: fn(&Exchange<'_>) -> Option<Verdict>,
}

/// Every rule, in the order the docs list them.
pub static CATALOGUE: [&Rule; 28] = [
    &error_body_on_success::RULE,
    &missing_retry_after::RULE,
    &invalid_retry_after::RULE,
    &created_without_location::RULE,
    &created_for_safe_method::RULE,
    &body_on_no_content::RULE,
    &redirect_without_location::RULE,
    &method_changing_redirect::RULE,
    &unauthorized_without_challenge::RULE,
    &forbidden_without_credentials::RULE,
    &method_not_allowed_without_allow::RULE,
    &unstructured_error_body::RULE,
    &error_leaks_internals::RULE,
    &unexpected_continue::RULE,
    &nonstandard_status::RULE,
    &error_content_mismatch::RULE,
    &cacheable_server_error::RULE,
    &grpc_status_missing::RULE,
    &grpc_non_200::RULE,
    &grpc_invalid_status::RULE,
    &grpc_message_leaks_internals::RULE,
    &undeclared_status::RULE,
    &undeclared_operation::RULE,
    &undeclared_route::RULE,
    &undeclared_content_type::RULE,
    &missing_declared_header::RULE,
    &declared_header_mismatch::RULE,
    &body_schema_mismatch::RULE,
];

/// The rules of one kind, in catalogue order.
pub fn of_kind(kind: RuleKind) -> impl Iterator<Item = &'static Rule> {
    CATALOGUE
        .iter()
        .copied()
        .filter(move |rule| rule.kind == kind)
}

/// The rule with this id (`_` accepted for `-`, for environment variables).
pub fn find(id: &str) -> Option<(usize, &'static Rule)> {
    CATALOGUE
        .iter()
        .enumerate()
        .find(|(_, rule)| {
            rule.id.len() == id.len()
                && rule
                    .id
                    .bytes()
                    .zip(id.bytes())
                    .all(|(a, b)| a == b || (a == b'-' && b == b'_'))
        })
        .map(|(index, rule)| (index, *rule))
}

#[cfg(test)]
pub(crate) mod testing {
    //! A builder of exchanges for the rules' unit tests.

    use super::*;
    use crate::contract::Contract;
    use crate::sample::BodyKind;
    use std::sync::OnceLock;

    /// The contract the contract rules' tests judge against (OpenAPI 3.0, with a servers
    /// prefix, component refs, ranges, `default`, a required header, a nullable field).
    pub const CONTRACT: &str = r##"
openapi: 3.0.3
info: {title: rules, version: "1"}
servers:
  - url: http://shop.internal/api
paths:
  /users/{userId}:
    get:
      responses:
        200:
          description: a user
          headers:
            ETag: {schema: {type: string}}
            X-RateLimit-Remaining: {schema: {type: integer, minimum: 0}}
            X-Flags: {schema: {type: array, items: {type: boolean}}}
            X-Window: {explode: true, schema: {type: object, properties: {from: {type: integer}}}}
          content:
            application/json:
              schema: {$ref: "#/components/schemas/User"}
            application/*:
              schema: {type: object}
        404:
          description: no such user
          content:
            "*/*": {}
        4XX:
          description: a client error
  /orders:
    post:
      responses:
        201:
          description: created
          headers:
            Location:
              required: true
              schema: {type: string}
    get:
      responses:
        default:
          $ref: "#/components/responses/Problem"
components:
  schemas:
    User:
      type: object
      required: [id, name]
      properties:
        id: {type: integer}
        name: {type: string}
        nickname: {type: string, nullable: true}
  responses:
    Problem:
      description: a problem
      content:
        application/problem+json:
          schema: {type: object}
"##;

    /// [`CONTRACT`], loaded once.
    pub fn contract() -> Arc<Contract> {
        static LOADED: OnceLock<Arc<Contract>> = OnceLock::new();
        LOADED
            .get_or_init(|| {
                let dir =
                    std::env::temp_dir().join(format!("statuscope-rules-{}", std::process::id()));
                std::fs::create_dir_all(&dir).unwrap();
                let path = dir.join("contract.yaml");
                std::fs::write(&path, CONTRACT).unwrap();
                Arc::new(Contract::load(&path).unwrap())
            })
            .clone()
    }

    /// Default error fields, as configured out of the box.
    pub fn default_fields() -> Vec<String> {
        ["code", "error", "type", "title", "message"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// An exchange under construction.
    pub struct Case {
        pub method: Method,
        pub status: u16,
        pub headers: Vec<(&'static str, String)>,
        pub request: RequestFacts<'static>,
        pub sent_continue: bool,
        pub body: Option<Sample>,
        pub fields: Vec<String>,
        pub contract: Option<(Arc<Contract>, Arc<str>)>,
        /// Trailers of a gRPC call; `None` when the case is not one.
        pub trailers: Option<Vec<(&'static str, String)>>,
    }

    /// A GET answered with `status`, no headers, no body.
    pub fn case(status: u16) -> Case {
        Case {
            method: Method::GET,
            status,
            headers: Vec::new(),
            request: RequestFacts::default(),
            sent_continue: false,
            body: None,
            fields: default_fields(),
            contract: None,
            trailers: None,
        }
    }

    /// A gRPC call answered with HTTP `status` and `content-type: application/grpc`, and no
    /// trailers yet.
    pub fn grpc_call(status: u16) -> Case {
        Case {
            method: Method::POST,
            trailers: Some(Vec::new()),
            ..case(status)
        }
        .header("content-type", "application/grpc")
    }

    impl Case {
        pub fn method(mut self, method: &str) -> Case {
            self.method = Method::from_bytes(method.as_bytes()).unwrap();
            self
        }

        pub fn header(mut self, name: &'static str, value: &str) -> Case {
            self.headers.push((name, value.to_string()));
            self
        }

        pub fn body(self, content_type: &str, text: &str) -> Case {
            let kind = BodyKind::of(content_type).expect("a sampled content type");
            let mut case = self.header("content-type", content_type);
            case.body = Some(Sample {
                kind,
                bytes: text.as_bytes().to_vec(),
                truncated: false,
            });
            case
        }

        /// Judges this case against `contract`, as a response on `route` (a route label).
        pub fn on(mut self, contract: &Arc<Contract>, route: &str) -> Case {
            self.contract = Some((contract.clone(), Arc::from(route)));
            self
        }

        /// Adds a trailer field (the case must be a gRPC call).
        pub fn trailer(mut self, name: &'static str, value: &str) -> Case {
            self.trailers
                .as_mut()
                .expect("a gRPC call")
                .push((name, value.to_string()));
            self
        }

        pub fn request(mut self, request: RequestFacts<'static>) -> Case {
            self.request = request;
            self
        }

        /// Runs `judge` over this case as an exchange on `route`.
        pub fn with_exchange<R>(&self, route: &str, judge: impl FnOnce(&Exchange<'_>) -> R) -> R {
            let fields: Vec<Field<'_>> = self
                .headers
                .iter()
                .map(|(name, value)| Field {
                    name: name.as_bytes(),
                    value: value.as_bytes(),
                })
                .collect();
            let headers = Headers::List(&fields);
            let trailer_fields: Vec<Field<'_>> = self
                .trailers
                .iter()
                .flatten()
                .map(|(name, value)| Field {
                    name: name.as_bytes(),
                    value: value.as_bytes(),
                })
                .collect();
            let route: Arc<str> = match &self.contract {
                Some((_, route)) => route.clone(),
                None => Arc::from(route),
            };
            judge(&Exchange {
                method: &self.method,
                route: &route,
                path: &route,
                request: self.request,
                status: self.status,
                headers,
                content_type: headers.media_type(),
                sent_continue: self.sent_continue,
                body: self.body.as_ref(),
                error_fields: &self.fields,
                contract: self
                    .contract
                    .as_ref()
                    .map(|(contract, route)| contract.declared(route, &self.method, self.status)),
                grpc_trailers: self
                    .trailers
                    .is_some()
                    .then_some(Headers::List(&trailer_fields)),
            })
        }

        pub fn check(&self, rule: &Rule) -> Option<Verdict> {
            self.with_exchange("/test", |exchange| (rule.evaluate)(exchange))
        }

        pub fn fires(&self, rule: &Rule) -> bool {
            self.check(rule).is_some()
        }
    }
}
