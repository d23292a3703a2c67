//! The observed contract: what the API really does, learnt from the exchanges statuscope
//! judges, and written as an OpenAPI 3.1 document (`GET /contract/observed`, `statuscope lint
//! --observed`).
//!
//! For every route and method: the status codes with their counts and when each was last
//! seen; per code, the response media types, the response headers and how often each was
//! present, and from whole JSON body samples an inferred schema ([`shape`]). Learning runs on
//! the judging path, after the response has gone, into a shard of this thread's own (one
//! uncontended lock), and the document merges the shards when it is asked for. Everything is
//! bounded: routes by the route table's cap, responses per operation, headers per response,
//! and each schema by depth and properties (`observed.*`); a limit reached is marked in the
//! document.

mod openapi;
pub(crate) mod operations;
mod read;
pub(crate) mod shape;

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::contract::tape;
use crate::fxhash::FxHasher;
use crate::rules::{query_of, visible_ascii, Exchange};
use crate::sample::media_type;
use crate::sample::BodyKind;
pub use openapi::DocumentFormat;
use shape::{PropertyBudget, SchemaShape};

/// How far learning goes (`observed.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObservedLimits {
    /// Nesting learnt in a body (`observed.max_depth`).
    pub max_depth: usize,
    /// Properties learnt per object (`observed.max_properties`); a schema learns at most
    /// [`SCHEMA_PROPERTIES`] times as many in all its objects.
    pub max_properties: usize,
    /// Status code and media type pairs learnt per route and method
    /// (`observed.max_responses`).
    pub max_responses: usize,
    /// After the first [`BODIES_IN_FULL`] bodies of a response, one in this many is learnt
    /// (`observed.body_every`).
    pub body_every: u64,
}

/// A schema's properties in all its objects, as a multiple of `max_properties`.
pub const SCHEMA_PROPERTIES: usize = 8;

/// Bodies of each response (code and media type) learnt before only one in `body_every` is.
pub const BODIES_IN_FULL: u64 = 16;

/// Response header fields learnt per status code.
const MAX_HEADERS: usize = 32;

/// Header fields that say how a message travels, not what the API answers: left out.
const TRANSPORT_HEADERS: [&str; 9] = [
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "date",
    "upgrade",
    "te",
    "trailer",
];

/// Is `name` one of [`TRANSPORT_HEADERS`]? (Lengths first: most names differ in length.)
fn is_transport(name: &[u8]) -> bool {
    TRANSPORT_HEADERS
        .iter()
        .any(|t| t.len() == name.len() && t.as_bytes().eq_ignore_ascii_case(name))
}

/// Counts one more `name` (case as given) in `counts`; `false` when it is new and there is no
/// room for it (`MAX_HEADERS`).
fn count_name(counts: &mut Vec<(Box<str>, u64)>, name: &str) -> bool {
    add_count(counts, name, 1)
}

/// Adds `count` to `name`'s in `counts`; `false` when it is new and there is no room.
fn add_count(counts: &mut Vec<(Box<str>, u64)>, name: &str, count: u64) -> bool {
    match counts.iter().position(|(known, _)| &**known == name) {
        Some(at) => counts[at].1 += count,
        None if counts.len() < MAX_HEADERS => counts.push((name.into(), count)),
        None => return false,
    }
    true
}

/// What was learnt of one status code of one operation.
#[derive(Debug, Clone, Default, PartialEq)]
struct Response {
    status: u16,
    count: u64,
    /// Seconds since the Unix epoch.
    last_seen: u64,
    /// Each media type with what its bodies were; a response without `Content-Type` has none.
    media: Vec<Media>,
    /// Header fields (lower-case names) and the responses that had each.
    headers: Vec<(Box<str>, u64)>,
    /// Responses whose headers were learnt: the first ones, then one in `body_every`, as bodies.
    headers_learnt: u64,
    /// Some header was not learnt (`MAX_HEADERS`).
    headers_truncated: bool,
}

/// Is the `count`th exchange of a response (or a media type) one whose headers (or body) are
/// learnt? The first [`BODIES_IN_FULL`], then one in `body_every`.
fn is_turn(count: u64, limits: &ObservedLimits) -> bool {
    count <= BODIES_IN_FULL || count % limits.body_every == 0
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Media {
    essence: Box<str>,
    count: u64,
    /// Whole JSON bodies learnt into `schema`.
    bodies: u64,
    schema: Option<SchemaShape>,
    /// What the schema may still grow by.
    budget: usize,
}

/// What was learnt of one method on one route.
#[derive(Debug, Clone, Default, PartialEq)]
struct Operation {
    method: &'static str,
    /// Requests seen.
    seen: u64,
    /// Requests whose media type and query were learnt (as headers: the first ones, then one
    /// in `body_every`).
    requests_learnt: u64,
    /// Request media types, and the learnt requests that had each.
    request_media: Vec<(Box<str>, u64)>,
    /// Query parameter names, and the learnt requests that had each.
    query: Vec<(Box<str>, u64)>,
    /// Some request media type or query parameter was not learnt (`MAX_HEADERS` each).
    request_truncated: bool,
    responses: Vec<Response>,
    /// Some response was not learnt (`observed.max_responses`).
    truncated: bool,
}

/// One thread's learning, or the merge of several.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Learnt {
    routes: HashMap<Arc<str>, Vec<Operation>, BuildHasherDefault<FxHasher>>,
}

/// The learner: a shard per thread that learnt, merged into a document on demand.
pub struct Observed {
    id: usize,
    limits: ObservedLimits,
    /// When the learner started, on the monotonic clock and in seconds since the Unix epoch.
    started: (Instant, u64),
    shards: Mutex<Vec<Arc<Mutex<Learnt>>>>,
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard, and the learner it belongs to.
    static SHARD: RefCell<Option<(usize, Arc<Mutex<Learnt>>)>> = const { RefCell::new(None) };
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Observed {
    /// A learner that has learnt nothing yet.
    pub fn new(limits: ObservedLimits) -> Observed {
        Observed {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            limits,
            started: (Instant::now(), now()),
            shards: Mutex::new(Vec::new()),
        }
    }

    /// Learns one exchange the upstream answered (probes are not given to it), which ended at
    /// `ended` (the engine's clock: learning reads none of its own).
    pub fn learn(&self, exchange: &Exchange<'_>, ended: Instant) {
        let seen = self.started.1 + ended.saturating_duration_since(self.started.0).as_secs();
        self.learn_at(exchange, seen);
    }

    /// Learns one exchange seen at `seen` seconds since the Unix epoch (a recording's time).
    pub fn learn_at(&self, exchange: &Exchange<'_>, seen: u64) {
        SHARD.with(|slot| {
            let mut slot = slot.borrow_mut();
            if !matches!(&*slot, Some((id, _)) if *id == self.id) {
                let shard = Arc::new(Mutex::new(Learnt::default()));
                lock(&self.shards).push(shard.clone());
                *slot = Some((self.id, shard));
            }
            if let Some((_, shard)) = &*slot {
                lock(shard).learn(exchange, seen, &self.limits);
            }
        });
    }

    /// Everything learnt so far, every thread's merged.
    pub fn learnt(&self) -> Learnt {
        let shards = lock(&self.shards).clone();
        let mut all = Learnt::default();
        for shard in shards {
            all.merge(&lock(&shard), &self.limits);
        }
        all
    }

    /// The limits learning keeps to.
    pub fn limits(&self) -> &ObservedLimits {
        &self.limits
    }
}

impl Learnt {
    /// Learns one exchange, seen at `seen` (seconds since the Unix epoch), into this shard.
    pub fn learn(&mut self, exchange: &Exchange<'_>, seen: u64, limits: &ObservedLimits) {
        if exchange.route.starts_with("__") {
            return; // `__other__`, `__malformed__`, `__probe__`: no path to document
        }
        let method = crate::classify::method_label(exchange.method);
        let operations = match self.routes.get_mut(exchange.route.as_ref()) {
            Some(operations) => operations,
            None => self.routes.entry(exchange.route.clone()).or_default(),
        };
        let at = match operations.iter().position(|op| op.method == method) {
            Some(at) => at,
            None => {
                operations.push(Operation {
                    method,
                    ..Operation::default()
                });
                operations.len() - 1
            }
        };
        operations[at].learn(exchange, seen, limits);
    }

    /// Adds what `other` learnt, within `limits`: merging is associative and commutative, so
    /// shards, replicas and files merge in any order to the same document.
    pub fn merge(&mut self, other: &Learnt, limits: &ObservedLimits) {
        for (route, theirs) in &other.routes {
            let mine = self.routes.entry(route.clone()).or_default();
            for operation in theirs {
                match mine.iter_mut().find(|op| op.method == operation.method) {
                    Some(op) => op.merge(operation, limits),
                    None => mine.push(operation.clone()),
                }
            }
        }
    }
}

impl Operation {
    /// Learns the request's media type and query parameter names.
    fn learn_request(&mut self, exchange: &Exchange<'_>) {
        self.requests_learnt += 1;
        let media = exchange
            .request
            .content_type_value()
            .and_then(visible_ascii)
            .map(media_type);
        if let Some(media) = media.filter(|m| !m.is_empty()) {
            self.request_truncated |= !count_name(&mut self.request_media, media);
        }
        let query = query_of(exchange.request.target).unwrap_or_default();
        let mut names: Vec<&[u8]> = query
            .split(|&b| b == b'&')
            .map(|pair| pair.split(|&b| b == b'=').next().unwrap_or_default())
            .filter(|name| !name.is_empty() && name.len() <= 64)
            .collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            if let Some(name) = visible_ascii(name) {
                self.request_truncated |= !count_name(&mut self.query, name);
            }
        }
    }

    fn learn(&mut self, exchange: &Exchange<'_>, seen: u64, limits: &ObservedLimits) {
        self.seen += 1;
        if is_turn(self.seen, limits) {
            self.learn_request(exchange);
        }
        let status = exchange.status;
        let essence = exchange.content_type();
        let response = match self.responses.iter().position(|r| r.status == status) {
            Some(at) => &mut self.responses[at],
            None if self.responses.len() < limits.max_responses => {
                self.responses.push(Response {
                    status,
                    ..Response::default()
                });
                self.responses.last_mut().expect("just pushed")
            }
            None => {
                self.truncated = true;
                return;
            }
        };
        response.count += 1;
        response.last_seen = response.last_seen.max(seen);
        if is_turn(response.count, limits) {
            response.learn_headers(exchange);
        }
        let Some(essence) = essence else { return };
        let media = match response
            .media
            .iter()
            .position(|m| m.essence.eq_ignore_ascii_case(essence))
        {
            Some(at) => &mut response.media[at],
            None if response.media.len() < limits.max_responses => {
                response.media.push(Media {
                    essence: essence.to_ascii_lowercase().into(),
                    budget: limits.max_properties * SCHEMA_PROPERTIES,
                    ..Media::default()
                });
                response.media.last_mut().expect("just pushed")
            }
            None => {
                self.truncated = true;
                return;
            }
        };
        media.count += 1;
        media.learn_body(exchange, limits);
    }

    fn merge(&mut self, other: &Operation, limits: &ObservedLimits) {
        self.truncated |= other.truncated;
        self.seen += other.seen;
        self.requests_learnt += other.requests_learnt;
        self.request_truncated |= other.request_truncated;
        for (name, count) in &other.request_media {
            self.request_truncated |= !add_count(&mut self.request_media, name, *count);
        }
        for (name, count) in &other.query {
            self.request_truncated |= !add_count(&mut self.query, name, *count);
        }
        for theirs in &other.responses {
            match self
                .responses
                .iter()
                .position(|r| r.status == theirs.status)
            {
                Some(at) => self.responses[at].merge(theirs, limits),
                None if self.responses.len() < limits.max_responses => {
                    self.responses.push(theirs.clone());
                }
                None => self.truncated = true,
            }
        }
    }
}

impl Response {
    fn learn_headers(&mut self, exchange: &Exchange<'_>) {
        self.headers_learnt += 1;
        for field in exchange.headers.iter() {
            let name = field.name;
            if is_transport(name) {
                continue;
            }
            let known = self.headers.iter().position(|(known, _)| {
                known.len() == name.len() && known.as_bytes().eq_ignore_ascii_case(name)
            });
            match known {
                Some(at) => self.headers[at].1 += 1,
                None if self.headers.len() < MAX_HEADERS => {
                    let Ok(name) = std::str::from_utf8(name) else {
                        continue;
                    };
                    self.headers.push((name.to_ascii_lowercase().into(), 1));
                }
                None => self.headers_truncated = true,
            }
        }
    }

    fn merge(&mut self, other: &Response, limits: &ObservedLimits) {
        self.count += other.count;
        self.last_seen = self.last_seen.max(other.last_seen);
        self.headers_learnt += other.headers_learnt;
        self.headers_truncated |= other.headers_truncated;
        for (name, count) in &other.headers {
            match self.headers.iter().position(|(known, _)| known == name) {
                Some(at) => self.headers[at].1 += count,
                None if self.headers.len() < MAX_HEADERS => {
                    self.headers.push((name.clone(), *count))
                }
                None => self.headers_truncated = true,
            }
        }
        for theirs in &other.media {
            match self.media.iter().position(|m| m.essence == theirs.essence) {
                Some(at) => self.media[at].merge(theirs, limits),
                None if self.media.len() < limits.max_responses => self.media.push(theirs.clone()),
                None => {}
            }
        }
    }
}

impl Media {
    /// Learns the body when it is whole JSON and its turn has come.
    fn learn_body(&mut self, exchange: &Exchange<'_>, limits: &ObservedLimits) {
        let Some(sample) = exchange.body else { return };
        if sample.kind != BodyKind::Json || sample.truncated {
            return;
        }
        if !is_turn(self.count, limits) {
            return;
        }
        let mut budget = PropertyBudget(self.budget);
        let schema = self.schema.get_or_insert_with(SchemaShape::default);
        if tape::with_root(&sample.bytes, |root| {
            schema.learn(root, 0, limits, &mut budget)
        })
        .is_some()
        {
            self.bodies += 1;
        }
        self.budget = budget.0;
    }

    fn merge(&mut self, other: &Media, limits: &ObservedLimits) {
        self.count += other.count;
        self.bodies += other.bodies;
        if let Some(theirs) = &other.schema {
            let mut budget = PropertyBudget(self.budget);
            self.schema
                .get_or_insert_with(SchemaShape::default)
                .merge(theirs, limits, &mut budget);
            self.budget = budget.0;
        }
    }
}

#[cfg(test)]
mod tests;
