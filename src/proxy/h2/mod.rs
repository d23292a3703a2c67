//! HTTP/2 (RFC 9113) as statuscope's own relay speaks it, on both sides of the proxy: the
//! frame layer ([`frame`]), HPACK ([`hpack`]), decoded header blocks and the rules they are
//! checked against ([`fields`]), and one connection's protocol state for either role
//! ([`conn`]). None of it does I/O; the fast engine's tasks own the sockets.
//!
//! Why not the `h2` crate, which pingora uses: measured as a bare relay with nothing of
//! statuscope in it, the `h2` crate on both sides costs about 59,000 instructions per unary
//! gRPC call, more than nginx (45,500) or HAProxy (47,300) spend on the whole call; 22,000 of
//! them go to HPACK into and out of `http::HeaderMap`s, the rest to generic stream machinery
//! behind a mutex, frames moved through queues, and a task wake-up per hop. A relay needs none
//! of that: it decodes a block into spans and encodes it again for the other side. See
//! docs/engines.md.

pub(crate) mod budget;
pub mod conn;
pub(crate) mod fields;
pub mod frame;
pub mod hpack;
