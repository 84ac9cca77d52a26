//! The untagged packets a client sends first: SSLRequest, GSSENCRequest, CancelRequest and
//! StartupMessage (an Int32 length including itself, an Int32 code, then the body).
//!
//! After answering SSLRequest/GSSENCRequest, bytes the client sent *before* the answer must
//! not be trusted as the next packet (CVE-2021-23214): a proxy that accepts encryption should
//! check the buffer is empty at that point.

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::buf::{Reader, put_length_prefixed, put_str};
use super::redact::Redacted;
use super::{Caps, CodecError};

/// CancelRequest code (1234.5678).
pub const CANCEL_REQUEST_CODE: u32 = 80_877_102;
/// SSLRequest code (1234.5679).
pub const SSL_REQUEST_CODE: u32 = 80_877_103;
/// GSSENCRequest code (1234.5680).
pub const GSSENC_REQUEST_CODE: u32 = 80_877_104;
/// Shortest cancel key (protocol 3.0 keys are exactly 4 bytes).
pub const MIN_CANCEL_KEY_LEN: usize = 4;
/// Longest cancel key (protocol 3.2, PostgreSQL 18).
pub const MAX_CANCEL_KEY_LEN: usize = 256;
/// First byte of a TLS handshake record: a ClientHello sent without SSLRequest.
const TLS_HANDSHAKE: u8 = 0x16;

/// A frontend/backend protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion {
    pub major: u16,
    pub minor: u16,
}

impl ProtocolVersion {
    /// Protocol 3.0 (PostgreSQL 7.4 to 17).
    pub const V3_0: Self = Self { major: 3, minor: 0 };
    /// Protocol 3.2 (PostgreSQL 18: variable-length cancel keys).
    pub const V3_2: Self = Self { major: 3, minor: 2 };

    /// From the Int32 on the wire (major in the high 16 bits).
    pub fn from_code(code: u32) -> Self {
        Self {
            major: (code >> 16) as u16,
            minor: code as u16,
        }
    }

    /// The Int32 on the wire.
    pub fn code(self) -> u32 {
        (u32::from(self.major) << 16) | u32::from(self.minor)
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// One startup-phase packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupMessage {
    /// Asks for TLS; answer `S` or `N` (see [`EncryptionResponse`]).
    SslRequest,
    /// Asks for GSSAPI encryption; answer `G` or `N`. Always answer `N` to refuse (pgjdbc
    /// misbehaves on anything else).
    GssEncRequest,
    /// Cancels the query running on another connection.
    CancelRequest(CancelRequest),
    /// Opens a session.
    Startup(Startup),
}

/// A CancelRequest: sent on a fresh, unauthenticated connection.
#[derive(Clone, PartialEq, Eq)]
pub struct CancelRequest {
    pub process_id: i32,
    /// 4 bytes in protocol 3.0, up to 256 in 3.2.
    pub secret_key: Bytes,
}

impl fmt::Debug for CancelRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelRequest")
            .field("process_id", &self.process_id)
            .field("secret_key", &Redacted(&self.secret_key))
            .finish()
    }
}

/// A StartupMessage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Startup {
    /// Always major 3 once decoded; the minor may be newer than the server's (negotiate it
    /// down with NegotiateProtocolVersion).
    pub protocol: ProtocolVersion,
    /// In wire order. Decoded keys are non-empty and unique, values may be empty, and `user`
    /// is present and non-empty. The `user` is only the client's claim.
    pub params: Vec<(String, String)>,
}

impl Startup {
    /// The value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `user` parameter.
    pub fn user(&self) -> Option<&str> {
        self.param("user")
    }

    /// The database the server will open: `database`, defaulting to the user name.
    pub fn database(&self) -> Option<&str> {
        self.param("database")
            .filter(|d| !d.is_empty())
            .or_else(|| self.user())
    }

    /// Protocol options (`_pq_.` parameters, protocol 3.2+), to list as unrecognized in
    /// NegotiateProtocolVersion when not supported.
    pub fn protocol_options(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params
            .iter()
            .filter(|(k, _)| k.starts_with("_pq_."))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Decodes one startup-phase packet from the front of `buf`.
///
/// `Ok(None)`: more bytes are needed (nothing consumed). The length is checked against
/// `caps.max_startup` from the 4-byte length alone. A first byte of 0x16 is a TLS ClientHello
/// (direct TLS negotiation): [`CodecError::DirectTls`], detected from that byte alone.
pub fn decode_startup(
    buf: &mut BytesMut,
    caps: &Caps,
) -> Result<Option<StartupMessage>, CodecError> {
    match buf.first() {
        None => return Ok(None),
        Some(&TLS_HANDSHAKE) => return Err(CodecError::DirectTls),
        Some(_) => {}
    }
    let Some(len) = buf.get(..4) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    if len < 8 {
        return Err(CodecError::InvalidLength {
            message_type: "startup packet",
            len: len.into(),
        });
    }
    let body_len = len as usize - 4;
    if body_len > caps.max_startup {
        return Err(CodecError::TooLarge {
            message_type: "startup packet",
            len: body_len,
            max: caps.max_startup,
        });
    }
    if buf.len() < 4 + body_len {
        return Ok(None);
    }
    buf.advance(4);
    let body = buf.split_to(body_len).freeze();
    decode_body(&body).map(Some)
}

fn decode_body(body: &Bytes) -> Result<StartupMessage, CodecError> {
    let code = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    let message_type = match code {
        SSL_REQUEST_CODE => "SSLRequest",
        GSSENC_REQUEST_CODE => "GSSENCRequest",
        CANCEL_REQUEST_CODE => "CancelRequest",
        _ => "StartupMessage",
    };
    let mut r = Reader::new(message_type, body);
    r.u32()?;
    match code {
        SSL_REQUEST_CODE => r.finish().map(|()| StartupMessage::SslRequest),
        GSSENC_REQUEST_CODE => r.finish().map(|()| StartupMessage::GssEncRequest),
        CANCEL_REQUEST_CODE => {
            let process_id = r.i32()?;
            let secret_key = r.rest();
            if !(MIN_CANCEL_KEY_LEN..=MAX_CANCEL_KEY_LEN).contains(&secret_key.len()) {
                return Err(CodecError::InvalidCancelKeyLength {
                    message_type,
                    len: secret_key.len(),
                });
            }
            Ok(StartupMessage::CancelRequest(CancelRequest {
                process_id,
                secret_key,
            }))
        }
        _ => {
            let protocol = ProtocolVersion::from_code(code);
            if protocol.major != 3 {
                return Err(CodecError::UnsupportedProtocol {
                    major: protocol.major,
                    minor: protocol.minor,
                });
            }
            let params = decode_params(&mut r)?;
            r.finish()?;
            let startup = Startup { protocol, params };
            if startup.user().is_none_or(str::is_empty) {
                return Err(CodecError::MissingUser);
            }
            Ok(StartupMessage::Startup(startup))
        }
    }
}

/// `key\0value\0`… then a lone `\0`. An empty key is the terminator, so keys are non-empty.
fn decode_params(r: &mut Reader<'_>) -> Result<Vec<(String, String)>, CodecError> {
    let mut params: Vec<(String, String)> = Vec::new();
    loop {
        let key = r.str()?;
        if key.is_empty() {
            break;
        }
        let value = r.str()?;
        params.push((key.to_owned(), value.to_owned()));
    }
    if params.len() > 1 {
        let mut keys: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        if let Some(pair) = keys.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(CodecError::DuplicateParameter(pair[0].to_owned()));
        }
    }
    Ok(params)
}

impl StartupMessage {
    /// Appends this packet. A Startup's keys must be non-empty (an empty key would end the
    /// list early); strings are written up to their first NUL.
    pub fn encode(&self, out: &mut BytesMut) {
        put_length_prefixed(out, |out| match self {
            Self::SslRequest => out.put_u32(SSL_REQUEST_CODE),
            Self::GssEncRequest => out.put_u32(GSSENC_REQUEST_CODE),
            Self::CancelRequest(c) => {
                out.put_u32(CANCEL_REQUEST_CODE);
                out.put_i32(c.process_id);
                out.put_slice(&c.secret_key);
            }
            Self::Startup(s) => {
                out.put_u32(s.protocol.code());
                for (k, v) in &s.params {
                    put_str(out, k);
                    put_str(out, v);
                }
                out.put_u8(0);
            }
        });
    }
}

/// The single byte a server answers SSLRequest/GSSENCRequest with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncryptionResponse {
    /// `S`: proceed with the TLS handshake.
    SslAccepted,
    /// `G`: proceed with GSSAPI encryption.
    GssAccepted,
    /// `N`: continue unencrypted (send the StartupMessage next).
    Refused,
}

impl EncryptionResponse {
    /// The byte on the wire.
    pub fn byte(self) -> u8 {
        match self {
            Self::SslAccepted => b'S',
            Self::GssAccepted => b'G',
            Self::Refused => b'N',
        }
    }

    /// Appends the byte.
    pub fn encode(self, out: &mut BytesMut) {
        out.put_u8(self.byte());
    }

    /// Decodes the server's answer (one byte). A server that cannot handle the request may
    /// answer with an ErrorResponse (`E`) instead: that is an error here, and the buffer is
    /// left untouched so the caller can decode it as a backend message.
    pub fn decode(buf: &mut BytesMut) -> Result<Option<Self>, CodecError> {
        let response = match buf.first() {
            None => return Ok(None),
            Some(b'S') => Self::SslAccepted,
            Some(b'G') => Self::GssAccepted,
            Some(b'N') => Self::Refused,
            Some(b'E') => {
                return Err(CodecError::malformed(
                    "encryption response",
                    "server answered with an ErrorResponse",
                ));
            }
            Some(&other) => return Err(CodecError::UnknownTag(other)),
        };
        buf.advance(1);
        Ok(Some(response))
    }
}

/// Appends the `N` that refuses SSLRequest or GSSENCRequest.
pub fn encode_encryption_refused(out: &mut BytesMut) {
    EncryptionResponse::Refused.encode(out);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn decode(bytes: &[u8]) -> Result<Option<StartupMessage>, CodecError> {
        decode_startup(&mut BytesMut::from(bytes), &Caps::default())
    }

    fn packet(code: u32, rest: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(8 + rest.len() as i32).to_be_bytes());
        out.extend_from_slice(&code.to_be_bytes());
        out.extend_from_slice(rest);
        out
    }

    fn cancel(key_len: usize) -> Vec<u8> {
        let mut rest = 4242i32.to_be_bytes().to_vec();
        rest.extend((0..key_len).map(|i| i as u8));
        packet(CANCEL_REQUEST_CODE, &rest)
    }

    fn roundtrip(msg: &StartupMessage) {
        let mut out = BytesMut::new();
        msg.encode(&mut out);
        let mut buf = out.clone();
        assert_eq!(
            decode_startup(&mut buf, &Caps::default()).unwrap().as_ref(),
            Some(msg)
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn ssl_request_decodes_from_documented_bytes() {
        let bytes = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
        assert_eq!(decode(&bytes).unwrap(), Some(StartupMessage::SslRequest));
        roundtrip(&StartupMessage::SslRequest);
    }

    #[test]
    fn gssenc_request_decodes_from_documented_bytes() {
        let bytes = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];
        assert_eq!(decode(&bytes).unwrap(), Some(StartupMessage::GssEncRequest));
        roundtrip(&StartupMessage::GssEncRequest);
    }

    #[test]
    fn ssl_request_with_extra_bytes_is_malformed() {
        let bytes = packet(SSL_REQUEST_CODE, b"x");
        assert!(matches!(
            decode(&bytes),
            Err(CodecError::Malformed {
                message_type: "SSLRequest",
                ..
            })
        ));
    }

    #[test]
    fn cancel_request_with_protocol_3_0_key_decodes() {
        let bytes = [
            0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0x10, 0x92, 0xde, 0xad, 0xbe, 0xef,
        ];
        let expected = StartupMessage::CancelRequest(CancelRequest {
            process_id: 4242,
            secret_key: Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef]),
        });
        assert_eq!(decode(&bytes).unwrap(), Some(expected.clone()));
        roundtrip(&expected);
    }

    #[test]
    fn cancel_key_lengths_4_and_256_are_accepted() {
        for len in [4, 32, 256] {
            let Some(StartupMessage::CancelRequest(c)) = decode(&cancel(len)).unwrap() else {
                panic!("not a cancel request");
            };
            assert_eq!(c.process_id, 4242);
            assert_eq!(c.secret_key.len(), len);
            roundtrip(&StartupMessage::CancelRequest(c));
        }
    }

    #[test]
    fn cancel_key_lengths_3_and_257_are_rejected() {
        for len in [0, 3, 257] {
            assert_eq!(
                decode(&cancel(len)),
                Err(CodecError::InvalidCancelKeyLength {
                    message_type: "CancelRequest",
                    len
                })
            );
        }
    }

    #[test]
    fn cancel_request_without_process_id_is_malformed() {
        assert!(matches!(
            decode(&packet(CANCEL_REQUEST_CODE, b"\0\0")),
            Err(CodecError::Malformed { .. })
        ));
    }

    #[test]
    fn startup_message_decodes_params_in_order() {
        let bytes = packet(
            0x0003_0000,
            b"user\0alice\0database\0sales\0application_name\0\0\0",
        );
        let Some(StartupMessage::Startup(s)) = decode(&bytes).unwrap() else {
            panic!("not a startup message");
        };
        assert_eq!(s.protocol, ProtocolVersion::V3_0);
        assert_eq!(s.user(), Some("alice"));
        assert_eq!(s.database(), Some("sales"));
        assert_eq!(s.param("application_name"), Some(""));
        assert_eq!(s.params.len(), 3);
        roundtrip(&StartupMessage::Startup(s));
    }

    #[test]
    fn startup_database_defaults_to_user() {
        let Some(StartupMessage::Startup(s)) =
            decode(&packet(0x0003_0000, b"user\0bob\0\0")).unwrap()
        else {
            panic!("not a startup message");
        };
        assert_eq!(s.database(), Some("bob"));
    }

    #[test]
    fn startup_protocol_3_2_and_options_are_kept() {
        let bytes = packet(0x0003_0002, b"user\0u\0_pq_.foo\0bar\0\0");
        let Some(StartupMessage::Startup(s)) = decode(&bytes).unwrap() else {
            panic!("not a startup message");
        };
        assert_eq!(s.protocol, ProtocolVersion::V3_2);
        assert_eq!(s.protocol.to_string(), "3.2");
        assert_eq!(
            s.protocol_options().collect::<Vec<_>>(),
            [("_pq_.foo", "bar")]
        );
    }

    #[test]
    fn startup_without_user_is_rejected() {
        let bytes = packet(0x0003_0000, b"database\0d\0\0");
        assert_eq!(decode(&bytes), Err(CodecError::MissingUser));
        let bytes = packet(0x0003_0000, b"user\0\0\0");
        assert_eq!(decode(&bytes), Err(CodecError::MissingUser));
        assert_eq!(CodecError::MissingUser.sqlstate(), "28000");
    }

    #[test]
    fn duplicate_startup_params_are_rejected() {
        let bytes = packet(0x0003_0000, b"user\0a\0options\0x\0user\0b\0\0");
        assert_eq!(
            decode(&bytes),
            Err(CodecError::DuplicateParameter("user".into()))
        );
    }

    #[test]
    fn startup_params_must_end_with_a_terminator() {
        let bytes = packet(0x0003_0000, b"user\0alice\0");
        assert!(matches!(decode(&bytes), Err(CodecError::Malformed { .. })));
        let bytes = packet(0x0003_0000, b"user\0alice");
        assert!(matches!(decode(&bytes), Err(CodecError::Malformed { .. })));
        let bytes = packet(0x0003_0000, b"");
        assert!(matches!(decode(&bytes), Err(CodecError::Malformed { .. })));
    }

    #[test]
    fn startup_trailing_bytes_after_terminator_are_rejected() {
        let bytes = packet(0x0003_0000, b"user\0alice\0\0junk");
        assert!(matches!(decode(&bytes), Err(CodecError::Malformed { .. })));
    }

    #[test]
    fn startup_params_must_be_utf8() {
        let bytes = packet(0x0003_0000, b"user\0al\xffice\0\0");
        assert!(matches!(decode(&bytes), Err(CodecError::Malformed { .. })));
    }

    #[test]
    fn protocol_other_than_3_is_unsupported() {
        let bytes = packet(0x0002_0000, b"user\0a\0\0");
        assert_eq!(
            decode(&bytes),
            Err(CodecError::UnsupportedProtocol { major: 2, minor: 0 })
        );
        let bytes = packet(80_877_105, b"");
        assert_eq!(
            decode(&bytes),
            Err(CodecError::UnsupportedProtocol {
                major: 1234,
                minor: 5681
            })
        );
    }

    #[test]
    fn tls_client_hello_is_detected_from_the_first_byte() {
        assert_eq!(decode(&[0x16]), Err(CodecError::DirectTls));
        let hello = [
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ];
        assert_eq!(decode(&hello), Err(CodecError::DirectTls));
    }

    #[test]
    fn partial_startup_returns_none_and_consumes_nothing() {
        let bytes = packet(0x0003_0000, b"user\0alice\0\0");
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert_eq!(decode_startup(&mut buf, &Caps::default()).unwrap(), None);
            assert_eq!(&buf[..], &bytes[..cut]);
        }
    }

    #[test]
    fn oversized_startup_is_rejected_from_the_length_alone() {
        let mut buf = BytesMut::from(&10_005i32.to_be_bytes()[..]);
        assert_eq!(
            decode_startup(&mut buf, &Caps::default()),
            Err(CodecError::TooLarge {
                message_type: "startup packet",
                len: 10_001,
                max: 10_000
            })
        );
    }

    #[test]
    fn startup_of_exactly_the_maximum_size_is_accepted() {
        let filler = "x".repeat(10_000 - 4 - b"user\0u\0o\0\0\0".len());
        let rest = format!("user\0u\0o\0{filler}\0\0");
        let bytes = packet(0x0003_0000, rest.as_bytes());
        assert_eq!(bytes.len(), 10_004);
        assert!(decode(&bytes).unwrap().is_some());
    }

    #[test]
    fn startup_lengths_below_8_and_negative_are_rejected() {
        for len in [-1i32, 0, 4, 7] {
            let mut bytes = len.to_be_bytes().to_vec();
            bytes.extend_from_slice(&[0; 8]);
            assert!(
                matches!(decode(&bytes), Err(CodecError::InvalidLength { .. })),
                "{len}"
            );
        }
    }

    #[test]
    fn decode_consumes_exactly_one_packet() {
        let mut bytes = packet(SSL_REQUEST_CODE, b"");
        bytes.extend_from_slice(&packet(0x0003_0000, b"user\0u\0\0"));
        let mut buf = BytesMut::from(&bytes[..]);
        let caps = Caps::default();
        assert_eq!(
            decode_startup(&mut buf, &caps).unwrap(),
            Some(StartupMessage::SslRequest)
        );
        assert!(matches!(
            decode_startup(&mut buf, &caps).unwrap(),
            Some(StartupMessage::Startup(_))
        ));
        assert!(buf.is_empty());
    }

    #[test]
    fn encryption_refusal_is_a_single_n() {
        let mut out = BytesMut::new();
        encode_encryption_refused(&mut out);
        assert_eq!(&out[..], b"N");
    }

    #[test]
    fn encryption_response_decodes_one_byte() {
        let mut buf = BytesMut::from(&b"SN"[..]);
        assert_eq!(
            EncryptionResponse::decode(&mut buf).unwrap(),
            Some(EncryptionResponse::SslAccepted)
        );
        assert_eq!(
            EncryptionResponse::decode(&mut buf).unwrap(),
            Some(EncryptionResponse::Refused)
        );
        assert_eq!(EncryptionResponse::decode(&mut buf).unwrap(), None);
        let mut buf = BytesMut::from(&b"E\0\0\0\x04"[..]);
        assert!(EncryptionResponse::decode(&mut buf).is_err());
        assert_eq!(buf.len(), 5);
    }

    proptest! {
        #[test]
        fn startup_params_roundtrip(
            minor in 0u16..4,
            user in "[^\\x00]{1,20}",
            extra in proptest::collection::btree_map("[a-z_.]{1,12}", "[^\\x00]{0,20}", 0..8),
        ) {
            let mut params = vec![("user".to_owned(), user)];
            params.extend(extra.into_iter().filter(|(k, _)| k != "user"));
            let msg = StartupMessage::Startup(Startup {
                protocol: ProtocolVersion { major: 3, minor },
                params,
            });
            roundtrip(&msg);
        }

        #[test]
        fn cancel_requests_roundtrip(pid: i32, key in proptest::collection::vec(any::<u8>(), 4..=256)) {
            roundtrip(&StartupMessage::CancelRequest(CancelRequest {
                process_id: pid,
                secret_key: Bytes::from(key),
            }));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }
    }
}
