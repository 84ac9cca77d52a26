//! Masking of what the database sends back: result rows, COPY data, error and notice texts,
//! notification payloads. Pure: no sockets, no catalog access, no clock.
//!
//! The rules come from the policy ([`crate::policy::Masking`], per workload and target),
//! compiled once into [`MaskRules`] with the keyed-hash key the caller resolved. Then:
//!
//! - [`plan`]: which columns of a RowDescription a rule covers ([`MaskPlan`]); column origins
//!   are table oids and attribute numbers, turned into names by a [`ColumnResolver`] the
//!   caller fills from the catalog ([`CATALOG_NAMES_SQL`]);
//! - [`row`]: one DataRow rewritten by a plan ([`mask_row`]), lengths rebuilt, NULL kept;
//! - [`copy`]: a `COPY ... TO STDOUT` stream (text, CSV or binary) rewritten record by record
//!   as it passes ([`CopyMasker`]), with the COPY options read from the statement
//!   ([`copy_outs`]);
//! - [`text`]: content rules on free text: error and notice fields, NOTIFY payloads;
//! - [`detectors`] and [`strategies`]: what content rules find, and how values are replaced;
//! - [`counts`]: how many values each rule masked, where ([`MaskCounts`]), for the audit
//!   event of the statement: never a value.
//!
//! Fail closed: whatever cannot be masked as the rules say is a [`MaskError`]; the caller then
//! fails the statement (e.g. with [`MaskError::error_response`]) and forwards nothing of the
//! value. Memory is bounded: rows are rewritten one at a time, COPY streams keep at most one
//! incomplete record.

pub mod copy;
pub mod counts;
pub mod detectors;
pub mod plan;
pub mod row;
pub mod strategies;
pub mod text;

use std::fmt;

use ring::hmac;

use crate::pg::codec::CodecError;
use crate::pg::codec::backend::{ErrorResponse, Severity};
use crate::pg::sqlstate;
use crate::policy::{CopyOutMasked, MaskRule, MaskStrategy, Masking};

pub use copy::{
    CatalogColumn, CopyFormat, CopyMasker, CopyOut, CopySource, copy_format_of, copy_outs,
};
pub use counts::{MaskCount, MaskCounts, Site};
pub use plan::{
    CATALOG_NAMES_SQL, COPY_TABLE_COLUMNS_SQL, CatalogNames, ColumnAction, ColumnPlan,
    ColumnResolver, CopyDecision, MaskPlan, ScanKind, TableName, ValueFormat,
};
pub use row::mask_row;
pub use text::{mask_error_response, mask_notification, mask_text};

/// The shortest accepted keyed-hash key, in bytes.
pub const MIN_KEY_LEN: usize = 16;

/// The masking rules of one workload for one target, compiled: ready to plan and mask.
/// Cheap to share (`Arc`) between sessions; immutable.
pub struct MaskRules {
    rules: Vec<MaskRule>,
    /// Per rule: its patterns compiled for byte input (empty for column rules).
    patterns: Vec<Vec<regex::bytes::Regex>>,
    /// Indices of the content rules, in file order.
    content: Vec<usize>,
    has_column_rules: bool,
    key: Option<hmac::Key>,
    copy_out: CopyOutMasked,
}

impl fmt::Debug for MaskRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaskRules")
            .field(
                "rules",
                &self.rules.iter().map(|r| &r.name).collect::<Vec<_>>(),
            )
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("copy_out", &self.copy_out)
            .finish()
    }
}

impl MaskRules {
    /// Compiles `masking`. `key` is the resolved `masking_key` (its bytes); it is needed, and
    /// must be at least [`MIN_KEY_LEN`] bytes long, when a rule uses strategy `hash`.
    pub fn new(masking: &Masking, key: Option<&[u8]>) -> Result<Self, MaskError> {
        let hash_rule = masking
            .rules
            .iter()
            .find(|r| r.strategy == MaskStrategy::Hash);
        let key = match (hash_rule, key) {
            (None, _) => None,
            (Some(rule), None) => {
                return Err(MaskError::MissingKey {
                    rule: rule.name.clone(),
                });
            }
            (Some(_), Some(key)) if key.len() < MIN_KEY_LEN => {
                return Err(MaskError::WeakKey { len: key.len() });
            }
            (Some(_), Some(key)) => Some(hmac::Key::new(hmac::HMAC_SHA256, key)),
        };
        let mut patterns = Vec::with_capacity(masking.rules.len());
        for rule in &masking.rules {
            let mut compiled = Vec::with_capacity(rule.patterns.len());
            for p in &rule.patterns {
                let re = regex::bytes::Regex::new(p.as_str()).map_err(|e| MaskError::Pattern {
                    rule: rule.name.clone(),
                    message: e.to_string(),
                })?;
                compiled.push(re);
            }
            patterns.push(compiled);
        }
        Ok(Self {
            content: (0..masking.rules.len())
                .filter(|&i| masking.rules[i].is_content_rule())
                .collect(),
            has_column_rules: masking.has_column_rules(),
            rules: masking.rules.clone(),
            patterns,
            key,
            copy_out: masking.copy_out,
        })
    }

    /// No rule: nothing is ever masked.
    pub fn empty() -> Self {
        Self {
            rules: Vec::new(),
            patterns: Vec::new(),
            content: Vec::new(),
            has_column_rules: false,
            key: None,
            copy_out: CopyOutMasked::default(),
        }
    }

    /// Whether there is no rule at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules, in file order (a rule index in [`MaskCounts`] and [`ColumnAction`] is an
    /// index in this slice).
    pub fn rules(&self) -> &[MaskRule] {
        &self.rules
    }

    /// Whether some rule masks by column.
    pub fn has_column_rules(&self) -> bool {
        self.has_column_rules
    }

    /// Whether some rule masks by content.
    pub fn has_content_rules(&self) -> bool {
        !self.content.is_empty()
    }

    /// The policy's `copy_out_masked`.
    pub fn copy_out(&self) -> CopyOutMasked {
        self.copy_out
    }

    pub(crate) fn content_rules(&self) -> &[usize] {
        &self.content
    }

    pub(crate) fn patterns(&self, rule: usize) -> &[regex::bytes::Regex] {
        &self.patterns[rule]
    }

    pub(crate) fn key(&self) -> Option<&hmac::Key> {
        self.key.as_ref()
    }

    /// The first column rule covering column `column` of `schema.table`.
    pub(crate) fn column_rule(&self, schema: &str, table: &str, column: &str) -> Option<usize> {
        self.rules
            .iter()
            .position(|r| r.covers_column(schema, table, column))
    }

    /// The first column rule that may cover a column of `schema.table`.
    pub(crate) fn table_rule(&self, schema: &str, table: &str) -> Option<usize> {
        self.rules
            .iter()
            .position(|r| r.covers_table(schema, table))
    }

    /// The first rule covering a result column without source named `name`.
    pub(crate) fn result_column_rule(&self, name: &str) -> Option<usize> {
        self.rules.iter().position(|r| r.covers_result_column(name))
    }
}

/// Why something could not be masked (the caller must then fail the statement and forward
/// nothing of the value). Messages name rules, columns and types, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaskError {
    #[error("mask rule `{rule}` uses strategy \"hash\" but no masking key was given (masking_key)")]
    MissingKey { rule: String },
    #[error("the masking key is {len} bytes long: it must be at least {MIN_KEY_LEN} bytes")]
    WeakKey { len: usize },
    #[error("mask rule `{rule}`: invalid pattern: {message}")]
    Pattern { rule: String, message: String },
    #[error(
        "mask rule `{rule}` (strategy {strategy}) covers column `{column}` of type {type_name}: \
         only strategy \"null\" can mask a value that is not text; use strategy = \"null\" for \
         it, or cast the column to text in the query"
    )]
    NotText {
        rule: String,
        strategy: &'static str,
        column: String,
        type_name: TypeName,
    },
    #[error(
        "result column `{column}` comes from table oid {table_oid} (attribute {attnum}), whose \
         name is unknown: mask rules name columns, so the result is withheld"
    )]
    Unresolved {
        column: String,
        table_oid: u32,
        attnum: i16,
    },
    #[error(
        "result column `{column}` is sent in binary format as type {type_name}, which the \
         content rules (e.g. `{rule}`) cannot read: request it in text format"
    )]
    Unscannable {
        rule: String,
        column: String,
        type_name: TypeName,
    },
    #[error("result column `{column}` has format code {code}: only 0 (text) and 1 (binary) exist")]
    BadFormat { column: String, code: i16 },
    #[error("{codes} result format codes for {columns} columns: expected 0, 1 or {columns}")]
    FormatCount { codes: usize, columns: usize },
    #[error("a row has {got} values but its RowDescription has {expected} columns")]
    ColumnCount { expected: usize, got: usize },
    #[error(
        "mask rule `{rule}` (strategy {strategy}) cannot mask a value of column `{column}`: it \
         is not valid UTF-8"
    )]
    NotUtf8 {
        rule: String,
        strategy: &'static str,
        column: String,
    },
    #[error("column `{column}`: malformed binary {what} value: {reason}")]
    MalformedValue {
        column: String,
        what: &'static str,
        reason: String,
    },
    #[error("the masked row cannot be encoded: {0}")]
    Codec(String),
    #[error("COPY record larger than the masking buffer ({max} bytes): the COPY is aborted")]
    CopyRecordTooLarge { max: usize },
    #[error("malformed COPY data: {0}")]
    CopyMalformed(String),
    #[error("the COPY data ended in the middle of a record")]
    CopyTruncated,
    #[error("COPY statement: {0}")]
    CopyStatement(String),
    #[error(
        "the columns of this result are unknown to the agent (its statement was never \
         described): mask rules apply to this session, so the result is withheld"
    )]
    UnknownColumns,
    #[error(
        "COPY TO STDOUT of column `{column}`, which mask rule `{rule}` covers, is refused by \
         the policy (copy_out_masked = \"refuse\")"
    )]
    CopyRefused { rule: String, column: String },
}

impl From<CodecError> for MaskError {
    fn from(e: CodecError) -> Self {
        MaskError::Codec(e.to_string())
    }
}

impl MaskError {
    /// The SQLSTATE to fail the statement with: `42501` (insufficient_privilege) when the
    /// policy withholds data, `XX000` (internal_error) when the server's data was malformed.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            MaskError::MalformedValue { .. }
            | MaskError::Codec(_)
            | MaskError::CopyMalformed(_)
            | MaskError::CopyTruncated
            | MaskError::ColumnCount { .. } => sqlstate::INTERNAL_ERROR,
            MaskError::CopyRecordTooLarge { .. } => sqlstate::PROGRAM_LIMIT_EXCEEDED,
            MaskError::CopyStatement(_) => sqlstate::FEATURE_NOT_SUPPORTED,
            _ => sqlstate::INSUFFICIENT_PRIVILEGE,
        }
    }

    /// The ErrorResponse that fails the statement in the client's face.
    pub fn error_response(&self) -> ErrorResponse {
        ErrorResponse::new(
            Severity::Error,
            self.sqlstate(),
            "result withheld by the agent's masking policy",
        )
        .detail(self.to_string())
        .hint("no unmasked value was sent; ask the policy owners to adjust the mask rules")
    }
}

/// A type oid with its name when it is a well-known one (for error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeName(pub u32);

impl fmt::Display for TypeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match types::name(self.0) {
            Some(name) => write!(f, "{name} (oid {})", self.0),
            None => write!(f, "oid {}", self.0),
        }
    }
}

/// Type oids and how masking treats them.
pub mod types {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const CHAR: u32 = 18;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const XML: u32 = 142;
    pub const XML_ARRAY: u32 = 143;
    pub const JSON_ARRAY: u32 = 199;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const UNKNOWN: u32 = 705;
    pub const NAME_ARRAY: u32 = 1003;
    pub const BPCHAR_ARRAY: u32 = 1014;
    pub const TEXT_ARRAY: u32 = 1009;
    pub const VARCHAR_ARRAY: u32 = 1015;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const NUMERIC: u32 = 1700;
    pub const RECORD: u32 = 2249;
    pub const RECORD_ARRAY: u32 = 2287;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
    pub const JSONB_ARRAY: u32 = 3807;
    /// Oids from here on are objects created in the database (extensions' types such as
    /// citext or hstore, composite types of tables, enums ...).
    pub const FIRST_NORMAL_OID: u32 = 16384;

    /// Types whose text and binary forms are both the UTF-8 text itself: whole values of
    /// these can be replaced by any text.
    pub fn is_text_like(oid: u32) -> bool {
        matches!(oid, TEXT | VARCHAR | BPCHAR | NAME | UNKNOWN)
    }

    /// Arrays of text-like types (their binary form is parsed to scan each element).
    pub fn is_text_array(oid: u32) -> bool {
        matches!(oid, TEXT_ARRAY | VARCHAR_ARRAY | BPCHAR_ARRAY | NAME_ARRAY)
    }

    /// Whether content rules scan a text-format value of this type: text-like types, json,
    /// jsonb, xml, records, arrays of those, and types created in the database.
    pub fn scanned_as_text(oid: u32) -> bool {
        is_text_like(oid)
            || is_text_array(oid)
            || matches!(
                oid,
                JSON | JSONB | XML | RECORD | JSON_ARRAY | JSONB_ARRAY | XML_ARRAY | RECORD_ARRAY
            )
            || oid >= FIRST_NORMAL_OID
    }

    /// The name of a well-known type.
    pub fn name(oid: u32) -> Option<&'static str> {
        Some(match oid {
            BOOL => "boolean",
            BYTEA => "bytea",
            CHAR => "\"char\"",
            NAME => "name",
            INT8 => "bigint",
            INT2 => "smallint",
            INT4 => "integer",
            TEXT => "text",
            OID => "oid",
            JSON => "json",
            XML => "xml",
            FLOAT4 => "real",
            FLOAT8 => "double precision",
            UNKNOWN => "unknown",
            TEXT_ARRAY => "text[]",
            VARCHAR_ARRAY => "character varying[]",
            BPCHAR => "character",
            VARCHAR => "character varying",
            DATE => "date",
            TIMESTAMP => "timestamp",
            TIMESTAMPTZ => "timestamp with time zone",
            NUMERIC => "numeric",
            RECORD => "record",
            UUID => "uuid",
            JSONB => "jsonb",
            _ => return None,
        })
    }
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use super::test_support::{content_rule, masking, rule};
    use super::*;
    use crate::policy::Detector;

    #[test]
    fn hash_rules_need_a_key_of_at_least_16_bytes() {
        let m = masking(vec![rule("h", &["public.t.c"], MaskStrategy::Hash)]);
        assert_eq!(
            MaskRules::new(&m, None).unwrap_err(),
            MaskError::MissingKey { rule: "h".into() }
        );
        assert_eq!(
            MaskRules::new(&m, Some(b"short")).unwrap_err(),
            MaskError::WeakKey { len: 5 }
        );
        assert!(MaskRules::new(&m, Some(&[7u8; 16])).is_ok());
        // Without a hash rule, no key is needed.
        let m = masking(vec![content_rule(
            "c",
            &[Detector::Email],
            MaskStrategy::Redact,
        )]);
        let rules = MaskRules::new(&m, None).unwrap();
        assert!(rules.has_content_rules() && !rules.has_column_rules());
        assert!(!format!("{rules:?}").contains("key: Some"));
    }

    #[test]
    fn errors_map_to_sqlstates_and_never_show_values() {
        let e = MaskError::NotText {
            rule: "cards".into(),
            strategy: "partial",
            column: "public.payments.card_number".into(),
            type_name: TypeName(types::NUMERIC),
        };
        assert_eq!(e.sqlstate(), "42501");
        let response = e.error_response();
        assert_eq!(response.code(), Some("42501"));
        let detail = response.field(b'D').unwrap();
        assert!(detail.contains("numeric (oid 1700)"), "{detail}");
        assert!(detail.contains("use strategy = \"null\""), "{detail}");
        assert_eq!(MaskError::CopyTruncated.sqlstate(), "XX000");
        assert_eq!(TypeName(99999).to_string(), "oid 99999");
    }
}
