//! `D` DataRow: `Int16 n`, then per column `Int32 length or -1 (NULL), bytes`.
//!
//! The row is kept as its raw body (zero-copy) and read through an iterator; masking rewrites
//! rows with [`DataRow::rewrite`] or [`DataRowBuilder`], which rebuild every length.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::pg::codec::CodecError;
use crate::pg::codec::buf::{Reader, put_frame, put_nullable};
use crate::pg::codec::redact::RedactedValue;

/// One result row. Its body has been validated: the column count matches the values, every
/// length is -1 or fits, and nothing trails. `Debug` shows value sizes, not values.
#[derive(Clone, PartialEq, Eq)]
pub struct DataRow {
    body: Bytes,
    columns: u16,
}

impl fmt::Debug for DataRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DataRow")
            .field(&DebugValues(self.values()))
            .finish()
    }
}

struct DebugValues<'a>(DataRowValues<'a>);

impl fmt::Debug for DebugValues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.clone().map(RedactedValue))
            .finish()
    }
}

/// What [`DataRow::rewrite`] does with one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replacement {
    /// Keep the value as it is (a NULL stays NULL).
    Keep,
    /// Make it NULL.
    Null,
    /// Replace it with these bytes (in the column's format: text or binary).
    Value(Bytes),
}

impl DataRow {
    pub const TAG: u8 = b'D';

    /// Validates a DataRow body (everything after the length word).
    pub fn from_body(body: Bytes) -> Result<Self, CodecError> {
        if body.len() > i32::MAX as usize - 4 {
            return Err(CodecError::TooLarge {
                message_type: "DataRow",
                len: body.len(),
                max: i32::MAX as usize - 4,
            });
        }
        let mut r = Reader::new("DataRow", &body);
        let columns = r.count("columns", 4)?;
        for _ in 0..columns {
            match r.i32()? {
                -1 => {}
                len if len < 0 => return Err(r.error(format!("invalid value length {len}"))),
                len => r.skip(len as usize)?,
            }
        }
        r.finish()?;
        Ok(Self {
            body,
            columns: columns as u16,
        })
    }

    /// A row of these values (`None` is NULL).
    pub fn from_values<'a>(
        values: impl IntoIterator<Item = Option<&'a [u8]>>,
    ) -> Result<Self, CodecError> {
        let mut builder = DataRowBuilder::new();
        for v in values {
            builder.push(v);
        }
        builder.finish()
    }

    /// The raw body (column count and values), e.g. to forward it untouched.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.columns.into()
    }

    /// Whether the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.columns == 0
    }

    /// The values in column order, borrowed from the body; `None` is NULL.
    pub fn values(&self) -> DataRowValues<'_> {
        DataRowValues {
            rest: self.body.get(2..).unwrap_or_default(),
            left: self.columns,
        }
    }

    /// The values as zero-copy `Bytes` slices of the body.
    pub fn value_bytes(&self) -> impl Iterator<Item = Option<Bytes>> + '_ {
        self.values().map(|v| v.map(|v| self.body.slice_ref(v)))
    }

    /// Column `index`'s value: `None` past the last column, `Some(None)` for NULL.
    pub fn get(&self, index: usize) -> Option<Option<&[u8]>> {
        self.values().nth(index)
    }

    /// A new row where `f` decides each value: it gets the column index and the value
    /// (`None` for NULL). Lengths are rebuilt; kept NULLs stay NULL (-1).
    pub fn rewrite(
        &self,
        mut f: impl FnMut(usize, Option<&[u8]>) -> Replacement,
    ) -> Result<Self, CodecError> {
        let mut builder = DataRowBuilder::with_capacity(self.body.len());
        for (index, value) in self.values().enumerate() {
            match f(index, value) {
                Replacement::Keep => builder.push(value),
                Replacement::Null => builder.push_null(),
                Replacement::Value(v) => builder.push_value(&v),
            };
        }
        builder.finish()
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut BytesMut) {
        put_frame(out, Self::TAG, |out| out.put_slice(&self.body));
    }
}

/// Iterator over a [`DataRow`]'s values (`None` is NULL).
#[derive(Clone)]
pub struct DataRowValues<'a> {
    rest: &'a [u8],
    left: u16,
}

impl<'a> Iterator for DataRowValues<'a> {
    type Item = Option<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        // The body was validated, so the `?`s never stop the iteration early.
        self.left = self.left.checked_sub(1)?;
        let (len, rest) = self.rest.split_first_chunk::<4>()?;
        let len = i32::from_be_bytes(*len);
        if len < 0 {
            self.rest = rest;
            return Some(None);
        }
        let (value, rest) = rest.split_at_checked(len as usize)?;
        self.rest = rest;
        Some(Some(value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left.into(), Some(self.left.into()))
    }
}

impl ExactSizeIterator for DataRowValues<'_> {}

impl fmt::Debug for DataRowValues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataRowValues")
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

/// Builds a DataRow value by value (lengths and count computed), into one buffer.
pub struct DataRowBuilder {
    buf: BytesMut,
    columns: usize,
    oversized: Option<usize>,
}

impl fmt::Debug for DataRowBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataRowBuilder")
            .field("columns", &self.columns)
            .field("bytes", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl Default for DataRowBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl DataRowBuilder {
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// With room for a body of `bytes` bytes.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut buf = BytesMut::with_capacity(bytes.max(2));
        buf.put_u16(0);
        Self {
            buf,
            columns: 0,
            oversized: None,
        }
    }

    /// Appends a value (`None` is NULL).
    pub fn push(&mut self, value: Option<&[u8]>) -> &mut Self {
        match value {
            Some(v) => self.push_value(v),
            None => self.push_null(),
        }
    }

    /// Appends a NULL.
    pub fn push_null(&mut self) -> &mut Self {
        self.columns += 1;
        put_nullable(&mut self.buf, None);
        self
    }

    /// Appends a value.
    pub fn push_value(&mut self, value: &[u8]) -> &mut Self {
        self.columns += 1;
        if i32::try_from(value.len()).is_err() {
            self.oversized.get_or_insert(value.len());
        } else {
            put_nullable(&mut self.buf, Some(value));
        }
        self
    }

    /// The number of values pushed.
    pub fn len(&self) -> usize {
        self.columns
    }

    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.columns == 0
    }

    /// The row. Fails when a value or the row is longer than a message can be, or with more
    /// than 65 535 columns.
    pub fn finish(mut self) -> Result<DataRow, CodecError> {
        let max = i32::MAX as usize - 4;
        if let Some(len) = self.oversized {
            return Err(CodecError::TooLarge {
                message_type: "DataRow",
                len,
                max,
            });
        }
        if self.buf.len() > max {
            return Err(CodecError::TooLarge {
                message_type: "DataRow",
                len: self.buf.len(),
                max,
            });
        }
        let columns = u16::try_from(self.columns).map_err(|_| {
            CodecError::malformed("DataRow", format!("{} columns (max 65535)", self.columns))
        })?;
        self.buf[..2].copy_from_slice(&columns.to_be_bytes());
        Ok(DataRow {
            body: self.buf.freeze(),
            columns,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::pg::codec::BackendMessage;
    use crate::pg::codec::test_util::{be_err, decode_be, roundtrip_be, tagged};

    const BODY: &[u8] = b"\0\x03\0\0\0\x02id\xff\xff\xff\xff\0\0\0\x0dbob@corp.test";

    fn row(body: &[u8]) -> DataRow {
        match decode_be(&tagged(b'D', body)) {
            BackendMessage::DataRow(r) => r,
            other => panic!("not a DataRow: {other:?}"),
        }
    }

    #[test]
    fn data_row_decodes_from_documented_bytes() {
        let r = row(BODY);
        assert_eq!(r.len(), 3);
        assert!(!r.is_empty());
        assert_eq!(
            r.values().collect::<Vec<_>>(),
            [Some(&b"id"[..]), None, Some(&b"bob@corp.test"[..])]
        );
        assert_eq!(r.values().len(), 3);
        assert_eq!(r.get(1), Some(None));
        assert_eq!(r.get(3), None);
        assert_eq!(&r.body()[..], BODY);
        assert_eq!(&roundtrip_be(&BackendMessage::DataRow(r))[5..], BODY);
    }

    #[test]
    fn data_row_values_are_zero_copy() {
        let r = row(BODY);
        let body_start = r.body().as_ptr();
        let values: Vec<_> = r.value_bytes().collect();
        assert_eq!(
            values[2].as_ref().unwrap().as_ptr(),
            body_start.wrapping_add(16)
        );
        assert_eq!(
            r.values().nth(2).unwrap().unwrap().as_ptr(),
            body_start.wrapping_add(16)
        );
    }

    #[test]
    fn empty_data_row_is_valid() {
        let r = row(b"\0\0");
        assert!(r.is_empty());
        assert_eq!(r.values().next(), None);
    }

    #[test]
    fn data_row_with_bad_lengths_is_rejected() {
        for body in [
            &b"\0\x01\0\0\0\x05abc"[..], // value longer than the message
            b"\0\x01\xff\xff\xff\xfe",   // negative length other than -1
            b"\0\x02\0\0\0\x01a",        // fewer values than the count
            b"\0\x01\0\0\0\x01ab",       // trailing bytes
            b"\0",                       // no count
            b"\xff\xff\0\0\0\0",         // count larger than the body allows
        ] {
            assert!(
                matches!(be_err(&tagged(b'D', body)), CodecError::Malformed { .. }),
                "{body:?}"
            );
        }
    }

    #[test]
    fn rewrite_keeps_null_as_null_and_rebuilds_lengths() {
        let r = row(BODY);
        let masked = r
            .rewrite(|index, value| match (index, value) {
                (2, Some(_)) => Replacement::Value(Bytes::from_static(b"***")),
                _ => Replacement::Keep,
            })
            .unwrap();
        assert_eq!(
            &masked.body()[..],
            b"\0\x03\0\0\0\x02id\xff\xff\xff\xff\0\0\0\x03***"
        );
        assert_eq!(masked.get(1), Some(None));
        // The rebuilt row decodes like any other.
        assert_eq!(row(masked.body()), masked);
    }

    #[test]
    fn rewrite_can_null_out_and_grow_values() {
        let r = row(BODY);
        let out = r
            .rewrite(|index, _| match index {
                0 => Replacement::Null,
                1 => Replacement::Value(Bytes::from_static(b"was null")),
                _ => Replacement::Value(Bytes::from(vec![b'x'; 300])),
            })
            .unwrap();
        let values: Vec<_> = out.values().collect();
        assert_eq!(values[0], None);
        assert_eq!(values[1], Some(&b"was null"[..]));
        assert_eq!(values[2].unwrap().len(), 300);
        assert_eq!(row(out.body()), out);
    }

    #[test]
    fn builder_counts_columns() {
        let mut b = DataRowBuilder::new();
        b.push_value(b"1").push_null().push(Some(b""));
        assert_eq!(b.len(), 3);
        let r = b.finish().unwrap();
        assert_eq!(&r.body()[..], b"\0\x03\0\0\0\x011\xff\xff\xff\xff\0\0\0\0");
    }

    #[test]
    fn builder_refuses_more_than_65535_columns() {
        let mut b = DataRowBuilder::new();
        for _ in 0..65_536 {
            b.push_null();
        }
        assert!(b.finish().is_err());
    }

    fn values() -> impl Strategy<Value = Vec<Option<Vec<u8>>>> {
        proptest::collection::vec(
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            0..20,
        )
    }

    proptest! {
        #[test]
        fn data_row_roundtrips(values in values()) {
            let r = DataRow::from_values(values.iter().map(Option::as_deref)).unwrap();
            prop_assert_eq!(r.len(), values.len());
            let decoded: Vec<_> = r.values().map(|v| v.map(<[u8]>::to_vec)).collect();
            prop_assert_eq!(&decoded, &values);
            roundtrip_be(&BackendMessage::DataRow(r));
        }

        #[test]
        fn rewrite_with_keep_is_identity_and_masking_preserves_nulls(values in values()) {
            let r = DataRow::from_values(values.iter().map(Option::as_deref)).unwrap();
            prop_assert_eq!(&r.rewrite(|_, _| Replacement::Keep).unwrap(), &r);
            let masked = r
                .rewrite(|_, v| match v {
                    Some(_) => Replacement::Value(Bytes::from_static(b"#")),
                    None => Replacement::Keep,
                })
                .unwrap();
            for (before, after) in values.iter().zip(masked.values()) {
                prop_assert_eq!(before.is_none(), after.is_none());
                if after.is_some() {
                    prop_assert_eq!(after, Some(&b"#"[..]));
                }
            }
            prop_assert_eq!(DataRow::from_body(masked.body().clone()).unwrap(), masked);
        }
    }
}
