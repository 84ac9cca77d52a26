//! `P` Parse: `String name, String query, Int16 n, Int32[n] parameter type oids`.

use bytes::{Bytes, BytesMut};

use crate::pg::codec::CodecError;
use crate::pg::codec::buf::{Reader, put_frame, put_oid_list, put_str};

/// Prepares a statement (extended protocol).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parse {
    /// Statement name; empty for the unnamed statement.
    pub name: String,
    /// One statement's SQL.
    pub query: String,
    /// Parameter type oids; 0 leaves a type unspecified.
    pub param_types: Vec<u32>,
}

impl Parse {
    pub const TAG: u8 = b'P';

    pub(crate) fn decode(body: &Bytes) -> Result<Self, CodecError> {
        let mut r = Reader::new("Parse", body);
        let name = r.string()?;
        let query = r.string()?;
        let param_types = r.oid_list("parameter types")?;
        r.finish()?;
        Ok(Self {
            name,
            query,
            param_types,
        })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut BytesMut) {
        put_frame(out, Self::TAG, |out| {
            put_str(out, &self.name);
            put_str(out, &self.query);
            put_oid_list(out, &self.param_types);
        });
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::pg::codec::FrontendMessage;
    use crate::pg::codec::test_util::{decode_fe, fe_err, roundtrip_fe, tagged};

    #[test]
    fn parse_decodes_from_documented_bytes() {
        let body = b"s1\0select $1, $2\0\0\x02\0\0\0\x17\0\0\0\0";
        assert_eq!(
            decode_fe(&tagged(b'P', body)),
            FrontendMessage::Parse(Parse {
                name: "s1".into(),
                query: "select $1, $2".into(),
                param_types: vec![23, 0],
            })
        );
    }

    #[test]
    fn parse_with_too_few_types_is_rejected() {
        let err = fe_err(&tagged(b'P', b"\0select $1\0\0\x02\0\0\0\x17"));
        assert!(matches!(
            err,
            CodecError::Malformed {
                message_type: "Parse",
                ..
            }
        ));
    }

    #[test]
    fn parse_with_trailing_bytes_is_rejected() {
        let err = fe_err(&tagged(b'P', b"\0select 1\0\0\0x"));
        assert!(err.to_string().contains("trailing"), "{err}");
    }

    #[test]
    fn parse_without_string_terminators_is_rejected() {
        assert!(matches!(
            fe_err(&tagged(b'P', b"s1")),
            CodecError::Malformed { .. }
        ));
    }

    proptest! {
        #[test]
        fn parse_roundtrips(
            name in "[^\\x00]{0,20}",
            query in "[^\\x00]{0,100}",
            param_types in proptest::collection::vec(any::<u32>(), 0..20),
        ) {
            roundtrip_fe(&FrontendMessage::Parse(Parse { name, query, param_types }));
        }
    }
}
