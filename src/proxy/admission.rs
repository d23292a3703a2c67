//! Admission: the in-flight gauge and the limit past which requests are shed with a 503.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use prometheus::IntGauge;

/// Counts requests in flight and admits at most `limit` of them to the upstream at once.
#[derive(Debug, Clone)]
pub struct Admission {
    limit: usize,
    admitted: Arc<AtomicUsize>,
    gauge: IntGauge,
}

/// Held by every request from its header's arrival until it has been tallied; keeps
/// `statuscope_requests_in_flight` exact even if a hook unwinds.
#[derive(Debug)]
pub struct InFlight {
    gauge: IntGauge,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// Held by a request admitted to the upstream; frees its place when dropped.
#[derive(Debug)]
pub struct Permit {
    admitted: Arc<AtomicUsize>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    /// Admits up to `limit` requests at once, reporting every request in `gauge`.
    pub fn new(limit: usize, gauge: IntGauge) -> Self {
        Admission {
            limit,
            admitted: Arc::new(AtomicUsize::new(0)),
            gauge,
        }
    }

    /// Registers a request that has just arrived.
    pub fn arrive(&self) -> InFlight {
        self.gauge.inc();
        InFlight {
            gauge: self.gauge.clone(),
        }
    }

    /// Admits the request to the upstream, or `None` when `limit` are already there.
    pub fn try_admit(&self) -> Option<Permit> {
        let previous = self.admitted.fetch_add(1, Ordering::AcqRel);
        let permit = Permit {
            admitted: self.admitted.clone(),
        };
        // Dropping the permit undoes the increment for a refused request.
        (previous < self.limit).then_some(permit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_and_frees_places() {
        let gauge = IntGauge::new("g", "g").unwrap();
        let admission = Admission::new(2, gauge.clone());
        let first = admission.try_admit().unwrap();
        let _second = admission.try_admit().unwrap();
        assert!(admission.try_admit().is_none());
        drop(first);
        assert!(admission.try_admit().is_some());
    }

    #[test]
    fn the_gauge_follows_arrivals() {
        let gauge = IntGauge::new("g", "g").unwrap();
        let admission = Admission::new(1, gauge.clone());
        let a = admission.arrive();
        let b = admission.arrive();
        assert_eq!(gauge.get(), 2);
        drop((a, b));
        assert_eq!(gauge.get(), 0);
    }
}
