//! Exporting: pushing the recorded tallies out of the process. `/metrics` (served by
//! `admin`) is pulled; this stage pushes the same families, and OpenTelemetry's
//! views of them, over OTLP.

pub mod otlp;
