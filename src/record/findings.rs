//! The most recent findings, kept per rule for `GET /findings`, and their rate-limited log
//! lines. Paths and evidence are redacted before they are stored.

use std::collections::VecDeque;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tracing::warn;

use super::redact;
use crate::fxhash::FxHasher;
use crate::rules::rule_set::Finding;
use crate::rules::{Severity, CATALOGUE};

type FxMap<K, V> = hashbrown::HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// One finding as `/findings` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Recent {
    /// When it was found, in seconds since the Unix epoch.
    pub time: f64,
    /// The rule id.
    pub rule: &'static str,
    /// The severity after configuration.
    pub severity: Severity,
    /// The method label.
    pub method: &'static str,
    /// The route label.
    pub route: Arc<str>,
    /// The request path, without its query, redacted.
    pub path: String,
    /// The status the upstream sent.
    pub status: u16,
    /// What the rule saw, redacted, at most 200 characters.
    pub evidence: String,
    /// A hash of the unredacted path, evidence, method and status: a finding equal to the
    /// newest of its rule only refreshes that one's time, without redacting anything again.
    #[serde(skip)]
    seen: u64,
}

/// Where a finding was made.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    /// The route label.
    pub route: &'a Arc<str>,
    /// The method label.
    pub method: &'static str,
    /// The request path, without its query.
    pub path: &'a str,
    /// The status the upstream sent.
    pub status: u16,
}

/// Bounded rings of recent findings, one per rule.
pub struct FindingsStore {
    keep: usize,
    rings: Vec<Mutex<VecDeque<Recent>>>,
    log_interval: Duration,
    /// When each route last logged a finding of each rule (by the rule's index).
    last_logged: Mutex<FxMap<Arc<str>, Vec<Option<Instant>>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl FindingsStore {
    /// Keeps `keep` findings per rule; logs each rule and route at most once per `log_interval`.
    pub fn new(keep: usize, log_interval: Duration) -> Self {
        FindingsStore {
            keep,
            rings: CATALOGUE
                .iter()
                .map(|_| Mutex::new(VecDeque::with_capacity(keep)))
                .collect(),
            log_interval,
            last_logged: Mutex::new(FxMap::default()),
        }
    }

    /// Stores a finding (the oldest of its rule drops out) and logs it unless logged recently.
    pub fn add(&self, finding: &Finding, place: Place<'_>) {
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let seen = {
            let mut hasher = FxHasher::default();
            (place.path, &finding.evidence, place.method, place.status).hash(&mut hasher);
            hasher.finish()
        };
        let logged = self.should_log(finding.index, place.route);
        {
            let mut ring = lock(&self.rings[finding.index]);
            if let Some(newest) = ring.back_mut() {
                if !logged && newest.seen == seen && Arc::ptr_eq(&newest.route, place.route) {
                    // The same finding again (an endpoint misbehaving the same way).
                    newest.time = time;
                    return;
                }
            }
        }
        let recent = Recent {
            time,
            rule: finding.rule.id,
            severity: finding.severity,
            method: place.method,
            route: place.route.clone(),
            path: redact::evidence(place.path),
            status: place.status,
            evidence: redact::evidence(&finding.evidence),
            seen,
        };
        if logged {
            warn!(
                rule = recent.rule,
                severity = recent.severity.as_str(),
                route = &*recent.route,
                method = recent.method,
                status = recent.status,
                evidence = %recent.evidence,
                "status-code misuse"
            );
        }
        let mut ring = lock(&self.rings[finding.index]);
        if ring.len() == self.keep {
            ring.pop_front();
        }
        ring.push_back(recent);
    }

    fn should_log(&self, rule: usize, route: &Arc<str>) -> bool {
        let now = Instant::now();
        let mut last = lock(&self.last_logged);
        let rules = match last.get_mut(&**route) {
            Some(rules) => rules,
            None => last
                .entry(route.clone())
                .or_insert_with(|| vec![None; CATALOGUE.len().max(rule + 1)]),
        };
        match &mut rules[rule] {
            Some(at) if now.duration_since(*at) < self.log_interval => false,
            slot => {
                *slot = Some(now);
                true
            }
        }
    }

    /// Every stored finding, newest first.
    pub fn recent(&self) -> Vec<Recent> {
        let mut all: Vec<Recent> = self
            .rings
            .iter()
            .flat_map(|ring| lock(ring).iter().cloned().collect::<Vec<_>>())
            .collect();
        all.sort_by(|a, b| b.time.total_cmp(&a.time));
        all
    }

    /// The `/findings` document.
    pub fn to_json(&self) -> String {
        serde_json::json!({ "findings": self.recent() }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(index: usize, evidence: &str) -> Finding {
        Finding {
            rule: CATALOGUE[index],
            index,
            severity: Severity::Warning,
            evidence: evidence.to_string(),
        }
    }

    #[test]
    fn each_rule_keeps_its_latest_findings() {
        let store = FindingsStore::new(2, Duration::from_secs(60));
        let route: Arc<str> = Arc::from("/r");
        let place = Place {
            route: &route,
            method: "GET",
            path: "/r",
            status: 200,
        };
        for evidence in ["one", "two", "three"] {
            store.add(&finding(0, evidence), place);
        }
        store.add(&finding(1, "other rule"), place);
        let recent = store.recent();
        assert_eq!(recent.len(), 3);
        let first_rule: Vec<_> = recent
            .iter()
            .filter(|r| r.rule == CATALOGUE[0].id)
            .map(|r| r.evidence.as_str())
            .collect();
        assert_eq!(first_rule, ["three", "two"]);
    }

    #[test]
    fn the_same_finding_again_refreshes_the_newest_instead_of_pushing_older_ones_out() {
        let store = FindingsStore::new(3, Duration::from_secs(60));
        let route: Arc<str> = Arc::from("/r");
        let place = |path| Place {
            route: &route,
            method: "GET",
            path,
            status: 200,
        };
        store.add(&finding(0, "one"), place("/r/1"));
        store.add(&finding(0, "two"), place("/r/2"));
        let before = store.recent()[0].time;
        for _ in 0..10 {
            store.add(&finding(0, "two"), place("/r/2"));
        }
        let recent = store.recent();
        assert_eq!(recent.len(), 2, "{recent:?}");
        assert_eq!(recent[0].evidence, "two");
        assert!(recent[0].time >= before);
        store.add(&finding(0, "two"), place("/r/3"));
        assert_eq!(store.recent().len(), 3);
    }

    #[test]
    fn stored_paths_and_evidence_are_redacted() {
        let store = FindingsStore::new(5, Duration::from_secs(60));
        let route: Arc<str> = Arc::from("/users/{id}");
        let place = Place {
            route: &route,
            method: "GET",
            path: "/users/alice@example.com",
            status: 200,
        };
        store.add(&finding(0, r#"body {"password": "hunter2"}"#), place);
        let json = store.to_json();
        assert!(
            !json.contains("hunter2") && !json.contains("alice@example.com"),
            "{json}"
        );
    }

    #[test]
    fn logging_is_limited_per_rule_and_route() {
        let store = FindingsStore::new(5, Duration::from_secs(60));
        let a: Arc<str> = Arc::from("/a");
        let b: Arc<str> = Arc::from("/b");
        assert!(store.should_log(0, &a));
        assert!(!store.should_log(0, &a));
        assert!(store.should_log(1, &a));
        assert!(store.should_log(0, &b));
    }
}
