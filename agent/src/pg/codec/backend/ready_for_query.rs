//! `Z` ReadyForQuery: `Byte1 'I'|'T'|'E'`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::pg::codec::CodecError;
use crate::pg::codec::buf::{Reader, put_frame};

/// The session's transaction state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionStatus {
    /// `I`: not in a transaction block.
    Idle,
    /// `T`: in a transaction block.
    InTransaction,
    /// `E`: in a failed transaction block (statements are refused until it ends).
    Failed,
}

impl TransactionStatus {
    /// The byte on the wire.
    pub fn byte(self) -> u8 {
        match self {
            Self::Idle => b'I',
            Self::InTransaction => b'T',
            Self::Failed => b'E',
        }
    }
}

/// The server is ready for the next query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyForQuery {
    pub status: TransactionStatus,
}

impl ReadyForQuery {
    pub const TAG: u8 = b'Z';

    pub(crate) fn decode(body: &Bytes) -> Result<Self, CodecError> {
        let mut r = Reader::new("ReadyForQuery", body);
        let status = match r.u8()? {
            b'I' => TransactionStatus::Idle,
            b'T' => TransactionStatus::InTransaction,
            b'E' => TransactionStatus::Failed,
            other => {
                return Err(r.error(format!("invalid transaction status {other:#04x}")));
            }
        };
        r.finish()?;
        Ok(Self { status })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut BytesMut) {
        put_frame(out, Self::TAG, |out| out.put_u8(self.status.byte()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::codec::BackendMessage;
    use crate::pg::codec::test_util::{be_err, decode_be, roundtrip_be};

    #[test]
    fn ready_for_query_decodes_each_status() {
        for (byte, status) in [
            (b'I', TransactionStatus::Idle),
            (b'T', TransactionStatus::InTransaction),
            (b'E', TransactionStatus::Failed),
        ] {
            let msg = decode_be(&[b'Z', 0, 0, 0, 5, byte]);
            assert_eq!(msg, BackendMessage::ReadyForQuery(ReadyForQuery { status }));
            roundtrip_be(&msg);
        }
    }

    #[test]
    fn ready_for_query_with_unknown_status_is_rejected() {
        assert!(matches!(
            be_err(b"Z\0\0\0\x05X"),
            CodecError::Malformed { .. }
        ));
    }

    #[test]
    fn ready_for_query_with_wrong_length_is_rejected_from_the_header() {
        assert!(matches!(
            be_err(b"Z\0\0\0\x06"),
            CodecError::InvalidLength { .. }
        ));
    }
}
