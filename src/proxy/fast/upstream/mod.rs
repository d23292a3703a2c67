//! The fast engine's connections to the upstream, pooled per worker: HTTP/1.1 ([`http1`],
//! whose response heads [`response_head`] parses) and HTTP/2 ([`h2`]).

pub mod h2;
pub mod http1;
pub mod response_head;
