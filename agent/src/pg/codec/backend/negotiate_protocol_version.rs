//! `v` NegotiateProtocolVersion: `Int32 newest minor version, Int32 n, String[n] unrecognized
//! protocol options`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::pg::codec::CodecError;
use crate::pg::codec::buf::{Reader, put_frame, put_str};

/// The server does not support the requested minor version or some `_pq_.` options; the
/// session continues with `newest_minor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiateProtocolVersion {
    /// The newest minor version the server supports for the requested major version.
    pub newest_minor: u16,
    /// The protocol options (`_pq_.…`) it did not recognize.
    pub unrecognized: Vec<String>,
}

impl NegotiateProtocolVersion {
    pub const TAG: u8 = b'v';

    pub(crate) fn decode(body: &Bytes) -> Result<Self, CodecError> {
        let mut r = Reader::new("NegotiateProtocolVersion", body);
        let minor = r.i32()?;
        let newest_minor =
            u16::try_from(minor).map_err(|_| r.error(format!("invalid minor version {minor}")))?;
        let count = r.i32()?;
        // Each option takes at least its terminator.
        let count = usize::try_from(count)
            .ok()
            .filter(|&n| n <= r.remaining())
            .ok_or_else(|| r.error(format!("invalid option count {count}")))?;
        let unrecognized = (0..count)
            .map(|_| r.string())
            .collect::<Result<Vec<_>, _>>()?;
        r.finish()?;
        Ok(Self {
            newest_minor,
            unrecognized,
        })
    }

    /// Appends the message.
    ///
    /// # Panics
    /// With more than `i32::MAX` options (the message could not be framed anyway).
    pub fn encode(&self, out: &mut BytesMut) {
        put_frame(out, Self::TAG, |out| {
            out.put_i32(self.newest_minor.into());
            out.put_i32(i32::try_from(self.unrecognized.len()).expect("too many options"));
            for option in &self.unrecognized {
                put_str(out, option);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::codec::BackendMessage;
    use crate::pg::codec::test_util::{be_err, decode_be, roundtrip_be, tagged};

    #[test]
    fn negotiate_protocol_version_decodes_from_documented_bytes() {
        let msg = decode_be(&tagged(b'v', b"\0\0\0\0\0\0\0\x01_pq_.foo\0"));
        assert_eq!(
            msg,
            BackendMessage::NegotiateProtocolVersion(NegotiateProtocolVersion {
                newest_minor: 0,
                unrecognized: vec!["_pq_.foo".into()]
            })
        );
        roundtrip_be(&msg);
    }

    #[test]
    fn negotiate_protocol_version_with_bad_counts_is_rejected() {
        for body in [
            &b"\0\0\0\x02\0\0\0\x02_pq_.a\0"[..],
            b"\0\0\0\x02\xff\xff\xff\xff",
            b"\0\0\0\x02\x7f\xff\xff\xff",
            b"\xff\xff\xff\xff\0\0\0\0",
            b"\0\0\0\x02\0\0\0\0x",
        ] {
            assert!(
                matches!(be_err(&tagged(b'v', body)), CodecError::Malformed { .. }),
                "{body:?}"
            );
        }
    }

    #[test]
    fn negotiate_protocol_version_without_options_roundtrips() {
        roundtrip_be(&BackendMessage::NegotiateProtocolVersion(
            NegotiateProtocolVersion {
                newest_minor: 2,
                unrecognized: vec![],
            },
        ));
    }
}
