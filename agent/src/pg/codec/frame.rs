//! Header-only framing of tagged messages (1-byte tag, Int32 length including itself).

use bytes::{Buf, Bytes, BytesMut};

use super::CodecError;

/// Bytes in a tagged message header: the tag and the length word.
pub const HEADER_LEN: usize = 5;

/// The header of one tagged message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The message type byte.
    pub tag: u8,
    /// The length word as declared on the wire: it counts itself (4 bytes) and the body, not
    /// the tag. Always at least 4.
    pub len: usize,
}

impl FrameHeader {
    /// Bytes after the length word.
    pub fn body_len(&self) -> usize {
        self.len - 4
    }

    /// Bytes of the whole message, tag included: what a relay forwards.
    pub fn frame_len(&self) -> usize {
        self.len + 1
    }
}

/// Reads the header at the start of `buf` without consuming or decoding anything, so a relay
/// can forward messages it does not inspect. `Ok(None)` until 5 bytes are available. Fails
/// only on an impossible length (negative or under 4); the tag is not checked. Prefer
/// [`peek_frame_capped`] on untrusted input.
pub fn peek_frame(buf: &[u8]) -> Result<Option<FrameHeader>, CodecError> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    if len < 4 {
        return Err(CodecError::InvalidLength {
            message_type: "message",
            len: len.into(),
        });
    }
    Ok(Some(FrameHeader {
        tag: header[0],
        len: len as usize,
    }))
}

/// [`peek_frame`], also rejecting a body longer than `max_body` bytes (see
/// [`Caps`](super::Caps)).
pub fn peek_frame_capped(buf: &[u8], max_body: usize) -> Result<Option<FrameHeader>, CodecError> {
    let header = peek_frame(buf)?;
    if let Some(h) = header
        && h.body_len() > max_body
    {
        return Err(CodecError::TooLarge {
            message_type: "message",
            len: h.body_len(),
            max: max_body,
        });
    }
    Ok(header)
}

/// Limits a decoder applies to one message type, from its header.
pub(crate) struct Limits {
    pub(crate) max_body: usize,
    /// The exact body length of a fixed-size message.
    pub(crate) exact: Option<usize>,
}

/// Checks the header at the start of `buf` against `limits` and, once the whole message is
/// buffered, splits it off and returns its body (zero-copy). Nothing is consumed on `Ok(None)`.
pub(crate) fn take_body(
    buf: &mut BytesMut,
    message_type: &'static str,
    limits: Limits,
) -> Result<Option<Bytes>, CodecError> {
    let Some(header) = peek_frame(buf).map_err(|_| CodecError::InvalidLength {
        message_type,
        len: declared_len(buf),
    })?
    else {
        return Ok(None);
    };
    let body_len = header.body_len();
    if limits.exact.is_some_and(|exact| exact != body_len) {
        return Err(CodecError::InvalidLength {
            message_type,
            len: declared_len(buf),
        });
    }
    if body_len > limits.max_body {
        return Err(CodecError::TooLarge {
            message_type,
            len: body_len,
            max: limits.max_body,
        });
    }
    if buf.len() < header.frame_len() {
        return Ok(None);
    }
    buf.advance(HEADER_LEN);
    Ok(Some(buf.split_to(body_len).freeze()))
}

fn declared_len(buf: &[u8]) -> i64 {
    buf.get(1..HEADER_LEN)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(0, |b| i32::from_be_bytes(b).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_needs_five_bytes() {
        assert_eq!(peek_frame(b"").unwrap(), None);
        assert_eq!(peek_frame(b"Q\0\0\0").unwrap(), None);
        let h = peek_frame(b"Q\0\0\0\x09sel").unwrap().unwrap();
        assert_eq!(h.tag, b'Q');
        assert_eq!(h.len, 9);
        assert_eq!(h.body_len(), 5);
        assert_eq!(h.frame_len(), 10);
    }

    #[test]
    fn peek_rejects_negative_and_short_lengths() {
        assert!(matches!(
            peek_frame(b"Q\xff\xff\xff\xff"),
            Err(CodecError::InvalidLength { len: -1, .. })
        ));
        assert!(matches!(
            peek_frame(b"S\0\0\0\x03"),
            Err(CodecError::InvalidLength { len: 3, .. })
        ));
        assert!(peek_frame(b"S\0\0\0\x04").unwrap().is_some());
    }

    #[test]
    fn peek_capped_rejects_oversized_header_without_body() {
        let err = peek_frame_capped(b"d\x7f\xff\xff\xff", 1 << 20).unwrap_err();
        assert!(matches!(err, CodecError::TooLarge { max: 1048576, .. }));
        assert!(
            peek_frame_capped(b"d\0\0\0\x08", 4)
                .unwrap()
                .is_some_and(|h| h.body_len() == 4)
        );
    }

    #[test]
    fn take_body_consumes_exactly_one_frame() {
        let mut buf = BytesMut::from(&b"Q\0\0\0\x06x\0Q"[..]);
        let limits = || Limits {
            max_body: 100,
            exact: None,
        };
        let body = take_body(&mut buf, "Query", limits()).unwrap().unwrap();
        assert_eq!(&body[..], b"x\0");
        assert_eq!(&buf[..], b"Q");
        assert_eq!(take_body(&mut buf, "Query", limits()).unwrap(), None);
        assert_eq!(&buf[..], b"Q");
    }
}
