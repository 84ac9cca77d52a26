//! Tagged messages from the client (frontend) to the server.

mod bind;
mod close;
mod copy_fail;
mod describe;
mod execute;
mod function_call;
mod parse;
mod password;
mod query;

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

pub use bind::Bind;
pub use close::Close;
pub use copy_fail::CopyFail;
pub use describe::{Describe, TargetKind};
pub use execute::Execute;
pub use function_call::FunctionCall;
pub use parse::Parse;
pub use password::{PasswordMessage, SaslInitialResponse, SaslResponse};
pub use query::Query;

use super::buf::put_frame;
use super::frame::{Limits, take_body};
use super::redact::Redacted;
use super::{Caps, CodecError};

/// One client message after the startup phase. `Debug` shows payload sizes, not payloads.
#[derive(Clone, PartialEq, Eq)]
pub enum FrontendMessage {
    /// `Q`: simple query (possibly several statements).
    Query(Query),
    /// `P`: prepare a statement.
    Parse(Parse),
    /// `B`: bind parameters to a statement, making a portal.
    Bind(Bind),
    /// `D`: describe a statement or portal.
    Describe(Describe),
    /// `E`: run a portal.
    Execute(Execute),
    /// `C`: close a statement or portal.
    Close(Close),
    /// `S`: end of an extended-query batch.
    Sync,
    /// `H`: ask the server to flush its output.
    Flush,
    /// `d`: COPY FROM STDIN data (zero-copy).
    CopyData(Bytes),
    /// `c`: end of COPY data.
    CopyDone,
    /// `f`: abort COPY FROM STDIN.
    CopyFail(CopyFail),
    /// `F`: fast-path function call (deny by default: it bypasses SQL).
    FunctionCall(FunctionCall),
    /// `X`: close the session.
    Terminate,
    /// `p`: password, SASLInitialResponse, SASLResponse or GSSResponse. Which one depends on
    /// the authentication exchange, so the body is kept raw; see [`PasswordMessage`].
    PasswordMessage(PasswordMessage),
}

/// A message type's name and header limits.
fn spec(tag: u8, caps: &Caps) -> Option<(&'static str, Limits)> {
    let large = |max| Limits {
        max_body: max,
        exact: None,
    };
    let small = large(caps.max_message.min(Caps::SMALL_MESSAGE_LIMIT));
    let empty = Limits {
        max_body: 0,
        exact: Some(0),
    };
    Some(match tag {
        Query::TAG => ("Query", large(caps.max_message)),
        Parse::TAG => ("Parse", large(caps.max_message)),
        Bind::TAG => ("Bind", large(caps.max_message)),
        Describe::TAG => ("Describe", small),
        Execute::TAG => ("Execute", small),
        Close::TAG => ("Close", small),
        b'S' => ("Sync", empty),
        b'H' => ("Flush", empty),
        b'd' => ("CopyData", large(caps.max_message)),
        b'c' => ("CopyDone", empty),
        CopyFail::TAG => ("CopyFail", small),
        FunctionCall::TAG => ("FunctionCall", large(caps.max_message)),
        b'X' => ("Terminate", empty),
        PasswordMessage::TAG => (
            "PasswordMessage",
            large(caps.max_message.min(Caps::AUTH_TOKEN_LIMIT)),
        ),
        _ => return None,
    })
}

/// Decodes one client message from the front of `buf`.
///
/// `Ok(None)`: more bytes are needed (nothing consumed). An unknown tag fails as soon as its
/// byte arrives; a length over the cap for its type fails from the 5-byte header alone.
pub fn decode_frontend(
    buf: &mut BytesMut,
    caps: &Caps,
) -> Result<Option<FrontendMessage>, CodecError> {
    let Some(&tag) = buf.first() else {
        return Ok(None);
    };
    let (name, limits) = spec(tag, caps).ok_or(CodecError::UnknownTag(tag))?;
    let Some(body) = take_body(buf, name, limits)? else {
        return Ok(None);
    };
    let msg = match tag {
        Query::TAG => FrontendMessage::Query(Query::decode(&body)?),
        Parse::TAG => FrontendMessage::Parse(Parse::decode(&body)?),
        Bind::TAG => FrontendMessage::Bind(Bind::decode(&body)?),
        Describe::TAG => FrontendMessage::Describe(Describe::decode(&body)?),
        Execute::TAG => FrontendMessage::Execute(Execute::decode(&body)?),
        Close::TAG => FrontendMessage::Close(Close::decode(&body)?),
        b'S' => FrontendMessage::Sync,
        b'H' => FrontendMessage::Flush,
        b'd' => FrontendMessage::CopyData(body),
        b'c' => FrontendMessage::CopyDone,
        CopyFail::TAG => FrontendMessage::CopyFail(CopyFail::decode(&body)?),
        FunctionCall::TAG => FrontendMessage::FunctionCall(FunctionCall::decode(&body)?),
        b'X' => FrontendMessage::Terminate,
        PasswordMessage::TAG => FrontendMessage::PasswordMessage(PasswordMessage(body)),
        _ => return Err(CodecError::UnknownTag(tag)),
    };
    Ok(Some(msg))
}

impl FrontendMessage {
    /// The message type byte.
    pub fn tag(&self) -> u8 {
        match self {
            Self::Query(_) => Query::TAG,
            Self::Parse(_) => Parse::TAG,
            Self::Bind(_) => Bind::TAG,
            Self::Describe(_) => Describe::TAG,
            Self::Execute(_) => Execute::TAG,
            Self::Close(_) => Close::TAG,
            Self::Sync => b'S',
            Self::Flush => b'H',
            Self::CopyData(_) => b'd',
            Self::CopyDone => b'c',
            Self::CopyFail(_) => CopyFail::TAG,
            Self::FunctionCall(_) => FunctionCall::TAG,
            Self::Terminate => b'X',
            Self::PasswordMessage(_) => PasswordMessage::TAG,
        }
    }

    /// The message type's name in the protocol documentation.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Query(_) => "Query",
            Self::Parse(_) => "Parse",
            Self::Bind(_) => "Bind",
            Self::Describe(_) => "Describe",
            Self::Execute(_) => "Execute",
            Self::Close(_) => "Close",
            Self::Sync => "Sync",
            Self::Flush => "Flush",
            Self::CopyData(_) => "CopyData",
            Self::CopyDone => "CopyDone",
            Self::CopyFail(_) => "CopyFail",
            Self::FunctionCall(_) => "FunctionCall",
            Self::Terminate => "Terminate",
            Self::PasswordMessage(_) => "PasswordMessage",
        }
    }

    /// Appends the message, header included.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Self::Query(m) => m.encode(out),
            Self::Parse(m) => m.encode(out),
            Self::Bind(m) => m.encode(out),
            Self::Describe(m) => m.encode(out),
            Self::Execute(m) => m.encode(out),
            Self::Close(m) => m.encode(out),
            Self::CopyData(data) => put_frame(out, b'd', |out| out.put_slice(data)),
            Self::CopyFail(m) => m.encode(out),
            Self::FunctionCall(m) => m.encode(out),
            Self::PasswordMessage(m) => m.encode(out),
            Self::Sync | Self::Flush | Self::CopyDone | Self::Terminate => {
                put_frame(out, self.tag(), |_| {});
            }
        }
    }
}

impl fmt::Debug for FrontendMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut t = f.debug_tuple(self.name());
        match self {
            Self::Query(m) => t.field(m),
            Self::Parse(m) => t.field(m),
            Self::Bind(m) => t.field(m),
            Self::Describe(m) => t.field(m),
            Self::Execute(m) => t.field(m),
            Self::Close(m) => t.field(m),
            Self::CopyData(data) => t.field(&Redacted(data)),
            Self::CopyFail(m) => t.field(m),
            Self::FunctionCall(m) => t.field(m),
            Self::PasswordMessage(m) => t.field(m),
            Self::Sync | Self::Flush | Self::CopyDone | Self::Terminate => &mut t,
        };
        t.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::codec::test_util::{decode_fe, fe_err, roundtrip_fe, tagged};

    #[test]
    fn empty_messages_decode_from_documented_bytes() {
        assert_eq!(decode_fe(b"S\0\0\0\x04"), FrontendMessage::Sync);
        assert_eq!(decode_fe(b"H\0\0\0\x04"), FrontendMessage::Flush);
        assert_eq!(decode_fe(b"c\0\0\0\x04"), FrontendMessage::CopyDone);
        assert_eq!(decode_fe(b"X\0\0\0\x04"), FrontendMessage::Terminate);
        for msg in [
            FrontendMessage::Sync,
            FrontendMessage::Flush,
            FrontendMessage::CopyDone,
            FrontendMessage::Terminate,
        ] {
            let out = roundtrip_fe(&msg);
            assert_eq!(out.len(), 5);
        }
    }

    #[test]
    fn empty_messages_with_a_body_are_rejected_from_the_header() {
        // Only the header: the bogus length is refused before any body arrives.
        assert!(matches!(
            fe_err(b"S\0\0\0\x05"),
            CodecError::InvalidLength {
                message_type: "Sync",
                len: 5
            }
        ));
        assert!(matches!(
            fe_err(b"X\x7f\0\0\0"),
            CodecError::InvalidLength { .. }
        ));
    }

    #[test]
    fn copy_data_is_a_zero_copy_slice() {
        let bytes = tagged(b'd', b"1\talice\n");
        let ptr = bytes.as_ptr();
        let mut buf = bytes;
        let msg = decode_frontend(&mut buf, &Caps::default())
            .unwrap()
            .unwrap();
        let FrontendMessage::CopyData(data) = &msg else {
            panic!("not CopyData");
        };
        assert_eq!(&data[..], b"1\talice\n");
        assert_eq!(data.as_ptr(), ptr.wrapping_add(5));
        roundtrip_fe(&msg);
    }

    #[test]
    fn unknown_tag_is_rejected_from_its_first_byte() {
        assert_eq!(fe_err(b"Z"), CodecError::UnknownTag(b'Z'));
        assert_eq!(fe_err(b"\0\0\0\0\x08"), CodecError::UnknownTag(0));
        assert_eq!(CodecError::UnknownTag(b'Z').sqlstate(), "08P01");
    }

    #[test]
    fn negative_and_short_lengths_are_rejected() {
        for header in [
            &b"Q\xff\xff\xff\xff"[..],
            b"Q\x80\0\0\0",
            b"Q\0\0\0\0",
            b"Q\0\0\0\x03",
        ] {
            assert!(
                matches!(fe_err(header), CodecError::InvalidLength { .. }),
                "{header:?}"
            );
        }
    }

    #[test]
    fn oversized_header_is_rejected_before_the_body_arrives() {
        let caps = Caps::default();
        let len = i32::try_from(Caps::DEFAULT_MAX_MESSAGE + 5).unwrap();
        let mut buf = BytesMut::from(&b"d"[..]);
        buf.extend_from_slice(&len.to_be_bytes());
        assert_eq!(
            decode_frontend(&mut buf, &caps),
            Err(CodecError::TooLarge {
                message_type: "CopyData",
                len: Caps::DEFAULT_MAX_MESSAGE + 1,
                max: Caps::DEFAULT_MAX_MESSAGE
            })
        );
        // A body of exactly the cap is only waited for.
        let len = i32::try_from(Caps::DEFAULT_MAX_MESSAGE + 4).unwrap();
        let mut buf = BytesMut::from(&b"d"[..]);
        buf.extend_from_slice(&len.to_be_bytes());
        assert_eq!(decode_frontend(&mut buf, &caps), Ok(None));
    }

    #[test]
    fn control_messages_have_the_small_cap() {
        let mut buf = BytesMut::from(&b"E"[..]);
        buf.extend_from_slice(&10_005i32.to_be_bytes());
        assert!(matches!(
            decode_frontend(&mut buf, &Caps::default()),
            Err(CodecError::TooLarge { max: 10_000, .. })
        ));
        let mut buf = BytesMut::from(&b"p"[..]);
        buf.extend_from_slice(&70_000i32.to_be_bytes());
        assert!(matches!(
            decode_frontend(&mut buf, &Caps::default()),
            Err(CodecError::TooLarge { max: 65_535, .. })
        ));
    }

    #[test]
    fn custom_caps_apply() {
        let caps = Caps {
            max_message: 8,
            ..Caps::default()
        };
        let mut buf = tagged(b'Q', b"select 1\0");
        assert!(matches!(
            decode_frontend(&mut buf, &caps),
            Err(CodecError::TooLarge { len: 9, max: 8, .. })
        ));
    }

    #[test]
    fn partial_input_returns_none_and_consumes_nothing() {
        let mut bytes = BytesMut::new();
        FrontendMessage::Query(Query {
            sql: "select 1".into(),
        })
        .encode(&mut bytes);
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert_eq!(decode_frontend(&mut buf, &Caps::default()), Ok(None));
            assert_eq!(&buf[..], &bytes[..cut]);
        }
    }

    #[test]
    fn pipelined_messages_decode_one_at_a_time() {
        let mut buf = BytesMut::new();
        let msgs = [
            FrontendMessage::Parse(Parse {
                name: String::new(),
                query: "select $1".into(),
                param_types: vec![23],
            }),
            FrontendMessage::Bind(Bind {
                portal: String::new(),
                statement: String::new(),
                param_formats: vec![],
                params: vec![Some(Bytes::from_static(b"7"))],
                result_formats: vec![],
            }),
            FrontendMessage::Execute(Execute {
                portal: String::new(),
                max_rows: 0,
            }),
            FrontendMessage::Sync,
        ];
        for m in &msgs {
            m.encode(&mut buf);
        }
        for m in &msgs {
            assert_eq!(
                decode_frontend(&mut buf, &Caps::default())
                    .unwrap()
                    .as_ref(),
                Some(m)
            );
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn debug_output_hides_payloads() {
        let msgs = [
            FrontendMessage::CopyData(Bytes::from_static(b"4111111111111111")),
            FrontendMessage::PasswordMessage(PasswordMessage::from_password("hunter2")),
            FrontendMessage::Bind(Bind {
                portal: String::new(),
                statement: "s1".into(),
                param_formats: vec![],
                params: vec![Some(Bytes::from_static(b"hunter2")), None],
                result_formats: vec![],
            }),
            FrontendMessage::FunctionCall(FunctionCall {
                oid: 1,
                arg_formats: vec![],
                args: vec![Some(Bytes::from_static(b"hunter2"))],
                result_format: 0,
            }),
        ];
        for msg in msgs {
            let debug = format!("{msg:?}");
            assert!(
                !debug.contains("hunter2") && !debug.contains("4111"),
                "{debug}"
            );
            assert!(debug.contains("bytes>"), "{debug}");
        }
        assert_eq!(format!("{:?}", FrontendMessage::Sync), "Sync");
        let sasl = SaslResponse {
            data: Bytes::from_static(b"p=proof"),
        };
        assert!(!format!("{sasl:?}").contains("proof"));
    }

    #[test]
    fn tag_and_name_match_the_encoding() {
        let msg = FrontendMessage::Terminate;
        let mut out = BytesMut::new();
        msg.encode(&mut out);
        assert_eq!(out[0], msg.tag());
        assert_eq!(msg.name(), "Terminate");
    }

    /// Every message type: a generated message encodes to a frame that decodes back to it, and
    /// re-encoding the decoded message gives the very same bytes.
    mod every_type_roundtrips {
        use super::*;
        use proptest::collection::vec;
        use proptest::prelude::*;

        fn text() -> impl Strategy<Value = String> {
            "[^\\x00]{0,16}"
        }

        fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
            vec(any::<u8>(), 0..max).prop_map(Bytes::from)
        }

        fn kind() -> impl Strategy<Value = TargetKind> {
            prop_oneof![Just(TargetKind::Statement), Just(TargetKind::Portal)]
        }

        /// A value list with a matching format list: none, one, or one per value.
        fn values_and_formats() -> impl Strategy<Value = (Vec<Option<Bytes>>, Vec<i16>)> {
            vec(proptest::option::of(bytes(24)), 0..8).prop_flat_map(|values| {
                let n = values.len();
                (
                    Just(values),
                    prop_oneof![
                        Just(vec![]),
                        (0i16..2).prop_map(|f| vec![f]),
                        vec(0i16..2, n..=n),
                    ],
                )
            })
        }

        fn message() -> impl Strategy<Value = FrontendMessage> {
            prop_oneof![
                text().prop_map(|sql| FrontendMessage::Query(Query { sql })),
                (text(), text(), vec(any::<u32>(), 0..6)).prop_map(|(name, query, param_types)| {
                    FrontendMessage::Parse(Parse {
                        name,
                        query,
                        param_types,
                    })
                }),
                (text(), text(), values_and_formats(), vec(0i16..2, 0..4)).prop_map(
                    |(portal, statement, (params, param_formats), result_formats)| {
                        FrontendMessage::Bind(Bind {
                            portal,
                            statement,
                            param_formats,
                            params,
                            result_formats,
                        })
                    }
                ),
                (kind(), text())
                    .prop_map(|(kind, name)| FrontendMessage::Describe(Describe { kind, name })),
                (text(), any::<i32>()).prop_map(|(portal, max_rows)| {
                    FrontendMessage::Execute(Execute { portal, max_rows })
                }),
                (kind(), text())
                    .prop_map(|(kind, name)| FrontendMessage::Close(Close { kind, name })),
                Just(FrontendMessage::Sync),
                Just(FrontendMessage::Flush),
                bytes(64).prop_map(FrontendMessage::CopyData),
                Just(FrontendMessage::CopyDone),
                text().prop_map(|message| FrontendMessage::CopyFail(CopyFail { message })),
                (any::<u32>(), values_and_formats(), 0i16..2).prop_map(
                    |(oid, (args, arg_formats), result_format)| {
                        FrontendMessage::FunctionCall(FunctionCall {
                            oid,
                            arg_formats,
                            args,
                            result_format,
                        })
                    }
                ),
                Just(FrontendMessage::Terminate),
                bytes(64).prop_map(|b| FrontendMessage::PasswordMessage(PasswordMessage(b))),
            ]
        }

        proptest! {
            #[test]
            fn encode_decode_encode_is_the_identity(msg in message()) {
                let bytes = roundtrip_fe(&msg);
                let mut again = BytesMut::new();
                decode_fe(&bytes).encode(&mut again);
                prop_assert_eq!(&again[..], &bytes[..]);
            }
        }
    }
}
