//! The proxy stage: every client connection, every request head, and the forwarding of each
//! exchange to the one upstream, unchanged and streamed.
//!
//! Two engines carry HTTP/1 traffic, chosen by `proxy.engine`:
//! - [`fast`] (the default): statuscope's own keep-alive loop on pingora-core — reused
//!   per-connection buffers, heads forwarded as read, a per-worker upstream pool;
//! - [`pingora`]: pingora-proxy's `ProxyHttp` behind the head [`guard`], which the fast engine
//!   also hands what it does not carry itself (h2c, protocol upgrades).
//!
//! Both check every head with the strict [`request_head`] reader, count and limit requests in flight with
//! [`in_flight`], answer their own failures with [`error_response`], and end every request in
//! [`finish`], the one recording and judging path.

pub(crate) mod chunked;
pub(crate) mod error_response;
pub(crate) mod fast;
pub(crate) mod finish;
pub(crate) mod frame_guard;
pub(crate) mod guard;
pub mod h2;
pub(crate) mod in_flight;
pub(crate) mod pingora;
pub mod request_head;
pub(crate) mod settings;
