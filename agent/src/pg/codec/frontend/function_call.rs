//! `F` FunctionCall: `Int32 function oid, Int16 n, Int16[n] argument formats, Int16 m,
//! m × (Int32 length or -1, bytes), Int16 result format`.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::bind::resolve_format;
use crate::pg::codec::CodecError;
use crate::pg::codec::buf::{Reader, put_frame, put_i16_list, put_nullable_list};
use crate::pg::codec::redact::RedactedValues;

/// A fast-path function call. It runs any function by oid without SQL: deny by default.
#[derive(Clone, PartialEq, Eq)]
pub struct FunctionCall {
    pub oid: u32,
    /// None (all text), one (applies to all), or one per argument.
    pub arg_formats: Vec<i16>,
    /// Argument values (zero-copy); `None` is SQL NULL.
    pub args: Vec<Option<Bytes>>,
    pub result_format: i16,
}

impl FunctionCall {
    pub const TAG: u8 = b'F';

    pub(crate) fn decode(body: &Bytes) -> Result<Self, CodecError> {
        let mut r = Reader::new("FunctionCall", body);
        let oid = r.u32()?;
        let arg_formats = r.i16_list("argument formats")?;
        let args = r.nullable_list("arguments")?;
        if arg_formats.len() > 1 && arg_formats.len() != args.len() {
            return Err(r.error(format!(
                "{} argument formats but {} arguments",
                arg_formats.len(),
                args.len()
            )));
        }
        let result_format = r.i16()?;
        r.finish()?;
        Ok(Self {
            oid,
            arg_formats,
            args,
            result_format,
        })
    }

    /// The format code of argument `index`.
    pub fn arg_format(&self, index: usize) -> i16 {
        resolve_format(&self.arg_formats, index)
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut BytesMut) {
        put_frame(out, Self::TAG, |out| {
            out.put_u32(self.oid);
            put_i16_list(out, &self.arg_formats);
            put_nullable_list(out, &self.args);
            out.put_i16(self.result_format);
        });
    }
}

impl fmt::Debug for FunctionCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FunctionCall")
            .field("oid", &self.oid)
            .field("arg_formats", &self.arg_formats)
            .field("args", &RedactedValues(&self.args))
            .field("result_format", &self.result_format)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::codec::FrontendMessage;
    use crate::pg::codec::test_util::{decode_fe, fe_err, roundtrip_fe, tagged};

    #[test]
    fn function_call_decodes_from_documented_bytes() {
        // lo_open(oid 952): two binary int4 arguments, binary result.
        let body =
            b"\0\0\x03\xb8\0\x01\0\x01\0\x02\0\0\0\x04\0\0\x40\x00\0\0\0\x04\0\x02\0\0\0\x01";
        let msg = decode_fe(&tagged(b'F', body));
        let FrontendMessage::FunctionCall(call) = &msg else {
            panic!("not a FunctionCall");
        };
        assert_eq!(call.oid, 952);
        assert_eq!(call.arg_formats, [1]);
        assert_eq!(call.arg_format(1), 1);
        assert_eq!(call.args.len(), 2);
        assert_eq!(call.result_format, 1);
        roundtrip_fe(&msg);
    }

    #[test]
    fn function_call_with_mismatched_counts_is_rejected() {
        let body = b"\0\0\x03\xb8\0\x02\0\x01\0\x01\0\x01\xff\xff\xff\xff\0\x01";
        assert!(
            fe_err(&tagged(b'F', body))
                .to_string()
                .contains("2 argument formats but 1 arguments")
        );
    }

    #[test]
    fn function_call_without_result_format_is_rejected() {
        let body = b"\0\0\x03\xb8\0\0\0\0";
        assert!(matches!(
            fe_err(&tagged(b'F', body)),
            CodecError::Malformed { .. }
        ));
    }

    #[test]
    fn function_call_with_null_argument_roundtrips() {
        roundtrip_fe(&FrontendMessage::FunctionCall(FunctionCall {
            oid: 1,
            arg_formats: vec![],
            args: vec![None, Some(Bytes::from_static(b"x"))],
            result_format: 0,
        }));
    }
}
