//! `T` RowDescription: `Int16 n`, then per field: `String name, Int32 table oid, Int16 column
//! number, Int32 type oid, Int16 type size, Int32 type modifier, Int16 format`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::pg::codec::CodecError;
use crate::pg::codec::buf::{Reader, put_count, put_frame, put_str};

/// Smallest encoded field: an empty name's terminator and 18 bytes of numbers.
const MIN_FIELD_LEN: usize = 19;

/// One result column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescription {
    pub name: String,
    /// The table's oid when the column is a plain table column, else 0.
    pub table_oid: u32,
    /// The column's attribute number in that table, else 0.
    pub column_attr: i16,
    pub type_oid: u32,
    /// `pg_type.typlen` (negative for variable-length types).
    pub type_size: i16,
    /// `pg_attribute.atttypmod` (-1 when not applicable).
    pub type_modifier: i32,
    /// 0 text, 1 binary. Always 0 in a RowDescription answering Describe(statement): the
    /// real formats are chosen at Bind.
    pub format: i16,
}

impl FieldDescription {
    /// A computed text column of type `type_oid` (no table, unknown size and modifier).
    pub fn text(name: impl Into<String>, type_oid: u32) -> Self {
        Self {
            name: name.into(),
            table_oid: 0,
            column_attr: 0,
            type_oid,
            type_size: -1,
            type_modifier: -1,
            format: 0,
        }
    }
}

/// The columns of the rows that follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowDescription {
    pub fields: Vec<FieldDescription>,
}

impl RowDescription {
    pub const TAG: u8 = b'T';

    pub(crate) fn decode(body: &Bytes) -> Result<Self, CodecError> {
        let mut r = Reader::new("RowDescription", body);
        let n = r.count("fields", MIN_FIELD_LEN)?;
        let mut fields = Vec::with_capacity(n);
        for _ in 0..n {
            fields.push(FieldDescription {
                name: r.string()?,
                table_oid: r.u32()?,
                column_attr: r.i16()?,
                type_oid: r.u32()?,
                type_size: r.i16()?,
                type_modifier: r.i32()?,
                format: r.i16()?,
            });
        }
        r.finish()?;
        Ok(Self { fields })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut BytesMut) {
        put_frame(out, Self::TAG, |out| {
            put_count(out, self.fields.len());
            for f in &self.fields {
                put_str(out, &f.name);
                out.put_u32(f.table_oid);
                out.put_i16(f.column_attr);
                out.put_u32(f.type_oid);
                out.put_i16(f.type_size);
                out.put_i32(f.type_modifier);
                out.put_i16(f.format);
            }
        });
    }
}

#[cfg(test)]
pub(super) mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::pg::codec::BackendMessage;
    use crate::pg::codec::test_util::{be_err, decode_be, roundtrip_be, tagged};

    #[test]
    fn row_description_decodes_from_documented_bytes() {
        // "select id, email from users": int4 column 1 and text column 2 of table 16384.
        let body = b"\0\x02\
            id\0\0\0\x40\0\0\x01\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0\
            email\0\0\0\x40\0\0\x02\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\x01";
        let msg = decode_be(&tagged(b'T', body));
        let BackendMessage::RowDescription(rd) = &msg else {
            panic!("not a RowDescription");
        };
        assert_eq!(rd.fields.len(), 2);
        assert_eq!(
            rd.fields[0],
            FieldDescription {
                name: "id".into(),
                table_oid: 16384,
                column_attr: 1,
                type_oid: 23,
                type_size: 4,
                type_modifier: -1,
                format: 0,
            }
        );
        assert_eq!(rd.fields[1].name, "email");
        assert_eq!(rd.fields[1].type_size, -1);
        assert_eq!(rd.fields[1].format, 1);
        assert_eq!(&roundtrip_be(&msg)[5..], body);
    }

    #[test]
    fn row_description_with_missing_field_is_rejected() {
        let body = b"\0\x02id\0\0\0\x40\0\0\x01\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0";
        assert!(matches!(
            be_err(&tagged(b'T', body)),
            CodecError::Malformed { .. }
        ));
    }

    #[test]
    fn row_description_with_truncated_field_is_rejected() {
        let body = b"\0\x01id\0\0\0\x40\0\0\x01\0\0\0\x17\0\x04\xff\xff\xff\xff\0";
        assert!(matches!(
            be_err(&tagged(b'T', body)),
            CodecError::Malformed { .. }
        ));
    }

    /// Any field description (also used by the backend round-trip proptest).
    pub(crate) fn field() -> impl Strategy<Value = FieldDescription> {
        (
            "[^\\x00]{0,16}",
            any::<u32>(),
            any::<i16>(),
            any::<u32>(),
            any::<i16>(),
            any::<i32>(),
            0i16..2,
        )
            .prop_map(
                |(name, table_oid, column_attr, type_oid, type_size, type_modifier, format)| {
                    FieldDescription {
                        name,
                        table_oid,
                        column_attr,
                        type_oid,
                        type_size,
                        type_modifier,
                        format,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn row_description_roundtrips(fields in proptest::collection::vec(field(), 0..10)) {
            roundtrip_be(&BackendMessage::RowDescription(RowDescription { fields }));
        }
    }
}
