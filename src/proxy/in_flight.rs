//! The in-flight limit (`max_in_flight`): the gauge of requests in flight, and the limit past
//! which requests are shed with a 503.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use prometheus::IntGauge;

use crate::families::Families;

/// Counts requests in flight and admits at most a limit of them to the upstream at once.
#[derive(Debug, Clone)]
pub struct InFlightLimit {
    admitted: Slots,
    gauge: IntGauge,
}

/// A count of places taken, bounded by a limit the caller gives on each attempt (so a
/// reload can change it without losing count).
#[derive(Debug, Clone, Default)]
pub struct Slots {
    taken: Arc<AtomicUsize>,
}

impl Slots {
    /// Takes a place, or `None` when `limit` are already taken.
    pub fn try_take(&self, limit: usize) -> Option<Permit> {
        let previous = self.taken.fetch_add(1, Ordering::AcqRel);
        let permit = Permit {
            taken: self.taken.clone(),
        };
        // Dropping the permit undoes the increment for a refused attempt.
        (previous < limit).then_some(permit)
    }
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

/// A place taken from [`Slots`]; freed when dropped.
#[derive(Debug)]
pub struct Permit {
    taken: Arc<AtomicUsize>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.taken.fetch_sub(1, Ordering::AcqRel);
    }
}

impl InFlightLimit {
    /// Registers `statuscope_requests_in_flight`, the gauge every request is counted in.
    pub fn register(families: &Families) -> Self {
        Self::new(families.gauge(
            "statuscope_requests_in_flight",
            "Requests received and not yet answered in full.",
        ))
    }

    /// The gauge of requests in flight.
    pub fn gauge(&self) -> &IntGauge {
        &self.gauge
    }

    /// Reports every request in `gauge`.
    fn new(gauge: IntGauge) -> Self {
        InFlightLimit {
            admitted: Slots::default(),
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

    /// Admits the request to the upstream, or `None` when `limit` are already there. The
    /// limit is the caller's so a reload can change it without losing count.
    pub fn try_admit(&self, limit: usize) -> Option<Permit> {
        self.admitted.try_take(limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_and_frees_places() {
        let gauge = IntGauge::new("g", "g").unwrap();
        let in_flight = InFlightLimit::new(gauge.clone());
        let first = in_flight.try_admit(2).unwrap();
        let _second = in_flight.try_admit(2).unwrap();
        assert!(in_flight.try_admit(2).is_none());
        drop(first);
        assert!(in_flight.try_admit(2).is_some());
        assert!(
            in_flight.try_admit(3).is_some(),
            "a raised limit applies at once"
        );
    }

    #[test]
    fn the_gauge_follows_arrivals() {
        let gauge = IntGauge::new("g", "g").unwrap();
        let in_flight = InFlightLimit::new(gauge.clone());
        let a = in_flight.arrive();
        let b = in_flight.arrive();
        assert_eq!(gauge.get(), 2);
        drop((a, b));
        assert_eq!(gauge.get(), 0);
    }
}
