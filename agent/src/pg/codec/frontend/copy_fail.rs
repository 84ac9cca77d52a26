//! `f` CopyFail: `String message`.

use bytes::{Bytes, BytesMut};

use crate::pg::codec::CodecError;
use crate::pg::codec::buf::{Reader, put_frame, put_str};

/// Aborts COPY FROM STDIN with a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFail {
    pub message: String,
}

impl CopyFail {
    pub const TAG: u8 = b'f';

    pub(crate) fn decode(body: &Bytes) -> Result<Self, CodecError> {
        let mut r = Reader::new("CopyFail", body);
        let message = r.string()?;
        r.finish()?;
        Ok(Self { message })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut BytesMut) {
        put_frame(out, Self::TAG, |out| put_str(out, &self.message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::codec::FrontendMessage;
    use crate::pg::codec::test_util::{decode_fe, fe_err, roundtrip_fe};

    #[test]
    fn copy_fail_decodes_from_documented_bytes() {
        assert_eq!(
            decode_fe(b"f\0\0\0\x09oops\0"),
            FrontendMessage::CopyFail(CopyFail {
                message: "oops".into()
            })
        );
    }

    #[test]
    fn copy_fail_with_trailing_bytes_is_rejected() {
        assert!(fe_err(b"f\0\0\0\x07a\0b").to_string().contains("trailing"));
    }

    #[test]
    fn copy_fail_roundtrips() {
        roundtrip_fe(&FrontendMessage::CopyFail(CopyFail {
            message: "client aborted".into(),
        }));
    }
}
