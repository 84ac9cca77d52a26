//! `R` Authentication: `Int32 code`, then code-specific data.

use bytes::{BufMut, Bytes, BytesMut};

use crate::pg::codec::CodecError;
use crate::pg::codec::buf::{Reader, put_frame, put_str};

/// An authentication request from the server, or its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// Code 0: authenticated.
    Ok,
    /// Code 3: send the password in clear.
    CleartextPassword,
    /// Code 5: send `md5(md5(password + user) + salt)`.
    Md5Password { salt: [u8; 4] },
    /// Code 10: start SASL with one of these mechanisms. Never offer `SCRAM-SHA-256-PLUS`
    /// across a TLS-terminating proxy (the channel binding cannot match).
    Sasl { mechanisms: Vec<String> },
    /// Code 11: server-first message.
    SaslContinue(Bytes),
    /// Code 12: server-final message (verify the server signature in it).
    SaslFinal(Bytes),
    /// Any other code (Kerberos 2, SCM 6, GSS 7, GSSContinue 8, SSPI 9, …) with its raw data.
    Other { code: i32, data: Bytes },
}

impl Authentication {
    pub const TAG: u8 = b'R';

    pub(crate) fn decode(body: &Bytes) -> Result<Self, CodecError> {
        let mut r = Reader::new("Authentication", body);
        let auth = match r.i32()? {
            0 => Self::Ok,
            3 => Self::CleartextPassword,
            5 => {
                let salt = [r.u8()?, r.u8()?, r.u8()?, r.u8()?];
                Self::Md5Password { salt }
            }
            10 => {
                let mut mechanisms = Vec::new();
                loop {
                    let mechanism = r.str()?;
                    if mechanism.is_empty() {
                        break;
                    }
                    mechanisms.push(mechanism.to_owned());
                }
                Self::Sasl { mechanisms }
            }
            11 => Self::SaslContinue(r.rest()),
            12 => Self::SaslFinal(r.rest()),
            code => Self::Other {
                code,
                data: r.rest(),
            },
        };
        r.finish()?;
        Ok(auth)
    }

    /// The request code on the wire.
    pub fn code(&self) -> i32 {
        match self {
            Self::Ok => 0,
            Self::CleartextPassword => 3,
            Self::Md5Password { .. } => 5,
            Self::Sasl { .. } => 10,
            Self::SaslContinue(_) => 11,
            Self::SaslFinal(_) => 12,
            Self::Other { code, .. } => *code,
        }
    }

    /// Appends the message. Mechanism names must be non-empty (an empty one ends the list).
    pub fn encode(&self, out: &mut BytesMut) {
        put_frame(out, Self::TAG, |out| {
            out.put_i32(self.code());
            match self {
                Self::Ok | Self::CleartextPassword => {}
                Self::Md5Password { salt } => out.put_slice(salt),
                Self::Sasl { mechanisms } => {
                    for m in mechanisms {
                        put_str(out, m);
                    }
                    out.put_u8(0);
                }
                Self::SaslContinue(data) | Self::SaslFinal(data) | Self::Other { data, .. } => {
                    out.put_slice(data);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::codec::BackendMessage;
    use crate::pg::codec::test_util::{be_err, decode_be, roundtrip_be, tagged};

    fn auth(bytes: &[u8]) -> Authentication {
        match decode_be(bytes) {
            BackendMessage::Authentication(a) => a,
            other => panic!("not Authentication: {other:?}"),
        }
    }

    #[test]
    fn authentication_ok_and_cleartext_decode_from_documented_bytes() {
        assert_eq!(auth(b"R\0\0\0\x08\0\0\0\0"), Authentication::Ok);
        assert_eq!(
            auth(b"R\0\0\0\x08\0\0\0\x03"),
            Authentication::CleartextPassword
        );
    }

    #[test]
    fn authentication_md5_carries_the_salt() {
        assert_eq!(
            auth(b"R\0\0\0\x0c\0\0\0\x05\x01\x02\x03\x04"),
            Authentication::Md5Password { salt: [1, 2, 3, 4] }
        );
        assert!(matches!(
            be_err(b"R\0\0\0\x0b\0\0\0\x05\x01\x02\x03"),
            CodecError::Malformed { .. }
        ));
    }

    #[test]
    fn authentication_sasl_lists_mechanisms() {
        let a = auth(&tagged(
            b'R',
            b"\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0",
        ));
        assert_eq!(
            a,
            Authentication::Sasl {
                mechanisms: vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()]
            }
        );
    }

    #[test]
    fn authentication_sasl_without_list_terminator_is_rejected() {
        assert!(matches!(
            be_err(&tagged(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0")),
            CodecError::Malformed { .. }
        ));
    }

    #[test]
    fn authentication_ok_with_trailing_bytes_is_rejected() {
        assert!(matches!(
            be_err(b"R\0\0\0\x09\0\0\0\0\0"),
            CodecError::Malformed { .. }
        ));
    }

    #[test]
    fn authentication_sasl_continue_and_final_keep_their_data() {
        assert_eq!(
            auth(&tagged(b'R', b"\0\0\0\x0br=abc,s=c2FsdA==,i=4096")),
            Authentication::SaslContinue(Bytes::from_static(b"r=abc,s=c2FsdA==,i=4096"))
        );
        assert_eq!(
            auth(&tagged(b'R', b"\0\0\0\x0cv=c2ln")),
            Authentication::SaslFinal(Bytes::from_static(b"v=c2ln"))
        );
    }

    #[test]
    fn authentication_other_codes_are_kept_raw() {
        assert_eq!(
            auth(&tagged(b'R', b"\0\0\0\x08token")),
            Authentication::Other {
                code: 8,
                data: Bytes::from_static(b"token")
            }
        );
    }

    #[test]
    fn authentication_roundtrips() {
        for a in [
            Authentication::Ok,
            Authentication::CleartextPassword,
            Authentication::Md5Password { salt: [9, 8, 7, 6] },
            Authentication::Sasl {
                mechanisms: vec!["SCRAM-SHA-256".into()],
            },
            Authentication::SaslContinue(Bytes::from_static(b"r=x")),
            Authentication::SaslFinal(Bytes::from_static(b"v=y")),
            Authentication::Other {
                code: 7,
                data: Bytes::new(),
            },
        ] {
            roundtrip_be(&BackendMessage::Authentication(a));
        }
    }
}
