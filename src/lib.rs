//! statuscope: an HTTP observability sidecar.
//!
//! Every request to a service passes through a pingora reverse proxy that tallies each
//! response by route, method, status code, class and origin and exports the tallies as
//! Prometheus metrics on an admin port, and checks each exchange against a catalogue of
//! status-code misuse rules. The modules follow the pipeline:
//! [`proxy`] → [`sample`] → [`classify`] and [`rules`] → [`record`] → [`export`], with
//! [`config`], [`lifecycle`], [`logs`] and the self-contained [`demo`] around them.

#![warn(missing_docs)]

pub mod admin;
pub mod classify;
pub mod config;
pub mod contract;
pub mod demo;
pub mod families;
pub mod fxhash;
pub mod inject;
pub mod injector;
pub mod lifecycle;
pub mod lint;
pub mod logs;
pub mod proxy;
pub mod record;
pub mod rules;
pub mod sample;
