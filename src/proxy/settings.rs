//! The settings a SIGHUP reload can change while requests are in flight.
//!
//! Each request takes one snapshot when its head has been accepted and keeps it to the end,
//! so a reload never applies half a configuration to a request: the old settings finish the
//! requests that started under them, new requests see the new ones. Reading the current
//! snapshot is one atomic load (`arc-swap`), never a lock.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use pingora::prelude::HttpPeer;

use crate::classify::route::{RouteTable, RouteTemplate};
use crate::config::{Config, ConfigError, Downstream, Probes, Timeouts, UpstreamProtocol};
use crate::contract::Contract;
use crate::proxy::fast::upstream::response_head::MAX_RESPONSE_HEAD_BYTES;
use crate::proxy::h2::conn::Limits;
use crate::rules::rule_set::RuleSet;

/// Streams statuscope opens at once on one HTTP/2 connection to the upstream before it opens
/// another: RFC 9113 §6.5.2 recommends servers allow no fewer than 100, and one that announces
/// fewer in its SETTINGS makes new streams wait for a free one (the `h2` crate obeys it).
pub const H2_STREAMS_PER_CONNECTION: usize = 100;

/// The receive window statuscope announces on each HTTP/2 connection to the upstream.
const UPSTREAM_CONNECTION_WINDOW: u32 = 16 << 20;

/// One consistent set of reloadable settings.
pub struct LiveSettings {
    /// The upstream and its timeouts (`upstream`, `timeouts.*`) over HTTP/1.1, for the pingora
    /// engine.
    pub peer: HttpPeer,
    /// The same upstream over HTTP/2 with prior knowledge.
    pub h2_peer: HttpPeer,
    /// Which of the two a request goes to (`upstream_protocol`).
    pub protocol: UpstreamProtocol,
    /// The upstream's address (`upstream`).
    pub upstream: SocketAddr,
    /// The upstream timeouts (`timeouts.*`).
    pub timeouts: Timeouts,
    /// Route templating (`routes.*`).
    pub routes: Arc<RouteTable>,
    /// Where the kubelet's probes are tallied (`routes.probes`).
    pub probes: Probes,
    /// Requests proxied at once before a 503 (`max_in_flight`).
    pub max_in_flight: usize,
    /// The rule set, or `None` when `findings.enabled` is off.
    pub rules: Option<RuleSet>,
    /// Bytes of each response body sampled for the rules (`body_sample_bytes`).
    pub body_sample_bytes: usize,
    /// One log line per request (`log.access`).
    pub access_log: bool,
    /// Client connection and request head limits (`downstream.*`).
    pub downstream: Downstream,
    /// The service's contract (`contract.openapi`), for `/contract`: the one the engine
    /// judges against.
    pub contract: Option<Arc<Contract>>,
    /// What statuscope announces and enforces on HTTP/2 client connections.
    pub h2_client: Limits,
    /// What statuscope announces on HTTP/2 connections to the upstream.
    pub h2_upstream: Limits,
    /// The templates and cap `routes` was built from, to keep the table (and the routes it
    /// has learnt) across a reload that leaves them unchanged.
    route_config: (Vec<RouteTemplate>, usize),
}

impl LiveSettings {
    /// Builds the settings for `config`, reusing `previous`'s route table when the route
    /// configuration is the same.
    pub fn new(config: &Config, previous: Option<&LiveSettings>) -> Result<Self, ConfigError> {
        let upstream = config.require_upstream()?;
        let mut peer = HttpPeer::new(upstream.addr, false, String::new());
        peer.options.connection_timeout = Some(config.timeouts.connect);
        peer.options.read_timeout = Some(config.timeouts.read);
        peer.options.write_timeout = Some(config.timeouts.write);
        peer.options.idle_timeout = Some(config.timeouts.idle);
        let mut h2_peer = peer.clone();
        // Prior knowledge: no ALPN over cleartext, so pingora trusts that the upstream speaks
        // HTTP/2 only when the lowest version allowed is 2.
        h2_peer.options.set_http_version(2, 2);
        h2_peer.options.max_h2_streams = H2_STREAMS_PER_CONNECTION;
        let route_config = (config.route_templates(), config.routes.max);
        let routes = match previous {
            Some(previous) if previous.route_config == route_config => previous.routes.clone(),
            _ => Arc::new(RouteTable::new(route_config.0.clone(), route_config.1)),
        };
        // The same document, read again: keep its coverage counting.
        let contract = match (previous.and_then(|p| p.contract.as_ref()), &config.contract) {
            (Some(running), Some(loaded)) if running.digest == loaded.digest => {
                Some(running.clone())
            }
            (_, loaded) => loaded.clone(),
        };
        let h2 = config.downstream.h2;
        Ok(LiveSettings {
            peer,
            h2_peer,
            protocol: config.upstream_protocol,
            upstream: upstream.addr,
            timeouts: config.timeouts.clone(),
            routes,
            probes: config.routes.probes,
            max_in_flight: config.max_in_flight,
            rules: config
                .findings
                .enabled
                .then(|| config.rule_set(contract.clone())),
            body_sample_bytes: config.body_sample_bytes,
            access_log: config.log.access,
            downstream: config.downstream.clone(),
            contract,
            route_config,
            h2_client: Limits {
                max_concurrent_streams: h2.max_concurrent_streams,
                initial_window: h2.stream_window,
                connection_window: h2.connection_window,
                max_header_list: config.downstream.head.max_header_bytes,
            },
            // Streams' windows bound what is buffered of each response; the connection's window
            // is given back as data arrives, and a large one spares WINDOW_UPDATE frames.
            h2_upstream: Limits {
                max_concurrent_streams: 0,
                initial_window: h2.stream_window,
                connection_window: UPSTREAM_CONNECTION_WINDOW,
                max_header_list: MAX_RESPONSE_HEAD_BYTES,
            },
        })
    }
}

impl LiveSettings {
    /// The peer a request goes to: over HTTP/2 when `upstream_protocol` says so for a client
    /// that spoke `client_h2` (HTTP/2) or not.
    pub fn peer_for(&self, client_h2: bool) -> &HttpPeer {
        match (self.protocol, client_h2) {
            (UpstreamProtocol::H2c, _) | (UpstreamProtocol::Downstream, true) => &self.h2_peer,
            (UpstreamProtocol::Http1, _) | (UpstreamProtocol::Downstream, false) => &self.peer,
        }
    }
}

/// The current settings, shared by the proxy, its connection guard and the reloader.
pub struct Settings(ArcSwap<LiveSettings>);

impl Settings {
    /// Starts with the settings for `config`.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        Ok(Settings(ArcSwap::from_pointee(LiveSettings::new(
            config, None,
        )?)))
    }

    /// The settings in force now, kept for as long as the caller holds them.
    pub fn current(&self) -> Arc<LiveSettings> {
        self.0.load_full()
    }

    /// Puts `config`'s settings in force for every request that starts from now on.
    pub fn replace(&self, config: &Config) -> Result<(), ConfigError> {
        let next = LiveSettings::new(config, Some(&self.0.load()))?;
        self.0.store(Arc::new(next));
        Ok(())
    }
}
