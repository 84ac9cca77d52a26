//! `C` Close: `Byte1 'S'|'P', String name`.

use bytes::{BufMut, Bytes, BytesMut};

use super::TargetKind;
use crate::pg::codec::CodecError;
use crate::pg::codec::buf::{Reader, put_frame, put_str};

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
        let mut r = Reader::new("Close", body);
        let kind = TargetKind::read(&mut r)?;
        let name = r.string()?;
        r.finish()?;
        Ok(Self { kind, name })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut BytesMut) {
        put_frame(out, Self::TAG, |out| {
            out.put_u8(self.kind.byte());
            put_str(out, &self.name);
        });
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
