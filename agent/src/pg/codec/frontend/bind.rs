//! `B` Bind: `String portal, String statement, Int16 n, Int16[n] parameter formats, Int16 m,
//! m × (Int32 length or -1, bytes), Int16 k, Int16[k] result formats`.

use std::fmt;

use bytes::{Bytes, BytesMut};

use crate::pg::codec::CodecError;
use crate::pg::codec::buf::{Reader, put_frame, put_i16_list, put_nullable_list, put_str};
use crate::pg::codec::redact::RedactedValues;

/// Binds parameter values to a prepared statement, creating a portal. The parameter values
/// are what audit and PII rules must read.
#[derive(Clone, PartialEq, Eq)]
pub struct Bind {
    /// Portal name; empty for the unnamed portal.
    pub portal: String,
    /// Statement name; empty for the unnamed statement.
    pub statement: String,
    /// None (all text), one (applies to all), or one per parameter (0 text, 1 binary).
    pub param_formats: Vec<i16>,
    /// Parameter values (zero-copy); `None` is SQL NULL.
    pub params: Vec<Option<Bytes>>,
    /// None (all text), one (applies to all), or one per result column.
    pub result_formats: Vec<i16>,
}

impl Bind {
    pub const TAG: u8 = b'B';

    pub(crate) fn decode(body: &Bytes) -> Result<Self, CodecError> {
        let mut r = Reader::new("Bind", body);
        let portal = r.string()?;
        let statement = r.string()?;
        let param_formats = r.i16_list("parameter formats")?;
        let params = r.nullable_list("parameters")?;
        if param_formats.len() > 1 && param_formats.len() != params.len() {
            return Err(r.error(format!(
                "{} parameter formats but {} parameters",
                param_formats.len(),
                params.len()
            )));
        }
        let result_formats = r.i16_list("result formats")?;
        r.finish()?;
        Ok(Self {
            portal,
            statement,
            param_formats,
            params,
            result_formats,
        })
    }

    /// The format code of parameter `index` (0 text, 1 binary), resolving the none/one/each
    /// convention.
    pub fn param_format(&self, index: usize) -> i16 {
        resolve_format(&self.param_formats, index)
    }

    /// The format code requested for result column `index`.
    pub fn result_format(&self, index: usize) -> i16 {
        resolve_format(&self.result_formats, index)
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut BytesMut) {
        put_frame(out, Self::TAG, |out| {
            put_str(out, &self.portal);
            put_str(out, &self.statement);
            put_i16_list(out, &self.param_formats);
            put_nullable_list(out, &self.params);
            put_i16_list(out, &self.result_formats);
        });
    }
}

impl fmt::Debug for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bind")
            .field("portal", &self.portal)
            .field("statement", &self.statement)
            .field("param_formats", &self.param_formats)
            .field("params", &RedactedValues(&self.params))
            .field("result_formats", &self.result_formats)
            .finish()
    }
}

/// Format codes: none means all text, one applies to all, otherwise one each.
pub(crate) fn resolve_format(formats: &[i16], index: usize) -> i16 {
    match formats {
        [] => 0,
        [one] => *one,
        many => many.get(index).copied().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::pg::codec::FrontendMessage;
    use crate::pg::codec::test_util::{decode_fe, fe_err, roundtrip_fe, tagged};

    fn bind_body(formats: &[i16], params: &[Option<&[u8]>], results: &[i16]) -> Vec<u8> {
        let mut b = b"p1\0s1\0".to_vec();
        b.extend_from_slice(&(formats.len() as u16).to_be_bytes());
        for f in formats {
            b.extend_from_slice(&f.to_be_bytes());
        }
        b.extend_from_slice(&(params.len() as u16).to_be_bytes());
        for p in params {
            match p {
                None => b.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(v) => {
                    b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    b.extend_from_slice(v);
                }
            }
        }
        b.extend_from_slice(&(results.len() as u16).to_be_bytes());
        for f in results {
            b.extend_from_slice(&f.to_be_bytes());
        }
        b
    }

    #[test]
    fn bind_decodes_from_documented_bytes() {
        let body = b"p1\0s1\0\0\x03\0\0\0\0\0\x01\0\x03\0\0\0\x05alice\xff\xff\xff\xff\0\0\0\x04\0\0\0\x2a\0\x01\0\x01";
        let msg = decode_fe(&tagged(b'B', body));
        let FrontendMessage::Bind(bind) = &msg else {
            panic!("not a Bind");
        };
        assert_eq!(bind.portal, "p1");
        assert_eq!(bind.statement, "s1");
        assert_eq!(bind.param_formats, [0, 0, 1]);
        assert_eq!(bind.param_format(2), 1);
        assert_eq!(
            bind.params,
            [
                Some(Bytes::from_static(b"alice")),
                None,
                Some(Bytes::from_static(b"\0\0\0\x2a"))
            ]
        );
        assert_eq!(bind.result_formats, [1]);
        roundtrip_fe(&msg);
    }

    #[test]
    fn bind_with_mismatched_format_and_parameter_counts_is_rejected() {
        let body = bind_body(&[0, 1], &[Some(b"a"), None, Some(b"c")], &[]);
        let err = fe_err(&tagged(b'B', &body));
        assert!(
            err.to_string()
                .contains("2 parameter formats but 3 parameters"),
            "{err}"
        );
    }

    #[test]
    fn bind_with_zero_or_one_format_applies_to_all() {
        for formats in [&[][..], &[1]] {
            let body = bind_body(formats, &[Some(b"a"), None], &[1, 0, 1]);
            let FrontendMessage::Bind(b) = decode_fe(&tagged(b'B', &body)) else {
                panic!("not a Bind");
            };
            assert_eq!(b.param_format(1), formats.first().copied().unwrap_or(0));
            assert_eq!(b.result_format(2), 1);
            assert_eq!(b.result_format(1), 0);
        }
    }

    #[test]
    fn bind_with_more_parameters_than_bytes_is_rejected() {
        let mut body = b"\0\0\0\0".to_vec();
        body.extend_from_slice(&[0xff, 0xff]); // 65535 parameters, no bytes for them
        assert!(matches!(
            fe_err(&tagged(b'B', &body)),
            CodecError::Malformed { .. }
        ));
    }

    #[test]
    fn bind_with_value_longer_than_the_message_is_rejected() {
        let mut body = b"\0\0\0\0\0\x01".to_vec();
        body.extend_from_slice(&100i32.to_be_bytes());
        body.extend_from_slice(b"short\0\0");
        assert!(matches!(
            fe_err(&tagged(b'B', &body)),
            CodecError::Malformed { .. }
        ));
    }

    #[test]
    fn bind_with_negative_value_length_is_rejected() {
        let mut body = b"\0\0\0\0\0\x01".to_vec();
        body.extend_from_slice(&(-2i32).to_be_bytes());
        body.extend_from_slice(b"\0\0");
        assert!(matches!(
            fe_err(&tagged(b'B', &body)),
            CodecError::Malformed { .. }
        ));
    }

    #[test]
    fn bind_with_trailing_bytes_is_rejected() {
        let mut body = bind_body(&[], &[None], &[]);
        body.push(0);
        assert!(
            fe_err(&tagged(b'B', &body))
                .to_string()
                .contains("trailing")
        );
    }

    #[test]
    fn bind_values_are_zero_copy_slices() {
        let body = bind_body(&[], &[Some(b"value")], &[]);
        let frame = tagged(b'B', &body);
        let start = frame.as_ptr();
        let mut buf = frame;
        let Some(FrontendMessage::Bind(b)) =
            crate::pg::codec::decode_frontend(&mut buf, &Default::default()).unwrap()
        else {
            panic!("not a Bind");
        };
        let value = b.params[0].as_ref().unwrap();
        assert_eq!(value.as_ptr(), start.wrapping_add(5 + 6 + 2 + 2 + 4));
    }

    fn formats(n: usize) -> impl Strategy<Value = Vec<i16>> {
        prop_oneof![
            Just(vec![]),
            (0i16..2).prop_map(|f| vec![f]),
            proptest::collection::vec(0i16..2, n..=n),
        ]
    }

    proptest! {
        #[test]
        fn bind_roundtrips(
            (params, param_formats) in proptest::collection::vec(
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32)), 0..12,
            ).prop_flat_map(|p| { let n = p.len(); (Just(p), formats(n)) }),
            portal in "[^\\x00]{0,12}",
            statement in "[^\\x00]{0,12}",
            result_formats in proptest::collection::vec(0i16..2, 0..8),
        ) {
            let params = params.into_iter().map(|p| p.map(Bytes::from)).collect();
            roundtrip_fe(&FrontendMessage::Bind(Bind {
                portal, statement, param_formats, params, result_formats,
            }));
        }
    }
}
