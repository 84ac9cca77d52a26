//! `C` CommandComplete: `String tag`.

use bytes::{Bytes, BytesMut};

use crate::pg::codec::CodecError;
use crate::pg::codec::buf::{Reader, put_frame, put_str};

/// A command finished; the tag names it and usually counts rows (`SELECT 5`, `INSERT 0 5`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandComplete {
    pub tag: String,
}

impl CommandComplete {
    pub const TAG: u8 = b'C';

    pub(crate) fn decode(body: &Bytes) -> Result<Self, CodecError> {
        let mut r = Reader::new("CommandComplete", body);
        let tag = r.string()?;
        r.finish()?;
        Ok(Self { tag })
    }

    /// The command word(s): the tag without its trailing row count(s).
    pub fn command(&self) -> &str {
        self.tag
            .trim_end_matches(|c: char| c.is_ascii_digit() || c == ' ')
    }

    /// The row count at the end of the tag, when there is one.
    pub fn rows(&self) -> Option<u64> {
        let (_, last) = self.tag.rsplit_once(' ')?;
        last.parse().ok()
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut BytesMut) {
        put_frame(out, Self::TAG, |out| put_str(out, &self.tag));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::codec::BackendMessage;
    use crate::pg::codec::test_util::{be_err, decode_be, roundtrip_be};

    #[test]
    fn command_complete_decodes_from_documented_bytes() {
        let msg = decode_be(b"C\0\0\0\x0dSELECT 5\0");
        assert_eq!(
            msg,
            BackendMessage::CommandComplete(CommandComplete {
                tag: "SELECT 5".into()
            })
        );
        roundtrip_be(&msg);
    }

    #[test]
    fn command_complete_counts_rows() {
        let insert = CommandComplete {
            tag: "INSERT 0 12".into(),
        };
        assert_eq!(insert.rows(), Some(12));
        assert_eq!(insert.command(), "INSERT");
        let begin = CommandComplete {
            tag: "BEGIN".into(),
        };
        assert_eq!(begin.rows(), None);
        assert_eq!(begin.command(), "BEGIN");
    }

    #[test]
    fn command_complete_with_trailing_bytes_is_rejected() {
        assert!(matches!(
            be_err(b"C\0\0\0\x08OK\0x"),
            CodecError::Malformed { .. }
        ));
    }
}
