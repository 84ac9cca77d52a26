//! `G` CopyInResponse, `H` CopyOutResponse, `W` CopyBothResponse: `Int8 overall format,
//! Int16 n, Int16[n] column formats`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::pg::codec::CodecError;
use crate::pg::codec::buf::{Reader, put_frame, put_i16_list};

/// The start of a COPY: its overall format and per-column formats. The direction is the
/// [`BackendMessage`](super::BackendMessage) variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResponse {
    /// 0 textual (rows are lines), 1 binary.
    pub format: i8,
    /// One per column (all 0 when `format` is 0).
    pub column_formats: Vec<i16>,
}

impl CopyResponse {
    pub const IN_TAG: u8 = b'G';
    pub const OUT_TAG: u8 = b'H';
    pub const BOTH_TAG: u8 = b'W';

    pub(crate) fn decode(message_type: &'static str, body: &Bytes) -> Result<Self, CodecError> {
        let mut r = Reader::new(message_type, body);
        let format = r.i8()?;
        let column_formats = r.i16_list("column formats")?;
        r.finish()?;
        Ok(Self {
            format,
            column_formats,
        })
    }

    /// Appends the message with `tag` ([`Self::IN_TAG`], [`Self::OUT_TAG`] or
    /// [`Self::BOTH_TAG`]).
    pub fn encode_as(&self, tag: u8, out: &mut BytesMut) {
        put_frame(out, tag, |out| {
            out.put_i8(self.format);
            put_i16_list(out, &self.column_formats);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::codec::BackendMessage;
    use crate::pg::codec::test_util::{be_err, decode_be, roundtrip_be};

    #[test]
    fn copy_responses_decode_from_documented_bytes() {
        let text = CopyResponse {
            format: 0,
            column_formats: vec![0, 0],
        };
        assert_eq!(
            decode_be(b"G\0\0\0\x0b\0\0\x02\0\0\0\0"),
            BackendMessage::CopyInResponse(text.clone())
        );
        assert_eq!(
            decode_be(b"H\0\0\0\x0b\0\0\x02\0\0\0\0"),
            BackendMessage::CopyOutResponse(text)
        );
        assert_eq!(
            decode_be(b"W\0\0\0\x09\x01\0\x01\0\x01"),
            BackendMessage::CopyBothResponse(CopyResponse {
                format: 1,
                column_formats: vec![1]
            })
        );
    }

    #[test]
    fn copy_response_with_missing_formats_is_rejected() {
        assert!(matches!(
            be_err(b"H\0\0\0\x09\0\0\x02\0\0"),
            CodecError::Malformed {
                message_type: "CopyOutResponse",
                ..
            }
        ));
    }

    #[test]
    fn copy_responses_roundtrip() {
        let r = CopyResponse {
            format: 1,
            column_formats: vec![1, 1, 1],
        };
        roundtrip_be(&BackendMessage::CopyInResponse(r.clone()));
        roundtrip_be(&BackendMessage::CopyOutResponse(r.clone()));
        roundtrip_be(&BackendMessage::CopyBothResponse(r));
    }
}
