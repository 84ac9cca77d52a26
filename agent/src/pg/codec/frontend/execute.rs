//! `E` Execute: `String portal, Int32 max rows`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::pg::codec::CodecError;
use crate::pg::codec::buf::{Reader, put_frame, put_str};

/// Runs a portal. With a row limit the server may stop with PortalSuspended instead of
/// CommandComplete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execute {
    /// Empty for the unnamed portal.
    pub portal: String,
    /// 0 (or negative) for no limit.
    pub max_rows: i32,
}

impl Execute {
    pub const TAG: u8 = b'E';

    pub(crate) fn decode(body: &Bytes) -> Result<Self, CodecError> {
        let mut r = Reader::new("Execute", body);
        let portal = r.string()?;
        let max_rows = r.i32()?;
        r.finish()?;
        Ok(Self { portal, max_rows })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut BytesMut) {
        put_frame(out, Self::TAG, |out| {
            put_str(out, &self.portal);
            out.put_i32(self.max_rows);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::codec::FrontendMessage;
    use crate::pg::codec::test_util::{decode_fe, fe_err, roundtrip_fe};

    #[test]
    fn execute_decodes_from_documented_bytes() {
        assert_eq!(
            decode_fe(b"E\0\0\0\x0bc1\0\0\0\0\x64"),
            FrontendMessage::Execute(Execute {
                portal: "c1".into(),
                max_rows: 100
            })
        );
    }

    #[test]
    fn execute_without_row_count_is_rejected() {
        assert!(matches!(
            fe_err(b"E\0\0\0\x07c1\0"),
            CodecError::Malformed {
                message_type: "Execute",
                ..
            }
        ));
    }

    #[test]
    fn execute_roundtrips() {
        for max_rows in [0, 1, -1, i32::MAX] {
            roundtrip_fe(&FrontendMessage::Execute(Execute {
                portal: String::new(),
                max_rows,
            }));
        }
    }
}
