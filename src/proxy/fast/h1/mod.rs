//! The fast engine's HTTP/1 client connections: one task per connection running the
//! keep-alive loop ([`connection`]) that reads each head into the connection's buffer and
//! checks it with the strict [`request_head`](crate::proxy::request_head) reader, then carries
//! its [`exchange`] — the head forwarded as read ([`forward`]), the rest of the body sent while
//! the answer is awaited ([`request_body`]), the response streamed back ([`response_body`]),
//! statuscope's own answers when it cannot be carried ([`answer`]) — with bodies framed by
//! [`body`]; or, to an HTTP/2 upstream, carried on a pooled upstream stream ([`to_h2`]).

mod answer;
mod body;
pub(super) mod connection;
mod exchange;
pub mod forward;
mod request_body;
mod response_body;
mod to_h2;

pub(super) use body::BodyLeft;
pub(super) use exchange::is_idempotent;
