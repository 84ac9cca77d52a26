//! `V` FunctionCallResponse: `Int32 length or -1, bytes`.

use std::fmt;

use bytes::{Bytes, BytesMut};

use crate::pg::codec::CodecError;
use crate::pg::codec::buf::{Reader, put_frame, put_nullable};
use crate::pg::codec::redact::RedactedValue;

/// A fast-path function call's result.
#[derive(Clone, PartialEq, Eq)]
pub struct FunctionCallResponse {
    /// Zero-copy; `None` is SQL NULL.
    pub result: Option<Bytes>,
}

impl FunctionCallResponse {
    pub const TAG: u8 = b'V';

    pub(crate) fn decode(body: &Bytes) -> Result<Self, CodecError> {
        let mut r = Reader::new("FunctionCallResponse", body);
        let result = r.nullable()?;
        r.finish()?;
        Ok(Self { result })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut BytesMut) {
        put_frame(out, Self::TAG, |out| {
            put_nullable(out, self.result.as_deref())
        });
    }
}

impl fmt::Debug for FunctionCallResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FunctionCallResponse")
            .field("result", &RedactedValue(self.result.as_deref()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::codec::BackendMessage;
    use crate::pg::codec::test_util::{be_err, decode_be, roundtrip_be};

    #[test]
    fn function_call_response_decodes_value_and_null() {
        let msg = decode_be(b"V\0\0\0\x0a\0\0\0\x02ok");
        assert_eq!(
            msg,
            BackendMessage::FunctionCallResponse(FunctionCallResponse {
                result: Some(Bytes::from_static(b"ok"))
            })
        );
        roundtrip_be(&msg);
        let null = decode_be(b"V\0\0\0\x08\xff\xff\xff\xff");
        assert_eq!(
            null,
            BackendMessage::FunctionCallResponse(FunctionCallResponse { result: None })
        );
        roundtrip_be(&null);
    }

    #[test]
    fn function_call_response_with_wrong_length_is_rejected() {
        assert!(matches!(
            be_err(b"V\0\0\0\x0a\0\0\0\x03ok"),
            CodecError::Malformed { .. }
        ));
        assert!(matches!(
            be_err(b"V\0\0\0\x0a\0\0\0\x01ok"),
            CodecError::Malformed { .. }
        ));
    }
}
