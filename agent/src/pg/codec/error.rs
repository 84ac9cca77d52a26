//! Decoding errors, with what the proxy needs to answer the client.

use std::borrow::Cow;
use std::fmt;

use crate::pg::codec::backend::{ErrorResponse, Severity};
use crate::pg::sqlstate;

/// Why bytes could not be decoded. After any of these the connection is out of sync: answer
/// (see [`CodecError::to_error_response`]) and close it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The declared body length is over the applicable cap (checked from the header alone).
    #[error("{message_type} message too large: {len} bytes, the limit is {max}")]
    TooLarge {
        message_type: &'static str,
        len: usize,
        max: usize,
    },
    /// The length word is impossible (negative, shorter than the length word itself, or wrong
    /// for a fixed-size message).
    #[error("invalid {message_type} message length {len}")]
    InvalidLength {
        message_type: &'static str,
        len: i64,
    },
    /// The body does not match the message's layout.
    #[error("malformed {message_type} message: {reason}")]
    Malformed {
        message_type: &'static str,
        reason: Cow<'static, str>,
    },
    /// A tag that is not a message of this direction.
    #[error("unknown message type {}", TagDisplay(*.0))]
    UnknownTag(u8),
    /// A TLS ClientHello where a startup packet was expected (PostgreSQL 17
    /// `sslnegotiation=direct`). The peer speaks TLS, so no PostgreSQL error can be sent.
    #[error("TLS handshake received without SSLRequest (direct TLS negotiation)")]
    DirectTls,
    /// A startup packet for a protocol other than 3.x (or an unknown special request code).
    #[error("unsupported frontend protocol {major}.{minor}")]
    UnsupportedProtocol { major: u16, minor: u16 },
    /// A StartupMessage without a (non-empty) `user` parameter.
    #[error("no PostgreSQL user name specified in startup packet")]
    MissingUser,
    /// A StartupMessage naming the same parameter twice.
    #[error("duplicate startup parameter \"{0}\"")]
    DuplicateParameter(String),
    /// A cancel key outside 4..=256 bytes (CancelRequest or BackendKeyData).
    #[error("invalid cancel key length {len} in {message_type} (expected 4 to 256 bytes)")]
    InvalidCancelKeyLength {
        message_type: &'static str,
        len: usize,
    },
}

impl CodecError {
    pub(crate) fn malformed(
        message_type: &'static str,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::Malformed {
            message_type,
            reason: reason.into(),
        }
    }

    /// The SQLSTATE to report this error with.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => sqlstate::PROGRAM_LIMIT_EXCEEDED,
            Self::DirectTls | Self::UnsupportedProtocol { .. } => sqlstate::FEATURE_NOT_SUPPORTED,
            Self::MissingUser => sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
            Self::InvalidLength { .. }
            | Self::Malformed { .. }
            | Self::UnknownTag(_)
            | Self::DuplicateParameter(_)
            | Self::InvalidCancelKeyLength { .. } => sqlstate::PROTOCOL_VIOLATION,
        }
    }

    /// A FATAL ErrorResponse to send before closing the connection. Not for
    /// [`CodecError::DirectTls`]: that peer expects TLS records, so just close.
    pub fn to_error_response(&self) -> ErrorResponse {
        ErrorResponse::new(Severity::Fatal, self.sqlstate(), self.to_string())
    }
}

/// Shows a tag as `'Q'` when printable, else as `0x00`.
struct TagDisplay(u8);

impl fmt::Display for TagDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "'{}'", char::from(self.0))
        } else {
            write!(f, "0x{:02x}", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_follow_postgresql() {
        let too_large = CodecError::TooLarge {
            message_type: "Query",
            len: 10,
            max: 1,
        };
        assert_eq!(too_large.sqlstate(), "54000");
        assert_eq!(CodecError::UnknownTag(b'?').sqlstate(), "08P01");
        assert_eq!(CodecError::malformed("Bind", "x").sqlstate(), "08P01");
        assert_eq!(CodecError::DirectTls.sqlstate(), "0A000");
        let proto = CodecError::UnsupportedProtocol { major: 2, minor: 0 };
        assert_eq!(proto.sqlstate(), "0A000");
        assert_eq!(CodecError::MissingUser.sqlstate(), "28000");
    }

    #[test]
    fn unknown_tag_display_is_readable() {
        assert_eq!(
            CodecError::UnknownTag(b'z').to_string(),
            "unknown message type 'z'"
        );
        assert_eq!(
            CodecError::UnknownTag(0).to_string(),
            "unknown message type 0x00"
        );
    }

    #[test]
    fn error_response_for_a_codec_error_is_fatal_with_sqlstate() {
        let err = CodecError::malformed("Bind", "bad").to_error_response();
        assert_eq!(err.severity(), Some("FATAL"));
        assert_eq!(err.code(), Some("08P01"));
        assert_eq!(err.message(), Some("malformed Bind message: bad"));
    }
}
