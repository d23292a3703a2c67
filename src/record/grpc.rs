//! The gRPC tallies: one count and one duration per finished gRPC call, by route and
//! `grpc_code`, beside (never instead of) the HTTP tally of the same exchange.

use std::time::Duration;

use prometheus::{HistogramVec, IntCounterVec};

use crate::classify::grpc::GrpcCode;
use crate::classify::Origin;
use crate::families::Families;
use crate::record::handles::{GrpcHandles, HandleCache};

/// The gRPC families.
pub struct GrpcMetrics {
    responses: IntCounterVec,
    duration: HistogramVec,
}

impl GrpcMetrics {
    /// Registers the gRPC families in `families`, the durations bucketed by `duration_buckets`.
    pub fn register(families: &Families, duration_buckets: &[f64]) -> Self {
        GrpcMetrics {
            responses: families.counter_vec(
                "statuscope_grpc_responses_total",
                "Finished gRPC calls by route (the /package.Service/Method path), gRPC status code name and origin; each call is counted exactly once, and in statuscope_responses_total too.",
                &["route", "grpc_code", "origin"],
            ),
            duration: families.histogram_vec(
                "statuscope_grpc_duration_seconds",
                "Time from a gRPC call's request header to its end (trailers, or the client's or the proxy's end of it), by route and gRPC status code name.",
                &["route", "grpc_code"],
                duration_buckets,
            ),
        }
    }

    /// Tallies one finished call on `route`, through this thread's cached handles.
    pub fn record(
        &self,
        handles: &HandleCache,
        route: &str,
        code: GrpcCode,
        origin: Origin,
        duration: Duration,
    ) {
        let resolve = || GrpcHandles {
            responses: self
                .responses
                .with_label_values(&[route, code.as_str(), origin.as_str()]),
            duration: self.duration.with_label_values(&[route, code.as_str()]),
        };
        handles.grpc(route, (code.number(), origin as u8), resolve, |handles| {
            handles.responses.inc();
            handles.duration.observe(duration.as_secs_f64());
        });
    }
}
