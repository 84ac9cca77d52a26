//! `p`: PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse share one tag; the
//! body's layout depends on which authentication request the server sent last. The message is
//! therefore decoded raw, and these helpers parse it once the state is known.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::pg::codec::CodecError;
use crate::pg::codec::buf::{Reader, put_frame, put_nullable, put_str};
use crate::pg::codec::redact::{Redacted, RedactedValue};

/// A raw `p` message body (zero-copy).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordMessage(pub Bytes);

impl PasswordMessage {
    pub const TAG: u8 = b'p';

    /// A cleartext (or `md5…`-hashed) password message.
    pub fn from_password(password: &str) -> Self {
        let mut body = BytesMut::with_capacity(password.len() + 1);
        put_str(&mut body, password);
        Self(body.freeze())
    }

    /// The raw body.
    pub fn body(&self) -> &Bytes {
        &self.0
    }

    /// The password of an answer to AuthenticationCleartextPassword or AuthenticationMD5Password:
    /// a NUL-terminated string filling the body exactly. Not NUL, not UTF-8: use
    /// [`PasswordMessage::password_bytes`].
    pub fn password(&self) -> Result<&str, CodecError> {
        std::str::from_utf8(self.password_bytes()?)
            .map_err(|_| CodecError::malformed("PasswordMessage", "string is not valid UTF-8"))
    }

    /// The password bytes, without the terminator, whatever their encoding.
    pub fn password_bytes(&self) -> Result<&[u8], CodecError> {
        match self.0.iter().position(|&b| b == 0) {
            Some(nul) if nul + 1 == self.0.len() => Ok(&self.0[..nul]),
            Some(_) => Err(CodecError::malformed(
                "PasswordMessage",
                "unexpected bytes after the password",
            )),
            None => Err(CodecError::malformed(
                "PasswordMessage",
                "string is not NUL-terminated",
            )),
        }
    }

    /// Parses the body as a SASLInitialResponse (answer to AuthenticationSASL).
    pub fn sasl_initial_response(&self) -> Result<SaslInitialResponse, CodecError> {
        SaslInitialResponse::parse(&self.0)
    }

    /// The body as a SASLResponse (answer to AuthenticationSASLContinue).
    pub fn sasl_response(&self) -> SaslResponse {
        SaslResponse::parse(&self.0)
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut BytesMut) {
        put_frame(out, Self::TAG, |out| out.put_slice(&self.0));
    }
}

/// SASLInitialResponse: `String mechanism, Int32 length or -1, bytes`.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslInitialResponse {
    /// The mechanism the client picked, e.g. `SCRAM-SHA-256`.
    pub mechanism: String,
    /// The client-first message (zero-copy); `None` when absent.
    pub data: Option<Bytes>,
}

impl SaslInitialResponse {
    /// Parses a `p` body.
    pub fn parse(body: &Bytes) -> Result<Self, CodecError> {
        let mut r = Reader::new("SASLInitialResponse", body);
        let mechanism = r.string()?;
        let data = r.nullable()?;
        r.finish()?;
        Ok(Self { mechanism, data })
    }

    /// Appends the whole `p` message.
    pub fn encode(&self, out: &mut BytesMut) {
        put_frame(out, PasswordMessage::TAG, |out| {
            put_str(out, &self.mechanism);
            put_nullable(out, self.data.as_deref());
        });
    }
}

/// SASLResponse (and GSSResponse): the whole body is mechanism data.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslResponse {
    /// Zero-copy.
    pub data: Bytes,
}

impl SaslResponse {
    /// Takes a `p` body (any bytes are valid).
    pub fn parse(body: &Bytes) -> Self {
        Self { data: body.clone() }
    }

    /// Appends the whole `p` message.
    pub fn encode(&self, out: &mut BytesMut) {
        put_frame(out, PasswordMessage::TAG, |out| out.put_slice(&self.data));
    }
}

impl fmt::Debug for PasswordMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PasswordMessage")
            .field(&Redacted(&self.0))
            .finish()
    }
}

impl fmt::Debug for SaslInitialResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslInitialResponse")
            .field("mechanism", &self.mechanism)
            .field("data", &RedactedValue(self.data.as_deref()))
            .finish()
    }
}

impl fmt::Debug for SaslResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslResponse")
            .field("data", &Redacted(&self.data))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::codec::FrontendMessage;
    use crate::pg::codec::test_util::{decode_fe, roundtrip_fe, tagged};

    fn body_of(bytes: &[u8]) -> PasswordMessage {
        match decode_fe(bytes) {
            FrontendMessage::PasswordMessage(p) => p,
            other => panic!("not a PasswordMessage: {other:?}"),
        }
    }

    #[test]
    fn cleartext_password_decodes_from_documented_bytes() {
        let p = body_of(b"p\0\0\0\x0bsecret\0");
        assert_eq!(p.password().unwrap(), "secret");
        roundtrip_fe(&FrontendMessage::PasswordMessage(p));
    }

    #[test]
    fn password_must_fill_the_body_exactly() {
        assert!(body_of(b"p\0\0\0\x0asecret").password().is_err());
        assert!(body_of(b"p\0\0\0\x0ase\0ret").password().is_err());
        assert!(body_of(b"p\0\0\0\x07\xff\xfe\0").password().is_err());
        assert_eq!(
            body_of(b"p\0\0\0\x07\xff\xfe\0").password_bytes().unwrap(),
            b"\xff\xfe"
        );
    }

    #[test]
    fn from_password_encodes_a_terminated_string() {
        let mut out = BytesMut::new();
        PasswordMessage::from_password("md5abc").encode(&mut out);
        assert_eq!(&out[..], b"p\0\0\0\x0bmd5abc\0");
    }

    #[test]
    fn sasl_initial_response_parses_from_documented_bytes() {
        let body = b"SCRAM-SHA-256\0\0\0\0\x21n,,n=,r=rOprNGfwEbeRWgbNEkqO%hvYD";
        let p = body_of(&tagged(b'p', body));
        let initial = p.sasl_initial_response().unwrap();
        assert_eq!(initial.mechanism, "SCRAM-SHA-256");
        assert_eq!(
            initial.data.as_deref(),
            Some(&b"n,,n=,r=rOprNGfwEbeRWgbNEkqO%hvYD"[..])
        );
        let mut out = BytesMut::new();
        initial.encode(&mut out);
        assert_eq!(&out[..], &tagged(b'p', body)[..]);
    }

    #[test]
    fn sasl_initial_response_without_data_uses_minus_one() {
        let p = body_of(&tagged(b'p', b"SCRAM-SHA-256\0\xff\xff\xff\xff"));
        assert_eq!(p.sasl_initial_response().unwrap().data, None);
    }

    #[test]
    fn sasl_initial_response_with_wrong_length_is_rejected() {
        let p = body_of(&tagged(b'p', b"SCRAM-SHA-256\0\0\0\0\x05abc"));
        assert!(p.sasl_initial_response().is_err());
        let p = body_of(&tagged(b'p', b"SCRAM-SHA-256\0\0\0\0\x01abc"));
        assert!(p.sasl_initial_response().is_err());
    }

    #[test]
    fn sasl_response_is_the_whole_body() {
        let p = body_of(&tagged(b'p', b"c=biws,r=abc,p=xyz"));
        let resp = p.sasl_response();
        assert_eq!(&resp.data[..], b"c=biws,r=abc,p=xyz");
        let mut out = BytesMut::new();
        resp.encode(&mut out);
        assert_eq!(&out[..], &tagged(b'p', b"c=biws,r=abc,p=xyz")[..]);
    }
}
