//! `D` Describe: `Byte1 'S'|'P', String name`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::pg::codec::CodecError;
use crate::pg::codec::buf::{Reader, put_frame, put_str};

/// What Describe and Close name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetKind {
    /// `S`: a prepared statement.
    Statement,
    /// `P`: a portal.
    Portal,
}

impl TargetKind {
    /// The byte on the wire.
    pub fn byte(self) -> u8 {
        match self {
            Self::Statement => b'S',
            Self::Portal => b'P',
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        match r.u8()? {
            b'S' => Ok(Self::Statement),
            b'P' => Ok(Self::Portal),
            other => Err(r.error(format!("invalid target type {other:#04x}"))),
        }
    }

    /// The body shared by Describe and Close: `Byte1 'S'|'P', String name`.
    pub(crate) fn decode_target(
        message_type: &'static str,
        body: &Bytes,
    ) -> Result<(Self, String), CodecError> {
        let mut r = Reader::new(message_type, body);
        let kind = Self::read(&mut r)?;
        let name = r.string()?;
        r.finish()?;
        Ok((kind, name))
    }

    /// Appends a Describe or Close message (`tag`) naming `name`.
    pub(crate) fn encode_target(self, tag: u8, name: &str, out: &mut BytesMut) {
        put_frame(out, tag, |out| {
            out.put_u8(self.byte());
            put_str(out, name);
        });
    }
}

/// Asks for a description of a statement (ParameterDescription + RowDescription/NoData) or a
/// portal (RowDescription/NoData). A statement's RowDescription always reports text format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Describe {
    pub kind: TargetKind,
    /// Empty for the unnamed statement or portal.
    pub name: String,
}

impl Describe {
    pub const TAG: u8 = b'D';

    pub(crate) fn decode(body: &Bytes) -> Result<Self, CodecError> {
        let (kind, name) = TargetKind::decode_target("Describe", body)?;
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
    fn describe_decodes_from_documented_bytes() {
        assert_eq!(
            decode_fe(b"D\0\0\0\x08Ss1\0"),
            FrontendMessage::Describe(Describe {
                kind: TargetKind::Statement,
                name: "s1".into()
            })
        );
        assert_eq!(
            decode_fe(b"D\0\0\0\x06P\0"),
            FrontendMessage::Describe(Describe {
                kind: TargetKind::Portal,
                name: String::new()
            })
        );
    }

    #[test]
    fn describe_with_unknown_kind_is_rejected() {
        assert!(
            fe_err(b"D\0\0\0\x06X\0")
                .to_string()
                .contains("invalid target type")
        );
    }

    #[test]
    fn describe_with_trailing_bytes_is_rejected() {
        assert!(fe_err(b"D\0\0\0\x07S\0\0").to_string().contains("trailing"));
    }

    #[test]
    fn describe_roundtrips() {
        for kind in [TargetKind::Statement, TargetKind::Portal] {
            roundtrip_fe(&FrontendMessage::Describe(Describe {
                kind,
                name: "stmt_42".into(),
            }));
        }
    }
}
