//! Delta temporality: each sum and histogram point as what changed since the previous export,
//! from the cumulative tallies. A point that went down (it cannot, within one process, but a
//! family may be re-registered) starts over from its new value.

use std::collections::HashMap;

use super::series::{Attributes, Instrument, Reading, Series};

/// The values each point had at the previous export.
#[derive(Default)]
pub struct Deltas {
    previous: HashMap<(&'static str, Attributes), Reading>,
}

impl Deltas {
    /// Turns `series`' sums and histograms into changes since the previous call; gauges stay.
    pub fn apply(&mut self, series: &mut [Series]) {
        for one in series.iter_mut().filter(|s| s.shape != Instrument::Gauge) {
            for (attributes, value) in one.points.iter_mut() {
                let key = (one.name, attributes.clone());
                let now = value.clone();
                if let Some(before) = self.previous.get(&key) {
                    if let Some(change) = difference(&now, before) {
                        *value = change;
                    }
                }
                self.previous.insert(key, now);
            }
        }
    }
}

/// `now - before`, or `None` when a count went down.
fn difference(now: &Reading, before: &Reading) -> Option<Reading> {
    now.combine(
        before,
        |now, before| (now >= before).then_some(now - before),
        u64::checked_sub,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn counter(value: f64) -> Vec<Series> {
        let mut points = BTreeMap::new();
        points.insert(Attributes::new(), Reading::Number(value));
        vec![Series {
            name: "c",
            description: "",
            unit: "",
            shape: Instrument::Counter,
            points,
        }]
    }

    #[test]
    fn each_export_carries_what_changed_since_the_previous() {
        let mut deltas = Deltas::default();
        let mut a = counter(5.0);
        deltas.apply(&mut a);
        assert_eq!(a[0].points[&Attributes::new()], Reading::Number(5.0));
        let mut b = counter(12.0);
        deltas.apply(&mut b);
        assert_eq!(b[0].points[&Attributes::new()], Reading::Number(7.0));
        let mut c = counter(3.0);
        deltas.apply(&mut c);
        assert_eq!(c[0].points[&Attributes::new()], Reading::Number(3.0));
    }

    #[test]
    fn histograms_subtract_bucket_by_bucket() {
        let now = Reading::Histogram {
            count: 5,
            sum: 2.5,
            buckets: vec![3, 2],
        };
        let before = Reading::Histogram {
            count: 2,
            sum: 1.0,
            buckets: vec![1, 1],
        };
        assert_eq!(
            difference(&now, &before),
            Some(Reading::Histogram {
                count: 3,
                sum: 1.5,
                buckets: vec![2, 1]
            })
        );
    }
}
