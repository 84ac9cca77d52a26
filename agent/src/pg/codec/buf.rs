//! Checked reading of message bodies and framed writing of messages.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};

use super::CodecError;

/// A cursor over one message body. Every read is bounds-checked and fails with
/// [`CodecError::Malformed`] naming the message; byte payloads come out as zero-copy slices.
pub(crate) struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
    message_type: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(message_type: &'static str, buf: &'a Bytes) -> Self {
        Self {
            buf,
            pos: 0,
            message_type,
        }
    }

    pub(crate) fn error(&self, reason: impl Into<Cow<'static, str>>) -> CodecError {
        CodecError::malformed(self.message_type, reason)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let bytes = self
            .buf
            .get(self.pos..self.pos + N)
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .ok_or_else(|| self.error("message ends early"))?;
        self.pos += N;
        Ok(bytes)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn i8(&mut self) -> Result<i8, CodecError> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    pub(crate) fn i16(&mut self) -> Result<i16, CodecError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, CodecError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// `n` bytes as a zero-copy slice.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<Bytes, CodecError> {
        if n > self.remaining() {
            return Err(self.error("message ends early"));
        }
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    /// Skips `n` bytes.
    pub(crate) fn skip(&mut self, n: usize) -> Result<(), CodecError> {
        if n > self.remaining() {
            return Err(self.error("message ends early"));
        }
        self.pos += n;
        Ok(())
    }

    /// Everything left, as a zero-copy slice.
    pub(crate) fn rest(&mut self) -> Bytes {
        let out = self.buf.slice(self.pos..);
        self.pos = self.buf.len();
        out
    }

    /// A NUL-terminated UTF-8 string (the terminator is consumed, not returned).
    pub(crate) fn str(&mut self) -> Result<&'a str, CodecError> {
        let buf: &'a Bytes = self.buf;
        let tail = &buf[self.pos..];
        let nul = tail
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.error("string is not NUL-terminated"))?;
        let s = std::str::from_utf8(&tail[..nul])
            .map_err(|_| self.error("string is not valid UTF-8"))?;
        self.pos += nul + 1;
        Ok(s)
    }

    pub(crate) fn string(&mut self) -> Result<String, CodecError> {
        self.str().map(str::to_owned)
    }

    /// A 16-bit element count (read unsigned, as PostgreSQL does), checked against the bytes
    /// left so that no list is allocated beyond what the body can hold.
    pub(crate) fn count(
        &mut self,
        what: &'static str,
        min_elem_size: usize,
    ) -> Result<usize, CodecError> {
        let n = usize::from(self.u16()?);
        if n * min_elem_size > self.remaining() {
            return Err(self.error(format!("{n} {what} do not fit in the message")));
        }
        Ok(n)
    }

    /// An Int32 length followed by that many bytes, or -1 for NULL.
    pub(crate) fn nullable(&mut self) -> Result<Option<Bytes>, CodecError> {
        match self.i32()? {
            -1 => Ok(None),
            n if n < 0 => Err(self.error(format!("invalid value length {n}"))),
            n => self.bytes(n as usize).map(Some),
        }
    }

    /// A list of `count` Int16 values (format codes).
    pub(crate) fn i16_list(&mut self, what: &'static str) -> Result<Vec<i16>, CodecError> {
        let n = self.count(what, 2)?;
        (0..n).map(|_| self.i16()).collect()
    }

    /// A list of `count` Int32 object ids.
    pub(crate) fn oid_list(&mut self, what: &'static str) -> Result<Vec<u32>, CodecError> {
        let n = self.count(what, 4)?;
        (0..n).map(|_| self.u32()).collect()
    }

    /// A list of `count` nullable values.
    pub(crate) fn nullable_list(
        &mut self,
        what: &'static str,
    ) -> Result<Vec<Option<Bytes>>, CodecError> {
        let n = self.count(what, 4)?;
        (0..n).map(|_| self.nullable()).collect()
    }

    /// Fails if any byte is left.
    pub(crate) fn finish(self) -> Result<(), CodecError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(self.error(format!("{n} unexpected trailing bytes"))),
        }
    }
}

/// Writes one tagged message: `tag`, the length word, then what `body` appends.
///
/// # Panics
/// If the message is longer than `i32::MAX` bytes (it cannot be framed).
pub(crate) fn put_frame(out: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    out.put_u8(tag);
    put_length_prefixed(out, body);
}

/// Writes a length word covering itself and what `body` appends.
///
/// # Panics
/// If the message is longer than `i32::MAX` bytes (it cannot be framed).
pub(crate) fn put_length_prefixed(out: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.put_i32(0);
    body(out);
    let len = i32::try_from(out.len() - start).expect("PostgreSQL message longer than i32::MAX");
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Writes `s` up to its first NUL (a string cannot hold one on the wire), then the NUL.
pub(crate) fn put_str(out: &mut BytesMut, s: &str) {
    let bytes = s.as_bytes();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    out.put_slice(&bytes[..end]);
    out.put_u8(0);
}

/// Writes a 16-bit element count.
///
/// # Panics
/// If `n` is over 65 535 (the list cannot be framed).
pub(crate) fn put_count(out: &mut BytesMut, n: usize) {
    out.put_u16(u16::try_from(n).expect("PostgreSQL list longer than 65535 elements"));
}

/// Writes an Int32 length and the bytes, or -1 for NULL.
///
/// # Panics
/// If the value is longer than `i32::MAX`.
pub(crate) fn put_nullable(out: &mut BytesMut, value: Option<&[u8]>) {
    match value {
        None => out.put_i32(-1),
        Some(v) => {
            out.put_i32(i32::try_from(v.len()).expect("PostgreSQL value longer than i32::MAX"));
            out.put_slice(v);
        }
    }
}

pub(crate) fn put_i16_list(out: &mut BytesMut, list: &[i16]) {
    put_count(out, list.len());
    for &v in list {
        out.put_i16(v);
    }
}

pub(crate) fn put_oid_list(out: &mut BytesMut, list: &[u32]) {
    put_count(out, list.len());
    for &v in list {
        out.put_u32(v);
    }
}

pub(crate) fn put_nullable_list(out: &mut BytesMut, list: &[Option<Bytes>]) {
    put_count(out, list.len());
    for v in list {
        put_nullable(out, v.as_deref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_early_end_and_trailing_bytes() {
        let body = Bytes::from_static(b"\x00\x01ab\0x");
        let mut r = Reader::new("Test", &body);
        assert_eq!(r.u16().unwrap(), 1);
        assert_eq!(r.str().unwrap(), "ab");
        assert!(r.i32().is_err());
        let err = r.finish().unwrap_err();
        assert!(
            err.to_string().contains("1 unexpected trailing bytes"),
            "{err}"
        );
    }

    #[test]
    fn reader_rejects_unterminated_and_non_utf8_strings() {
        let body = Bytes::from_static(b"abc");
        assert!(
            Reader::new("T", &body)
                .str()
                .unwrap_err()
                .to_string()
                .contains("NUL")
        );
        let body = Bytes::from_static(b"\xff\xfe\0");
        assert!(
            Reader::new("T", &body)
                .str()
                .unwrap_err()
                .to_string()
                .contains("UTF-8")
        );
    }

    #[test]
    fn count_larger_than_the_body_is_rejected_before_allocating() {
        let body = Bytes::from_static(b"\xff\xff\0\0");
        assert!(Reader::new("T", &body).count("values", 4).is_err());
    }

    #[test]
    fn nullable_accepts_minus_one_and_rejects_other_negatives() {
        let body = Bytes::from_static(b"\xff\xff\xff\xff\xff\xff\xff\xfe");
        let mut r = Reader::new("T", &body);
        assert_eq!(r.nullable().unwrap(), None);
        assert!(r.nullable().is_err());
    }

    #[test]
    fn put_str_stops_at_an_embedded_nul() {
        let mut out = BytesMut::new();
        put_str(&mut out, "ab\0cd");
        assert_eq!(&out[..], b"ab\0");
    }

    #[test]
    fn put_frame_patches_the_length() {
        let mut out = BytesMut::from(&b"xx"[..]);
        put_frame(&mut out, b'Q', |o| put_str(o, "hi"));
        assert_eq!(&out[..], b"xxQ\0\0\0\x07hi\0");
    }
}
