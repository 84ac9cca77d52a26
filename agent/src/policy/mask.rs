//! Masking rules: which result values a workload sees masked on one PostgreSQL target
//! (`mask`, `masking_key` and `copy_out_masked` in `[[workload.access]]`).
//!
//! Plain data, validated in `validate.rs` and applied by [`crate::mask`]. The syntax and the
//! semantics are documented in `docs/policy-reference.md` (section "Masking").

use std::fmt;

use regex::Regex;

use super::access::Glob;
use super::model::{SecretRef, SourceLocation};

/// The masking settings of one workload for one target.
#[derive(Debug, Clone, Default)]
pub struct Masking {
    /// In file order: for a column, the first column rule that covers it wins; every content
    /// rule scans the text values no column rule covers.
    pub rules: Vec<MaskRule>,
    /// The key of the keyed hash (strategy `hash`); `Some` whenever a rule uses it.
    pub key: Option<SecretRef>,
    /// What happens to `COPY ... TO STDOUT` when a rule applies to what it copies.
    pub copy_out: CopyOutMasked,
}

impl Masking {
    /// Whether there is no rule at all (results pass untouched).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether some rule masks by column (`columns` or `result_columns`).
    pub fn has_column_rules(&self) -> bool {
        self.rules.iter().any(MaskRule::is_column_rule)
    }

    /// Whether some rule masks by content (`detectors` or `patterns`).
    pub fn has_content_rules(&self) -> bool {
        self.rules.iter().any(MaskRule::is_content_rule)
    }
}

/// `copy_out_masked`: what to do with a `COPY ... TO STDOUT` that a mask rule applies to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum CopyOutMasked {
    /// Mask the COPY data stream, row by row (the default).
    #[default]
    Mask,
    /// Deny the COPY.
    Refuse,
}

impl CopyOutMasked {
    /// As written in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            CopyOutMasked::Mask => "mask",
            CopyOutMasked::Refuse => "refuse",
        }
    }
}

impl fmt::Display for CopyOutMasked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `mask` rule: either by column (`columns`, `result_columns`: the whole value is
/// masked) or by content (`detectors`, `patterns`: the matching parts of text values are),
/// never both.
#[derive(Debug, Clone)]
pub struct MaskRule {
    /// As written, else `mask[N]` (its index in the list).
    pub name: String,
    /// `schema.table.column` patterns, matched against a result column's origin.
    pub columns: Vec<ColumnPattern>,
    /// Name patterns for result columns without a source column (expressions, aliases of
    /// expressions): matched against the column's name.
    pub result_columns: Vec<NamePattern>,
    /// Built-in content detectors, in the order written (no repeats).
    pub detectors: Vec<Detector>,
    /// Custom regular expressions (none can match the empty string).
    pub patterns: Vec<Regex>,
    pub strategy: MaskStrategy,
    pub source: SourceLocation,
}

impl MaskRule {
    /// Whether the rule masks whole values of the columns it names.
    pub fn is_column_rule(&self) -> bool {
        !self.columns.is_empty() || !self.result_columns.is_empty()
    }

    /// Whether the rule masks the parts of text values its detectors or patterns find.
    pub fn is_content_rule(&self) -> bool {
        !self.detectors.is_empty() || !self.patterns.is_empty()
    }

    /// Whether the rule covers column `column` of table `schema.table`.
    pub fn covers_column(&self, schema: &str, table: &str, column: &str) -> bool {
        self.columns
            .iter()
            .any(|p| p.matches(schema, table, column))
    }

    /// Whether the rule may cover some column of table `schema.table` (its `columns` patterns
    /// match the schema and table parts).
    pub fn covers_table(&self, schema: &str, table: &str) -> bool {
        self.columns.iter().any(|p| p.matches_table(schema, table))
    }

    /// Whether the rule covers a result column without source column named `name`.
    pub fn covers_result_column(&self, name: &str) -> bool {
        self.result_columns.iter().any(|p| p.matches(name))
    }
}

/// How a masked value (or, for content rules, a masked part of a text) is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaskStrategy {
    /// Replaced by a fixed marker (`[REDACTED]`, or `[REDACTED:<detector>]` for a part).
    Redact,
    /// Every character but the last `keep_last` replaced by `*` (all of them when the value
    /// has no more than `keep_last` characters).
    Partial { keep_last: u8 },
    /// A keyed hash (HMAC-SHA256 with the `masking_key`): the same input always gives the same
    /// token, so joins and group-bys still work, and the token reveals nothing without the key.
    Hash,
    /// NULL (for a part of a text: as `Redact`).
    Null,
}

impl MaskStrategy {
    /// The strategy names, in documentation order.
    pub const NAMES: [&'static str; 4] = ["redact", "partial", "hash", "null"];

    /// As written in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            MaskStrategy::Redact => "redact",
            MaskStrategy::Partial { .. } => "partial",
            MaskStrategy::Hash => "hash",
            MaskStrategy::Null => "null",
        }
    }
}

impl fmt::Display for MaskStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaskStrategy::Partial { keep_last } => write!(f, "partial (keep last {keep_last})"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// A built-in content detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Detector {
    /// Payment card numbers: 13 to 19 digits (single spaces or dashes allowed between
    /// groups), a known issuer prefix and length, Luhn-valid.
    Card,
    /// E-mail addresses (`local@domain.tld`).
    Email,
    /// US social security numbers, dashed (`AAA-GG-SSSS`), with the SSA validity rules.
    Ssn,
    /// Phone numbers: E.164 (`+` and 8 to 15 digits) and North American forms.
    Phone,
    /// IBANs with a valid country length and mod-97 checksum (optionally in groups of 4).
    Iban,
    /// JSON Web Tokens (three base64url segments, the first a JSON header with `alg`).
    Jwt,
    /// API keys and private keys of well-known shapes (AWS, GitHub, Slack, Stripe, PEM).
    ApiKey,
}

impl Detector {
    /// Every detector, in documentation order.
    pub const ALL: [Detector; 7] = [
        Detector::Card,
        Detector::Email,
        Detector::Ssn,
        Detector::Phone,
        Detector::Iban,
        Detector::Jwt,
        Detector::ApiKey,
    ];

    /// As written in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Detector::Card => "card",
            Detector::Email => "email",
            Detector::Ssn => "ssn",
            Detector::Phone => "phone",
            Detector::Iban => "iban",
            Detector::Jwt => "jwt",
            Detector::ApiKey => "api_key",
        }
    }

    /// The detector named `name` (as written in policy files).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == name)
    }
}

impl fmt::Display for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `schema.table.column` pattern: three globs (`*`, `?`, `[a-z]`, `{a,b}`), matched
/// case-sensitively against the names as PostgreSQL stores them.
#[derive(Clone)]
pub struct ColumnPattern {
    raw: String,
    schema: Glob,
    table: Glob,
    column: Glob,
}

impl ColumnPattern {
    /// Parses `schema.table.column` (each part a non-empty glob without `.`).
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let parts: Vec<&str> = pattern.split('.').collect();
        let [schema, table, column] = parts[..] else {
            let hint = match parts.len() {
                1 => format!(", e.g. `*.*.{pattern}`"),
                2 => format!(", e.g. `public.{pattern}` or `*.{pattern}`"),
                _ => String::new(),
            };
            return Err(format!(
                "column pattern `{pattern}` must have three parts, `schema.table.column`{hint}; \
                 result columns without a source column are matched by name in \
                 `result_columns`"
            ));
        };
        Ok(Self {
            raw: pattern.to_string(),
            schema: Glob::parse(schema, pattern)?,
            table: Glob::parse(table, pattern)?,
            column: Glob::parse(column, pattern)?,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether column `column` of `schema.table` matches.
    pub fn matches(&self, schema: &str, table: &str, column: &str) -> bool {
        self.matches_table(schema, table) && self.column.matches(column)
    }

    /// Whether the schema and table parts match `schema.table`.
    pub fn matches_table(&self, schema: &str, table: &str) -> bool {
        self.schema.matches(schema) && self.table.matches(table)
    }
}

/// A result column name pattern: one glob, matched case-sensitively against the column name
/// the server reports (an alias as written, lower-cased unless quoted).
#[derive(Clone)]
pub struct NamePattern {
    raw: String,
    glob: Glob,
}

impl NamePattern {
    pub fn parse(pattern: &str) -> Result<Self, String> {
        Ok(Self {
            raw: pattern.to_string(),
            glob: Glob::parse(pattern, pattern)?,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn matches(&self, name: &str) -> bool {
        self.glob.matches(name)
    }
}

macro_rules! pattern_traits {
    ($t:ty) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($t)).field(&self.raw).finish()
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.raw)
            }
        }

        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                self.raw == other.raw
            }
        }

        impl Eq for $t {}
    };
}

pattern_traits!(ColumnPattern);
pattern_traits!(NamePattern);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_patterns_match_schema_table_and_column() {
        let p = ColumnPattern::parse("public.payments.card_number").unwrap();
        assert!(p.matches("public", "payments", "card_number"));
        assert!(!p.matches("public", "payments", "card_number2"));
        assert!(p.matches_table("public", "payments"));
        assert!(!p.matches_table("staging", "payments"));
        let p = ColumnPattern::parse("*.*.pan").unwrap();
        assert!(p.matches("a", "b", "pan"));
        assert!(!p.matches("a", "b", "span"));
        let p = ColumnPattern::parse("{public,staging}.cust*.e?ail").unwrap();
        assert!(p.matches("staging", "customers", "email"));
        assert!(!p.matches("archive", "customers", "email"));
        assert_eq!(p.to_string(), "{public,staging}.cust*.e?ail");
    }

    #[test]
    fn column_pattern_syntax_errors_say_what_to_write() {
        let e = ColumnPattern::parse("email").unwrap_err();
        assert!(e.contains("`*.*.email`"), "{e}");
        let e = ColumnPattern::parse("users.email").unwrap_err();
        assert!(e.contains("`public.users.email`"), "{e}");
        assert!(
            ColumnPattern::parse("db.s.t.c")
                .unwrap_err()
                .contains("three parts")
        );
        assert!(
            ColumnPattern::parse("s..c")
                .unwrap_err()
                .contains("empty part")
        );
        assert!(
            ColumnPattern::parse("s.t.[c")
                .unwrap_err()
                .contains("invalid pattern")
        );
    }

    #[test]
    fn name_patterns_are_one_glob() {
        let p = NamePattern::parse("email*").unwrap();
        assert!(p.matches("email"));
        assert!(p.matches("email_2"));
        assert!(!p.matches("Email"));
        assert!(NamePattern::parse("").is_err());
        assert!(NamePattern::parse("a b").is_err());
    }

    #[test]
    fn detector_names_round_trip() {
        for d in Detector::ALL {
            assert_eq!(Detector::from_name(d.as_str()), Some(d));
        }
        assert_eq!(Detector::from_name("credit_card"), None);
        assert_eq!(MaskStrategy::Partial { keep_last: 4 }.as_str(), "partial");
        assert_eq!(
            MaskStrategy::Partial { keep_last: 4 }.to_string(),
            "partial (keep last 4)"
        );
    }
}
