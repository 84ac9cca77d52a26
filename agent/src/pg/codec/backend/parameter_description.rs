//! `t` ParameterDescription: `Int16 n, Int32[n] type oids`.

use bytes::{Bytes, BytesMut};

use crate::pg::codec::CodecError;
use crate::pg::codec::buf::{Reader, put_frame, put_oid_list};

/// The parameter types of a described statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterDescription {
    pub types: Vec<u32>,
}

impl ParameterDescription {
    pub const TAG: u8 = b't';

    pub(crate) fn decode(body: &Bytes) -> Result<Self, CodecError> {
        let mut r = Reader::new("ParameterDescription", body);
        let types = r.oid_list("parameter types")?;
        r.finish()?;
        Ok(Self { types })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut BytesMut) {
        put_frame(out, Self::TAG, |out| put_oid_list(out, &self.types));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::codec::BackendMessage;
    use crate::pg::codec::test_util::{be_err, decode_be, roundtrip_be};

    #[test]
    fn parameter_description_decodes_from_documented_bytes() {
        let msg = decode_be(b"t\0\0\0\x0e\0\x02\0\0\0\x17\0\0\0\x19");
        assert_eq!(
            msg,
            BackendMessage::ParameterDescription(ParameterDescription {
                types: vec![23, 25]
            })
        );
        roundtrip_be(&msg);
    }

    #[test]
    fn parameter_description_with_short_list_is_rejected() {
        assert!(matches!(
            be_err(b"t\0\0\0\x0a\0\x02\0\0\0\x17"),
            CodecError::Malformed { .. }
        ));
    }
}
