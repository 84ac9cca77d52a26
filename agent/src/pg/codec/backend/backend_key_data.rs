//! `K` BackendKeyData: `Int32 process id, Byte[n] secret key` (4 bytes in protocol 3.0, up to
//! 256 in 3.2).

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::pg::codec::CodecError;
use crate::pg::codec::buf::{Reader, put_frame};
use crate::pg::codec::redact::Redacted;
use crate::pg::codec::startup::{MAX_CANCEL_KEY_LEN, MIN_CANCEL_KEY_LEN};

/// The key a client needs to cancel this session's queries. A proxy gives clients a synthetic
/// key and maps it to this one.
#[derive(Clone, PartialEq, Eq)]
pub struct BackendKeyData {
    pub process_id: i32,
    /// 4..=256 bytes.
    pub secret_key: Bytes,
}

impl BackendKeyData {
    pub const TAG: u8 = b'K';

    pub(crate) fn decode(body: &Bytes) -> Result<Self, CodecError> {
        let mut r = Reader::new("BackendKeyData", body);
        let process_id = r.i32()?;
        let secret_key = r.rest();
        if !(MIN_CANCEL_KEY_LEN..=MAX_CANCEL_KEY_LEN).contains(&secret_key.len()) {
            return Err(CodecError::InvalidCancelKeyLength {
                message_type: "BackendKeyData",
                len: secret_key.len(),
            });
        }
        Ok(Self {
            process_id,
            secret_key,
        })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut BytesMut) {
        put_frame(out, Self::TAG, |out| {
            out.put_i32(self.process_id);
            out.put_slice(&self.secret_key);
        });
    }
}

impl fmt::Debug for BackendKeyData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendKeyData")
            .field("process_id", &self.process_id)
            .field("secret_key", &Redacted(&self.secret_key))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::codec::BackendMessage;
    use crate::pg::codec::test_util::{be_err, decode_be, roundtrip_be, tagged};

    #[test]
    fn backend_key_data_decodes_from_documented_bytes() {
        assert_eq!(
            decode_be(b"K\0\0\0\x0c\0\0\x10\x92\xde\xad\xbe\xef"),
            BackendMessage::BackendKeyData(BackendKeyData {
                process_id: 4242,
                secret_key: Bytes::from_static(b"\xde\xad\xbe\xef"),
            })
        );
    }

    #[test]
    fn backend_key_lengths_4_to_256_roundtrip() {
        for len in [4usize, 32, 256] {
            roundtrip_be(&BackendMessage::BackendKeyData(BackendKeyData {
                process_id: 1,
                secret_key: Bytes::from(vec![7; len]),
            }));
        }
    }

    #[test]
    fn backend_key_lengths_3_and_257_are_rejected() {
        let mut body = 1i32.to_be_bytes().to_vec();
        body.extend_from_slice(&[0; 3]);
        assert_eq!(
            be_err(&tagged(b'K', &body)),
            CodecError::InvalidCancelKeyLength {
                message_type: "BackendKeyData",
                len: 3
            }
        );
        // 257 bytes is over the message's own cap: refused from the header.
        let mut body = 1i32.to_be_bytes().to_vec();
        body.extend_from_slice(&[0; 257]);
        let mut frame = tagged(b'K', &body);
        frame.truncate(9);
        assert!(matches!(
            be_err(&frame),
            CodecError::TooLarge {
                len: 261,
                max: 260,
                ..
            }
        ));
    }
}
