//! The tallies as OTLP carries them: metrics of points with attributes, read from the
//! registry's families at export time (never updated per request), then built into the
//! protobuf messages. Prometheus keeps histogram buckets cumulative and `+Inf` implied; OTLP
//! wants each bucket's own count and the overflow bucket spelt out.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1 as proto;
use prometheus::proto::{Metric as PromMetric, MetricFamily, MetricType};

/// An attribute's value: OTLP types `http.response.status_code` as an integer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AttrValue {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
}

/// A point's attributes, in a stable order so equal sets compare equal.
pub type Attributes = BTreeMap<&'static str, AttrValue>;

/// What a metric is.
#[derive(Debug, Clone, PartialEq)]
pub enum Instrument {
    /// A monotonic sum (a Prometheus counter).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Observations in buckets with these finite upper bounds.
    Histogram(Vec<f64>),
}

/// One point's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// A counter's or a gauge's value.
    Number(f64),
    /// A histogram: observations, their sum, and each bucket's own count (one more bucket
    /// than bounds, the last above every bound).
    Histogram {
        /// Observations.
        count: u64,
        /// Their sum.
        sum: f64,
        /// Per-bucket counts.
        buckets: Vec<u64>,
    },
}

impl Reading {
    /// This reading and `other` (of the same metric) combined value by value: `number` for
    /// numbers and sums, `count` for counts and buckets; `None` when either refuses or the
    /// two are not alike.
    pub fn combine(
        &self,
        other: &Reading,
        number: impl Fn(f64, f64) -> Option<f64>,
        count: impl Fn(u64, u64) -> Option<u64>,
    ) -> Option<Reading> {
        match (self, other) {
            (Reading::Number(a), Reading::Number(b)) => number(*a, *b).map(Reading::Number),
            (
                Reading::Histogram {
                    count: a,
                    sum: sum_a,
                    buckets: buckets_a,
                },
                Reading::Histogram {
                    count: b,
                    sum: sum_b,
                    buckets: buckets_b,
                },
            ) if buckets_a.len() == buckets_b.len() => Some(Reading::Histogram {
                count: count(*a, *b)?,
                sum: number(*sum_a, *sum_b)?,
                buckets: buckets_a
                    .iter()
                    .zip(buckets_b)
                    .map(|(a, b)| count(*a, *b))
                    .collect::<Option<_>>()?,
            }),
            _ => None,
        }
    }

    /// Adds `other` (a point of the same metric) to this one.
    pub fn add(&mut self, other: &Reading) {
        if let Some(sum) = self.combine(other, |a, b| Some(a + b), |a, b| Some(a + b)) {
            *self = sum;
        }
    }
}

/// One metric to push.
#[derive(Debug, Clone)]
pub struct Series {
    /// The metric's name.
    pub name: &'static str,
    /// Its description.
    pub description: &'static str,
    /// Its unit (UCUM, as OTLP wants: `s`, `{finding}`), empty when none.
    pub unit: &'static str,
    /// What it is.
    pub shape: Instrument,
    /// Its points by attribute set; points mapped to the same set are added up.
    pub points: BTreeMap<Attributes, Reading>,
}

/// A family's name and help as `'static` strings: the registry's families are created once,
/// so their names are leaked once per distinct name, not per export.
fn interned(text: &str) -> &'static str {
    use std::sync::Mutex;
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = names.iter().find(|known| **known == text) {
        return known;
    }
    let leaked: &'static str = Box::leak(text.to_string().into_boxed_str());
    names.push(leaked);
    leaked
}

/// Every family as it is served on `/metrics`, under its own name and labels.
pub fn of_families(families: &[MetricFamily]) -> Vec<Series> {
    families.iter().filter_map(of_family).collect()
}

fn of_family(family: &MetricFamily) -> Option<Series> {
    let shape = match family.get_field_type() {
        MetricType::COUNTER => Instrument::Counter,
        MetricType::GAUGE => Instrument::Gauge,
        MetricType::HISTOGRAM => Instrument::Histogram(bounds(family.get_metric().first()?)),
        // statuscope registers neither.
        MetricType::SUMMARY | MetricType::UNTYPED => return None,
    };
    let name = interned(family.name());
    let mut series = Series {
        name,
        description: interned(family.help()),
        unit: if name.ends_with("_seconds") { "s" } else { "" },
        shape,
        points: BTreeMap::new(),
    };
    for metric in family.get_metric() {
        let attributes = metric
            .get_label()
            .iter()
            .map(|pair| {
                (
                    interned(pair.name()),
                    AttrValue::Str(pair.value().to_string()),
                )
            })
            .collect();
        series
            .points
            .insert(attributes, value(metric, family.get_field_type()));
    }
    Some(series)
}

/// A histogram's finite bucket bounds.
pub fn bounds(metric: &PromMetric) -> Vec<f64> {
    metric
        .get_histogram()
        .get_bucket()
        .iter()
        .map(|bucket| bucket.upper_bound())
        .filter(|bound| bound.is_finite())
        .collect()
}

/// A Prometheus metric's value as OTLP counts it; `kind` is its family's type.
pub fn value(metric: &PromMetric, kind: MetricType) -> Reading {
    match kind {
        MetricType::HISTOGRAM => {
            let histogram = metric.get_histogram();
            let count = histogram.get_sample_count();
            let mut buckets = Vec::with_capacity(histogram.get_bucket().len() + 1);
            let mut below = 0;
            for bucket in histogram.get_bucket() {
                if bucket.upper_bound().is_finite() {
                    buckets.push(bucket.cumulative_count() - below);
                    below = bucket.cumulative_count();
                }
            }
            buckets.push(count - below);
            Reading::Histogram {
                count,
                sum: histogram.get_sample_sum(),
                buckets,
            }
        }
        MetricType::COUNTER => Reading::Number(metric.get_counter().get_value()),
        _ => Reading::Number(metric.get_gauge().get_value()),
    }
}

/// When points were taken: their start (process start, or the previous export for deltas)
/// and now, in nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// The start of the points' window.
    pub start: u64,
    /// When they were read.
    pub now: u64,
}

/// The protobuf metric for `series`; `temporality` is OTLP's enum value for sums and
/// histograms.
pub fn to_proto(
    series: Series,
    window: Window,
    temporality: proto::AggregationTemporality,
) -> proto::Metric {
    let temporality = temporality as i32;
    let data = match &series.shape {
        Instrument::Counter => proto::metric::Data::Sum(proto::Sum {
            data_points: number_points(&series, window),
            aggregation_temporality: temporality,
            is_monotonic: true,
        }),
        Instrument::Gauge => proto::metric::Data::Gauge(proto::Gauge {
            data_points: number_points(&series, window),
        }),
        Instrument::Histogram(bounds) => proto::metric::Data::Histogram(proto::Histogram {
            data_points: histogram_points(&series, bounds, window),
            aggregation_temporality: temporality,
        }),
    };
    proto::Metric {
        name: series.name.to_string(),
        description: series.description.to_string(),
        unit: series.unit.to_string(),
        metadata: Vec::new(),
        data: Some(data),
    }
}

fn number_points(series: &Series, window: Window) -> Vec<proto::NumberDataPoint> {
    let start = if series.shape == Instrument::Gauge {
        0
    } else {
        window.start
    };
    series
        .points
        .iter()
        .filter_map(|(attributes, value)| {
            let Reading::Number(number) = value else {
                return None;
            };
            Some(proto::NumberDataPoint {
                attributes: key_values(attributes),
                start_time_unix_nano: start,
                time_unix_nano: window.now,
                value: Some(number_value(*number)),
                ..Default::default()
            })
        })
        .collect()
}

/// Whole numbers (every counter statuscope keeps) go as integers, others as doubles.
fn number_value(number: f64) -> proto::number_data_point::Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if number.fract() == 0.0 && number.abs() < EXACT {
        proto::number_data_point::Value::AsInt(number as i64)
    } else {
        proto::number_data_point::Value::AsDouble(number)
    }
}

fn histogram_points(
    series: &Series,
    bounds: &[f64],
    window: Window,
) -> Vec<proto::HistogramDataPoint> {
    series
        .points
        .iter()
        .filter_map(|(attributes, value)| {
            let Reading::Histogram {
                count,
                sum,
                buckets,
            } = value
            else {
                return None;
            };
            Some(proto::HistogramDataPoint {
                attributes: key_values(attributes),
                start_time_unix_nano: window.start,
                time_unix_nano: window.now,
                count: *count,
                sum: Some(*sum),
                bucket_counts: buckets.clone(),
                explicit_bounds: bounds.to_vec(),
                ..Default::default()
            })
        })
        .collect()
}

/// Attributes as OTLP key-values.
fn key_values(attributes: &Attributes) -> Vec<KeyValue> {
    attributes
        .iter()
        .map(|(key, value)| key_value(key, value))
        .collect()
}

/// One attribute as an OTLP key-value.
pub fn key_value(key: &str, value: &AttrValue) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(match value {
                AttrValue::Str(text) => any_value::Value::StringValue(text.clone()),
                AttrValue::Int(number) => any_value::Value::IntValue(*number),
            }),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{HistogramOpts, HistogramVec, Registry};

    #[test]
    fn cumulative_prometheus_buckets_become_per_bucket_counts_with_the_overflow() {
        let registry = Registry::new();
        let histogram = HistogramVec::new(
            HistogramOpts::new("t_seconds", "help").buckets(vec![0.1, 1.0]),
            &["route"],
        )
        .unwrap();
        registry.register(Box::new(histogram.clone())).unwrap();
        for seconds in [0.05, 0.5, 0.7, 3.0] {
            histogram.with_label_values(&["/a"]).observe(seconds);
        }
        let series = of_families(&registry.gather());
        assert_eq!(series[0].shape, Instrument::Histogram(vec![0.1, 1.0]));
        assert_eq!(series[0].unit, "s");
        let (attributes, value) = series[0].points.iter().next().unwrap();
        assert_eq!(attributes["route"], AttrValue::Str("/a".into()));
        assert_eq!(
            *value,
            Reading::Histogram {
                count: 4,
                sum: 4.25,
                buckets: vec![1, 2, 1]
            }
        );
    }

    #[test]
    fn whole_numbers_go_as_integers() {
        assert_eq!(number_value(3.0), proto::number_data_point::Value::AsInt(3));
        assert_eq!(
            number_value(0.5),
            proto::number_data_point::Value::AsDouble(0.5)
        );
    }
}
