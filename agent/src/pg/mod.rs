//! PostgreSQL: what the proxy needs to speak the frontend/backend protocol (v3.0 and v3.2).
//!
//! - [`codec`]: a pure wire codec (no sockets, no clock): startup packets, frontend and backend
//!   messages, decoded zero-copy from `bytes` buffers under size caps, and encoded back.
//! - [`sqlstate`]: the SQLSTATE codes the proxy answers with.
//! - [`handshake`]: the upstream startup parameters for a client's startup. Pure.
//! - [`auth`]: upstream authentication (SCRAM-SHA-256, md5, cleartext) as a state machine. Pure.
//! - [`ephemeral`]: names and SQL of just-in-time roles. Pure.
//! - [`cancel`]: synthetic cancel keys mapped to the real upstream ones.
//! - [`tls`]: verified upstream TLS configuration (rustls).
//! - [`upstream`]: the agent's own connection to a server: TLS, login, a simple query, cancel.
//! - [`serve`]: one intercepted client connection, from startup to the relay loop.
//! - [`token_auth`]: workload tokens (JWT) of a session: sources, verification, roles, expiry.
//! - [`gate`]: the policy decision on each client message, and what replaces a denied one. Pure.
//! - [`session`]: which client request every server message answers (the queue of expected
//!   responses), with the prepared-statement and portal tables and the transaction status. Pure.
//! - [`recording`]: per-session recording glue: statements before forwarding, results after.
//! - [`reaper`]: removes just-in-time roles left behind.

pub mod auth;
pub mod cancel;
pub mod codec;
pub mod ephemeral;
pub mod gate;
pub mod handshake;
pub mod masking;
pub mod reaper;
pub mod recording;
pub mod serve;
pub mod session;
pub mod sqlstate;
pub mod tls;
pub mod token_auth;
pub mod upstream;
