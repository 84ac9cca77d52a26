//! One DataRow rewritten by a [`MaskPlan`]: lengths rebuilt, NULL kept NULL, an unchanged row
//! forwarded as it is (no copy).

use crate::pg::codec::backend::{DataRow, DataRowBuilder};

use super::counts::MaskCounts;
use super::plan::{ColumnAction, ColumnPlan, MaskPlan, ScanKind};
use super::strategies::{self, Masked, StrategyError};
use super::text::mask_content;
use super::{MaskError, MaskRules};

/// The row with what the plan covers masked (counted in `counts`). A row the plan leaves
/// unchanged is returned as it is (a cheap clone).
pub fn mask_row(
    plan: &MaskPlan,
    row: &DataRow,
    counts: &mut MaskCounts,
) -> Result<DataRow, MaskError> {
    if row.len() != plan.columns().len() {
        return Err(MaskError::ColumnCount {
            expected: plan.columns().len(),
            got: row.len(),
        });
    }
    if plan.is_passthrough() {
        return Ok(row.clone());
    }
    let rules = plan.rules();
    let mut builder: Option<DataRowBuilder> = None;
    for (index, (value, column)) in row.values().zip(plan.columns()).enumerate() {
        let cell = mask_cell(rules, column, value, counts)?;
        if let Cell::Keep = cell {
            if let Some(b) = &mut builder {
                b.push(value);
            }
            continue;
        }
        let b = builder.get_or_insert_with(|| {
            let mut b = DataRowBuilder::with_capacity(row.body().len() + 32);
            for earlier in row.values().take(index) {
                b.push(earlier);
            }
            b
        });
        match cell {
            Cell::Null => b.push_null(),
            Cell::Value(v) => b.push_value(&v),
            Cell::Keep => b.push(value),
        };
    }
    match builder {
        None => Ok(row.clone()),
        Some(b) => Ok(b.finish()?),
    }
}

/// What becomes of one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cell {
    Keep,
    Null,
    Value(Vec<u8>),
}

/// Masks one value (`None`: NULL, which stays NULL) of `column`, in the column's format.
pub(crate) fn mask_cell(
    rules: &MaskRules,
    column: &ColumnPlan,
    value: Option<&[u8]>,
    counts: &mut MaskCounts,
) -> Result<Cell, MaskError> {
    let Some(value) = value else {
        return Ok(Cell::Keep);
    };
    match column.action {
        ColumnAction::Keep => Ok(Cell::Keep),
        ColumnAction::Mask { rule } => {
            let r = &rules.rules()[rule];
            let masked =
                strategies::mask_value(r.strategy, value, rules.key()).map_err(|e| match e {
                    StrategyError::NotUtf8 => MaskError::NotUtf8 {
                        rule: r.name.clone(),
                        strategy: r.strategy.as_str(),
                        column: column.site.to_string(),
                    },
                    StrategyError::NoKey => MaskError::MissingKey {
                        rule: r.name.clone(),
                    },
                })?;
            counts.add(rule, &column.site, None);
            Ok(match masked {
                Masked::Null => Cell::Null,
                Masked::Value(v) => Cell::Value(v),
            })
        }
        ColumnAction::Scan(ScanKind::Text) => {
            Ok(mask_content(rules, value, &column.site, counts).map_or(Cell::Keep, Cell::Value))
        }
        ColumnAction::Scan(ScanKind::JsonbBinary) => {
            let Some((&1, json)) = value.split_first() else {
                return Err(malformed(column, "jsonb", "unknown version byte"));
            };
            Ok(match mask_content(rules, json, &column.site, counts) {
                None => Cell::Keep,
                Some(masked) => {
                    let mut v = Vec::with_capacity(masked.len() + 1);
                    v.push(1);
                    v.extend(masked);
                    Cell::Value(v)
                }
            })
        }
        ColumnAction::Scan(ScanKind::TextArrayBinary) => {
            mask_text_array(rules, column, value, counts)
        }
    }
}

fn malformed(column: &ColumnPlan, what: &'static str, reason: impl Into<String>) -> MaskError {
    MaskError::MalformedValue {
        column: column.site.to_string(),
        what,
        reason: reason.into(),
    }
}

/// A binary array of a text-like type (`array_send`): `int32 ndim, int32 has-nulls flag,
/// oid element type, ndim x (int32 size, int32 lower bound)`, then each element as `int32
/// length (-1: NULL), bytes`. Each element is scanned as text.
fn mask_text_array(
    rules: &MaskRules,
    column: &ColumnPlan,
    value: &[u8],
    counts: &mut MaskCounts,
) -> Result<Cell, MaskError> {
    let bad = |reason: &str| malformed(column, "array", reason);
    let int = |at: usize| -> Result<i32, MaskError> {
        value
            .get(at..at + 4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| bad("truncated"))
    };
    let ndim = int(0)?;
    if !(0..=6).contains(&ndim) {
        return Err(bad("bad number of dimensions"));
    }
    let header = 12 + 8 * ndim as usize;
    let mut elements: u64 = u64::from(ndim > 0);
    for d in 0..ndim as usize {
        let size = int(12 + 8 * d)?;
        let size = u64::try_from(size).map_err(|_| bad("negative dimension"))?;
        elements = elements.saturating_mul(size);
    }
    if header > value.len() || elements > (value.len() - header) as u64 / 4 {
        return Err(bad("more elements than bytes"));
    }
    let mut pos = header;
    let mut out: Option<Vec<u8>> = None;
    for _ in 0..elements {
        let len = int(pos)?;
        let start = pos + 4;
        let element = match len {
            -1 => None,
            len if len < 0 => return Err(bad("negative element length")),
            len => Some(
                value
                    .get(start..start + len as usize)
                    .ok_or_else(|| bad("truncated element"))?,
            ),
        };
        let end = start + element.map_or(0, <[u8]>::len);
        let masked = element.and_then(|e| mask_content(rules, e, &column.site, counts));
        match (masked, &mut out) {
            (Some(m), out) => {
                let buf = out.get_or_insert_with(|| value[..pos].to_vec());
                let len = i32::try_from(m.len()).map_err(|_| bad("element too large"))?;
                buf.extend_from_slice(&len.to_be_bytes());
                buf.extend(m);
            }
            (None, Some(buf)) => buf.extend_from_slice(&value[pos..end]),
            (None, None) => {}
        }
        pos = end;
    }
    if pos != value.len() {
        return Err(bad("trailing bytes"));
    }
    Ok(out.map_or(Cell::Keep, Cell::Value))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::{BufMut, BytesMut};

    use super::super::plan::MaskPlan;
    use super::super::test_support::*;
    use super::super::types;
    use super::*;
    use crate::pg::codec::backend::{BackendMessage, FieldDescription, RowDescription};
    use crate::pg::codec::{Caps, decode_backend};
    use crate::policy::{Detector, MaskStrategy};

    fn plan(fields: Vec<FieldDescription>, formats: &[i16], rules: &Arc<MaskRules>) -> MaskPlan {
        MaskPlan::for_row_description(&RowDescription { fields }, formats, &catalog(), rules)
            .unwrap()
    }

    fn row(values: &[Option<&[u8]>]) -> DataRow {
        DataRow::from_values(values.iter().copied()).unwrap()
    }

    /// Encodes the row as a message and decodes it again with the codec.
    fn redecode(r: &DataRow) -> DataRow {
        let mut buf = BytesMut::new();
        r.encode(&mut buf);
        match decode_backend(&mut buf, &Caps::default()).unwrap() {
            Some(BackendMessage::DataRow(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    fn values(r: &DataRow) -> Vec<Option<Vec<u8>>> {
        r.values().map(|v| v.map(<[u8]>::to_vec)).collect()
    }

    fn payments_fields() -> Vec<FieldDescription> {
        vec![
            table_field("id", PAYMENTS, 1, types::INT4),
            table_field("card_number", PAYMENTS, 2, types::TEXT),
            table_field("note", PAYMENTS, 3, types::TEXT),
        ]
    }

    #[test]
    fn text_rows_are_masked_with_lengths_rebuilt_and_null_kept() {
        let rules = compiled(vec![
            rule(
                "cards",
                &["public.payments.card_number"],
                MaskStrategy::Partial { keep_last: 4 },
            ),
            content_rule("pii", &[Detector::Email], MaskStrategy::Redact),
        ]);
        let p = plan(payments_fields(), &[], &rules);
        let mut counts = MaskCounts::new();
        let r = row(&[
            Some(b"1"),
            Some(b"4111111111111111"),
            Some(b"mail bob@example.com please"),
        ]);
        let masked = redecode(&mask_row(&p, &r, &mut counts).unwrap());
        assert_eq!(
            values(&masked),
            [
                Some(b"1".to_vec()),
                Some(b"************1111".to_vec()),
                Some(b"mail [REDACTED:email] please".to_vec()),
            ]
        );
        // NULL stays NULL, under a column rule and under content rules.
        let nulls = row(&[Some(b"2"), None, None]);
        let out = redecode(&mask_row(&p, &nulls, &mut counts).unwrap());
        assert_eq!(values(&out), [Some(b"2".to_vec()), None, None]);
        assert_eq!(out, nulls);
        let entries = counts.entries(&rules);
        assert_eq!(
            entries
                .iter()
                .map(|e| (e.rule.as_str(), e.site.as_str(), e.found, e.count))
                .collect::<Vec<_>>(),
            [
                ("cards", "column public.payments.card_number", "value", 1),
                ("pii", "column public.payments.note", "email", 1),
            ]
        );
    }

    #[test]
    fn unchanged_rows_are_forwarded_without_copy() {
        let rules = compiled(vec![content_rule(
            "pii",
            &[Detector::Email],
            MaskStrategy::Redact,
        )]);
        let p = plan(payments_fields(), &[], &rules);
        let r = row(&[Some(b"1"), Some(b"x"), Some(b"no address here")]);
        let out = mask_row(&p, &r, &mut MaskCounts::new()).unwrap();
        assert_eq!(out.body().as_ptr(), r.body().as_ptr());
    }

    #[test]
    fn null_strategy_turns_values_into_null() {
        let rules = compiled(vec![rule(
            "ids",
            &["public.payments.id"],
            MaskStrategy::Null,
        )]);
        let p = plan(payments_fields(), &[1], &rules);
        let r = row(&[Some(&7i32.to_be_bytes()), Some(b"c"), Some(b"n")]);
        let out = redecode(&mask_row(&p, &r, &mut MaskCounts::new()).unwrap());
        assert_eq!(
            values(&out),
            [None, Some(b"c".to_vec()), Some(b"n".to_vec())]
        );
    }

    #[test]
    fn binary_text_columns_are_masked_like_text() {
        let rules = compiled(vec![rule(
            "cards",
            &["public.payments.card_number"],
            MaskStrategy::Hash,
        )]);
        let text = plan(payments_fields(), &[], &rules);
        let binary = plan(payments_fields(), &[1], &rules);
        let mut counts = MaskCounts::new();
        let text_row = row(&[Some(b"1"), Some(b"4111111111111111"), None]);
        let binary_row = row(&[Some(&1i32.to_be_bytes()), Some(b"4111111111111111"), None]);
        let a = mask_row(&text, &text_row, &mut counts).unwrap();
        let b = mask_row(&binary, &binary_row, &mut counts).unwrap();
        assert_eq!(a.get(1), b.get(1));
        let token = a.get(1).unwrap().unwrap();
        assert!(token.starts_with(b"h:") && token.len() == 26);
        // The same input gives the same token (joins still work).
        let again = mask_row(&text, &text_row, &mut counts).unwrap();
        assert_eq!(again, a);
        // The int4 column is untouched, bytes for bytes.
        assert_eq!(b.get(0), Some(Some(&1i32.to_be_bytes()[..])));
    }

    #[test]
    fn a_redact_rule_on_a_binary_int4_column_fails_the_plan() {
        let rules = compiled(vec![rule(
            "ids",
            &["public.payments.id"],
            MaskStrategy::Redact,
        )]);
        let e = MaskPlan::for_row_description(
            &RowDescription {
                fields: payments_fields(),
            },
            &[1],
            &catalog(),
            &rules,
        )
        .unwrap_err();
        assert!(matches!(e, MaskError::NotText { .. }), "{e:?}");
    }

    #[test]
    fn partial_on_a_value_that_is_not_utf8_fails_closed() {
        let rules = compiled(vec![rule(
            "cards",
            &["public.payments.card_number"],
            MaskStrategy::Partial { keep_last: 4 },
        )]);
        let p = plan(payments_fields(), &[], &rules);
        let e = mask_row(
            &p,
            &row(&[None, Some(b"41\xff11"), None]),
            &mut MaskCounts::new(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            MaskError::NotUtf8 {
                rule: "cards".into(),
                strategy: "partial",
                column: "column public.payments.card_number".into()
            }
        );
    }

    #[test]
    fn a_row_that_does_not_match_its_description_fails() {
        let rules = compiled(vec![content_rule(
            "pii",
            &[Detector::Email],
            MaskStrategy::Redact,
        )]);
        let p = plan(payments_fields(), &[], &rules);
        assert_eq!(
            mask_row(&p, &row(&[None]), &mut MaskCounts::new()).unwrap_err(),
            MaskError::ColumnCount {
                expected: 3,
                got: 1
            }
        );
    }

    #[test]
    fn binary_jsonb_is_scanned_after_its_version_byte() {
        let rules = compiled(vec![content_rule(
            "pii",
            &[Detector::Email],
            MaskStrategy::Redact,
        )]);
        let p = plan(
            vec![FieldDescription::text("doc", types::JSONB)],
            &[1],
            &rules,
        );
        let out = mask_row(
            &p,
            &row(&[Some(b"\x01{\"e\": \"a@b.io\"}")]),
            &mut MaskCounts::new(),
        )
        .unwrap();
        assert_eq!(
            out.get(0),
            Some(Some(&b"\x01{\"e\": \"[REDACTED:email]\"}"[..]))
        );
        let e = mask_row(&p, &row(&[Some(b"\x02{}")]), &mut MaskCounts::new()).unwrap_err();
        assert!(matches!(e, MaskError::MalformedValue { what: "jsonb", .. }));
    }

    fn text_array(elements: &[Option<&[u8]>]) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.put_i32(1);
        b.put_i32(i32::from(elements.iter().any(Option::is_none)));
        b.put_u32(types::TEXT);
        b.put_i32(elements.len() as i32);
        b.put_i32(1);
        for e in elements {
            match e {
                None => b.put_i32(-1),
                Some(e) => {
                    b.put_i32(e.len() as i32);
                    b.put_slice(e);
                }
            }
        }
        b.to_vec()
    }

    #[test]
    fn binary_text_arrays_are_scanned_element_by_element() {
        let rules = compiled(vec![content_rule(
            "pii",
            &[Detector::Ssn],
            MaskStrategy::Redact,
        )]);
        let p = plan(
            vec![FieldDescription::text("tags", types::TEXT_ARRAY)],
            &[1],
            &rules,
        );
        let value = text_array(&[Some(b"a"), None, Some(b"ssn 123-45-6789"), Some(b"z")]);
        let out = mask_row(&p, &row(&[Some(&value)]), &mut MaskCounts::new()).unwrap();
        let expected = text_array(&[Some(b"a"), None, Some(b"ssn [REDACTED:ssn]"), Some(b"z")]);
        assert_eq!(out.get(0), Some(Some(&expected[..])));
        // Nothing found: the same bytes.
        let clean = text_array(&[Some(b"a"), Some(b"b")]);
        let r = row(&[Some(&clean)]);
        assert_eq!(mask_row(&p, &r, &mut MaskCounts::new()).unwrap(), r);
        // Empty arrays have no dimensions.
        let empty = [0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25];
        let r = row(&[Some(&empty)]);
        assert_eq!(mask_row(&p, &r, &mut MaskCounts::new()).unwrap(), r);
        // Lies about sizes fail.
        let mut bad = text_array(&[Some(b"a")]);
        bad[15] = 200;
        assert!(mask_row(&p, &row(&[Some(&bad)]), &mut MaskCounts::new()).is_err());
    }

    #[test]
    fn result_columns_and_aliases_are_masked_by_name() {
        let rules = compiled(vec![result_rule(
            "lowered",
            &["email*"],
            MaskStrategy::Redact,
        )]);
        let p = plan(
            vec![
                FieldDescription::text("email_lower", types::TEXT),
                FieldDescription::text("n", types::INT8),
            ],
            &[],
            &rules,
        );
        let out = mask_row(
            &p,
            &row(&[Some(b"bob@example.com"), Some(b"3")]),
            &mut MaskCounts::new(),
        )
        .unwrap();
        assert_eq!(
            values(&out),
            [Some(b"[REDACTED]".to_vec()), Some(b"3".to_vec())]
        );
    }

    #[test]
    fn rows_with_many_columns_keep_their_order() {
        let rules = compiled(vec![content_rule(
            "pii",
            &[Detector::Email],
            MaskStrategy::Redact,
        )]);
        let fields: Vec<_> = (0..40)
            .map(|i| FieldDescription::text(format!("c{i}"), types::TEXT))
            .collect();
        let p = plan(fields, &[], &rules);
        let cells: Vec<Vec<u8>> = (0..40)
            .map(|i| {
                if i % 7 == 3 {
                    format!("u{i}@x.io").into_bytes()
                } else {
                    format!("v{i}").into_bytes()
                }
            })
            .collect();
        let r = DataRow::from_values(cells.iter().map(|c| Some(&c[..]))).unwrap();
        let out = redecode(&mask_row(&p, &r, &mut MaskCounts::new()).unwrap());
        for (i, v) in out.values().enumerate() {
            let expected: &[u8] = if i % 7 == 3 {
                b"[REDACTED:email]"
            } else {
                &cells[i]
            };
            assert_eq!(v, Some(expected), "column {i}");
        }
    }
}
