//! `C` Close: `Byte1 'S'|'P', String name`.

use bytes::{Bytes, BytesMut};

use super::TargetKind;
use crate::pg::codec::CodecError;

/// Closes a prepared statement or portal (evict any per-statement decision cached for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    pub kind: TargetKind,
    /// Empty for the unnamed statement or portal.
    pub name: String,
}

impl Close {
    pub const TAG: u8 = b'C';

    pub(crate) fn decode(body: &Bytes) -> Result<Self, CodecError> {
        let (kind, name) = TargetKind::decode_target("Close", body)?;
        Ok(Self { kind, name })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut BytesMut) {
        self.kind.encode_target(Self::TAG, &self.name, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::codec::FrontendMessage;
    use crate::pg::codec::test_util::{decode_fe, fe_err, roundtrip_fe};

    #[test]
    fn close_decodes_from_documented_bytes() {
        assert_eq!(
            decode_fe(b"C\0\0\0\x08Ss1\0"),
            FrontendMessage::Close(Close {
                kind: TargetKind::Statement,
                name: "s1".into()
            })
        );
    }

    #[test]
    fn close_without_name_terminator_is_rejected() {
        assert!(fe_err(b"C\0\0\0\x07Ss1").to_string().contains("NUL"));
    }

    #[test]
    fn close_roundtrips() {
        roundtrip_fe(&FrontendMessage::Close(Close {
            kind: TargetKind::Portal,
            name: "c1".into(),
        }));
    }
}
