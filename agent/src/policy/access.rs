//! SQL access rules: what a workload may do on one PostgreSQL target (`[[workload.access]]`).
//!
//! Plain data, validated in `validate.rs` and interpreted by [`crate::sql`]. The vocabulary of
//! operations, the pattern syntax and the precedence of rules are documented in
//! `docs/policy-reference.md` (section `[[workload.access]]`).

use std::fmt;
use std::time::Duration;

use globset::{GlobBuilder, GlobMatcher};

use super::mask::Masking;
use super::model::SourceLocation;

/// What a statement does, as far as the access rules are concerned. A statement has one
/// effect per (operation, object) pair it performs; see [`crate::sql::Classification`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// Reading rows of a table, view, materialized view or sequence (SELECT, subqueries, CTE
    /// bodies, JOINs, the source of INSERT ... SELECT, USING/FROM of DELETE/UPDATE/MERGE).
    Read,
    /// Changing rows: INSERT, UPDATE, DELETE, MERGE (also inside a WITH), the target of
    /// SELECT INTO / CREATE TABLE AS, COPY FROM, SELECT ... FOR UPDATE/SHARE.
    Write,
    /// Changing possibly every row: DELETE or UPDATE without a WHERE clause or with one that
    /// does not depend on the table's rows (`WHERE true`, `WHERE 1=1`, `... OR 1=1`), MERGE
    /// whose UPDATE/DELETE actions do not depend on them, TRUNCATE. Always comes with `write`.
    BulkWrite,
    /// Creating, altering or dropping any schema object (tables, indexes, views, functions,
    /// types, schemas, triggers, rules, policies ...), TRUNCATE, COMMENT.
    Ddl,
    /// Privileges and server administration: GRANT/REVOKE, roles, ALTER SYSTEM, ownership
    /// changes, extensions, databases, tablespaces, LOAD, two-phase commit.
    Admin,
    /// VACUUM, ANALYZE, CLUSTER, REINDEX, REFRESH MATERIALIZED VIEW, CHECKPOINT.
    Maintenance,
    /// LOCK TABLE.
    Lock,
    /// COPY ... FROM STDIN (comes with `write` on the table).
    CopyIn,
    /// COPY ... TO STDOUT (comes with `read` on the table, or on every table the query reads).
    CopyOut,
    /// CALL of a procedure: allowed only through `functions.allow`.
    Call,
    /// A DO block (anonymous code, opaque to the agent).
    Do,
    /// LISTEN on a channel.
    Listen,
    /// NOTIFY, or `pg_notify()`.
    Notify,
    /// SET of a setting that is not on the list of harmless settings.
    Set,
    /// SET ROLE, SET SESSION AUTHORIZATION.
    SetRole,
    /// Changing `search_path` (SET search_path, SET SCHEMA).
    SearchPath,
}

impl Operation {
    /// Every operation, in documentation order.
    pub const ALL: [Operation; 16] = [
        Operation::Read,
        Operation::Write,
        Operation::BulkWrite,
        Operation::Ddl,
        Operation::Admin,
        Operation::Maintenance,
        Operation::Lock,
        Operation::CopyIn,
        Operation::CopyOut,
        Operation::Call,
        Operation::Do,
        Operation::Listen,
        Operation::Notify,
        Operation::Set,
        Operation::SetRole,
        Operation::SearchPath,
    ];

    /// As written in policy files, e.g. `bulk_write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Write => "write",
            Operation::BulkWrite => "bulk_write",
            Operation::Ddl => "ddl",
            Operation::Admin => "admin",
            Operation::Maintenance => "maintenance",
            Operation::Lock => "lock",
            Operation::CopyIn => "copy_in",
            Operation::CopyOut => "copy_out",
            Operation::Call => "call",
            Operation::Do => "do",
            Operation::Listen => "listen",
            Operation::Notify => "notify",
            Operation::Set => "set",
            Operation::SetRole => "set_role",
            Operation::SearchPath => "search_path",
        }
    }

    /// The operation named `name` (as written in policy files).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == name)
    }

    /// Whether effects of this operation may concern a table (or another schema object), so
    /// that a rule's `tables` can restrict it. `false` for statement-wide operations (`do`,
    /// `listen`, `notify`, `set`, `set_role`, `search_path`): only rules without `tables`
    /// match them.
    pub fn has_objects(self) -> bool {
        !matches!(
            self,
            Operation::Do
                | Operation::Listen
                | Operation::Notify
                | Operation::Set
                | Operation::SetRole
                | Operation::SearchPath
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The SQL access rules of one workload for one postgres target.
#[derive(Debug, Clone)]
pub struct Access {
    /// The target these rules are for (a postgres target listed in the workload's `targets`).
    pub target: String,
    /// Schemas an unqualified name may resolve to, in order (default `["public"]`). The
    /// statement is judged as if the name could be in any of them.
    pub search_path: Vec<String>,
    pub allow: Vec<AccessRule>,
    pub deny: Vec<AccessRule>,
    pub approve: Vec<ApprovalRule>,
    pub functions: FunctionRules,
    /// Masking of results, errors, notices and notifications (`mask`, `masking_key`,
    /// `copy_out_masked`).
    pub masking: Masking,
    /// The `[[workload.access]]` header.
    pub source: SourceLocation,
}

/// One `allow`, `deny` or `approve` rule: which operations on which objects.
#[derive(Debug, Clone)]
pub struct AccessRule {
    /// As written (`name = "..."`), else generated: `allow[0]`, `deny[2]`, `approve[1]` (the
    /// index in its list).
    pub name: String,
    pub operations: Vec<Operation>,
    /// `None`: every object, and statements that name none. `Some`: only objects matching
    /// one of the patterns (never empty).
    pub tables: Option<Vec<ObjectPattern>>,
    /// Deny rules only: why, shown to the job in the error message.
    pub reason: Option<String>,
    pub source: SourceLocation,
}

impl AccessRule {
    /// Whether `operation` on an object named `schema.name` (or on no object at all, when
    /// `object` is `None`) falls under this rule.
    pub fn matches(&self, operation: Operation, object: Option<(&str, &str)>) -> bool {
        if !self.operations.contains(&operation) {
            return false;
        }
        match (&self.tables, object) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(patterns), Some((schema, name))) => {
                patterns.iter().any(|p| p.matches(schema, name))
            }
        }
    }
}

/// An `approve` rule: statements it matches wait for approval.
#[derive(Debug, Clone)]
pub struct ApprovalRule {
    pub rule: AccessRule,
    /// How many distinct approvals are needed (1 to 10, default 1).
    pub approvers: u32,
    /// Groups the approvers must belong to (empty: anyone the approval service accepts).
    pub groups: Vec<String>,
    /// How long the statement may wait before it is denied (10s to 24h, default 10m).
    pub timeout: Duration,
}

/// `functions = { allow = [...], deny = [...] }`.
#[derive(Debug, Clone, Default)]
pub struct FunctionRules {
    /// Procedures that may be CALLed, and dangerous built-in functions this workload may use
    /// anyway (those must be named without wildcards).
    pub allow: Vec<FunctionPattern>,
    /// Functions that may not be called anywhere in a statement, on top of the built-in list
    /// of dangerous functions.
    pub deny: Vec<FunctionPattern>,
}

/// A `schema.name` pattern for tables (and other schema objects): two globs (`*`, `?`,
/// `[a-z]`, `{a,b}`) matched, case-sensitively, against the schema and the object name as
/// PostgreSQL stores them (unquoted identifiers are lower-cased by the server).
#[derive(Clone)]
pub struct ObjectPattern {
    raw: String,
    schema: Glob,
    name: Glob,
}

impl ObjectPattern {
    /// Parses `schema.name` (each part a non-empty glob without `.`).
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let Some((schema, name)) = pattern.split_once('.') else {
            return Err(format!(
                "table pattern `{pattern}` needs a schema: write `schema.table`, e.g. \
                 `public.{pattern}` or `*.{pattern}`"
            ));
        };
        if name.contains('.') {
            return Err(format!(
                "table pattern `{pattern}` has more than one `.`: write `schema.table` (the \
                 database name is never part of it)"
            ));
        }
        Ok(Self {
            raw: pattern.to_string(),
            schema: Glob::parse(schema, pattern)?,
            name: Glob::parse(name, pattern)?,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether `schema.name` matches.
    pub fn matches(&self, schema: &str, name: &str) -> bool {
        self.schema.matches(schema) && self.name.matches(name)
    }
}

/// A function pattern: `name` (in any schema) or `schema.name`, each part a glob.
#[derive(Clone)]
pub struct FunctionPattern {
    raw: String,
    schema: Option<Glob>,
    name: Glob,
    pub source: SourceLocation,
}

impl FunctionPattern {
    pub fn parse(pattern: &str, source: SourceLocation) -> Result<Self, String> {
        let (schema, name) = match pattern.split_once('.') {
            Some((schema, name)) => (Some(schema), name),
            None => (None, pattern),
        };
        if name.contains('.') {
            return Err(format!(
                "function pattern `{pattern}` has more than one `.`: write `name` or \
                 `schema.name`"
            ));
        }
        Ok(Self {
            raw: pattern.to_string(),
            schema: schema.map(|s| Glob::parse(s, pattern)).transpose()?,
            name: Glob::parse(name, pattern)?,
            source,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether the pattern is qualified (`schema.name`).
    pub fn is_qualified(&self) -> bool {
        self.schema.is_some()
    }

    /// Whether the pattern names functions exactly (no wildcard in either part).
    pub fn is_exact(&self) -> bool {
        self.name.is_literal() && self.schema.as_ref().is_none_or(Glob::is_literal)
    }

    /// Whether a function `name` in `schema` matches. An unqualified pattern matches the
    /// name in any schema; a qualified one needs the schema.
    pub fn matches(&self, schema: Option<&str>, name: &str) -> bool {
        if !self.name.matches(name) {
            return false;
        }
        match (&self.schema, schema) {
            (None, _) => true,
            (Some(glob), Some(schema)) => glob.matches(schema),
            (Some(_), None) => false,
        }
    }
}

/// One part of a pattern: a literal or a glob.
#[derive(Clone)]
pub(super) struct Glob {
    literal: Option<String>,
    matcher: Option<GlobMatcher>,
}

impl Glob {
    const META: &'static [char] = &['*', '?', '[', ']', '{', '}', '\\'];

    pub(super) fn parse(part: &str, whole: &str) -> Result<Self, String> {
        if part.is_empty() {
            return Err(format!("pattern `{whole}` has an empty part"));
        }
        if let Some(c) = part
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || *c == '"')
        {
            return Err(format!(
                "pattern `{whole}` contains {c:?}: write names as PostgreSQL stores them, \
                 without quotes or spaces"
            ));
        }
        if !part.contains(Self::META) {
            return Ok(Self {
                literal: Some(part.to_string()),
                matcher: None,
            });
        }
        if part.contains("**") {
            return Err(format!(
                "pattern `{whole}` uses `**`: `*` already matches any name"
            ));
        }
        let glob = GlobBuilder::new(part)
            .literal_separator(false)
            .backslash_escape(true)
            .build()
            .map_err(|e| format!("invalid pattern `{whole}`: {}", e.kind()))?;
        Ok(Self {
            literal: None,
            matcher: Some(glob.compile_matcher()),
        })
    }

    fn is_literal(&self) -> bool {
        self.literal.is_some()
    }

    pub(super) fn matches(&self, s: &str) -> bool {
        match (&self.literal, &self.matcher) {
            (Some(literal), _) => literal == s,
            (None, Some(matcher)) => matcher.is_match(s),
            (None, None) => false,
        }
    }
}

impl fmt::Debug for ObjectPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ObjectPattern").field(&self.raw).finish()
    }
}

impl fmt::Display for ObjectPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl PartialEq for ObjectPattern {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for ObjectPattern {}

impl fmt::Debug for FunctionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FunctionPattern").field(&self.raw).finish()
    }
}

impl fmt::Display for FunctionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl PartialEq for FunctionPattern {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for FunctionPattern {}

#[cfg(test)]
mod tests {
    use super::*;

    fn here() -> SourceLocation {
        SourceLocation {
            file: "p.toml".into(),
            line: 1,
        }
    }

    #[test]
    fn operation_names_round_trip() {
        for op in Operation::ALL {
            assert_eq!(Operation::from_name(op.as_str()), Some(op));
            assert_eq!(op.to_string(), op.as_str());
        }
        assert_eq!(Operation::from_name("READ"), None);
        assert_eq!(Operation::from_name("delete"), None);
        assert!(Operation::Read.has_objects());
        assert!(!Operation::SetRole.has_objects());
    }

    #[test]
    fn object_patterns_match_schema_and_name_separately() {
        let p = ObjectPattern::parse("staging.*").unwrap();
        assert!(p.matches("staging", "events"));
        assert!(p.matches("staging", "a.b"));
        assert!(!p.matches("public", "events"));
        assert!(!p.matches("Staging", "events"));
        let p = ObjectPattern::parse("*.audit_*").unwrap();
        assert!(p.matches("public", "audit_log"));
        assert!(!p.matches("public", "audit"));
        let p = ObjectPattern::parse("public.events").unwrap();
        assert!(p.matches("public", "events"));
        assert!(!p.matches("public", "events2"));
        let p = ObjectPattern::parse("{staging,public}.ev?nts").unwrap();
        assert!(p.matches("public", "events"));
        assert!(p.matches("staging", "evInts"));
    }

    #[test]
    fn object_pattern_syntax_errors() {
        let e = ObjectPattern::parse("events").unwrap_err();
        assert!(e.contains("needs a schema"), "{e}");
        assert!(
            ObjectPattern::parse("db.public.t")
                .unwrap_err()
                .contains("more than one")
        );
        assert!(
            ObjectPattern::parse(".t")
                .unwrap_err()
                .contains("empty part")
        );
        assert!(
            ObjectPattern::parse("s.")
                .unwrap_err()
                .contains("empty part")
        );
        assert!(ObjectPattern::parse("s.**").unwrap_err().contains("`**`"));
        assert!(
            ObjectPattern::parse("\"S\".t")
                .unwrap_err()
                .contains("quotes")
        );
        assert!(
            ObjectPattern::parse("s.[a")
                .unwrap_err()
                .contains("invalid pattern")
        );
    }

    #[test]
    fn function_patterns_may_be_qualified() {
        let any = FunctionPattern::parse("refresh_*", here()).unwrap();
        assert!(any.matches(None, "refresh_stats"));
        assert!(any.matches(Some("staging"), "refresh_stats"));
        assert!(!any.is_exact());
        let q = FunctionPattern::parse("staging.refresh_stats", here()).unwrap();
        assert!(q.matches(Some("staging"), "refresh_stats"));
        assert!(!q.matches(Some("public"), "refresh_stats"));
        assert!(!q.matches(None, "refresh_stats"));
        assert!(q.is_exact() && q.is_qualified());
        assert!(FunctionPattern::parse("a.b.c", here()).is_err());
    }
}
