//! `S` ParameterStatus: `String name, String value`.

use bytes::{Bytes, BytesMut};

use crate::pg::codec::CodecError;
use crate::pg::codec::buf::{Reader, put_frame, put_str};

/// A run-time parameter's current value (sent at startup and whenever a reported one changes,
/// e.g. `client_encoding`, `search_path` in 18+).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterStatus {
    pub name: String,
    pub value: String,
}

impl ParameterStatus {
    pub const TAG: u8 = b'S';

    pub(crate) fn decode(body: &Bytes) -> Result<Self, CodecError> {
        let mut r = Reader::new("ParameterStatus", body);
        let name = r.string()?;
        let value = r.string()?;
        r.finish()?;
        Ok(Self { name, value })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut BytesMut) {
        put_frame(out, Self::TAG, |out| {
            put_str(out, &self.name);
            put_str(out, &self.value);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::codec::BackendMessage;
    use crate::pg::codec::test_util::{be_err, decode_be, roundtrip_be, tagged};

    #[test]
    fn parameter_status_decodes_from_documented_bytes() {
        let msg = decode_be(&tagged(b'S', b"client_encoding\0UTF8\0"));
        assert_eq!(
            msg,
            BackendMessage::ParameterStatus(ParameterStatus {
                name: "client_encoding".into(),
                value: "UTF8".into()
            })
        );
        roundtrip_be(&msg);
    }

    #[test]
    fn parameter_status_without_value_is_rejected() {
        assert!(matches!(
            be_err(&tagged(b'S', b"client_encoding\0")),
            CodecError::Malformed { .. }
        ));
    }
}
