//! How the agent reaches the server: a WebSocket ([`ws`]) or HTTP polling ([`legacy`]).

pub mod backoff;
pub mod legacy;
pub mod tls;
pub mod ws;
