//! How the agent reaches the server: a WebSocket ([`ws`]) or HTTP polling ([`legacy`]), each
//! an adapter under the transport-neutral session ([`crate::session`]).

pub mod backoff;
pub mod legacy;
pub mod tls;
pub mod ws;
