//! statuscope: an HTTP observability sidecar.
//!
//! Every request to a service passes through a reverse proxy built on pingora that tallies
//! each response by route, method, status code, class and origin, checks each exchange
//! against a catalogue of status-code misuse rules and the service's own OpenAPI document,
//! and exports it all as Prometheus metrics on an admin port. A request's path through the
//! modules: the client's connection is carried by an engine in [`proxy`], whose end of every
//! exchange (`proxy::finish`) classifies ([`classify`], [`sample`]) and tallies it, then hands
//! it to the one judging path in [`record`], which runs the [`rules`] (with [`contract`]) and
//! records each verdict; [`admin`] serves what was recorded, [`export`] pushes it to an
//! OpenTelemetry Collector and [`report`] writes a CI report.
//! Around them: [`cli`] (the command), [`config`], [`lifecycle`] (start-up, reload, drain),
//! [`logs`], [`lint`] (the same judging over HAR files), [`inject`] and [`injector`] (the
//! sidecar added to pods, offline and as an admission webhook), the self-contained [`demo`],
//! and the leaves [`families`] (how a stage declares a metric family) and [`fxhash`].
//! docs/architecture.md draws it.

#![warn(missing_docs)]

mod admin;
pub mod classify;
pub mod cli;
pub mod config;
pub mod contract;
mod demo;
mod export;
mod families;
mod fxhash;
mod inject;
mod injector;
mod lifecycle;
mod lint;
mod logs;
pub mod proxy;
pub mod record;
mod report;
pub mod rules;
pub mod sample;
