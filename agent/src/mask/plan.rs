//! Which columns of a result the rules cover, and how: a [`MaskPlan`], built once per
//! RowDescription (and result formats), then applied to every row.
//!
//! A RowDescription names each column's origin by oids: the table's oid and the column's
//! attribute number (both 0 for expressions). A [`ColumnResolver`] turns them into names; the
//! proxy fills one ([`CatalogNames`]) from the catalog with [`CATALOG_NAMES_SQL`] on its own
//! connection, for the tables [`MaskPlan::tables_to_resolve`] lists, and keeps it for the
//! session.
//!
//! Rules, in order of precedence:
//! - a column that comes from a table (table oid not 0) is covered by the first rule with a
//!   `columns` pattern matching `schema.table.column`; a whole-row column (attribute 0,
//!   `SELECT t FROM t`) by the first rule with a pattern for some column of its table. The
//!   server keeps a column's origin through aliases, subqueries, CTEs and RETURNING, but a
//!   view's columns come from the view itself (`public.v_pay.pan`, not the table column it
//!   shows), and expressions and casts have none;
//! - a column without source (expression, alias of an expression) by the first rule with a
//!   `result_columns` pattern matching its name;
//! - a covered column must be of a text-like type (text, varchar, char(n), name, unknown),
//!   unless the rule's strategy is `null`: a redacted, partial or hashed integer, numeric,
//!   uuid ... would not be a valid value of its type ([`MaskError::NotText`]);
//! - any other column is scanned by the content rules if its values are text: text-like
//!   types, json, jsonb, xml, records, arrays of those and types created in the database in
//!   text format; text-like types, json, jsonb, xml and arrays of text-like types in binary
//!   format. A binary value that may hold text the agent cannot read (records, other arrays,
//!   variable-length types created in the database) fails the result
//!   ([`MaskError::Unscannable`]). Numbers, dates, uuids, bytea ... are not scanned.
//!
//! Fail closed: a column from a table whose name the resolver does not know fails the plan
//! when there are column rules ([`MaskError::Unresolved`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::pg::codec::backend::{FieldDescription, RowDescription};
use crate::policy::{CopyOutMasked, MaskStrategy};

use super::counts::Site;
use super::{MaskError, MaskRules, TypeName, types};

/// The query that fills a [`CatalogNames`]: bind `$1` to the table oids to resolve, as an
/// `oid[]` (text `{16384,16390}`); each result row is (table oid, schema, table, attribute
/// number, column name), the last two NULL for a table without columns. Run it on the agent's
/// own connection to the same database (oids are per database).
pub const CATALOG_NAMES_SQL: &str = "SELECT c.oid, n.nspname, c.relname, a.attnum, a.attname \
     FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     LEFT JOIN pg_catalog.pg_attribute a \
       ON a.attrelid = c.oid AND a.attnum <> 0 AND NOT a.attisdropped \
     WHERE c.oid = ANY ($1::pg_catalog.oid[])";

/// The columns of a table, for `COPY table TO STDOUT` ([`super::CopySource::row_description`]):
/// bind `$1` to [`super::CopySource::regclass`]; each row is (table oid, attribute number,
/// column name, type oid, `attlen`, generated), in order, as a [`super::CatalogColumn`].
/// The type of a domain column is its base type (as in a RowDescription).
pub const COPY_TABLE_COLUMNS_SQL: &str = "WITH RECURSIVE cols AS ( \
       SELECT a.attrelid, a.attnum, a.attname, a.atttypid, a.attlen, a.attgenerated <> '' AS generated \
       FROM pg_catalog.pg_attribute a \
       WHERE a.attrelid = $1::pg_catalog.text::pg_catalog.regclass \
         AND a.attnum > 0 AND NOT a.attisdropped), \
     base AS ( \
       SELECT c.attnum, c.atttypid AS typid FROM cols c \
       UNION ALL \
       SELECT b.attnum, t.typbasetype FROM base b \
       JOIN pg_catalog.pg_type t ON t.oid = b.typid WHERE t.typtype = 'd') \
     SELECT c.attrelid::pg_catalog.oid, c.attnum, c.attname, \
       (SELECT b.typid FROM base b JOIN pg_catalog.pg_type t ON t.oid = b.typid \
        WHERE b.attnum = c.attnum AND t.typtype <> 'd'), \
       c.attlen, c.generated \
     FROM cols c ORDER BY c.attnum";

/// A table's schema and name, as PostgreSQL stores them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableName {
    pub schema: String,
    pub table: String,
}

/// Names the origin of result columns (oids and attribute numbers are not names).
pub trait ColumnResolver {
    /// The schema and name of table `table_oid`, if known.
    fn table_name(&self, table_oid: u32) -> Option<TableName>;
    /// The name of column `attnum` of table `table_oid` (system columns have negative
    /// numbers), if known.
    fn column_name(&self, table_oid: u32, attnum: i16) -> Option<String>;
}

/// A resolver from catalog rows (see [`CATALOG_NAMES_SQL`]), kept per session.
#[derive(Debug, Clone, Default)]
pub struct CatalogNames {
    tables: HashMap<u32, TableName>,
    columns: HashMap<(u32, i16), String>,
}

impl CatalogNames {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one row of [`CATALOG_NAMES_SQL`]: table `table_oid` is `schema.table`, and,
    /// unless `column` is `None`, its column `attnum` is named `name`.
    pub fn insert(
        &mut self,
        table_oid: u32,
        schema: &str,
        table: &str,
        column: Option<(i16, &str)>,
    ) {
        self.tables.insert(
            table_oid,
            TableName {
                schema: schema.to_string(),
                table: table.to_string(),
            },
        );
        if let Some((attnum, name)) = column {
            self.columns.insert((table_oid, attnum), name.to_string());
        }
    }

    /// Forgets everything (e.g. after DDL, or when the session changes database).
    pub fn clear(&mut self) {
        self.tables.clear();
        self.columns.clear();
    }

    /// The number of known tables.
    pub fn tables(&self) -> usize {
        self.tables.len()
    }
}

impl ColumnResolver for CatalogNames {
    fn table_name(&self, table_oid: u32) -> Option<TableName> {
        self.tables.get(&table_oid).cloned()
    }

    fn column_name(&self, table_oid: u32, attnum: i16) -> Option<String> {
        self.columns.get(&(table_oid, attnum)).cloned()
    }
}

/// The format of a column's values, chosen at Bind (text for a simple Query).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueFormat {
    Text,
    Binary,
}

/// How content rules read a column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScanKind {
    /// The value is text (text format, or a text-like, json or xml binary value).
    Text,
    /// A binary jsonb value: a version byte (1), then the JSON text.
    JsonbBinary,
    /// A binary array of a text-like type: each element is text.
    TextArrayBinary,
}

/// What happens to a column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnAction {
    /// Forwarded as they are.
    Keep,
    /// Masked whole by the column rule at this index of [`MaskRules::rules`].
    Mask { rule: usize },
    /// Scanned by the content rules.
    Scan(ScanKind),
}

/// One column of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnPlan {
    /// Where its values are counted: `schema.table.column` when known, else its name.
    pub site: Site,
    pub format: ValueFormat,
    pub type_oid: u32,
    pub action: ColumnAction,
}

/// What to do with a `COPY ... TO STDOUT` whose columns a plan describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyDecision {
    /// No rule applies: forward the data as it is.
    Pass,
    /// Mask the data with a [`super::CopyMasker`].
    Mask,
    /// Deny the COPY (`copy_out_masked = "refuse"` and a column rule covers a column).
    Refuse { rule: String, column: String },
}

/// The masking of one result shape: the rules and, per column, what to do. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MaskPlan {
    rules: Arc<MaskRules>,
    columns: Vec<ColumnPlan>,
    passthrough: bool,
}

impl MaskPlan {
    /// The plan for the rows a RowDescription announces.
    ///
    /// `formats` are the result format codes of the portal, with Bind's convention: none (all
    /// text; a simple Query), one (for every column) or one per column. The RowDescription's
    /// own format fields are not used: a RowDescription answering Describe(statement) always
    /// says text.
    pub fn for_row_description(
        rd: &RowDescription,
        formats: &[i16],
        resolver: &dyn ColumnResolver,
        rules: &Arc<MaskRules>,
    ) -> Result<Self, MaskError> {
        let n = rd.fields.len();
        if formats.len() > 1 && formats.len() != n {
            return Err(MaskError::FormatCount {
                codes: formats.len(),
                columns: n,
            });
        }
        let mut columns = Vec::with_capacity(n);
        for (i, field) in rd.fields.iter().enumerate() {
            let code = match formats {
                [] => 0,
                [code] => *code,
                all => all[i],
            };
            let format = match code {
                0 => ValueFormat::Text,
                1 => ValueFormat::Binary,
                code => {
                    return Err(MaskError::BadFormat {
                        column: field.name.clone(),
                        code,
                    });
                }
            };
            columns.push(column_plan(field, format, resolver, rules)?);
        }
        let passthrough = columns.iter().all(|c| c.action == ColumnAction::Keep);
        Ok(Self {
            rules: Arc::clone(rules),
            columns,
            passthrough,
        })
    }

    /// The oids of the tables of `rd` whose names (or columns' names) `resolver` does not
    /// know yet and that the plan needs: look them up ([`CATALOG_NAMES_SQL`]) before calling
    /// [`Self::for_row_description`]. Empty when there are no column rules.
    pub fn tables_to_resolve(
        rd: &RowDescription,
        resolver: &dyn ColumnResolver,
        rules: &MaskRules,
    ) -> Vec<u32> {
        if !rules.has_column_rules() {
            return Vec::new();
        }
        let mut seen = HashSet::new();
        rd.fields
            .iter()
            .filter(|f| f.table_oid != 0)
            .filter(|f| {
                resolver.table_name(f.table_oid).is_none()
                    || (f.column_attr != 0
                        && resolver.column_name(f.table_oid, f.column_attr).is_none())
            })
            .map(|f| f.table_oid)
            .filter(|oid| seen.insert(*oid))
            .collect()
    }

    /// Whether no value of these rows is ever changed (the rows can be forwarded as they are).
    pub fn is_passthrough(&self) -> bool {
        self.passthrough
    }

    /// The columns, in order.
    pub fn columns(&self) -> &[ColumnPlan] {
        &self.columns
    }

    /// The rules the plan applies.
    pub fn rules(&self) -> &Arc<MaskRules> {
        &self.rules
    }

    /// For a `COPY ... TO STDOUT` of these columns: pass, mask, or refuse (the policy's
    /// `copy_out_masked = "refuse"` refuses when a column rule covers one of them; content
    /// rules then still mask the data).
    pub fn copy_decision(&self) -> CopyDecision {
        if self.passthrough {
            return CopyDecision::Pass;
        }
        if self.rules.copy_out() == CopyOutMasked::Refuse {
            for column in &self.columns {
                if let ColumnAction::Mask { rule } = column.action {
                    let Site::Column(name) = &column.site else {
                        continue;
                    };
                    return CopyDecision::Refuse {
                        rule: self.rules.rules()[rule].name.clone(),
                        column: name.to_string(),
                    };
                }
            }
        }
        CopyDecision::Mask
    }
}

fn column_plan(
    field: &FieldDescription,
    format: ValueFormat,
    resolver: &dyn ColumnResolver,
    rules: &MaskRules,
) -> Result<ColumnPlan, MaskError> {
    let mut label = field.name.clone();
    let mut rule = None;
    if rules.has_column_rules() {
        if field.table_oid != 0 {
            let unresolved = || MaskError::Unresolved {
                column: field.name.clone(),
                table_oid: field.table_oid,
                attnum: field.column_attr,
            };
            let table = resolver
                .table_name(field.table_oid)
                .ok_or_else(unresolved)?;
            if field.column_attr == 0 {
                // A whole row: it holds every column of the table.
                label = format!("{}.{}.*", table.schema, table.table);
                rule = rules.table_rule(&table.schema, &table.table);
            } else {
                let column = resolver
                    .column_name(field.table_oid, field.column_attr)
                    .ok_or_else(unresolved)?;
                rule = rules.column_rule(&table.schema, &table.table, &column);
                label = format!("{}.{}.{column}", table.schema, table.table);
            }
        } else {
            rule = rules.result_column_rule(&field.name);
        }
    }
    let type_oid = field.type_oid;
    let action = match rule {
        Some(rule) => {
            let r = &rules.rules()[rule];
            if r.strategy != MaskStrategy::Null && !types::is_text_like(type_oid) {
                return Err(MaskError::NotText {
                    rule: r.name.clone(),
                    strategy: r.strategy.as_str(),
                    column: label,
                    type_name: TypeName(type_oid),
                });
            }
            ColumnAction::Mask { rule }
        }
        None if rules.has_content_rules() => match format {
            ValueFormat::Text if types::scanned_as_text(type_oid) => {
                ColumnAction::Scan(ScanKind::Text)
            }
            ValueFormat::Text => ColumnAction::Keep,
            ValueFormat::Binary => match type_oid {
                oid if types::is_text_like(oid) || oid == types::JSON || oid == types::XML => {
                    ColumnAction::Scan(ScanKind::Text)
                }
                types::JSONB => ColumnAction::Scan(ScanKind::JsonbBinary),
                oid if types::is_text_array(oid) => ColumnAction::Scan(ScanKind::TextArrayBinary),
                oid if binary_may_hide_text(oid, field.type_size) => {
                    let first = rules.content_rules()[0];
                    return Err(MaskError::Unscannable {
                        rule: rules.rules()[first].name.clone(),
                        column: label,
                        type_name: TypeName(oid),
                    });
                }
                _ => ColumnAction::Keep,
            },
        },
        None => ColumnAction::Keep,
    };
    Ok(ColumnPlan {
        site: Site::Column(label.into()),
        format,
        type_oid,
        action,
    })
}

/// Binary values whose layout the agent does not know and that may hold text: records,
/// arrays of json, jsonb, xml or records, and variable-length types created in the database
/// (citext, hstore, composite types, arrays of those ...). Fixed-length types created in the
/// database (enums: 4 bytes) hold no text.
fn binary_may_hide_text(oid: u32, type_size: i16) -> bool {
    matches!(
        oid,
        types::RECORD
            | types::RECORD_ARRAY
            | types::JSON_ARRAY
            | types::JSONB_ARRAY
            | types::XML_ARRAY
    ) || (oid >= types::FIRST_NORMAL_OID && type_size < 0)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::policy::Detector;

    fn plan(
        fields: Vec<FieldDescription>,
        formats: &[i16],
        rules: &Arc<MaskRules>,
    ) -> Result<MaskPlan, MaskError> {
        MaskPlan::for_row_description(&RowDescription { fields }, formats, &catalog(), rules)
    }

    fn actions(p: &MaskPlan) -> Vec<ColumnAction> {
        p.columns().iter().map(|c| c.action).collect()
    }

    #[test]
    fn column_rules_match_table_columns_by_resolved_names() {
        let rules = compiled(vec![
            rule(
                "cards",
                &["public.payments.card_number"],
                MaskStrategy::Partial { keep_last: 4 },
            ),
            rule("emails", &["*.*.email"], MaskStrategy::Hash),
        ]);
        let p = plan(
            vec![
                table_field("id", PAYMENTS, 1, types::INT4),
                table_field("card_number", PAYMENTS, 2, types::TEXT),
                table_field("email", CUSTOMERS, 2, types::VARCHAR),
                table_field("name", CUSTOMERS, 3, types::TEXT),
            ],
            &[],
            &rules,
        )
        .unwrap();
        assert_eq!(
            actions(&p),
            [
                ColumnAction::Keep,
                ColumnAction::Mask { rule: 0 },
                ColumnAction::Mask { rule: 1 },
                ColumnAction::Keep,
            ]
        );
        assert_eq!(
            p.columns()[1].site,
            Site::Column("public.payments.card_number".into())
        );
        assert!(!p.is_passthrough());
    }

    #[test]
    fn an_alias_of_a_table_column_is_still_matched_by_its_origin() {
        // `SELECT card_number AS x FROM payments`: the server reports the origin.
        let rules = compiled(vec![rule(
            "cards",
            &["public.payments.card_number"],
            MaskStrategy::Redact,
        )]);
        let p = plan(
            vec![table_field("x", PAYMENTS, 2, types::TEXT)],
            &[],
            &rules,
        )
        .unwrap();
        assert_eq!(actions(&p), [ColumnAction::Mask { rule: 0 }]);
    }

    #[test]
    fn result_columns_match_columns_without_source_by_name() {
        let rules = compiled(vec![result_rule(
            "aliases",
            &["email*"],
            MaskStrategy::Redact,
        )]);
        let p = plan(
            vec![
                FieldDescription::text("email_lower", types::TEXT),
                FieldDescription::text("name", types::TEXT),
                // A table column named like the pattern: only `columns` patterns apply to it.
                table_field("email", CUSTOMERS, 2, types::TEXT),
            ],
            &[],
            &rules,
        )
        .unwrap();
        assert_eq!(
            actions(&p),
            [
                ColumnAction::Mask { rule: 0 },
                ColumnAction::Keep,
                ColumnAction::Keep
            ]
        );
        assert_eq!(p.columns()[0].site, Site::Column("email_lower".into()));
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let rules = compiled(vec![
            rule("first", &["public.*.*"], MaskStrategy::Null),
            rule(
                "second",
                &["public.payments.card_number"],
                MaskStrategy::Redact,
            ),
        ]);
        let p = plan(
            vec![table_field("c", PAYMENTS, 2, types::TEXT)],
            &[],
            &rules,
        )
        .unwrap();
        assert_eq!(actions(&p), [ColumnAction::Mask { rule: 0 }]);
    }

    #[test]
    fn column_rules_on_non_text_columns_need_the_null_strategy() {
        let redact = compiled(vec![rule(
            "ids",
            &["public.payments.id"],
            MaskStrategy::Redact,
        )]);
        let e = plan(
            vec![table_field("id", PAYMENTS, 1, types::INT4)],
            &[],
            &redact,
        )
        .unwrap_err();
        assert_eq!(
            e,
            MaskError::NotText {
                rule: "ids".into(),
                strategy: "redact",
                column: "public.payments.id".into(),
                type_name: TypeName(types::INT4),
            }
        );
        assert!(e.to_string().contains("integer (oid 23)"), "{e}");
        // In binary format too.
        assert!(
            plan(
                vec![table_field("id", PAYMENTS, 1, types::INT4)],
                &[1],
                &redact
            )
            .is_err()
        );
        let null = compiled(vec![rule(
            "ids",
            &["public.payments.id"],
            MaskStrategy::Null,
        )]);
        let p = plan(
            vec![table_field("id", PAYMENTS, 1, types::INT4)],
            &[1],
            &null,
        )
        .unwrap();
        assert_eq!(actions(&p), [ColumnAction::Mask { rule: 0 }]);
    }

    #[test]
    fn unresolvable_tables_fail_closed_when_there_are_column_rules() {
        let rules = compiled(vec![rule(
            "c",
            &["public.payments.card_number"],
            MaskStrategy::Null,
        )]);
        let e = plan(vec![table_field("x", 99999, 1, types::TEXT)], &[], &rules).unwrap_err();
        assert_eq!(
            e,
            MaskError::Unresolved {
                column: "x".into(),
                table_oid: 99999,
                attnum: 1
            }
        );
        // A known table whose column is unknown, too.
        assert!(
            plan(
                vec![table_field("x", PAYMENTS, 42, types::TEXT)],
                &[],
                &rules
            )
            .is_err()
        );
        // Content rules alone never need names.
        let content = compiled(vec![content_rule(
            "pii",
            &[Detector::Email],
            MaskStrategy::Redact,
        )]);
        let p = plan(vec![table_field("x", 99999, 1, types::TEXT)], &[], &content).unwrap();
        assert_eq!(actions(&p), [ColumnAction::Scan(ScanKind::Text)]);
    }

    #[test]
    fn tables_to_resolve_lists_unknown_tables_once() {
        let rules = compiled(vec![rule("c", &["*.*.x"], MaskStrategy::Null)]);
        let rd = RowDescription {
            fields: vec![
                table_field("a", 99999, 1, types::TEXT),
                table_field("b", 99999, 2, types::TEXT),
                table_field("c", PAYMENTS, 1, types::INT4),
                table_field("d", PAYMENTS, 77, types::INT4),
                FieldDescription::text("e", types::TEXT),
            ],
        };
        assert_eq!(
            MaskPlan::tables_to_resolve(&rd, &catalog(), &rules),
            [99999, PAYMENTS]
        );
        let content = compiled(vec![content_rule(
            "p",
            &[Detector::Ssn],
            MaskStrategy::Null,
        )]);
        assert!(MaskPlan::tables_to_resolve(&rd, &catalog(), &content).is_empty());
    }

    #[test]
    fn whole_row_columns_are_covered_when_a_rule_covers_a_column_of_their_table() {
        let rules = compiled(vec![rule(
            "cards",
            &["public.payments.card_number"],
            MaskStrategy::Partial { keep_last: 4 },
        )]);
        // `SELECT p FROM payments p`: a record holding the card number.
        let whole_row = table_field("p", PAYMENTS, 0, PAYMENTS_ROWTYPE);
        let e = plan(vec![whole_row.clone()], &[], &rules).unwrap_err();
        assert!(
            matches!(&e, MaskError::NotText { column, .. } if column == "public.payments.*"),
            "{e:?}"
        );
        let null = compiled(vec![rule(
            "cards",
            &["public.payments.card_number"],
            MaskStrategy::Null,
        )]);
        let p = plan(vec![whole_row], &[], &null).unwrap();
        assert_eq!(actions(&p), [ColumnAction::Mask { rule: 0 }]);
    }

    #[test]
    fn content_rules_scan_text_values_only() {
        let rules = compiled(vec![content_rule(
            "pii",
            &[Detector::Email],
            MaskStrategy::Redact,
        )]);
        let fields = vec![
            FieldDescription::text("t", types::TEXT),
            FieldDescription::text("j", types::JSONB),
            FieldDescription::text("n", types::INT4),
            FieldDescription::text("u", types::UUID),
            FieldDescription::text("a", types::TEXT_ARRAY),
            FieldDescription::text("citext", 70000),
        ];
        let text = plan(fields.clone(), &[], &rules).unwrap();
        assert_eq!(
            actions(&text),
            [
                ColumnAction::Scan(ScanKind::Text),
                ColumnAction::Scan(ScanKind::Text),
                ColumnAction::Keep,
                ColumnAction::Keep,
                ColumnAction::Scan(ScanKind::Text),
                ColumnAction::Scan(ScanKind::Text),
            ]
        );
        // Binary: a variable-length type created in the database cannot be read.
        let e = plan(fields.clone(), &[1], &rules).unwrap_err();
        assert!(
            matches!(&e, MaskError::Unscannable { column, rule, .. } if column == "citext" && rule == "pii"),
            "{e:?}"
        );
        let binary = plan(fields[..5].to_vec(), &[1], &rules).unwrap();
        assert_eq!(
            actions(&binary),
            [
                ColumnAction::Scan(ScanKind::Text),
                ColumnAction::Scan(ScanKind::JsonbBinary),
                ColumnAction::Keep,
                ColumnAction::Keep,
                ColumnAction::Scan(ScanKind::TextArrayBinary),
            ]
        );
        // An enum (fixed length) in binary is fine.
        let mut enum_field = FieldDescription::text("status", 70001);
        enum_field.type_size = 4;
        assert_eq!(
            actions(&plan(vec![enum_field], &[1], &rules).unwrap()),
            [ColumnAction::Keep]
        );
    }

    #[test]
    fn formats_follow_binds_convention() {
        let rules = compiled(vec![content_rule(
            "pii",
            &[Detector::Email],
            MaskStrategy::Redact,
        )]);
        let fields = vec![
            FieldDescription::text("a", types::TEXT),
            FieldDescription::text("b", types::TEXT),
        ];
        let formats = |codes: &[i16]| -> Vec<ValueFormat> {
            plan(fields.clone(), codes, &rules)
                .unwrap()
                .columns()
                .iter()
                .map(|c| c.format)
                .collect()
        };
        assert_eq!(formats(&[]), [ValueFormat::Text, ValueFormat::Text]);
        assert_eq!(formats(&[1]), [ValueFormat::Binary, ValueFormat::Binary]);
        assert_eq!(formats(&[0, 1]), [ValueFormat::Text, ValueFormat::Binary]);
        assert_eq!(
            plan(fields.clone(), &[0, 1, 1], &rules).unwrap_err(),
            MaskError::FormatCount {
                codes: 3,
                columns: 2
            }
        );
        assert!(matches!(
            plan(fields.clone(), &[2], &rules).unwrap_err(),
            MaskError::BadFormat { code: 2, .. }
        ));
    }

    #[test]
    fn without_rules_every_plan_is_a_passthrough() {
        let rules = Arc::new(MaskRules::empty());
        let p = plan(vec![table_field("x", 99999, 1, types::INT4)], &[1], &rules).unwrap();
        assert!(p.is_passthrough());
        assert_eq!(p.copy_decision(), CopyDecision::Pass);
    }

    #[test]
    fn copy_out_refuse_denies_copies_of_covered_columns() {
        let mut m = masking(vec![
            rule(
                "cards",
                &["public.payments.card_number"],
                MaskStrategy::Null,
            ),
            content_rule("pii", &[Detector::Email], MaskStrategy::Redact),
        ]);
        m.copy_out = CopyOutMasked::Refuse;
        let rules = Arc::new(MaskRules::new(&m, None).unwrap());
        let covered = plan(
            vec![
                table_field("id", PAYMENTS, 1, types::INT4),
                table_field("card_number", PAYMENTS, 2, types::TEXT),
            ],
            &[],
            &rules,
        )
        .unwrap();
        assert_eq!(
            covered.copy_decision(),
            CopyDecision::Refuse {
                rule: "cards".into(),
                column: "public.payments.card_number".into()
            }
        );
        // Only scanned by content rules: masked.
        let scanned = plan(
            vec![table_field("name", CUSTOMERS, 3, types::TEXT)],
            &[],
            &rules,
        )
        .unwrap();
        assert_eq!(scanned.copy_decision(), CopyDecision::Mask);
        m.copy_out = CopyOutMasked::Mask;
        let rules = Arc::new(MaskRules::new(&m, None).unwrap());
        let covered = plan(
            vec![table_field("c", PAYMENTS, 2, types::TEXT)],
            &[],
            &rules,
        )
        .unwrap();
        assert_eq!(covered.copy_decision(), CopyDecision::Mask);
    }
}
