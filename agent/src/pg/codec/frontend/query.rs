//! `Q` Query: `String sql`.

use bytes::{Bytes, BytesMut};

use crate::pg::codec::CodecError;
use crate::pg::codec::buf::{Reader, put_frame, put_str};

/// A simple-protocol query. Several statements in one Query run as one implicit transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Never contains NUL.
    pub sql: String,
}

impl Query {
    pub const TAG: u8 = b'Q';

    pub(crate) fn decode(body: &Bytes) -> Result<Self, CodecError> {
        let mut r = Reader::new("Query", body);
        let sql = r.string()?;
        if r.remaining() != 0 {
            return Err(r.error("embedded NUL in query string"));
        }
        Ok(Self { sql })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut BytesMut) {
        put_frame(out, Self::TAG, |out| put_str(out, &self.sql));
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::pg::codec::FrontendMessage;
    use crate::pg::codec::test_util::{decode_fe, fe_err, roundtrip_fe};

    #[test]
    fn query_decodes_from_documented_bytes() {
        assert_eq!(
            decode_fe(b"Q\0\0\0\x0eselect 1;\0"),
            FrontendMessage::Query(Query {
                sql: "select 1;".into()
            })
        );
        assert_eq!(
            decode_fe(b"Q\0\0\0\x05\0"),
            FrontendMessage::Query(Query { sql: String::new() })
        );
    }

    #[test]
    fn query_with_embedded_nul_is_rejected() {
        let err = fe_err(b"Q\0\0\0\x0fselect\0 1;\0");
        assert!(err.to_string().contains("embedded NUL"), "{err}");
    }

    #[test]
    fn query_without_nul_is_rejected() {
        let err = fe_err(b"Q\0\0\0\x0dselect 1;");
        assert!(err.to_string().contains("NUL-terminated"), "{err}");
    }

    #[test]
    fn query_with_invalid_utf8_is_rejected() {
        let err = fe_err(b"Q\0\0\0\x08\xc3\x28\xff\0");
        assert!(err.to_string().contains("UTF-8"), "{err}");
    }

    proptest! {
        #[test]
        fn query_roundtrips(sql in "[^\\x00]{0,200}") {
            roundtrip_fe(&FrontendMessage::Query(Query { sql }));
        }
    }
}
