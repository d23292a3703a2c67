//! Per-thread caches of resolved metric handles.
//!
//! `with_label_values` hashes every label and takes a lock on each call. A proxy worker sees
//! the same few label sets over and over, so each thread keeps the handles it has resolved:
//! after the first request of a kind, recording is a small hash lookup and atomic adds, with
//! no lock and no allocation. The caches are bounded by the label cardinality (the route cap).

use std::cell::RefCell;
use std::hash::{BuildHasherDefault, Hasher};

use hashbrown::HashMap;

use prometheus::{Histogram, IntCounter};
use thread_local::ThreadLocal;

/// A fast, non-cryptographic hasher (FxHash's mixing step) for small trusted keys: the route
/// labels are bounded by the route cap, so hash flooding has nothing to grow.
#[derive(Default)]
pub struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(tail) ^ rest.len() as u64);
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

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
