//! `A` NotificationResponse: `Int32 process id, String channel, String payload`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::pg::codec::CodecError;
use crate::pg::codec::buf::{Reader, put_frame, put_str};

/// A NOTIFY delivered to a listening session (the payload can leak data too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationResponse {
    pub process_id: i32,
    pub channel: String,
    pub payload: String,
}

impl NotificationResponse {
    pub const TAG: u8 = b'A';

    pub(crate) fn decode(body: &Bytes) -> Result<Self, CodecError> {
        let mut r = Reader::new("NotificationResponse", body);
        let process_id = r.i32()?;
        let channel = r.string()?;
        let payload = r.string()?;
        r.finish()?;
        Ok(Self {
            process_id,
            channel,
            payload,
        })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut BytesMut) {
        put_frame(out, Self::TAG, |out| {
            out.put_i32(self.process_id);
            put_str(out, &self.channel);
            put_str(out, &self.payload);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::codec::BackendMessage;
    use crate::pg::codec::test_util::{be_err, decode_be, roundtrip_be, tagged};

    #[test]
    fn notification_decodes_from_documented_bytes() {
        let msg = decode_be(&tagged(b'A', b"\0\0\x10\x92jobs\0done\0"));
        assert_eq!(
            msg,
            BackendMessage::NotificationResponse(NotificationResponse {
                process_id: 4242,
                channel: "jobs".into(),
                payload: "done".into()
            })
        );
        roundtrip_be(&msg);
    }

    #[test]
    fn notification_without_payload_is_rejected() {
        assert!(matches!(
            be_err(&tagged(b'A', b"\0\0\x10\x92jobs\0")),
            CodecError::Malformed { .. }
        ));
    }
}
