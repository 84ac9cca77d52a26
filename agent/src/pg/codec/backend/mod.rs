//! Tagged messages from the server (backend) to the client.

mod authentication;
mod backend_key_data;
mod command_complete;
mod copy_response;
mod data_row;
mod error_response;
mod function_call_response;
mod negotiate_protocol_version;
mod notification_response;
mod parameter_description;
mod parameter_status;
mod ready_for_query;
mod row_description;

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

pub use authentication::Authentication;
pub use backend_key_data::BackendKeyData;
pub use command_complete::CommandComplete;
pub use copy_response::CopyResponse;
pub use data_row::{DataRow, DataRowBuilder, DataRowValues, Replacement};
pub use error_response::{ErrorResponse, NoticeResponse, Severity, field};
pub use function_call_response::FunctionCallResponse;
pub use negotiate_protocol_version::NegotiateProtocolVersion;
pub use notification_response::NotificationResponse;
pub use parameter_description::ParameterDescription;
pub use parameter_status::ParameterStatus;
pub use ready_for_query::{ReadyForQuery, TransactionStatus};
pub use row_description::{FieldDescription, RowDescription};

use super::buf::put_frame;
use super::frame::{Limits, take_body};
use super::redact::Redacted;
use super::startup::MAX_CANCEL_KEY_LEN;
use super::{Caps, CodecError};

/// One server message. `Debug` shows payload sizes (row values, COPY data, keys), not payloads.
#[derive(Clone, PartialEq, Eq)]
pub enum BackendMessage {
    /// `R`: an authentication request or outcome.
    Authentication(Authentication),
    /// `K`: the cancel key of this session.
    BackendKeyData(BackendKeyData),
    /// `S`: a run-time parameter's value.
    ParameterStatus(ParameterStatus),
    /// `Z`: ready for a new query.
    ReadyForQuery(ReadyForQuery),
    /// `T`: the columns of the rows to come.
    RowDescription(RowDescription),
    /// `D`: one row (zero-copy).
    DataRow(DataRow),
    /// `C`: a command finished.
    CommandComplete(CommandComplete),
    /// `I`: the query string was empty.
    EmptyQueryResponse,
    /// `E`: an error.
    ErrorResponse(ErrorResponse),
    /// `N`: a notice (same layout as ErrorResponse).
    NoticeResponse(NoticeResponse),
    /// `1`.
    ParseComplete,
    /// `2`.
    BindComplete,
    /// `3`.
    CloseComplete,
    /// `n`: the statement or portal returns no rows.
    NoData,
    /// `t`: a statement's parameter types.
    ParameterDescription(ParameterDescription),
    /// `s`: Execute hit its row limit.
    PortalSuspended,
    /// `G`: COPY FROM STDIN starts.
    CopyInResponse(CopyResponse),
    /// `H`: COPY TO STDOUT starts.
    CopyOutResponse(CopyResponse),
    /// `W`: COPY BOTH starts (replication).
    CopyBothResponse(CopyResponse),
    /// `d`: COPY data (zero-copy).
    CopyData(Bytes),
    /// `c`: end of COPY data.
    CopyDone,
    /// `A`: a NOTIFY.
    NotificationResponse(NotificationResponse),
    /// `V`: a fast-path function's result.
    FunctionCallResponse(FunctionCallResponse),
    /// `v`: the server supports an older minor version or not all protocol options.
    NegotiateProtocolVersion(NegotiateProtocolVersion),
}

fn spec(tag: u8, caps: &Caps) -> Option<(&'static str, Limits)> {
    let any = Limits {
        max_body: caps.max_backend_message,
        exact: None,
    };
    let exact = |n| Limits {
        max_body: n,
        exact: Some(n),
    };
    Some(match tag {
        Authentication::TAG => ("Authentication", any),
        BackendKeyData::TAG => (
            "BackendKeyData",
            Limits {
                max_body: 4 + MAX_CANCEL_KEY_LEN,
                exact: None,
            },
        ),
        ParameterStatus::TAG => ("ParameterStatus", any),
        ReadyForQuery::TAG => ("ReadyForQuery", exact(1)),
        RowDescription::TAG => ("RowDescription", any),
        DataRow::TAG => ("DataRow", any),
        CommandComplete::TAG => ("CommandComplete", any),
        b'I' => ("EmptyQueryResponse", exact(0)),
        ErrorResponse::TAG => ("ErrorResponse", any),
        ErrorResponse::NOTICE_TAG => ("NoticeResponse", any),
        b'1' => ("ParseComplete", exact(0)),
        b'2' => ("BindComplete", exact(0)),
        b'3' => ("CloseComplete", exact(0)),
        b'n' => ("NoData", exact(0)),
        ParameterDescription::TAG => ("ParameterDescription", any),
        b's' => ("PortalSuspended", exact(0)),
        CopyResponse::IN_TAG => ("CopyInResponse", any),
        CopyResponse::OUT_TAG => ("CopyOutResponse", any),
        CopyResponse::BOTH_TAG => ("CopyBothResponse", any),
        b'd' => ("CopyData", any),
        b'c' => ("CopyDone", exact(0)),
        NotificationResponse::TAG => ("NotificationResponse", any),
        FunctionCallResponse::TAG => ("FunctionCallResponse", any),
        NegotiateProtocolVersion::TAG => ("NegotiateProtocolVersion", any),
        _ => return None,
    })
}

/// Decodes one complete server frame (tag, length, body) that a relay has already delimited,
/// for the few messages it must read; `None` if it is not exactly one valid message. Copies the
/// frame: for rare messages, not for the row stream.
pub fn decode_backend_frame(frame: &[u8]) -> Option<BackendMessage> {
    let mut buf = BytesMut::from(frame);
    match decode_backend(&mut buf, &Caps::default()) {
        Ok(Some(msg)) if buf.is_empty() => Some(msg),
        _ => None,
    }
}

/// Decodes one server message from the front of `buf`.
///
/// `Ok(None)`: more bytes are needed (nothing consumed). An unknown tag fails as soon as its
/// byte arrives; a length over `caps.max_backend_message` (or impossible for a fixed-size
/// message) fails from the 5-byte header alone.
pub fn decode_backend(
    buf: &mut BytesMut,
    caps: &Caps,
) -> Result<Option<BackendMessage>, CodecError> {
    let Some(&tag) = buf.first() else {
        return Ok(None);
    };
    let (name, limits) = spec(tag, caps).ok_or(CodecError::UnknownTag(tag))?;
    let Some(body) = take_body(buf, name, limits)? else {
        return Ok(None);
    };
    use BackendMessage as M;
    let msg = match tag {
        Authentication::TAG => M::Authentication(Authentication::decode(&body)?),
        BackendKeyData::TAG => M::BackendKeyData(BackendKeyData::decode(&body)?),
        ParameterStatus::TAG => M::ParameterStatus(ParameterStatus::decode(&body)?),
        ReadyForQuery::TAG => M::ReadyForQuery(ReadyForQuery::decode(&body)?),
        RowDescription::TAG => M::RowDescription(RowDescription::decode(&body)?),
        DataRow::TAG => M::DataRow(DataRow::from_body(body)?),
        CommandComplete::TAG => M::CommandComplete(CommandComplete::decode(&body)?),
        b'I' => M::EmptyQueryResponse,
        ErrorResponse::TAG => M::ErrorResponse(ErrorResponse::decode("ErrorResponse", &body)?),
        ErrorResponse::NOTICE_TAG => {
            M::NoticeResponse(ErrorResponse::decode("NoticeResponse", &body)?)
        }
        b'1' => M::ParseComplete,
        b'2' => M::BindComplete,
        b'3' => M::CloseComplete,
        b'n' => M::NoData,
        ParameterDescription::TAG => M::ParameterDescription(ParameterDescription::decode(&body)?),
        b's' => M::PortalSuspended,
        CopyResponse::IN_TAG => M::CopyInResponse(CopyResponse::decode("CopyInResponse", &body)?),
        CopyResponse::OUT_TAG => {
            M::CopyOutResponse(CopyResponse::decode("CopyOutResponse", &body)?)
        }
        CopyResponse::BOTH_TAG => {
            M::CopyBothResponse(CopyResponse::decode("CopyBothResponse", &body)?)
        }
        b'd' => M::CopyData(body),
        b'c' => M::CopyDone,
        NotificationResponse::TAG => M::NotificationResponse(NotificationResponse::decode(&body)?),
        FunctionCallResponse::TAG => M::FunctionCallResponse(FunctionCallResponse::decode(&body)?),
        NegotiateProtocolVersion::TAG => {
            M::NegotiateProtocolVersion(NegotiateProtocolVersion::decode(&body)?)
        }
        _ => return Err(CodecError::UnknownTag(tag)),
    };
    Ok(Some(msg))
}

impl BackendMessage {
    /// The message type byte.
    pub fn tag(&self) -> u8 {
        match self {
            Self::Authentication(_) => Authentication::TAG,
            Self::BackendKeyData(_) => BackendKeyData::TAG,
            Self::ParameterStatus(_) => ParameterStatus::TAG,
            Self::ReadyForQuery(_) => ReadyForQuery::TAG,
            Self::RowDescription(_) => RowDescription::TAG,
            Self::DataRow(_) => DataRow::TAG,
            Self::CommandComplete(_) => CommandComplete::TAG,
            Self::EmptyQueryResponse => b'I',
            Self::ErrorResponse(_) => ErrorResponse::TAG,
            Self::NoticeResponse(_) => ErrorResponse::NOTICE_TAG,
            Self::ParseComplete => b'1',
            Self::BindComplete => b'2',
            Self::CloseComplete => b'3',
            Self::NoData => b'n',
            Self::ParameterDescription(_) => ParameterDescription::TAG,
            Self::PortalSuspended => b's',
            Self::CopyInResponse(_) => CopyResponse::IN_TAG,
            Self::CopyOutResponse(_) => CopyResponse::OUT_TAG,
            Self::CopyBothResponse(_) => CopyResponse::BOTH_TAG,
            Self::CopyData(_) => b'd',
            Self::CopyDone => b'c',
            Self::NotificationResponse(_) => NotificationResponse::TAG,
            Self::FunctionCallResponse(_) => FunctionCallResponse::TAG,
            Self::NegotiateProtocolVersion(_) => NegotiateProtocolVersion::TAG,
        }
    }

    /// The message type's name in the protocol documentation.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Authentication(_) => "Authentication",
            Self::BackendKeyData(_) => "BackendKeyData",
            Self::ParameterStatus(_) => "ParameterStatus",
            Self::ReadyForQuery(_) => "ReadyForQuery",
            Self::RowDescription(_) => "RowDescription",
            Self::DataRow(_) => "DataRow",
            Self::CommandComplete(_) => "CommandComplete",
            Self::EmptyQueryResponse => "EmptyQueryResponse",
            Self::ErrorResponse(_) => "ErrorResponse",
            Self::NoticeResponse(_) => "NoticeResponse",
            Self::ParseComplete => "ParseComplete",
            Self::BindComplete => "BindComplete",
            Self::CloseComplete => "CloseComplete",
            Self::NoData => "NoData",
            Self::ParameterDescription(_) => "ParameterDescription",
            Self::PortalSuspended => "PortalSuspended",
            Self::CopyInResponse(_) => "CopyInResponse",
            Self::CopyOutResponse(_) => "CopyOutResponse",
            Self::CopyBothResponse(_) => "CopyBothResponse",
            Self::CopyData(_) => "CopyData",
            Self::CopyDone => "CopyDone",
            Self::NotificationResponse(_) => "NotificationResponse",
            Self::FunctionCallResponse(_) => "FunctionCallResponse",
            Self::NegotiateProtocolVersion(_) => "NegotiateProtocolVersion",
        }
    }

    /// Appends the message, header included.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Self::Authentication(m) => m.encode(out),
            Self::BackendKeyData(m) => m.encode(out),
            Self::ParameterStatus(m) => m.encode(out),
            Self::ReadyForQuery(m) => m.encode(out),
            Self::RowDescription(m) => m.encode(out),
            Self::DataRow(m) => m.encode(out),
            Self::CommandComplete(m) => m.encode(out),
            Self::ErrorResponse(m) => m.encode(out),
            Self::NoticeResponse(m) => m.encode_notice(out),
            Self::ParameterDescription(m) => m.encode(out),
            Self::CopyInResponse(m) => m.encode_as(CopyResponse::IN_TAG, out),
            Self::CopyOutResponse(m) => m.encode_as(CopyResponse::OUT_TAG, out),
            Self::CopyBothResponse(m) => m.encode_as(CopyResponse::BOTH_TAG, out),
            Self::CopyData(data) => put_frame(out, b'd', |out| out.put_slice(data)),
            Self::NotificationResponse(m) => m.encode(out),
            Self::FunctionCallResponse(m) => m.encode(out),
            Self::NegotiateProtocolVersion(m) => m.encode(out),
            Self::EmptyQueryResponse
            | Self::ParseComplete
            | Self::BindComplete
            | Self::CloseComplete
            | Self::NoData
            | Self::PortalSuspended
            | Self::CopyDone => put_frame(out, self.tag(), |_| {}),
        }
    }
}

impl fmt::Debug for BackendMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut t = f.debug_tuple(self.name());
        match self {
            Self::Authentication(m) => t.field(m),
            Self::BackendKeyData(m) => t.field(m),
            Self::ParameterStatus(m) => t.field(m),
            Self::ReadyForQuery(m) => t.field(m),
            Self::RowDescription(m) => t.field(m),
            Self::DataRow(m) => t.field(m),
            Self::CommandComplete(m) => t.field(m),
            Self::ErrorResponse(m) | Self::NoticeResponse(m) => t.field(m),
            Self::ParameterDescription(m) => t.field(m),
            Self::CopyInResponse(m) | Self::CopyOutResponse(m) | Self::CopyBothResponse(m) => {
                t.field(m)
            }
            Self::CopyData(data) => t.field(&Redacted(data)),
            Self::NotificationResponse(m) => t.field(m),
            Self::FunctionCallResponse(m) => t.field(m),
            Self::NegotiateProtocolVersion(m) => t.field(m),
            Self::EmptyQueryResponse
            | Self::ParseComplete
            | Self::BindComplete
            | Self::CloseComplete
            | Self::NoData
            | Self::PortalSuspended
            | Self::CopyDone => &mut t,
        };
        t.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::codec::test_util::{be_err, decode_be, roundtrip_be, tagged};

    #[test]
    fn empty_messages_decode_from_documented_bytes() {
        for (bytes, msg) in [
            (b"1\0\0\0\x04", BackendMessage::ParseComplete),
            (b"2\0\0\0\x04", BackendMessage::BindComplete),
            (b"3\0\0\0\x04", BackendMessage::CloseComplete),
            (b"n\0\0\0\x04", BackendMessage::NoData),
            (b"s\0\0\0\x04", BackendMessage::PortalSuspended),
            (b"I\0\0\0\x04", BackendMessage::EmptyQueryResponse),
            (b"c\0\0\0\x04", BackendMessage::CopyDone),
        ] {
            assert_eq!(decode_be(bytes), msg);
            assert_eq!(&roundtrip_be(&msg)[..], bytes);
        }
    }

    #[test]
    fn empty_messages_with_a_body_are_rejected_from_the_header() {
        assert!(matches!(
            be_err(b"1\0\0\0\x05"),
            CodecError::InvalidLength {
                message_type: "ParseComplete",
                ..
            }
        ));
    }

    #[test]
    fn copy_data_roundtrips_zero_copy() {
        let msg = decode_be(&tagged(b'd', b"1\talice\n"));
        assert_eq!(
            msg,
            BackendMessage::CopyData(Bytes::from_static(b"1\talice\n"))
        );
        roundtrip_be(&msg);
    }

    #[test]
    fn unknown_backend_tag_is_rejected() {
        assert_eq!(be_err(b"Q"), CodecError::UnknownTag(b'Q'));
        assert_eq!(be_err(b"x\0\0\0\x04"), CodecError::UnknownTag(b'x'));
    }

    #[test]
    fn backend_negative_length_is_rejected() {
        assert!(matches!(
            be_err(b"D\xff\xff\xff\xf0"),
            CodecError::InvalidLength { .. }
        ));
    }

    #[test]
    fn backend_cap_is_separate_and_checked_from_the_header() {
        let caps = Caps::default();
        // 100 MiB is over the client cap but fine from the server: we just wait for it.
        let mut buf = BytesMut::from(&b"D"[..]);
        buf.extend_from_slice(&(100i32 << 20).to_be_bytes());
        assert_eq!(decode_backend(&mut buf, &caps), Ok(None));
        let mut buf = BytesMut::from(&b"D"[..]);
        buf.extend_from_slice(&((1i32 << 30) + 5).to_be_bytes());
        assert_eq!(
            decode_backend(&mut buf, &caps),
            Err(CodecError::TooLarge {
                message_type: "DataRow",
                len: (1 << 30) + 1,
                max: 1 << 30
            })
        );
    }

    #[test]
    fn partial_backend_input_returns_none_and_consumes_nothing() {
        let mut bytes = BytesMut::new();
        BackendMessage::ErrorResponse(ErrorResponse::new(Severity::Error, "42501", "denied"))
            .encode(&mut bytes);
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert_eq!(decode_backend(&mut buf, &Caps::default()), Ok(None));
            assert_eq!(&buf[..], &bytes[..cut]);
        }
    }

    #[test]
    fn debug_output_hides_payloads() {
        let msgs = [
            BackendMessage::CopyData(Bytes::from_static(b"bob@corp.test")),
            BackendMessage::DataRow(
                DataRow::from_values([Some(&b"bob@corp.test"[..]), None]).unwrap(),
            ),
            BackendMessage::BackendKeyData(BackendKeyData {
                process_id: 1,
                secret_key: Bytes::from_static(b"bob@corp.test"),
            }),
            BackendMessage::FunctionCallResponse(FunctionCallResponse {
                result: Some(Bytes::from_static(b"bob@corp.test")),
            }),
        ];
        for msg in msgs {
            let debug = format!("{msg:?}");
            assert!(!debug.contains("bob@"), "{debug}");
            assert!(debug.contains("<13 bytes>"), "{debug}");
        }
        let row = DataRow::from_values([Some(&b"x"[..]), None]).unwrap();
        assert_eq!(format!("{row:?}"), "DataRow([<1 bytes>, NULL])");
        assert_eq!(format!("{:?}", BackendMessage::NoData), "NoData");
    }

    #[test]
    fn a_simple_query_response_decodes_in_order() {
        let mut buf = BytesMut::new();
        let msgs = [
            BackendMessage::RowDescription(RowDescription {
                fields: vec![FieldDescription::text("?column?", 23)],
            }),
            BackendMessage::DataRow(DataRow::from_values([Some(&b"1"[..])]).unwrap()),
            BackendMessage::CommandComplete(CommandComplete {
                tag: "SELECT 1".into(),
            }),
            BackendMessage::ReadyForQuery(ReadyForQuery {
                status: TransactionStatus::Idle,
            }),
        ];
        for m in &msgs {
            m.encode(&mut buf);
        }
        for m in &msgs {
            let got = decode_backend(&mut buf, &Caps::default()).unwrap().unwrap();
            assert_eq!(&got, m);
            assert_eq!(got.name(), m.name());
        }
        assert!(buf.is_empty());
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

        fn authentication() -> impl Strategy<Value = Authentication> {
            prop_oneof![
                Just(Authentication::Ok),
                Just(Authentication::CleartextPassword),
                any::<[u8; 4]>().prop_map(|salt| Authentication::Md5Password { salt }),
                vec("[^\\x00]{1,16}", 1..4)
                    .prop_map(|mechanisms| Authentication::Sasl { mechanisms }),
                bytes(64).prop_map(Authentication::SaslContinue),
                bytes(64).prop_map(Authentication::SaslFinal),
                (
                    prop_oneof![Just(2), Just(6), Just(7), Just(8), Just(9)],
                    bytes(32)
                )
                    .prop_map(|(code, data)| Authentication::Other { code, data }),
            ]
        }

        /// A DataRow body: the column count, then each value (length or -1, bytes).
        fn data_row() -> impl Strategy<Value = DataRow> {
            vec(proptest::option::of(vec(any::<u8>(), 0..24)), 0..8).prop_map(|values| {
                let mut body = BytesMut::new();
                body.put_i16(values.len() as i16);
                for v in &values {
                    match v {
                        None => body.put_i32(-1),
                        Some(v) => {
                            body.put_i32(v.len() as i32);
                            body.put_slice(v);
                        }
                    }
                }
                DataRow::from_body(body.freeze()).expect("a well-formed DataRow body")
            })
        }

        fn field() -> impl Strategy<Value = FieldDescription> {
            super::super::row_description::tests::field()
        }

        fn error_fields() -> impl Strategy<Value = Vec<(u8, String)>> {
            vec((1u8..=255, text()), 0..6)
        }

        fn copy_response() -> impl Strategy<Value = CopyResponse> {
            prop_oneof![
                (0usize..6).prop_map(|n| CopyResponse {
                    format: 0,
                    column_formats: vec![0; n],
                }),
                vec(0i16..2, 0..6).prop_map(|column_formats| CopyResponse {
                    format: 1,
                    column_formats,
                }),
            ]
        }

        fn message() -> impl Strategy<Value = BackendMessage> {
            prop_oneof![
                authentication().prop_map(BackendMessage::Authentication),
                (any::<i32>(), vec(any::<u8>(), 4..=32)).prop_map(|(process_id, key)| {
                    BackendMessage::BackendKeyData(BackendKeyData {
                        process_id,
                        secret_key: Bytes::from(key),
                    })
                }),
                (text(), text()).prop_map(|(name, value)| {
                    BackendMessage::ParameterStatus(ParameterStatus { name, value })
                }),
                prop_oneof![
                    Just(TransactionStatus::Idle),
                    Just(TransactionStatus::InTransaction),
                    Just(TransactionStatus::Failed),
                ]
                .prop_map(|status| BackendMessage::ReadyForQuery(ReadyForQuery { status })),
                vec(field(), 0..5)
                    .prop_map(|fields| BackendMessage::RowDescription(RowDescription { fields })),
                data_row().prop_map(BackendMessage::DataRow),
                text().prop_map(|tag| BackendMessage::CommandComplete(CommandComplete { tag })),
                Just(BackendMessage::EmptyQueryResponse),
                error_fields()
                    .prop_map(|fields| BackendMessage::ErrorResponse(ErrorResponse { fields })),
                error_fields().prop_map(|fields| {
                    BackendMessage::NoticeResponse(NoticeResponse { fields })
                }),
                Just(BackendMessage::ParseComplete),
                Just(BackendMessage::BindComplete),
                Just(BackendMessage::CloseComplete),
                Just(BackendMessage::NoData),
                vec(any::<u32>(), 0..6).prop_map(|types| {
                    BackendMessage::ParameterDescription(ParameterDescription { types })
                }),
                Just(BackendMessage::PortalSuspended),
                copy_response().prop_map(BackendMessage::CopyInResponse),
                copy_response().prop_map(BackendMessage::CopyOutResponse),
                copy_response().prop_map(BackendMessage::CopyBothResponse),
                bytes(64).prop_map(BackendMessage::CopyData),
                Just(BackendMessage::CopyDone),
                (any::<i32>(), text(), text()).prop_map(|(process_id, channel, payload)| {
                    BackendMessage::NotificationResponse(NotificationResponse {
                        process_id,
                        channel,
                        payload,
                    })
                }),
                proptest::option::of(bytes(32)).prop_map(|result| {
                    BackendMessage::FunctionCallResponse(FunctionCallResponse { result })
                }),
                (any::<u16>(), vec("[^\\x00]{1,12}", 0..4)).prop_map(
                    |(newest_minor, unrecognized)| {
                        BackendMessage::NegotiateProtocolVersion(NegotiateProtocolVersion {
                            newest_minor,
                            unrecognized,
                        })
                    }
                ),
            ]
        }

        proptest! {
            #[test]
            fn encode_decode_encode_is_the_identity(msg in message()) {
                let bytes = roundtrip_be(&msg);
                let mut again = BytesMut::new();
                decode_be(&bytes).encode(&mut again);
                prop_assert_eq!(&again[..], &bytes[..]);
            }
        }
    }
}
