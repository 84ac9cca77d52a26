//! Size caps applied while decoding.

/// Limits on the *body* length of a message (the bytes after the 4-byte length word, the way
/// PostgreSQL itself applies its limits). A message over its cap is rejected from its header
/// alone, before the body is buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Untagged startup packets (StartupMessage, CancelRequest, SSLRequest, GSSENCRequest).
    pub max_startup: usize,
    /// Tagged client messages. Control messages (Sync, Flush, Execute, Describe, Close,
    /// Terminate, CopyDone, CopyFail) are additionally held to
    /// [`Caps::SMALL_MESSAGE_LIMIT`] and password/SASL messages to [`Caps::AUTH_TOKEN_LIMIT`],
    /// as PostgreSQL does.
    pub max_message: usize,
    /// Tagged server messages.
    pub max_backend_message: usize,
}

impl Caps {
    /// PostgreSQL's `MAX_STARTUP_PACKET_LENGTH`.
    pub const DEFAULT_MAX_STARTUP: usize = 10_000;
    /// 64 MiB. PostgreSQL accepts client Query/Parse/Bind/CopyData/FunctionCall messages up to
    /// 1 GiB, but the proxy buffers a whole message per connection before deciding on it, so
    /// the default is lower: large enough for big COPY chunks and bytea parameters, small
    /// enough that a few hundred connections cannot exhaust memory. Raise it per deployment
    /// if jobs bind larger values (they then get SQLSTATE 54000 from the proxy).
    pub const DEFAULT_MAX_MESSAGE: usize = 64 << 20;
    /// 1 GiB: PostgreSQL cannot produce a larger message (`MaxAllocSize`).
    pub const DEFAULT_MAX_BACKEND_MESSAGE: usize = 1 << 30;
    /// PostgreSQL's `PQ_SMALL_MESSAGE_LIMIT`, for client control messages.
    pub const SMALL_MESSAGE_LIMIT: usize = 10_000;
    /// PostgreSQL's `PG_MAX_AUTH_TOKEN_LENGTH`, for password/SASL/GSS messages.
    pub const AUTH_TOKEN_LIMIT: usize = 65_535;
}

impl Default for Caps {
    fn default() -> Self {
        Self {
            max_startup: Self::DEFAULT_MAX_STARTUP,
            max_message: Self::DEFAULT_MAX_MESSAGE,
            max_backend_message: Self::DEFAULT_MAX_BACKEND_MESSAGE,
        }
    }
}
