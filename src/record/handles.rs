//! Per-thread caches of resolved metric handles.
//!
//! `with_label_values` hashes every label and takes a lock on each call. A proxy worker sees
//! the same few label sets over and over, so each thread keeps the handles it has resolved:
//! after the first request of a kind, recording is a small hash lookup and atomic adds, with
//! no lock and no allocation. The caches are bounded by the label cardinality (the route cap).

use std::cell::RefCell;
use std::hash::BuildHasherDefault;

use hashbrown::HashMap;

use prometheus::{Histogram, IntCounter};
use thread_local::ThreadLocal;

use crate::fxhash::FxHasher;

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// The handles for one method and one (code, origin, HTTP version), packed in a word, on a
/// route.
pub struct ResponseHandles {
    /// `statuscope_responses_total{route, method, code, class, origin}`
    pub responses: IntCounter,
    /// `statuscope_response_duration_seconds{route, method, code, class, origin, http_version}`
    pub duration: Histogram,
}

/// The handles for one method on a route.
pub struct JudgedHandles {
    /// `statuscope_judged_responses_total{route, method}`
    pub judged: IntCounter,
    /// `statuscope_flagged_responses_total{route, method}`
    pub flagged: IntCounter,
}

/// The handles for one gRPC code and origin on a route.
pub struct GrpcHandles {
    /// `statuscope_grpc_responses_total{route, grpc_code, origin}`
    pub responses: IntCounter,
    /// `statuscope_grpc_duration_seconds{route, grpc_code}`
    pub duration: Histogram,
}

#[derive(Default)]
struct RouteHandles {
    responses: FxMap<(&'static str, u32), ResponseHandles>,
    judged: FxMap<&'static str, JudgedHandles>,
    /// `statuscope_findings_total` by (rule index, severity, method, code).
    findings: FxMap<(usize, u8, &'static str, u16), IntCounter>,
    /// The gRPC tallies by (code, origin).
    grpc: FxMap<(u8, u8), GrpcHandles>,
}

/// Each worker thread's handles, by route label.
#[derive(Default)]
pub struct HandleCache {
    threads: ThreadLocal<RefCell<FxMap<Box<str>, RouteHandles>>>,
}

/// Applies `record` to the entry of `key` in `map`, made with `resolve` on first use.
#[inline]
fn entry<K: std::hash::Hash + Eq, V>(
    map: &mut FxMap<K, V>,
    key: K,
    resolve: impl FnOnce() -> V,
    record: impl FnOnce(&V),
) {
    record(map.entry(key).or_insert_with(resolve));
}

impl HandleCache {
    /// Runs `act` on this thread's handles of `route`.
    #[inline]
    fn route<R>(&self, route: &str, act: impl FnOnce(&mut RouteHandles) -> R) -> R {
        let mut routes = self.threads.get_or_default().borrow_mut();
        // One hash and probe per request; the key is allocated only the first time.
        act(routes.entry_ref(route).or_default())
    }

    /// Applies `record` to the response handles of a label set, resolved with `resolve` on
    /// first use.
    pub fn responses(
        &self,
        route: &str,
        key: (&'static str, u32),
        resolve: impl FnOnce() -> ResponseHandles,
        record: impl FnOnce(&ResponseHandles),
    ) {
        self.route(route, |handles| {
            entry(&mut handles.responses, key, resolve, record)
        });
    }

    /// Applies `record` to the judged/flagged handles of a route and method.
    pub fn judged(
        &self,
        route: &str,
        method: &'static str,
        resolve: impl FnOnce() -> JudgedHandles,
        record: impl FnOnce(&JudgedHandles),
    ) {
        self.route(route, |handles| {
            entry(&mut handles.judged, method, resolve, record)
        });
    }

    /// Applies `record` to the findings counter of a rule, severity, method and code on a
    /// route, resolved with `resolve` on first use.
    pub fn findings(
        &self,
        route: &str,
        key: (usize, u8, &'static str, u16),
        resolve: impl FnOnce() -> IntCounter,
        record: impl FnOnce(&IntCounter),
    ) {
        self.route(route, |handles| {
            entry(&mut handles.findings, key, resolve, record)
        });
    }

    /// Applies `record` to the gRPC handles of a code and origin on a route.
    pub fn grpc(
        &self,
        route: &str,
        key: (u8, u8),
        resolve: impl FnOnce() -> GrpcHandles,
        record: impl FnOnce(&GrpcHandles),
    ) {
        self.route(route, |handles| {
            entry(&mut handles.grpc, key, resolve, record)
        });
    }
}
