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

/// The handles for one (method, code, origin) on a route.
pub struct ResponseHandles {
    /// `statuscope_responses_total{route, method, code, class, origin}`
    pub responses: IntCounter,
    /// `statuscope_response_duration_seconds{route, method, class}`
    pub duration: Histogram,
}

/// The handles for one method on a route.
pub struct JudgedHandles {
    /// `statuscope_judged_responses_total{route, method}`
    pub judged: IntCounter,
    /// `statuscope_flagged_responses_total{route, method}`
    pub flagged: IntCounter,
}

#[derive(Default)]
struct RouteHandles {
    responses: FxMap<(&'static str, u16, u8), ResponseHandles>,
    judged: FxMap<&'static str, JudgedHandles>,
    /// `statuscope_findings_total` by (rule index, severity, method, code).
    findings: FxMap<(usize, u8, &'static str, u16), IntCounter>,
}

/// Each worker thread's handles, by route label.
#[derive(Default)]
pub struct HandleCache {
    threads: ThreadLocal<RefCell<FxMap<Box<str>, RouteHandles>>>,
}

impl HandleCache {
    /// Applies `record` to the response handles of a label set, resolved with `resolve` on
    /// first use.
    pub fn responses(
        &self,
        route: &str,
        key: (&'static str, u16, u8),
        resolve: impl FnOnce() -> ResponseHandles,
        record: impl FnOnce(&ResponseHandles),
    ) {
        let mut routes = self.threads.get_or_default().borrow_mut();
        record(
            route_entry(&mut routes, route)
                .responses
                .entry(key)
                .or_insert_with(resolve),
        );
    }

    /// Applies `record` to the judged/flagged handles of a route and method.
    pub fn judged(
        &self,
        route: &str,
        method: &'static str,
        resolve: impl FnOnce() -> JudgedHandles,
        record: impl FnOnce(&JudgedHandles),
    ) {
        let mut routes = self.threads.get_or_default().borrow_mut();
        record(
            route_entry(&mut routes, route)
                .judged
                .entry(method)
                .or_insert_with(resolve),
        );
    }
}

impl HandleCache {
    /// Applies `record` to the findings counter of a rule, severity, method and code on a
    /// route, resolved with `resolve` on first use.
    pub fn findings(
        &self,
        route: &str,
        key: (usize, u8, &'static str, u16),
        resolve: impl FnOnce() -> IntCounter,
        record: impl FnOnce(&IntCounter),
    ) {
        let mut routes = self.threads.get_or_default().borrow_mut();
        record(
            route_entry(&mut routes, route)
                .findings
                .entry(key)
                .or_insert_with(resolve),
        );
    }
}

fn route_entry<'a>(
    routes: &'a mut FxMap<Box<str>, RouteHandles>,
    route: &str,
) -> &'a mut RouteHandles {
    // One hash and probe per request; the key is allocated only the first time.
    routes.entry_ref(route).or_default()
}
