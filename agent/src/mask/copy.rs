//! `COPY ... TO STDOUT`: the statement's format options, and the data stream masked record by
//! record as it passes ([`CopyMasker`]).
//!
//! The stream has no RowDescription: the caller learns the copied columns from the statement
//! ([`copy_outs`], [`CopySource`]): for a table, from the catalog
//! ([`super::COPY_TABLE_COLUMNS_SQL`], [`CopySource::row_description`]); for a query, by
//! describing it ([`CopySource::describe_sql`]) on its own connection. Then a [`MaskPlan`]
//! (formats: the COPY's) says what to mask, and [`MaskPlan::copy_decision`] whether to mask or
//! refuse.
//!
//! Text and CSV streams are cut into records at each line end outside quotes, binary streams
//! at each tuple; CopyData messages may split records anywhere. At most one incomplete record
//! is kept between calls, capped ([`DEFAULT_MAX_RECORD`]): the stream is never held whole.
//! Unchanged records are forwarded byte for byte; a changed field is written back in the
//! stream's own syntax (escapes, quotes, NULL marker).

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};
use pg_query::NodeEnum;
use pg_query::protobuf::{DefElem, Node};

use crate::pg::codec::backend::{FieldDescription, RowDescription};

use super::MaskError;
use super::counts::MaskCounts;
use super::plan::{ColumnAction, MaskPlan, ValueFormat};
use super::row::{Cell, mask_cell};

/// The largest record (line or tuple) a [`CopyMasker`] buffers by default.
pub const DEFAULT_MAX_RECORD: usize = 64 << 20;

/// The signature that starts a binary COPY stream.
const BINARY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// A COPY's data format and options (what the server writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyFormat {
    /// Lines of fields separated by `delimiter`, backslash escapes, NULL written as `null`.
    Text {
        delimiter: u8,
        null: String,
        header: bool,
    },
    /// RFC 4180-like lines; fields with special characters quoted.
    Csv {
        delimiter: u8,
        quote: u8,
        escape: u8,
        null: String,
        header: bool,
    },
    /// A header, then tuples of length-prefixed binary values, then a trailer.
    Binary,
}

impl CopyFormat {
    /// `FORMAT text` with the default options (tab, `\N`, no header).
    pub fn text() -> Self {
        CopyFormat::Text {
            delimiter: b'\t',
            null: "\\N".into(),
            header: false,
        }
    }

    /// `FORMAT csv` with the default options (comma, `"`, empty NULL, no header).
    pub fn csv() -> Self {
        CopyFormat::Csv {
            delimiter: b',',
            quote: b'"',
            escape: b'"',
            null: String::new(),
            header: false,
        }
    }

    /// The format of the values: text for text and CSV.
    pub fn value_format(&self) -> ValueFormat {
        match self {
            CopyFormat::Binary => ValueFormat::Binary,
            _ => ValueFormat::Text,
        }
    }

    /// The format code to plan with (`formats` of [`MaskPlan::for_row_description`]).
    pub fn format_code(&self) -> i16 {
        match self {
            CopyFormat::Binary => 1,
            _ => 0,
        }
    }

    fn has_header(&self) -> bool {
        match self {
            CopyFormat::Text { header, .. } | CopyFormat::Csv { header, .. } => *header,
            CopyFormat::Binary => true,
        }
    }
}

/// What a `COPY ... TO STDOUT` copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopySource {
    /// `COPY [schema.]table [(columns)]`.
    Table {
        schema: Option<String>,
        table: String,
        /// Empty: every column but generated ones, in order.
        columns: Vec<String>,
    },
    /// `COPY (query)`: the query, deparsed.
    Query(String),
}

/// One column of a table, as [`super::COPY_TABLE_COLUMNS_SQL`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogColumn {
    pub table_oid: u32,
    pub attnum: i16,
    pub name: String,
    pub type_oid: u32,
    /// `pg_attribute.attlen`.
    pub type_size: i16,
    /// Whether it is a generated column.
    pub generated: bool,
}

impl CopySource {
    /// For a table: its name as `regclass` input (quoted identifiers), to bind as `$1` of
    /// [`super::COPY_TABLE_COLUMNS_SQL`]. An unqualified table is looked up in the search
    /// path of the connection that runs that query, which must be the session's.
    pub fn regclass(&self) -> Option<String> {
        match self {
            CopySource::Table { schema, table, .. } => Some(match schema {
                Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(table)),
                None => quote_ident(table),
            }),
            CopySource::Query(_) => None,
        }
    }

    /// For a query: the query to Describe (Parse, Describe statement) to learn its columns.
    pub fn describe_sql(&self) -> Option<&str> {
        match self {
            CopySource::Query(sql) => Some(sql),
            CopySource::Table { .. } => None,
        }
    }

    /// For a table: the columns the COPY writes, from the table's catalog rows: the listed
    /// columns in their order, or every column but generated ones.
    pub fn row_description(&self, catalog: &[CatalogColumn]) -> Result<RowDescription, MaskError> {
        let CopySource::Table { columns, .. } = self else {
            return Err(MaskError::CopyStatement(
                "COPY (query): describe the query to learn its columns".into(),
            ));
        };
        let field = |c: &CatalogColumn| FieldDescription {
            name: c.name.clone(),
            table_oid: c.table_oid,
            column_attr: c.attnum,
            type_oid: c.type_oid,
            type_size: c.type_size,
            type_modifier: -1,
            format: 0,
        };
        let fields = if columns.is_empty() {
            catalog.iter().filter(|c| !c.generated).map(field).collect()
        } else {
            columns
                .iter()
                .map(|name| {
                    catalog
                        .iter()
                        .find(|c| &c.name == name)
                        .map(field)
                        .ok_or_else(|| {
                            MaskError::CopyStatement(format!(
                                "column `{name}` is not in the table's catalog rows"
                            ))
                        })
                })
                .collect::<Result<_, _>>()?
        };
        Ok(RowDescription { fields })
    }
}

/// A `COPY ... TO STDOUT` statement: what it copies, in which format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOut {
    pub source: CopySource,
    pub format: CopyFormat,
}

/// The `COPY ... TO STDOUT` statements of `sql`, in order (the n-th CopyOutResponse of a
/// simple Query answers the n-th of them). Other statements, including COPY to files or
/// programs (denied by the access rules anyway), are skipped. Fails on text that does not
/// parse and on options the masking cannot honour (an `ENCODING` other than UTF-8).
pub fn copy_outs(sql: &str) -> Result<Vec<CopyOut>, MaskError> {
    let parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT)
        .map_err(|e| MaskError::CopyStatement(e.to_string()))?;
    let mut outs = Vec::new();
    for raw in &parsed.protobuf.stmts {
        let Some(NodeEnum::CopyStmt(copy)) = raw.stmt.as_ref().and_then(|s| s.node.as_ref()) else {
            continue;
        };
        if copy.is_from || copy.is_program || !copy.filename.is_empty() {
            continue;
        }
        let source = match (&copy.relation, &copy.query) {
            (Some(rel), _) => CopySource::Table {
                schema: (!rel.schemaname.is_empty()).then(|| rel.schemaname.clone()),
                table: rel.relname.clone(),
                columns: copy
                    .attlist
                    .iter()
                    .filter_map(|n| match &n.node {
                        Some(NodeEnum::String(s)) => Some(s.sval.clone()),
                        _ => None,
                    })
                    .collect(),
            },
            (None, Some(query)) => {
                let node = query
                    .node
                    .as_ref()
                    .ok_or_else(|| MaskError::CopyStatement("COPY without a query".into()))?;
                let text = node
                    .deparse(pg_query::DeparseOptions::default())
                    .map_err(|e| MaskError::CopyStatement(e.to_string()))?;
                CopySource::Query(text)
            }
            (None, None) => {
                return Err(MaskError::CopyStatement(
                    "COPY without a table or a query".into(),
                ));
            }
        };
        outs.push(CopyOut {
            source,
            format: copy_format(&copy.options)?,
        });
    }
    Ok(outs)
}

/// The format of the first `COPY ... TO STDOUT` of `sql`, if there is one.
pub fn copy_format_of(sql: &str) -> Result<Option<CopyFormat>, MaskError> {
    Ok(copy_outs(sql)?.into_iter().next().map(|c| c.format))
}

fn copy_format(options: &[Node]) -> Result<CopyFormat, MaskError> {
    let bad = |message: String| MaskError::CopyStatement(message);
    let mut format = String::from("text");
    let mut delimiter = None;
    let mut null = None;
    let mut header = false;
    let mut quote = None;
    let mut escape = None;
    for option in options {
        let Some(NodeEnum::DefElem(d)) = &option.node else {
            continue;
        };
        match d.defname.as_str() {
            "format" => format = string_arg(d)?.to_ascii_lowercase(),
            "delimiter" => delimiter = Some(one_byte(d)?),
            "null" => null = Some(string_arg(d)?),
            "quote" => quote = Some(one_byte(d)?),
            "escape" => escape = Some(one_byte(d)?),
            "header" => header = bool_arg(d)?,
            "encoding" => {
                let encoding = string_arg(d)?.to_ascii_lowercase().replace(['-', '_'], "");
                if !matches!(encoding.as_str(), "utf8" | "unicode") {
                    return Err(bad(format!(
                        "COPY ... ENCODING '{}' cannot be masked: only UTF-8 can",
                        string_arg(d)?
                    )));
                }
            }
            // FORCE_QUOTE changes which fields are quoted, which the parser handles anyway;
            // the others only apply to COPY FROM.
            _ => {}
        }
    }
    Ok(match format.as_str() {
        "text" => CopyFormat::Text {
            delimiter: delimiter.unwrap_or(b'\t'),
            null: null.unwrap_or_else(|| "\\N".into()),
            header,
        },
        "csv" => {
            let quote = quote.unwrap_or(b'"');
            CopyFormat::Csv {
                delimiter: delimiter.unwrap_or(b','),
                quote,
                escape: escape.unwrap_or(quote),
                null: null.unwrap_or_default(),
                header,
            }
        }
        "binary" => CopyFormat::Binary,
        other => return Err(bad(format!("unknown COPY format `{other}`"))),
    })
}

fn string_arg(d: &DefElem) -> Result<String, MaskError> {
    match d.arg.as_ref().and_then(|a| a.node.as_ref()) {
        Some(NodeEnum::String(s)) => Ok(s.sval.clone()),
        Some(NodeEnum::Integer(i)) => Ok(i.ival.to_string()),
        Some(NodeEnum::Boolean(b)) => Ok(b.boolval.to_string()),
        _ => Err(MaskError::CopyStatement(format!(
            "COPY option `{}` needs a value",
            d.defname
        ))),
    }
}

fn one_byte(d: &DefElem) -> Result<u8, MaskError> {
    match string_arg(d)?.as_bytes() {
        [b] if b.is_ascii() && *b != b'\n' && *b != b'\r' => Ok(*b),
        _ => Err(MaskError::CopyStatement(format!(
            "COPY option `{}` must be a single one-byte character",
            d.defname
        ))),
    }
}

fn bool_arg(d: &DefElem) -> Result<bool, MaskError> {
    if d.arg.is_none() {
        return Ok(true);
    }
    match string_arg(d)?.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        other => Err(MaskError::CopyStatement(format!(
            "COPY option `{}` = `{other}` is not a boolean",
            d.defname
        ))),
    }
}

fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Where the stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the header (binary file header, or text/CSV header line).
    Header,
    Rows,
    /// After the binary trailer: nothing may follow.
    Ended,
}

/// Masks one `COPY ... TO STDOUT` data stream, CopyData by CopyData.
#[derive(Debug)]
pub struct CopyMasker {
    plan: MaskPlan,
    format: CopyFormat,
    /// The incomplete record (the bytes after the last complete one).
    buf: BytesMut,
    /// Text and CSV: how much of `buf` was scanned for a line end, and whether that point is
    /// inside quotes.
    scanned: usize,
    in_quotes: bool,
    state: State,
    max_record: usize,
}

impl CopyMasker {
    /// A masker for a stream in `format` whose columns `plan` describes (planned with
    /// `format`'s [`CopyFormat::format_code`]).
    pub fn new(plan: MaskPlan, format: CopyFormat) -> Self {
        let state = if format.has_header() {
            State::Header
        } else {
            State::Rows
        };
        Self {
            plan,
            format,
            buf: BytesMut::new(),
            scanned: 0,
            in_quotes: false,
            state,
            max_record: DEFAULT_MAX_RECORD,
        }
    }

    /// Caps the size of one record (line or tuple); a larger one fails the COPY.
    pub fn with_max_record(mut self, max: usize) -> Self {
        self.max_record = max;
        self
    }

    /// The bytes buffered (an incomplete record).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Masks the data of one CopyData message: returns what to forward (every record it
    /// completes, masked; possibly empty) and keeps the incomplete one.
    pub fn push(&mut self, data: Bytes, counts: &mut MaskCounts) -> Result<Bytes, MaskError> {
        if self.plan.is_passthrough() {
            return Ok(data);
        }
        if self.state == State::Ended && !data.is_empty() {
            return Err(MaskError::CopyMalformed(
                "data after the end of a binary COPY".into(),
            ));
        }
        self.buf.extend_from_slice(&data);
        let mut out = BytesMut::new();
        while let Some(len) = self.next_record()? {
            let record = self.buf.split_to(len);
            self.scanned = 0;
            self.in_quotes = false;
            if self.state == State::Header {
                out.extend_from_slice(&record);
                self.state = State::Rows;
                continue;
            }
            self.mask_record(&record, &mut out, counts)?;
        }
        if self.buf.len() > self.max_record {
            return Err(MaskError::CopyRecordTooLarge {
                max: self.max_record,
            });
        }
        Ok(out.freeze())
    }

    /// At CopyDone: fails if the stream stopped in the middle of a record (or, binary, before
    /// its trailer).
    pub fn finish(&self) -> Result<(), MaskError> {
        let incomplete_binary = self.format == CopyFormat::Binary && self.state != State::Ended;
        if self.plan.is_passthrough() || (self.buf.is_empty() && !incomplete_binary) {
            Ok(())
        } else {
            Err(MaskError::CopyTruncated)
        }
    }

    /// The length of the complete record at the start of `buf`, if there is one.
    fn next_record(&mut self) -> Result<Option<usize>, MaskError> {
        match self.format {
            CopyFormat::Text { .. } => {
                let found = self.buf[self.scanned..].iter().position(|&b| b == b'\n');
                match found {
                    Some(p) => Ok(Some(self.scanned + p + 1)),
                    None => {
                        self.scanned = self.buf.len();
                        Ok(None)
                    }
                }
            }
            CopyFormat::Csv { quote, escape, .. } => Ok(self.csv_record_end(quote, escape)),
            CopyFormat::Binary => self.binary_record_len(),
        }
    }

    fn csv_record_end(&mut self, quote: u8, escape: u8) -> Option<usize> {
        let buf = &self.buf;
        let mut i = self.scanned;
        while i < buf.len() {
            let c = buf[i];
            if self.in_quotes {
                if c == escape && escape != quote {
                    match buf.get(i + 1) {
                        None => break,
                        Some(&next) if next == quote || next == escape => {
                            i += 2;
                            continue;
                        }
                        Some(_) => {}
                    }
                }
                if c == quote {
                    self.in_quotes = false;
                }
            } else if c == quote {
                self.in_quotes = true;
            } else if c == b'\n' {
                return Some(i + 1);
            }
            i += 1;
        }
        self.scanned = i;
        None
    }

    fn binary_record_len(&mut self) -> Result<Option<usize>, MaskError> {
        let buf = &self.buf;
        let malformed = |m: &str| MaskError::CopyMalformed(m.to_string());
        let i32_at = |at: usize| {
            buf.get(at..at + 4)
                .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        match self.state {
            State::Header => {
                if buf.len() < BINARY_SIGNATURE.len() {
                    return Ok(None);
                }
                if &buf[..BINARY_SIGNATURE.len()] != BINARY_SIGNATURE {
                    return Err(malformed("no binary COPY signature"));
                }
                let (Some(flags), Some(extension)) = (i32_at(11), i32_at(15)) else {
                    return Ok(None);
                };
                if flags & (1 << 16) != 0 {
                    return Err(malformed("binary COPY with OIDs"));
                }
                let extension =
                    usize::try_from(extension).map_err(|_| malformed("negative header length"))?;
                let len = 19 + extension;
                Ok((buf.len() >= len).then_some(len))
            }
            State::Rows => {
                let Some(count) = buf.get(..2).map(|b| i16::from_be_bytes([b[0], b[1]])) else {
                    return Ok(None);
                };
                if count == -1 {
                    self.state = State::Ended;
                    return Ok(Some(2));
                }
                if usize::try_from(count).ok() != Some(self.plan.columns().len()) {
                    return Err(MaskError::ColumnCount {
                        expected: self.plan.columns().len(),
                        got: usize::try_from(count).unwrap_or(0),
                    });
                }
                let mut pos = 2;
                for _ in 0..count {
                    let Some(len) = i32_at(pos) else {
                        return Ok(None);
                    };
                    pos += 4;
                    match len {
                        -1 => {}
                        len if len < 0 => return Err(malformed("negative field length")),
                        len => pos += len as usize,
                    }
                    if pos > buf.len() {
                        return Ok(None);
                    }
                }
                Ok(Some(pos))
            }
            State::Ended if buf.is_empty() => Ok(None),
            State::Ended => Err(malformed("data after the end of a binary COPY")),
        }
    }

    fn mask_record(
        &self,
        record: &[u8],
        out: &mut BytesMut,
        counts: &mut MaskCounts,
    ) -> Result<(), MaskError> {
        match &self.format {
            CopyFormat::Text {
                delimiter, null, ..
            } => self.mask_text_record(record, *delimiter, null.as_bytes(), out, counts),
            CopyFormat::Csv {
                delimiter,
                quote,
                escape,
                null,
                ..
            } => {
                let csv = Csv {
                    delimiter: *delimiter,
                    quote: *quote,
                    escape: *escape,
                    null: null.as_bytes(),
                };
                self.mask_csv_record(record, &csv, out, counts)
            }
            CopyFormat::Binary => self.mask_binary_record(record, out, counts),
        }
    }

    /// Masks the fields; `None` if none changed.
    fn mask_fields<'a>(
        &self,
        values: impl Iterator<Item = Option<Cow<'a, [u8]>>>,
        counts: &mut MaskCounts,
    ) -> Result<Option<Vec<Cell>>, MaskError> {
        let rules = self.plan.rules();
        let mut cells: Option<Vec<Cell>> = None;
        for (index, (value, column)) in values.zip(self.plan.columns()).enumerate() {
            if column.action == ColumnAction::Keep {
                if let Some(cells) = &mut cells {
                    cells.push(Cell::Keep);
                }
                continue;
            }
            let cell = mask_cell(rules, column, value.as_deref(), counts)?;
            if cell != Cell::Keep || cells.is_some() {
                cells
                    .get_or_insert_with(|| vec![Cell::Keep; index])
                    .push(cell);
            }
        }
        Ok(cells)
    }

    fn check_count(&self, got: usize) -> Result<(), MaskError> {
        let expected = self.plan.columns().len();
        if got == expected {
            Ok(())
        } else {
            Err(MaskError::ColumnCount { expected, got })
        }
    }

    fn mask_text_record(
        &self,
        record: &[u8],
        delimiter: u8,
        null: &[u8],
        out: &mut BytesMut,
        counts: &mut MaskCounts,
    ) -> Result<(), MaskError> {
        let line = &record[..record.len() - 1];
        let fields = split_text_fields(line, delimiter);
        self.check_count(fields.len())?;
        let values = fields
            .iter()
            .map(|f| (*f != null).then(|| unescape_text(f)));
        let Some(cells) = self.mask_fields(values, counts)? else {
            out.extend_from_slice(record);
            return Ok(());
        };
        for (i, raw) in fields.iter().enumerate() {
            if i > 0 {
                out.put_u8(delimiter);
            }
            match cells.get(i).unwrap_or(&Cell::Keep) {
                Cell::Keep => out.extend_from_slice(raw),
                Cell::Null => out.extend_from_slice(null),
                Cell::Value(v) => escape_text(v, delimiter, out),
            }
        }
        out.put_u8(b'\n');
        Ok(())
    }

    fn mask_csv_record(
        &self,
        record: &[u8],
        csv: &Csv<'_>,
        out: &mut BytesMut,
        counts: &mut MaskCounts,
    ) -> Result<(), MaskError> {
        let line = &record[..record.len() - 1];
        let fields = csv.split(line);
        self.check_count(fields.len())?;
        let values = fields.iter().map(|f| csv.value(f));
        let Some(cells) = self.mask_fields(values, counts)? else {
            out.extend_from_slice(record);
            return Ok(());
        };
        for (i, raw) in fields.iter().enumerate() {
            if i > 0 {
                out.put_u8(csv.delimiter);
            }
            match cells.get(i).unwrap_or(&Cell::Keep) {
                Cell::Keep => out.extend_from_slice(raw),
                Cell::Null => out.extend_from_slice(csv.null),
                Cell::Value(v) => csv.encode(v, out),
            }
        }
        out.put_u8(b'\n');
        Ok(())
    }

    fn mask_binary_record(
        &self,
        record: &[u8],
        out: &mut BytesMut,
        counts: &mut MaskCounts,
    ) -> Result<(), MaskError> {
        if record == b"\xff\xff" {
            out.extend_from_slice(record);
            return Ok(());
        }
        // The record was validated by `binary_record_len`.
        let mut fields: Vec<Option<&[u8]>> = Vec::with_capacity(self.plan.columns().len());
        let mut pos = 2;
        while pos < record.len() {
            let len = i32::from_be_bytes([
                record[pos],
                record[pos + 1],
                record[pos + 2],
                record[pos + 3],
            ]);
            pos += 4;
            if len < 0 {
                fields.push(None);
            } else {
                fields.push(Some(&record[pos..pos + len as usize]));
                pos += len as usize;
            }
        }
        let values = fields.iter().map(|f| f.map(Cow::Borrowed));
        let Some(cells) = self.mask_fields(values, counts)? else {
            out.extend_from_slice(record);
            return Ok(());
        };
        out.extend_from_slice(&record[..2]);
        for (i, value) in fields.iter().enumerate() {
            let value = match cells.get(i).unwrap_or(&Cell::Keep) {
                Cell::Keep => *value,
                Cell::Null => None,
                Cell::Value(v) => Some(&v[..]),
            };
            match value {
                None => out.put_i32(-1),
                Some(v) => {
                    let len =
                        i32::try_from(v.len()).map_err(|_| MaskError::CopyRecordTooLarge {
                            max: self.max_record,
                        })?;
                    out.put_i32(len);
                    out.extend_from_slice(v);
                }
            }
        }
        Ok(())
    }
}

/// The raw fields of a text-format line (escaped delimiters stay inside their field).
fn split_text_fields(line: &[u8], delimiter: u8) -> Vec<&[u8]> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < line.len() {
        if line[i] == b'\\' {
            i += 2;
            continue;
        }
        if line[i] == delimiter {
            fields.push(&line[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    fields.push(&line[start..]);
    fields
}

/// A text-format field's value: backslash escapes decoded (`\b \f \n \r \t \v`, octal `\NNN`,
/// hex `\xHH`, any other character as itself).
fn unescape_text(raw: &[u8]) -> Cow<'_, [u8]> {
    if !raw.contains(&b'\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        i += 1;
        if c != b'\\' || i == raw.len() {
            out.push(c);
            continue;
        }
        let e = raw[i];
        i += 1;
        match e {
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'x' if raw.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut v = 0u8;
                for _ in 0..2 {
                    match raw.get(i).and_then(|d| char::from(*d).to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d as u8;
                            i += 1;
                        }
                        None => break,
                    }
                }
                out.push(v);
            }
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            other => out.push(other),
        }
    }
    Cow::Owned(out)
}

/// Writes a value as the server does in text format (`CopyAttributeOutText`): the control
/// characters that have an escape as that escape (`\t`, even when tab is the delimiter), then
/// backslash and the delimiter backslash-escaped.
fn escape_text(value: &[u8], delimiter: u8, out: &mut BytesMut) {
    for &c in value {
        let escaped = match c {
            0x08 => Some(b'b'),
            0x0c => Some(b'f'),
            b'\n' => Some(b'n'),
            b'\r' => Some(b'r'),
            b'\t' => Some(b't'),
            0x0b => Some(b'v'),
            b'\\' => Some(b'\\'),
            c if c == delimiter => Some(c),
            _ => None,
        };
        match escaped {
            Some(e) => {
                out.put_u8(b'\\');
                out.put_u8(e);
            }
            None => out.put_u8(c),
        }
    }
}

/// CSV options.
struct Csv<'a> {
    delimiter: u8,
    quote: u8,
    escape: u8,
    null: &'a [u8],
}

impl Csv<'_> {
    /// The raw fields of a line (delimiters inside quotes stay inside their field).
    fn split<'l>(&self, line: &'l [u8]) -> Vec<&'l [u8]> {
        let mut fields = Vec::new();
        let mut start = 0;
        let mut in_quotes = false;
        let mut i = 0;
        while i < line.len() {
            let c = line[i];
            if in_quotes {
                if c == self.escape
                    && self.escape != self.quote
                    && line
                        .get(i + 1)
                        .is_some_and(|&n| n == self.quote || n == self.escape)
                {
                    i += 2;
                    continue;
                }
                if c == self.quote {
                    in_quotes = false;
                }
            } else if c == self.quote {
                in_quotes = true;
            } else if c == self.delimiter {
                fields.push(&line[start..i]);
                start = i + 1;
            }
            i += 1;
        }
        fields.push(&line[start..]);
        fields
    }

    /// A raw field's value, as the server's CSV reader decodes it; `None` for NULL (the NULL
    /// marker, unquoted).
    fn value<'f>(&self, raw: &'f [u8]) -> Option<Cow<'f, [u8]>> {
        if !raw.contains(&self.quote) {
            return (raw != self.null).then_some(Cow::Borrowed(raw));
        }
        let mut out = Vec::with_capacity(raw.len());
        let mut in_quotes = false;
        let mut i = 0;
        while i < raw.len() {
            let c = raw[i];
            i += 1;
            if in_quotes {
                if c == self.escape
                    && let Some(&next) = raw.get(i)
                    && (next == self.escape || next == self.quote)
                {
                    out.push(next);
                    i += 1;
                    continue;
                }
                if c == self.quote {
                    in_quotes = false;
                    continue;
                }
            } else if c == self.quote {
                in_quotes = true;
                continue;
            }
            out.push(c);
        }
        Some(Cow::Owned(out))
    }

    /// Writes a value as the server does: quoted when it holds the delimiter, the quote, a
    /// line end, or reads as the NULL marker; quote and escape characters escaped inside.
    fn encode(&self, value: &[u8], out: &mut BytesMut) {
        let needs_quotes = value == self.null
            || value == b"\\."
            || value
                .iter()
                .any(|&c| c == self.delimiter || c == self.quote || c == b'\n' || c == b'\r');
        if !needs_quotes {
            out.extend_from_slice(value);
            return;
        }
        out.put_u8(self.quote);
        for &c in value {
            if c == self.quote || c == self.escape {
                out.put_u8(self.escape);
            }
            out.put_u8(c);
        }
        out.put_u8(self.quote);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::super::test_support::*;
    use super::super::{MaskRules, types};
    use super::*;
    use crate::policy::{Detector, MaskStrategy};

    fn pii_rules() -> Arc<MaskRules> {
        compiled(vec![
            rule(
                "cards",
                &["public.payments.card_number"],
                MaskStrategy::Partial { keep_last: 4 },
            ),
            content_rule("pii", &[Detector::Email], MaskStrategy::Redact),
        ])
    }

    /// `public.payments` (id int4, card_number text, note text) in `format`.
    fn masker(format: CopyFormat, rules: &Arc<MaskRules>) -> CopyMasker {
        let rd = RowDescription {
            fields: vec![
                table_field("id", PAYMENTS, 1, types::INT4),
                table_field("card_number", PAYMENTS, 2, types::TEXT),
                table_field("note", PAYMENTS, 3, types::TEXT),
            ],
        };
        let plan =
            MaskPlan::for_row_description(&rd, &[format.format_code()], &catalog(), rules).unwrap();
        CopyMasker::new(plan, format)
    }

    /// The whole stream in one piece, then CopyDone.
    fn mask_all(m: &mut CopyMasker, data: &[u8]) -> Vec<u8> {
        let out = m
            .push(Bytes::copy_from_slice(data), &mut MaskCounts::new())
            .unwrap();
        m.finish().unwrap();
        out.to_vec()
    }

    #[test]
    fn text_stream_is_masked_field_by_field() {
        let rules = pii_rules();
        let mut m = masker(CopyFormat::text(), &rules);
        let data = b"1\t4111111111111111\tcall bob@example.com\n\
                     2\t\\N\t\\N\n\
                     3\t5555\tno\\tmail\\\\here\n";
        let out = mask_all(&mut m, data);
        assert_eq!(
            out,
            b"1\t************1111\tcall [REDACTED:email]\n\
              2\t\\N\t\\N\n\
              3\t****\tno\\tmail\\\\here\n"
        );
    }

    #[test]
    fn text_values_are_unescaped_before_masking_and_escaped_after() {
        let rules = compiled(vec![content_rule(
            "pii",
            &[Detector::Email],
            MaskStrategy::Partial { keep_last: 8 },
        )]);
        let mut m = masker(
            CopyFormat::Text {
                delimiter: b'|',
                null: "NULL".into(),
                header: false,
            },
            &rules,
        );
        // The note is `line1<newline>bob@example.com!`: the e-mail starts after the newline.
        let out = mask_all(&mut m, b"1|x|line1\\nbob@example.com\\x21\n2|NULL|NULL\n");
        assert_eq!(out, b"1|x|line1\\n*******mple.com!\n2|NULL|NULL\n");
        let mut m = masker(
            CopyFormat::Text {
                delimiter: b'|',
                null: "NULL".into(),
                header: false,
            },
            &compiled(vec![rule(
                "cards",
                &["public.payments.card_number"],
                MaskStrategy::Null,
            )]),
        );
        assert_eq!(mask_all(&mut m, b"1|a\\|b|c\n"), b"1|NULL|c\n");
    }

    #[test]
    fn csv_quoted_fields_with_delimiters_newlines_and_quotes_are_masked() {
        let rules = pii_rules();
        let mut m = masker(CopyFormat::csv(), &rules);
        let data = b"1,4111111111111111,\"multi\nline, with \"\"quotes\"\" and bob@example.com\"\n\
                     2,,\"\"\n\
                     3,\"12,34\",plain\n";
        let out = mask_all(&mut m, data);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1,************1111,\"multi\nline, with \"\"quotes\"\" and [REDACTED:email]\"\n\
             2,,\"\"\n\
             3,\"*2,34\",plain\n"
        );
    }

    #[test]
    fn csv_with_a_distinct_escape_character() {
        let rules = pii_rules();
        let format = CopyFormat::Csv {
            delimiter: b';',
            quote: b'\'',
            escape: b'\\',
            null: "N".into(),
            header: true,
        };
        let mut m = masker(format, &rules);
        let data = b"id;card_number;note\n\
                     1;'4111\\'111111111111';'it\\'s bob@example.com; ok'\n\
                     2;N;N\n";
        let out = mask_all(&mut m, data);
        // The card value is `4111'111111111111` (not a card number shape, but the column
        // rule masks it whole).
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id;card_number;note\n\
             1;*************1111;'it\\'s [REDACTED:email]; ok'\n\
             2;N;N\n"
        );
    }

    #[test]
    fn csv_masked_values_that_read_as_null_are_quoted() {
        // A partial mask of an empty string is empty, which reads as NULL unquoted.
        let rules = compiled(vec![rule(
            "cards",
            &["public.payments.card_number"],
            MaskStrategy::Partial { keep_last: 4 },
        )]);
        let mut m = masker(CopyFormat::csv(), &rules);
        assert_eq!(mask_all(&mut m, b"1,\"\",x\n2,,y\n"), b"1,\"\",x\n2,,y\n");
    }

    fn binary_stream(rows: &[Vec<Option<&[u8]>>]) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.extend_from_slice(BINARY_SIGNATURE);
        b.put_i32(0);
        b.put_i32(0);
        for row in rows {
            b.put_i16(row.len() as i16);
            for v in row {
                match v {
                    None => b.put_i32(-1),
                    Some(v) => {
                        b.put_i32(v.len() as i32);
                        b.extend_from_slice(v);
                    }
                }
            }
        }
        b.put_i16(-1);
        b.to_vec()
    }

    #[test]
    fn binary_stream_is_masked_tuple_by_tuple() {
        let rules = pii_rules();
        let mut m = masker(CopyFormat::Binary, &rules);
        let one = 1i32.to_be_bytes();
        let data = binary_stream(&[
            vec![Some(&one), Some(b"4111111111111111"), Some(b"to a@b.io")],
            vec![Some(&one), None, None],
        ]);
        let out = mask_all(&mut m, &data);
        let expected = binary_stream(&[
            vec![
                Some(&one),
                Some(b"************1111"),
                Some(b"to [REDACTED:email]"),
            ],
            vec![Some(&one), None, None],
        ]);
        assert_eq!(out, expected);
    }

    #[test]
    fn binary_streams_are_checked() {
        let rules = pii_rules();
        let mut m = masker(CopyFormat::Binary, &rules);
        let e = m
            .push(
                Bytes::from_static(b"NOTCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0"),
                &mut MaskCounts::new(),
            )
            .unwrap_err();
        assert!(matches!(e, MaskError::CopyMalformed(_)), "{e:?}");
        // Wrong column count.
        let mut m = masker(CopyFormat::Binary, &rules);
        let data = binary_stream(&[vec![None]]);
        assert!(matches!(
            m.push(Bytes::from(data), &mut MaskCounts::new())
                .unwrap_err(),
            MaskError::ColumnCount {
                expected: 3,
                got: 1
            }
        ));
        // Data after the trailer.
        let mut m = masker(CopyFormat::Binary, &rules);
        let mut data = binary_stream(&[]);
        data.extend_from_slice(b"\0");
        assert!(m.push(Bytes::from(data), &mut MaskCounts::new()).is_err());
        // Missing trailer at CopyDone.
        let mut m = masker(CopyFormat::Binary, &rules);
        let data = binary_stream(&[]);
        m.push(
            Bytes::copy_from_slice(&data[..data.len() - 2]),
            &mut MaskCounts::new(),
        )
        .unwrap();
        assert_eq!(m.finish().unwrap_err(), MaskError::CopyTruncated);
    }

    #[test]
    fn a_truncated_text_stream_fails_at_copy_done() {
        let rules = pii_rules();
        let mut m = masker(CopyFormat::text(), &rules);
        let out = m
            .push(Bytes::from_static(b"1\tx\ty\n2\tx"), &mut MaskCounts::new())
            .unwrap();
        assert_eq!(&out[..], b"1\t*\ty\n");
        assert_eq!(m.buffered(), 3);
        assert_eq!(m.finish().unwrap_err(), MaskError::CopyTruncated);
    }

    #[test]
    fn records_larger_than_the_cap_fail_without_buffering_more() {
        let rules = pii_rules();
        let mut m = masker(CopyFormat::text(), &rules).with_max_record(16);
        let mut counts = MaskCounts::new();
        m.push(Bytes::from_static(b"1\tabc\tdef"), &mut counts)
            .unwrap();
        let e = m
            .push(Bytes::from_static(b"ghijklmnopqrstuvwxyz"), &mut counts)
            .unwrap_err();
        assert_eq!(e, MaskError::CopyRecordTooLarge { max: 16 });
    }

    #[test]
    fn a_row_with_the_wrong_number_of_fields_fails() {
        let rules = pii_rules();
        let mut m = masker(CopyFormat::text(), &rules);
        assert_eq!(
            m.push(Bytes::from_static(b"1\t2\n"), &mut MaskCounts::new())
                .unwrap_err(),
            MaskError::ColumnCount {
                expected: 3,
                got: 2
            }
        );
    }

    #[test]
    fn passthrough_streams_are_forwarded_untouched() {
        let rules = Arc::new(MaskRules::empty());
        let mut m = masker(CopyFormat::text(), &rules);
        let data = Bytes::from_static(b"anything, even a partial li");
        let out = m.push(data.clone(), &mut MaskCounts::new()).unwrap();
        assert_eq!(out.as_ptr(), data.as_ptr());
        m.finish().unwrap();
    }

    #[test]
    fn copy_counts_are_per_rule_and_column() {
        let rules = pii_rules();
        let mut m = masker(CopyFormat::text(), &rules);
        let mut counts = MaskCounts::new();
        m.push(
            Bytes::from_static(b"1\t4111\ta@b.io c@d.io\n2\t4222\tx\n"),
            &mut counts,
        )
        .unwrap();
        let entries: Vec<_> = counts
            .entries(&rules)
            .into_iter()
            .map(|e| (e.rule, e.site, e.found, e.count))
            .collect();
        assert_eq!(
            entries,
            [
                (
                    "cards".to_string(),
                    "column public.payments.card_number".to_string(),
                    "value",
                    2
                ),
                (
                    "pii".to_string(),
                    "column public.payments.note".to_string(),
                    "email",
                    2
                ),
            ]
        );
    }

    /// Masks a stream of `public.payments` (id, card_number, note, email) that PostgreSQL
    /// 15.18 wrote for `COPY payments TO STDOUT` with `format`, in one-byte chunks.
    fn mask_real(format: CopyFormat, data: &[u8]) -> String {
        let rd = RowDescription {
            fields: vec![
                table_field("id", PAYMENTS, 1, types::INT4),
                table_field("card_number", PAYMENTS, 2, types::TEXT),
                table_field("note", PAYMENTS, 3, types::TEXT),
                table_field("email", PAYMENTS, 4, types::TEXT),
            ],
        };
        let rules = pii_rules();
        let plan = MaskPlan::for_row_description(&rd, &[format.format_code()], &catalog(), &rules)
            .unwrap();
        let mut m = CopyMasker::new(plan, format);
        let mut counts = MaskCounts::new();
        let mut out = Vec::new();
        for b in data {
            out.extend_from_slice(&m.push(Bytes::copy_from_slice(&[*b]), &mut counts).unwrap());
        }
        m.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn real_postgres_text_output_is_masked() {
        let data = b"1\t4111111111111111\tmulti\\nline, with \"quotes\" and bob@example.com\\ttab\\\\back\ta@b.io\n\
                     2\t\\N\t\t\\N\n\
                     3\t12,34\tsemi;colon 'apos'\tc@d.io\n";
        assert_eq!(
            mask_real(CopyFormat::text(), data),
            "1\t************1111\tmulti\\nline, with \"quotes\" and [REDACTED:email]\\ttab\\\\back\t[REDACTED:email]\n\
             2\t\\N\t\t\\N\n\
             3\t*2,34\tsemi;colon 'apos'\t[REDACTED:email]\n"
        );
    }

    #[test]
    fn real_postgres_csv_output_is_masked() {
        let data = b"id,card_number,note,email\n\
                     1,4111111111111111,\"multi\nline, with \"\"quotes\"\" and bob@example.com\ttab\\back\",a@b.io\n\
                     2,,\"\",\n\
                     3,\"12,34\",semi;colon 'apos',c@d.io\n";
        let format = CopyFormat::Csv {
            delimiter: b',',
            quote: b'"',
            escape: b'"',
            null: String::new(),
            header: true,
        };
        assert_eq!(
            mask_real(format, data),
            "id,card_number,note,email\n\
             1,************1111,\"multi\nline, with \"\"quotes\"\" and [REDACTED:email]\ttab\\back\",[REDACTED:email]\n\
             2,,\"\",\n\
             3,\"*2,34\",semi;colon 'apos',[REDACTED:email]\n"
        );
        // (FORMAT csv, DELIMITER ';', QUOTE '''', ESCAPE '\', NULL 'N')
        let data = b"1;4111111111111111;'multi\nline, with \"quotes\" and bob@example.com\ttab\\\\back';a@b.io\n\
                     2;N;;N\n\
                     3;12,34;'semi;colon \\'apos\\'';c@d.io\n";
        let format = CopyFormat::Csv {
            delimiter: b';',
            quote: b'\'',
            escape: b'\\',
            null: "N".into(),
            header: false,
        };
        assert_eq!(
            mask_real(format, data),
            "1;************1111;'multi\nline, with \"quotes\" and [REDACTED:email]\ttab\\\\back';[REDACTED:email]\n\
             2;N;;N\n\
             3;*2,34;'semi;colon \\'apos\\'';[REDACTED:email]\n"
        );
    }

    // ---- the statement ----

    #[test]
    fn copy_statements_give_their_source_and_format() {
        let outs = copy_outs(
            "COPY public.payments (id, card_number) TO STDOUT WITH (FORMAT csv, HEADER, \
             DELIMITER ';', QUOTE '''', ESCAPE '\\', NULL 'N', FORCE_QUOTE *)",
        )
        .unwrap();
        assert_eq!(
            outs,
            [CopyOut {
                source: CopySource::Table {
                    schema: Some("public".into()),
                    table: "payments".into(),
                    columns: vec!["id".into(), "card_number".into()],
                },
                format: CopyFormat::Csv {
                    delimiter: b';',
                    quote: b'\'',
                    escape: b'\\',
                    null: "N".into(),
                    header: true,
                },
            }]
        );
        assert_eq!(
            copy_format_of("copy t to stdout").unwrap(),
            Some(CopyFormat::text())
        );
        assert_eq!(
            copy_format_of("COPY t TO STDOUT (FORMAT binary)").unwrap(),
            Some(CopyFormat::Binary)
        );
        assert_eq!(
            copy_format_of("COPY t TO STDOUT (FORMAT text, DELIMITER ',', NULL '', HEADER false)")
                .unwrap(),
            Some(CopyFormat::Text {
                delimiter: b',',
                null: String::new(),
                header: false
            })
        );
    }

    #[test]
    fn legacy_copy_syntax_is_understood() {
        assert_eq!(
            copy_format_of("COPY t TO STDOUT WITH CSV HEADER DELIMITER AS '|' NULL AS 'x'")
                .unwrap(),
            Some(CopyFormat::Csv {
                delimiter: b'|',
                quote: b'"',
                escape: b'"',
                null: "x".into(),
                header: true,
            })
        );
        assert_eq!(
            copy_format_of("COPY BINARY t TO STDOUT").unwrap(),
            Some(CopyFormat::Binary)
        );
    }

    #[test]
    fn copy_of_a_query_gives_the_query_to_describe() {
        let outs =
            copy_outs("SELECT 1; COPY (SELECT email FROM customers WHERE id > 3) TO STDOUT; COPY x FROM STDIN")
                .unwrap();
        assert_eq!(outs.len(), 1);
        let sql = outs[0].source.describe_sql().unwrap();
        assert_eq!(sql, "SELECT email FROM customers WHERE id > 3");
        assert_eq!(outs[0].source.regclass(), None);
    }

    #[test]
    fn copy_to_files_programs_and_from_stdin_are_not_copy_outs() {
        assert!(copy_outs("COPY t TO '/tmp/x'").unwrap().is_empty());
        assert!(copy_outs("COPY t TO PROGRAM 'cat'").unwrap().is_empty());
        assert!(copy_outs("COPY t FROM STDIN").unwrap().is_empty());
        assert!(copy_outs("SELECT 1").unwrap().is_empty());
        assert!(copy_outs("COPY t TO").is_err());
    }

    #[test]
    fn copy_options_the_masking_cannot_honour_are_refused() {
        assert!(copy_outs("COPY t TO STDOUT (ENCODING 'LATIN1')").is_err());
        copy_outs("COPY t TO STDOUT (ENCODING 'UTF8')").unwrap();
        copy_outs("COPY t TO STDOUT (ENCODING 'utf-8')").unwrap();
        assert!(copy_outs("COPY t TO STDOUT (DELIMITER 'ab')").is_err());
        assert!(copy_outs("COPY t TO STDOUT (FORMAT xml)").is_err());
    }

    #[test]
    fn table_sources_are_described_from_the_catalog() {
        let catalog = [
            CatalogColumn {
                table_oid: PAYMENTS,
                attnum: 1,
                name: "id".into(),
                type_oid: types::INT4,
                type_size: 4,
                generated: false,
            },
            CatalogColumn {
                table_oid: PAYMENTS,
                attnum: 2,
                name: "card_number".into(),
                type_oid: types::TEXT,
                type_size: -1,
                generated: false,
            },
            CatalogColumn {
                table_oid: PAYMENTS,
                attnum: 4,
                name: "total".into(),
                type_oid: types::NUMERIC,
                type_size: -1,
                generated: true,
            },
        ];
        let all = &copy_outs("COPY \"Odd\".payments TO STDOUT").unwrap()[0].source;
        assert_eq!(all.regclass().unwrap(), "\"Odd\".\"payments\"");
        let rd = all.row_description(&catalog).unwrap();
        let names: Vec<_> = rd.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["id", "card_number"]);
        assert_eq!(
            (rd.fields[1].table_oid, rd.fields[1].column_attr),
            (PAYMENTS, 2)
        );
        let listed = &copy_outs("COPY payments (card_number, total) TO STDOUT").unwrap()[0].source;
        let names: Vec<_> = listed
            .row_description(&catalog)
            .unwrap()
            .fields
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["card_number", "total"]);
        let missing = &copy_outs("COPY payments (nope) TO STDOUT").unwrap()[0].source;
        assert!(missing.row_description(&catalog).is_err());
    }

    // ---- chunking ----

    fn value() -> impl Strategy<Value = Option<String>> {
        proptest::option::weighted(
            0.85,
            prop_oneof![
                "[a-z ,;|\"'\\\\\t\n\r]{0,12}",
                Just("bob@example.com".to_string()),
                Just("4111 1111 1111 1111".to_string()),
                Just("say \"hi\", a@b.io\nbye".to_string()),
                Just(String::new()),
            ],
        )
    }

    fn rows() -> impl Strategy<Value = Vec<[Option<String>; 3]>> {
        proptest::collection::vec([value(), value(), value()], 0..12)
    }

    fn text_stream(rows: &[[Option<String>; 3]]) -> Vec<u8> {
        let mut out = BytesMut::new();
        for row in rows {
            for (i, v) in row.iter().enumerate() {
                if i > 0 {
                    out.put_u8(b'\t');
                }
                match v {
                    None => out.extend_from_slice(b"\\N"),
                    Some(v) => escape_text(v.as_bytes(), b'\t', &mut out),
                }
            }
            out.put_u8(b'\n');
        }
        out.to_vec()
    }

    fn csv_stream(rows: &[[Option<String>; 3]], header: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if header {
            out.extend_from_slice(b"id,card_number,note\n");
        }
        for row in rows {
            for (i, v) in row.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Every value quoted (as FORCE_QUOTE * does), so that quoted newlines,
                // delimiters and quotes meet every chunk boundary.
                if let Some(v) = v {
                    out.push(b'"');
                    out.extend_from_slice(v.replace('"', "\"\"").as_bytes());
                    out.push(b'"');
                }
            }
            out.push(b'\n');
        }
        out
    }

    fn binary_rows(rows: &[[Option<String>; 3]]) -> Vec<u8> {
        let rows: Vec<Vec<Option<&[u8]>>> = rows
            .iter()
            .map(|r| r.iter().map(|v| v.as_deref().map(str::as_bytes)).collect())
            .collect();
        binary_stream(&rows)
    }

    /// Masks `data` (three text columns: id, card_number, note of `public.payments`) in
    /// chunks cut at `cuts` (offsets, any order), concatenating the output.
    fn mask_in_chunks(format: CopyFormat, data: &[u8], cuts: &[usize]) -> (Vec<u8>, MaskCounts) {
        let rules = compiled(vec![
            rule(
                "cards",
                &["public.payments.card_number"],
                MaskStrategy::Partial { keep_last: 4 },
            ),
            content_rule(
                "pii",
                &[Detector::Email, Detector::Card],
                MaskStrategy::Redact,
            ),
        ]);
        let rd = RowDescription {
            fields: vec![
                table_field("id", PAYMENTS, 1, types::TEXT),
                table_field("card_number", PAYMENTS, 2, types::TEXT),
                table_field("note", PAYMENTS, 3, types::TEXT),
            ],
        };
        let plan = MaskPlan::for_row_description(&rd, &[format.format_code()], &catalog(), &rules)
            .unwrap();
        let mut m = CopyMasker::new(plan, format);
        let mut counts = MaskCounts::new();
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        cuts.sort_unstable();
        let mut out = Vec::new();
        let mut from = 0;
        for cut in cuts.into_iter().chain([data.len()]) {
            let chunk = Bytes::copy_from_slice(&data[from..cut]);
            out.extend_from_slice(&m.push(chunk, &mut counts).unwrap());
            from = cut;
        }
        m.finish().unwrap();
        (out, counts)
    }

    proptest! {
        #[test]
        fn masking_in_random_chunks_equals_masking_whole(
            rows in rows(),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
            header in any::<bool>(),
        ) {
            for (format, data) in [
                (CopyFormat::text(), text_stream(&rows)),
                (
                    CopyFormat::Csv {
                        delimiter: b',',
                        quote: b'"',
                        escape: b'"',
                        null: String::new(),
                        header,
                    },
                    csv_stream(&rows, header),
                ),
                (CopyFormat::Binary, binary_rows(&rows)),
            ] {
                let (whole, whole_counts) = mask_in_chunks(format.clone(), &data, &[]);
                let (chunked, chunked_counts) = mask_in_chunks(format.clone(), &data, &cuts);
                prop_assert_eq!(&whole, &chunked, "{:?}", format);
                prop_assert_eq!(whole_counts, chunked_counts);
                // No e-mail address and no full card number survives.
                let text = String::from_utf8_lossy(&whole);
                prop_assert!(!text.contains("bob@example.com"));
                prop_assert!(!text.contains("a@b.io"));
                prop_assert!(!text.contains("4111 1111 1111 1111"));
            }
        }

        #[test]
        fn text_escaping_roundtrips(v in proptest::collection::vec(any::<u8>(), 0..40), tab in any::<bool>()) {
            let delimiter = if tab { b'\t' } else { b'|' };
            let mut out = BytesMut::new();
            escape_text(&v, delimiter, &mut out);
            prop_assert_eq!(split_text_fields(&out, delimiter).len(), 1);
            prop_assert!(!out.contains(&b'\n'));
            let decoded = unescape_text(&out);
            prop_assert_eq!(decoded.as_ref(), &v[..]);
        }

        #[test]
        fn csv_encoding_roundtrips(v in proptest::collection::vec(any::<u8>(), 0..40), backslash in any::<bool>()) {
            let csv = Csv {
                delimiter: b',',
                quote: b'"',
                escape: if backslash { b'\\' } else { b'"' },
                null: b"",
            };
            let mut out = BytesMut::new();
            csv.encode(&v, &mut out);
            prop_assert_eq!(csv.split(&out).len(), 1);
            let decoded = csv.value(&out);
            prop_assert_eq!(decoded.as_deref(), Some(&v[..]));
        }
    }
}
