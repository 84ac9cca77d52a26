//! A pure PostgreSQL frontend/backend protocol codec (protocol 3.0 and 3.2).
//!
//! No sockets, no clock, no runtime: the decoders take a `BytesMut` the caller filled from the
//! network and either return `Ok(None)` (need more bytes; nothing consumed), consume exactly
//! one message and return it, or fail with a [`CodecError`] (the connection must then be
//! closed; the buffer's contents are unspecified). Encoders append one complete message to a
//! `BytesMut`.
//!
//! - [`startup`]: the untagged first packets of a connection (SSLRequest, GSSENCRequest,
//!   CancelRequest, StartupMessage): [`decode_startup`].
//! - [`frontend`]: tagged client messages: [`decode_frontend`] → [`FrontendMessage`].
//! - [`backend`]: tagged server messages: [`decode_backend`] → [`BackendMessage`].
//! - [`peek_frame`]: header-only framing for relays that forward what they don't inspect.
//!
//! Zero-copy: a decoded message's byte payloads (Bind parameters, DataRow bodies, CopyData,
//! SASL data, …) are `Bytes` slices of the frame split off the input buffer, never copies.
//! Identifiers and SQL text are validated UTF-8 `String`s.
//!
//! Size caps ([`Caps`]) are enforced from the 5-byte header alone, before any body is buffered.
//! Decoding is strict: every length, count and terminator must match the bytes exactly, so a
//! decoded message re-encodes to the very bytes it came from.
//!
//! `Debug` output shows the size of payloads (passwords, SASL data, cancel keys, parameter and
//! row values, COPY data, function arguments and results), never their bytes.
//!
//! Text is required to be UTF-8 in both directions, so the proxy must keep the session's
//! `client_encoding` at `UTF8` (deciding policy on text in another encoding is unsound anyway).
//!
//! Encoders assume the invariants the decoders establish. Where a hand-built message breaks
//! them, encoding stays well-framed: strings are written up to their first NUL. A list longer
//! than its 16-bit count field (65 535) or a message longer than `i32::MAX` cannot be framed at
//! all and panics.

pub mod backend;
mod buf;
mod caps;
mod error;
mod frame;
pub mod frontend;
mod redact;
pub mod startup;

#[cfg(test)]
mod test_util;

pub use backend::{BackendMessage, decode_backend, decode_backend_frame};
pub use caps::Caps;
pub use error::CodecError;
pub use frame::{FrameHeader, HEADER_LEN, peek_frame, peek_frame_capped};
pub use frontend::{FrontendMessage, decode_frontend};
pub use startup::{StartupMessage, decode_startup};
