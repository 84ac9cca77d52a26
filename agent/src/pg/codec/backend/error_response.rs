//! `E` ErrorResponse and `N` NoticeResponse: repeated `Byte1 field type, String value`,
//! terminated by a zero byte.

use bytes::{BufMut, Bytes, BytesMut};

use crate::pg::codec::CodecError;
use crate::pg::codec::buf::{Reader, put_frame, put_str};
use crate::pg::sqlstate;

/// Field type bytes (PostgreSQL "Error and Notice Message Fields").
pub mod field {
    /// Severity, possibly localized.
    pub const SEVERITY: u8 = b'S';
    /// Severity, never localized (9.6+).
    pub const SEVERITY_NONLOCALIZED: u8 = b'V';
    /// SQLSTATE.
    pub const CODE: u8 = b'C';
    /// Primary message.
    pub const MESSAGE: u8 = b'M';
    /// Detail (may quote row data: a leak channel).
    pub const DETAIL: u8 = b'D';
    pub const HINT: u8 = b'H';
    /// Cursor position in the query string (1-based, in characters).
    pub const POSITION: u8 = b'P';
    pub const INTERNAL_POSITION: u8 = b'p';
    pub const INTERNAL_QUERY: u8 = b'q';
    pub const WHERE: u8 = b'W';
    pub const SCHEMA: u8 = b's';
    pub const TABLE: u8 = b't';
    pub const COLUMN: u8 = b'c';
    pub const DATA_TYPE: u8 = b'd';
    pub const CONSTRAINT: u8 = b'n';
    pub const FILE: u8 = b'F';
    pub const LINE: u8 = b'L';
    pub const ROUTINE: u8 = b'R';
}

/// A message severity, as PostgreSQL spells it in the non-localized `V` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// Ends the statement; the session continues.
    Error,
    /// Ends the session.
    Fatal,
    /// Ends all sessions.
    Panic,
    Warning,
    Notice,
    Debug,
    Info,
    Log,
}

impl Severity {
    /// The non-localized spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "ERROR",
            Self::Fatal => "FATAL",
            Self::Panic => "PANIC",
            Self::Warning => "WARNING",
            Self::Notice => "NOTICE",
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Log => "LOG",
        }
    }

    /// From the non-localized spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ERROR" => Self::Error,
            "FATAL" => Self::Fatal,
            "PANIC" => Self::Panic,
            "WARNING" => Self::Warning,
            "NOTICE" => Self::Notice,
            "DEBUG" => Self::Debug,
            "INFO" => Self::Info,
            "LOG" => Self::Log,
            _ => return None,
        })
    }
}

/// An ErrorResponse (or, with the same layout, a NoticeResponse): typed fields in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    /// `(field type, value)`; a field type is never 0 (0 ends the list: such fields are
    /// skipped when encoding). See [`field`].
    pub fields: Vec<(u8, String)>,
}

/// A NoticeResponse has the ErrorResponse layout.
pub type NoticeResponse = ErrorResponse;

impl ErrorResponse {
    pub const TAG: u8 = b'E';
    pub const NOTICE_TAG: u8 = b'N';

    /// A response with, always, S and V (`severity`, non-localized), C (`sqlstate`) and M
    /// (`message`): what drivers need to classify it. Add more with [`Self::detail`],
    /// [`Self::hint`], [`Self::with_field`].
    pub fn new(severity: Severity, sqlstate: &str, message: impl Into<String>) -> Self {
        debug_assert!(sqlstate::is_valid(sqlstate), "bad SQLSTATE {sqlstate:?}");
        Self {
            fields: vec![
                (field::SEVERITY, severity.as_str().to_owned()),
                (field::SEVERITY_NONLOCALIZED, severity.as_str().to_owned()),
                (field::CODE, sqlstate.to_owned()),
                (field::MESSAGE, message.into()),
            ],
        }
    }

    /// Sets the D (detail) field.
    pub fn detail(self, detail: impl Into<String>) -> Self {
        self.with_field(field::DETAIL, detail)
    }

    /// Sets the H (hint) field.
    pub fn hint(self, hint: impl Into<String>) -> Self {
        self.with_field(field::HINT, hint)
    }

    /// Sets field `code`, replacing an existing one (field type 0 is ignored).
    pub fn with_field(mut self, code: u8, value: impl Into<String>) -> Self {
        if code == 0 {
            return self;
        }
        let value = value.into();
        match self.fields.iter_mut().find(|(c, _)| *c == code) {
            Some((_, v)) => *v = value,
            None => self.fields.push((code, value)),
        }
        self
    }

    /// The first value of field `code`.
    pub fn field(&self, code: u8) -> Option<&str> {
        self.fields
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_str())
    }

    /// The severity: the non-localized V field, else S.
    pub fn severity(&self) -> Option<&str> {
        self.field(field::SEVERITY_NONLOCALIZED)
            .or_else(|| self.field(field::SEVERITY))
    }

    /// The SQLSTATE (C field).
    pub fn code(&self) -> Option<&str> {
        self.field(field::CODE)
    }

    /// The primary message (M field).
    pub fn message(&self) -> Option<&str> {
        self.field(field::MESSAGE)
    }

    /// Whether the server will close the session after this (FATAL or PANIC).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self.severity().and_then(Severity::parse),
            Some(Severity::Fatal | Severity::Panic)
        )
    }

    pub(crate) fn decode(message_type: &'static str, body: &Bytes) -> Result<Self, CodecError> {
        let mut r = Reader::new(message_type, body);
        let mut fields = Vec::new();
        loop {
            let code = r.u8()?;
            if code == 0 {
                break;
            }
            fields.push((code, r.string()?));
        }
        r.finish()?;
        Ok(Self { fields })
    }

    /// Appends it as an ErrorResponse (`E`).
    pub fn encode(&self, out: &mut BytesMut) {
        self.encode_as(Self::TAG, out);
    }

    /// Appends it as a NoticeResponse (`N`).
    pub fn encode_notice(&self, out: &mut BytesMut) {
        self.encode_as(Self::NOTICE_TAG, out);
    }

    fn encode_as(&self, tag: u8, out: &mut BytesMut) {
        put_frame(out, tag, |out| {
            for (code, value) in self.fields.iter().filter(|(code, _)| *code != 0) {
                out.put_u8(*code);
                put_str(out, value);
            }
            out.put_u8(0);
        });
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::pg::codec::BackendMessage;
    use crate::pg::codec::test_util::{be_err, decode_be, roundtrip_be, tagged};

    #[test]
    fn error_response_decodes_from_documented_bytes() {
        let body = b"SERROR\0VERROR\0C42P01\0Mrelation \"nope\" does not exist\0P15\0\0";
        let msg = decode_be(&tagged(b'E', body));
        let BackendMessage::ErrorResponse(e) = &msg else {
            panic!("not an ErrorResponse");
        };
        assert_eq!(e.severity(), Some("ERROR"));
        assert_eq!(e.code(), Some("42P01"));
        assert_eq!(e.message(), Some("relation \"nope\" does not exist"));
        assert_eq!(e.field(field::POSITION), Some("15"));
        assert!(!e.is_fatal());
        assert_eq!(&roundtrip_be(&msg)[5..], body);
    }

    #[test]
    fn notice_response_decodes_from_documented_bytes() {
        let msg = decode_be(&tagged(b'N', b"SAVISO\0VNOTICE\0C00000\0Mhi\0\0"));
        let BackendMessage::NoticeResponse(n) = &msg else {
            panic!("not a NoticeResponse");
        };
        // The non-localized severity wins over the localized one.
        assert_eq!(n.severity(), Some("NOTICE"));
        roundtrip_be(&msg);
    }

    #[test]
    fn error_response_without_terminator_is_rejected() {
        assert!(matches!(
            be_err(&tagged(b'E', b"SERROR\0")),
            CodecError::Malformed { .. }
        ));
        assert!(matches!(
            be_err(&tagged(b'E', b"SERROR")),
            CodecError::Malformed { .. }
        ));
        assert!(matches!(
            be_err(&tagged(b'E', b"SERROR\0\0x")),
            CodecError::Malformed { .. }
        ));
    }

    #[test]
    fn builder_always_has_s_v_c_m() {
        let e = ErrorResponse::new(Severity::Error, "42501", "statement denied by policy")
            .detail("DELETE on payroll.salaries")
            .hint("ask for an approval");
        let codes: Vec<u8> = e.fields.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes, b"SVCMDH");
        assert_eq!(e.field(field::SEVERITY), Some("ERROR"));
        assert_eq!(e.field(field::SEVERITY_NONLOCALIZED), Some("ERROR"));
        assert_eq!(e.code(), Some("42501"));
        assert_eq!(e.message(), Some("statement denied by policy"));
        assert_eq!(e.field(field::DETAIL), Some("DELETE on payroll.salaries"));
        let mut out = BytesMut::new();
        e.encode(&mut out);
        assert_eq!(
            &out[5..],
            &b"SERROR\0VERROR\0C42501\0Mstatement denied by policy\0\
               DDELETE on payroll.salaries\0Hask for an approval\0\0"[..]
        );
    }

    #[test]
    fn builder_replaces_fields_instead_of_duplicating() {
        let e = ErrorResponse::new(Severity::Fatal, "28000", "no")
            .detail("a")
            .detail("b")
            .with_field(0, "ignored");
        assert_eq!(e.fields.len(), 5);
        assert_eq!(e.field(field::DETAIL), Some("b"));
        assert!(e.is_fatal());
    }

    #[test]
    fn severity_spellings_roundtrip() {
        for s in [
            Severity::Error,
            Severity::Fatal,
            Severity::Panic,
            Severity::Warning,
            Severity::Notice,
            Severity::Debug,
            Severity::Info,
            Severity::Log,
        ] {
            assert_eq!(Severity::parse(s.as_str()), Some(s));
        }
    }

    proptest! {
        #[test]
        fn error_response_roundtrips(
            fields in proptest::collection::vec((1u8.., "[^\\x00]{0,30}"), 0..10),
            notice: bool,
        ) {
            let e = ErrorResponse { fields };
            if notice {
                roundtrip_be(&BackendMessage::NoticeResponse(e));
            } else {
                roundtrip_be(&BackendMessage::ErrorResponse(e));
            }
        }

        #[test]
        fn built_error_responses_roundtrip(
            message in "[^\\x00]{0,60}",
            detail in "[^\\x00]{0,60}",
        ) {
            let e = ErrorResponse::new(Severity::Error, sqlstate::INSUFFICIENT_PRIVILEGE, message)
                .detail(detail);
            roundtrip_be(&BackendMessage::ErrorResponse(e));
        }
    }
}
