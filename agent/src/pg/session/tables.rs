//! The prepared-statement and portal tables, and the small types they are made of.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::mem::size_of;
use std::sync::Arc;

use crate::pg::codec::backend::{FieldDescription, RowDescription};

use super::RequestId;

/// How many bytes of a statement or portal name the server compares: its hash tables are
/// keyed by `NAMEDATALEN` (64) byte buffers, so names agreeing on their first 63 bytes are the
/// same statement (or portal) to it, and so to the tracker.
pub const NAME_KEY_LEN: usize = 63;

/// The most columns a result can have (PostgreSQL's `MaxTupleAttributeNumber`).
pub const MAX_RESULT_COLUMNS: usize = 1664;

/// Bookkeeping bytes charged per table entry on top of its variable-length parts.
const ENTRY_COST: usize = 128;

/// A statement or portal name, as the server keys it: at most [`NAME_KEY_LEN`] bytes. The empty
/// name is the unnamed statement (or portal). Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Arc<[u8]>);

impl Name {
    /// A protocol name (Parse, Bind, Describe, Close, Execute): cut at [`NAME_KEY_LEN`] bytes,
    /// as the server's byte-wise comparison does.
    pub fn protocol(name: &str) -> Self {
        Self::from_key(key(name))
    }

    /// An SQL identifier (`DEALLOCATE name`), already case-folded or unquoted: cut at the last
    /// character boundary within [`NAME_KEY_LEN`] bytes, as the SQL lexer truncates
    /// identifiers.
    pub fn identifier(ident: &str) -> Self {
        let mut end = ident.len().min(NAME_KEY_LEN);
        while !ident.is_char_boundary(end) {
            end -= 1;
        }
        Self::from_key(&ident.as_bytes()[..end])
    }

    pub(crate) fn from_key(key: &[u8]) -> Self {
        Self(Arc::from(key))
    }

    /// The key bytes (valid UTF-8 unless a long name was cut inside a character).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The unnamed statement or portal.
    pub fn is_unnamed(&self) -> bool {
        self.0.is_empty()
    }

    /// The name as text (a character cut by truncation shows as U+FFFD).
    pub fn to_str_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }
}

impl Borrow<[u8]> for Name {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_str_lossy())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.to_str_lossy(), f)
    }
}

/// The key the server uses for a protocol name.
pub(crate) fn key(name: &str) -> &[u8] {
    let bytes = name.as_bytes();
    &bytes[..bytes.len().min(NAME_KEY_LEN)]
}

/// What is known of the rows a statement or portal returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Described {
    /// Nothing yet (never described, or the description was not kept): callers that need the
    /// columns (masking) must fail closed.
    #[default]
    Unknown,
    /// The server answered NoData: no rows.
    NoData,
    /// The columns. For a statement they always report text format (the real formats are
    /// chosen at Bind); for a portal they carry the formats its rows use.
    Rows(Arc<RowDescription>),
}

impl Described {
    /// The columns, when known and there are rows.
    pub fn row_description(&self) -> Option<&RowDescription> {
        match self {
            Self::Rows(rd) => Some(rd),
            _ => None,
        }
    }

    /// Estimated heap bytes held.
    pub(crate) fn cost(&self) -> usize {
        match self {
            Self::Rows(rd) => {
                64 + rd
                    .fields
                    .iter()
                    .map(|f| size_of::<FieldDescription>() + f.name.len())
                    .sum::<usize>()
            }
            _ => 0,
        }
    }
}

/// The result format codes of a Bind, resolved the way PostgreSQL does: no code means all
/// text, one code applies to every column, otherwise one code per column. Stored compactly
/// (one bit per column); any code other than 0 is reported as 1 (binary): a code the server
/// does not support makes it fail the portal, and a binary cell must never be treated as
/// text.
#[derive(Clone, PartialEq, Eq)]
pub struct ResultFormats {
    repr: FormatRepr,
}

#[derive(Clone, PartialEq, Eq)]
enum FormatRepr {
    /// Every column uses this format (0 or 1).
    Uniform(i16),
    /// One bit per column (set: binary).
    PerColumn { len: u16, binary: Box<[u64]> },
    /// More codes than any result has columns: the server rejects the portal if it returns
    /// rows at all. Reported as binary.
    Excess,
}

impl ResultFormats {
    /// Every column text: a Bind with no result format codes.
    pub const ALL_TEXT: Self = Self {
        repr: FormatRepr::Uniform(0),
    };

    /// From a Bind's result format codes.
    pub fn from_codes(codes: &[i16]) -> Self {
        let repr = match codes {
            [] => FormatRepr::Uniform(0),
            [one] => FormatRepr::Uniform(i16::from(*one != 0)),
            many if many.len() > MAX_RESULT_COLUMNS => FormatRepr::Excess,
            many => {
                let mut binary = vec![0u64; many.len().div_ceil(64)].into_boxed_slice();
                for (i, code) in many.iter().enumerate() {
                    if *code != 0 {
                        binary[i / 64] |= 1 << (i % 64);
                    }
                }
                FormatRepr::PerColumn {
                    // Bounded by MAX_RESULT_COLUMNS above.
                    len: u16::try_from(many.len()).unwrap_or(u16::MAX),
                    binary,
                }
            }
        };
        Self { repr }
    }

    /// The format of result column `column`: 0 text, 1 binary.
    pub fn format(&self, column: usize) -> i16 {
        match &self.repr {
            FormatRepr::Uniform(code) => *code,
            FormatRepr::PerColumn { len, binary } => {
                if column >= usize::from(*len) {
                    // The server rejects a portal whose row width differs from the codes.
                    return 1;
                }
                i16::from(binary[column / 64] & (1 << (column % 64)) != 0)
            }
            FormatRepr::Excess => 1,
        }
    }

    /// Whether every column is text.
    pub fn all_text(&self) -> bool {
        match &self.repr {
            FormatRepr::Uniform(code) => *code == 0,
            FormatRepr::PerColumn { binary, .. } => binary.iter().all(|w| *w == 0),
            FormatRepr::Excess => false,
        }
    }

    /// `rd` (a statement's description, all text) with these formats applied: shared when
    /// nothing changes.
    pub(crate) fn apply(&self, rd: &Arc<RowDescription>) -> Arc<RowDescription> {
        let unchanged = rd
            .fields
            .iter()
            .enumerate()
            .all(|(i, f)| f.format == self.format(i));
        if unchanged {
            return Arc::clone(rd);
        }
        let mut fields = rd.fields.clone();
        for (i, f) in fields.iter_mut().enumerate() {
            f.format = self.format(i);
        }
        Arc::new(RowDescription { fields })
    }

    fn heap_bytes(&self) -> usize {
        match &self.repr {
            FormatRepr::PerColumn { binary, .. } => binary.len() * 8,
            _ => 0,
        }
    }
}

impl Default for ResultFormats {
    fn default() -> Self {
        Self::ALL_TEXT
    }
}

impl fmt::Debug for ResultFormats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            FormatRepr::Uniform(code) => write!(f, "All({code})"),
            FormatRepr::PerColumn { len, .. } => f
                .debug_list()
                .entries((0..usize::from(*len)).map(|i| self.format(i)))
                .finish(),
            FormatRepr::Excess => f.write_str("Excess"),
        }
    }
}

/// A prepared statement the server acknowledged (ParseComplete).
#[derive(Clone, PartialEq, Eq)]
pub struct PreparedStatement {
    pub(crate) name: Name,
    pub(crate) sql: String,
    pub(crate) param_types: Vec<u32>,
    pub(crate) described: Described,
    pub(crate) parsed_by: RequestId,
    pub(crate) cost: usize,
}

impl PreparedStatement {
    pub(crate) fn new(
        name: Name,
        sql: String,
        param_types: Vec<u32>,
        parsed_by: RequestId,
    ) -> Self {
        let mut st = Self {
            name,
            sql,
            param_types,
            described: Described::Unknown,
            parsed_by,
            cost: 0,
        };
        st.cost = st.compute_cost();
        st
    }

    /// What a Parse of `sql` with `params` parameter types will cost once stored.
    pub(crate) fn parse_cost(sql: &str, params: usize) -> usize {
        ENTRY_COST + sql.len() + params * size_of::<u32>()
    }

    pub(crate) fn compute_cost(&self) -> usize {
        Self::parse_cost(&self.sql, self.param_types.len()) + self.described.cost()
    }

    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The SQL text from Parse.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// Parameter type oids: those Parse gave (0 = unspecified) until a Describe(statement)
    /// reports the types the server settled on.
    pub fn param_types(&self) -> &[u32] {
        &self.param_types
    }

    /// The result columns from the last Describe(statement), kept for drivers that skip
    /// Describe once they have cached the statement.
    pub fn described(&self) -> &Described {
        &self.described
    }

    pub fn row_description(&self) -> Option<&RowDescription> {
        self.described.row_description()
    }

    /// The Parse request that created this statement (identifies this incarnation of the
    /// name).
    pub fn parsed_by(&self) -> RequestId {
        self.parsed_by
    }
}

impl fmt::Debug for PreparedStatement {
    /// The SQL text may quote literals: show its size only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedStatement")
            .field("name", &self.name)
            .field("sql", &format_args!("<{} bytes>", self.sql.len()))
            .field("param_types", &self.param_types)
            .field("described", &self.described)
            .field("parsed_by", &self.parsed_by)
            .finish()
    }
}

/// A portal the server acknowledged (BindComplete), or one it described (a SQL cursor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Portal {
    pub(crate) name: Name,
    pub(crate) statement: Option<Name>,
    pub(crate) parsed_by: Option<RequestId>,
    pub(crate) formats: ResultFormats,
    pub(crate) described: Described,
    /// The statement's description with these formats, once an Execute needed it (so a
    /// portal executed row-limit by row-limit derives it once).
    pub(crate) derived: Option<Arc<RowDescription>>,
    pub(crate) cost: usize,
}

impl Portal {
    pub(crate) fn new(
        name: Name,
        statement: Option<Name>,
        parsed_by: Option<RequestId>,
        formats: ResultFormats,
    ) -> Self {
        let mut portal = Self {
            name,
            statement,
            parsed_by,
            formats,
            described: Described::Unknown,
            derived: None,
            cost: 0,
        };
        portal.cost = portal.compute_cost();
        portal
    }

    pub(crate) fn compute_cost(&self) -> usize {
        let derived = self
            .derived
            .as_ref()
            .map_or(0, |rd| Described::Rows(Arc::clone(rd)).cost());
        ENTRY_COST + self.formats.heap_bytes() + self.described.cost() + derived
    }

    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The statement it was bound to (`None` for a portal only known from Describe).
    pub fn statement(&self) -> Option<&Name> {
        self.statement.as_ref()
    }

    /// The result formats from Bind.
    pub fn formats(&self) -> &ResultFormats {
        &self.formats
    }

    /// The format of result column `column`: 0 text, 1 binary.
    pub fn result_format(&self, column: usize) -> i16 {
        self.formats.format(column)
    }

    /// The answer to Describe(portal), if the client sent one. See
    /// [`SessionTracker::portal_row_description`](super::SessionTracker::portal_row_description)
    /// for the description derived from the statement otherwise.
    pub fn described(&self) -> &Described {
        &self.described
    }
}
