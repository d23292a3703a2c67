//! End-to-end tests: a real statuscope process between real clients and a real upstream, all
//! over loopback sockets.

mod support;

mod config;
mod connections;
mod contract;
mod demo;
mod deploy;
mod faults;
mod forwarding;
mod grpc;
mod h2;
mod h2_relay;
mod hostile;
mod inject;
mod injector;
mod lifecycle;
mod lint;
mod logs;
mod observed;
mod otlp;
mod passthrough;
mod prometheus;
mod promtool;
mod protocols;
mod proxy_errors;
mod reload;
mod routes;
mod rules;
mod sampling;
mod security;
mod streaming;
mod tallies;
