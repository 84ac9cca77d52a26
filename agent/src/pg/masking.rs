//! Masking of one session's server messages: the relay's bookkeeping around the pure
//! [`crate::mask`] engine. No sockets: what needs the catalog is asked for ([`Lookup`]) and
//! answered by the relay through its catalog connection ([`CatalogConnection`]).
//!
//! Per server frame, the relay calls:
//! 1. [`SessionMasking::prepare`] *before* the tracker consumes the frame: for the first
//!    DataRow of a result and for a CopyOutResponse, the plan may need table names or a COPY's
//!    columns that are not known yet. The relay stops there, performs the [`Lookup`], feeds the
//!    answer back ([`SessionMasking::learn`]) and asks again, until [`Lookup`] is `None`;
//! 2. [`SessionMasking::frame`] with the tracker's attribution: DataRows are rewritten by the
//!    result's [`MaskPlan`], COPY data by a [`CopyMasker`], error and notice fields and
//!    notification payloads by the content rules. Counts are kept per request and handed out
//!    when it completes ([`Masked`]).
//!
//! Fail closed: a [`MaskError`] ends the session after an ErrorResponse (rows already sent
//! were masked; nothing unmasked follows them).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::codec::backend::{DataRow, ErrorResponse, NotificationResponse, RowDescription};
use super::codec::{BackendMessage, HEADER_LEN, decode_backend_frame};
use super::session::{Attribution, RequestId, RequestKind, SessionTracker};
use super::upstream::{Endpoint, Session, UpstreamError};
use crate::mask::{
    CATALOG_NAMES_SQL, COPY_TABLE_COLUMNS_SQL, CatalogColumn, CatalogNames, CopyDecision,
    CopyMasker, CopyOut, MaskCount, MaskCounts, MaskError, MaskPlan, MaskRules, copy_outs,
    mask_error_response, mask_notification, mask_row,
};

/// Most prepared plans kept per session (one per result being returned; a pipelined client
/// has few in flight).
const MAX_PLANS: usize = 256;

/// What the relay must look up before the frame can be masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Schema, table and column names of these table oids ([`CATALOG_NAMES_SQL`]).
    TableNames(Vec<u32>),
    /// The columns of a table a COPY copies ([`COPY_TABLE_COLUMNS_SQL`]), for request `id`.
    CopyColumns { id: RequestId, regclass: String },
    /// The columns of a `COPY (query)`: Describe of the query, for request `id`.
    Describe { id: RequestId, sql: String },
}

/// An answer to a [`Lookup`].
#[derive(Debug)]
pub enum Learned {
    TableNames(Vec<Vec<Option<String>>>),
    CopyColumns {
        id: RequestId,
        columns: Vec<CatalogColumn>,
    },
    Described {
        id: RequestId,
        description: Option<RowDescription>,
    },
}

/// The masking of one request's results, for its audit event and recording entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masked {
    /// `None`: masked in a message of the session (a notice or notification outside requests).
    pub request: Option<RequestId>,
    pub counts: Vec<MaskCount>,
}

/// A COPY TO STDOUT in progress: masked, or passed as it is (no rule applies to it).
#[derive(Debug)]
enum CopyStream {
    Pass,
    Mask(Box<CopyMasker>),
}

/// One session's masking state (see the module documentation).
pub struct SessionMasking {
    rules: Arc<MaskRules>,
    names: CatalogNames,
    /// (request, statement of a simple Query) -> the plan of its rows.
    plans: HashMap<(RequestId, usize), MaskPlan>,
    /// The SQL of simple Queries that hold a COPY TO STDOUT (the tracker keeps none).
    queries: HashMap<RequestId, Arc<str>>,
    /// How many CopyOutResponses each request has had (the n-th answers the n-th COPY).
    copies_seen: HashMap<RequestId, usize>,
    /// The columns of the next COPY of a request, once looked up.
    copy_columns: HashMap<RequestId, RowDescription>,
    /// The COPY whose columns are being looked up, per request.
    pending_copies: HashMap<RequestId, CopyOut>,
    copies: HashMap<RequestId, CopyStream>,
    counts: HashMap<RequestId, MaskCounts>,
}

impl SessionMasking {
    pub fn new(rules: Arc<MaskRules>) -> Self {
        Self {
            rules,
            names: CatalogNames::new(),
            plans: HashMap::new(),
            queries: HashMap::new(),
            copies_seen: HashMap::new(),
            copy_columns: HashMap::new(),
            pending_copies: HashMap::new(),
            copies: HashMap::new(),
            counts: HashMap::new(),
        }
    }

    pub fn rules(&self) -> &Arc<MaskRules> {
        &self.rules
    }

    /// A simple Query forwarded as request `id`: its SQL is kept if it may start a COPY TO
    /// STDOUT (whose columns are read from the statement when the COPY starts).
    pub fn on_query(&mut self, id: RequestId, sql: &str) {
        if may_copy_out(sql) {
            self.queries.insert(id, Arc::from(sql));
        }
    }

    /// Before the tracker consumes a frame with `tag`: what must be looked up first, if
    /// anything. The frame answers the tracker's front request.
    pub fn prepare(
        &mut self,
        tracker: &SessionTracker,
        tag: u8,
    ) -> Result<Option<Lookup>, MaskError> {
        let Some(request) = tracker.front() else {
            return Ok(None);
        };
        let id = request.id();
        match tag {
            DataRow::TAG => {
                let key = (id, statement_index(request.kind()));
                if self.plans.contains_key(&key) {
                    return Ok(None);
                }
                let rd = tracker
                    .front_row_description()
                    .ok_or(MaskError::UnknownColumns)?;
                let missing = MaskPlan::tables_to_resolve(&rd, &self.names, &self.rules);
                if !missing.is_empty() {
                    return Ok(Some(Lookup::TableNames(missing)));
                }
                let plan = self.plan(&rd, &formats_of(&rd))?;
                if self.plans.len() >= MAX_PLANS {
                    self.plans.clear();
                }
                self.plans.insert(key, plan);
                Ok(None)
            }
            COPY_OUT_TAG => {
                let copy = self.copy_statement(tracker, id, request.kind())?;
                let Some(rd) = self.copy_columns.get(&id) else {
                    let source = copy.source.clone();
                    self.pending_copies.insert(id, copy);
                    return Ok(Some(match source.regclass() {
                        Some(regclass) => Lookup::CopyColumns { id, regclass },
                        None => Lookup::Describe {
                            id,
                            sql: source.describe_sql().unwrap_or_default().to_owned(),
                        },
                    }));
                };
                let missing = MaskPlan::tables_to_resolve(rd, &self.names, &self.rules);
                if !missing.is_empty() {
                    return Ok(Some(Lookup::TableNames(missing)));
                }
                let plan = self.plan(rd, &[copy.format.format_code()])?;
                let stream = match plan.copy_decision() {
                    CopyDecision::Pass => CopyStream::Pass,
                    CopyDecision::Mask => {
                        CopyStream::Mask(Box::new(CopyMasker::new(plan, copy.format)))
                    }
                    CopyDecision::Refuse { rule, column } => {
                        return Err(MaskError::CopyRefused { rule, column });
                    }
                };
                self.copy_columns.remove(&id);
                self.pending_copies.remove(&id);
                *self.copies_seen.entry(id).or_insert(0) += 1;
                self.copies.insert(id, stream);
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Takes in the answer to a [`Lookup`].
    pub fn learn(&mut self, learned: Learned) -> Result<(), MaskError> {
        match learned {
            Learned::TableNames(rows) => {
                for row in rows {
                    let text = |i: usize| row.get(i).cloned().flatten();
                    let (Some(oid), Some(schema), Some(table)) = (
                        text(0).and_then(|v| v.parse::<u32>().ok()),
                        text(1),
                        text(2),
                    ) else {
                        continue;
                    };
                    let column = match (text(3).and_then(|v| v.parse::<i16>().ok()), text(4)) {
                        (Some(attnum), Some(name)) => Some((attnum, name)),
                        _ => None,
                    };
                    self.names.insert(
                        oid,
                        &schema,
                        &table,
                        column.as_ref().map(|(n, name)| (*n, name.as_str())),
                    );
                }
                Ok(())
            }
            Learned::CopyColumns { id, columns } => {
                let copy = self
                    .pending_copies
                    .get(&id)
                    .ok_or_else(|| MaskError::CopyStatement("COPY no longer pending".into()))?;
                let rd = copy.source.row_description(&columns)?;
                self.copy_columns.insert(id, rd);
                Ok(())
            }
            Learned::Described { id, description } => {
                // A COPY (query) whose query returns no rows copies nothing.
                self.copy_columns.insert(
                    id,
                    description.unwrap_or(RowDescription { fields: Vec::new() }),
                );
                Ok(())
            }
        }
    }

    /// A frame the tracker attributed: appends what to send instead to `out` and returns
    /// `true`, or returns `false` to forward it unchanged. `done` receives the counts of a
    /// request that completes (or of a session message that was masked).
    pub fn frame(
        &mut self,
        attribution: &Attribution<'_>,
        tag: u8,
        frame: &[u8],
        out: &mut BytesMut,
        done: &mut Vec<Masked>,
    ) -> Result<bool, MaskError> {
        let request = attribution.request();
        let id = request.map(|r| r.id());
        let rewritten = match tag {
            DataRow::TAG => {
                let request = request.ok_or(MaskError::UnknownColumns)?;
                let key = (request.id(), statement_index(request.kind()));
                let plan = self.plans.get(&key).ok_or(MaskError::UnknownColumns)?;
                if plan.is_passthrough() {
                    false
                } else {
                    let row = DataRow::from_body(Bytes::copy_from_slice(&frame[HEADER_LEN..]))?;
                    let counts = self.counts.entry(request.id()).or_default();
                    mask_row(plan, &row, counts)?.encode(out);
                    true
                }
            }
            b'd' => match id.and_then(|id| self.copies.get_mut(&id).map(|c| (id, c))) {
                Some((id, CopyStream::Mask(masker))) => {
                    let counts = self.counts.entry(id).or_default();
                    let data = masker.push(Bytes::copy_from_slice(&frame[HEADER_LEN..]), counts)?;
                    if !data.is_empty() {
                        BackendMessage::CopyData(data).encode(out);
                    }
                    true
                }
                Some((_, CopyStream::Pass)) => false,
                None => return Err(MaskError::CopyStatement("COPY data outside a COPY".into())),
            },
            b'c' => {
                if let Some(CopyStream::Mask(masker)) = id.and_then(|id| self.copies.remove(&id)) {
                    masker.finish()?;
                }
                false
            }
            ErrorResponse::TAG | ErrorResponse::NOTICE_TAG if self.rules.has_content_rules() => {
                let notice = tag == ErrorResponse::NOTICE_TAG;
                let mut counts = MaskCounts::new();
                let masked = match decode_backend_frame(frame) {
                    Some(BackendMessage::ErrorResponse(e) | BackendMessage::NoticeResponse(e)) => {
                        mask_error_response(&self.rules, &e, notice, &mut counts)
                    }
                    _ => return Err(MaskError::Codec("undecodable error or notice".into())),
                };
                self.count(id, counts, done);
                match masked {
                    Some(e) if notice => BackendMessage::NoticeResponse(e).encode(out),
                    Some(e) => BackendMessage::ErrorResponse(e).encode(out),
                    None => return self.completed(attribution, id, done, false),
                }
                true
            }
            NotificationResponse::TAG if self.rules.has_content_rules() => {
                let mut counts = MaskCounts::new();
                let masked = match decode_backend_frame(frame) {
                    Some(BackendMessage::NotificationResponse(n)) => {
                        mask_notification(&self.rules, &n, &mut counts)
                    }
                    _ => return Err(MaskError::Codec("undecodable notification".into())),
                };
                self.count(id, counts, done);
                match masked {
                    Some(n) => BackendMessage::NotificationResponse(n).encode(out),
                    None => return self.completed(attribution, id, done, false),
                }
                true
            }
            _ => false,
        };
        self.completed(attribution, id, done, rewritten)
    }

    fn completed(
        &mut self,
        attribution: &Attribution<'_>,
        id: Option<RequestId>,
        done: &mut Vec<Masked>,
        rewritten: bool,
    ) -> Result<bool, MaskError> {
        if attribution.completes()
            && let Some(id) = id
        {
            self.finish_request(id, done);
        }
        Ok(rewritten)
    }

    fn plan(&self, rd: &RowDescription, formats: &[i16]) -> Result<MaskPlan, MaskError> {
        MaskPlan::for_row_description(rd, formats, &self.names, &self.rules)
    }

    /// The COPY TO STDOUT that the CopyOutResponse for request `id` starts.
    fn copy_statement(
        &self,
        tracker: &SessionTracker,
        id: RequestId,
        kind: &RequestKind,
    ) -> Result<CopyOut, MaskError> {
        let unknown = || MaskError::CopyStatement("the agent does not know this COPY".into());
        let (sql, index): (Arc<str>, usize) = match kind {
            RequestKind::Query { .. } => (
                self.queries.get(&id).cloned().ok_or_else(unknown)?,
                self.copies_seen.get(&id).copied().unwrap_or(0),
            ),
            RequestKind::Execute {
                statement: Some(name),
                ..
            } => (
                Arc::from(
                    tracker
                        .statement(&name.to_str_lossy())
                        .ok_or_else(unknown)?
                        .sql(),
                ),
                0,
            ),
            _ => return Err(unknown()),
        };
        copy_outs(&sql)?.into_iter().nth(index).ok_or_else(unknown)
    }

    fn count(&mut self, id: Option<RequestId>, counts: MaskCounts, done: &mut Vec<Masked>) {
        if counts.is_empty() {
            return;
        }
        match id {
            Some(id) => self.counts.entry(id).or_default().merge(&counts),
            None => done.push(Masked {
                request: None,
                counts: counts.entries(&self.rules),
            }),
        }
    }

    fn finish_request(&mut self, id: RequestId, done: &mut Vec<Masked>) {
        self.plans.retain(|(request, _), _| *request != id);
        self.queries.remove(&id);
        self.copies_seen.remove(&id);
        self.copy_columns.remove(&id);
        self.pending_copies.remove(&id);
        self.copies.remove(&id);
        if let Some(counts) = self.counts.remove(&id)
            && !counts.is_empty()
        {
            done.push(Masked {
                request: Some(id),
                counts: counts.entries(&self.rules),
            });
        }
    }
}

const COPY_OUT_TAG: u8 = b'H';

/// The statement of a simple Query whose rows are arriving (0 for other requests).
fn statement_index(kind: &RequestKind) -> usize {
    match kind {
        RequestKind::Query { statement } => *statement,
        _ => 0,
    }
}

/// The result formats of a RowDescription whose formats are already those of the portal.
fn formats_of(rd: &RowDescription) -> Vec<i16> {
    rd.fields.iter().map(|f| f.format).collect()
}

/// A cheap test: could `sql` contain a `COPY ... TO STDOUT`? (False positives only cost a
/// parse when the COPY starts.)
fn may_copy_out(sql: &str) -> bool {
    sql.as_bytes()
        .windows(4)
        .any(|w| w.eq_ignore_ascii_case(b"copy"))
}

/// The agent's own connection to the session's database, for catalog lookups.
pub struct CatalogConnection {
    pub endpoint: Endpoint,
    pub session: Session,
}

impl CatalogConnection {
    /// Answers `lookup`.
    pub async fn answer(&mut self, lookup: Lookup) -> Result<Learned, UpstreamError> {
        match lookup {
            Lookup::TableNames(oids) => {
                let list = oids
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                let sql = CATALOG_NAMES_SQL.replace("$1", &format!("'{{{list}}}'"));
                Ok(Learned::TableNames(
                    self.session.rows(&self.endpoint, &sql).await?,
                ))
            }
            Lookup::CopyColumns { id, regclass } => {
                let sql = COPY_TABLE_COLUMNS_SQL.replace("$1", &quote_literal(&regclass));
                let rows = self.session.rows(&self.endpoint, &sql).await?;
                Ok(Learned::CopyColumns {
                    id,
                    columns: rows.iter().filter_map(|r| catalog_column(r)).collect(),
                })
            }
            Lookup::Describe { id, sql } => Ok(Learned::Described {
                id,
                description: self.session.describe(&self.endpoint, &sql).await?,
            }),
        }
    }
}

/// A row of [`COPY_TABLE_COLUMNS_SQL`].
fn catalog_column(row: &[Option<String>]) -> Option<CatalogColumn> {
    let text = |i: usize| row.get(i).cloned().flatten();
    Some(CatalogColumn {
        table_oid: text(0)?.parse().ok()?,
        attnum: text(1)?.parse().ok()?,
        name: text(2)?,
        type_oid: text(3)?.parse().ok()?,
        type_size: text(4)?.parse().ok()?,
        generated: text(5)? == "t",
    })
}

/// `text` as a SQL string literal (the session has standard_conforming_strings on: the agent
/// refuses sessions without it).
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_double_their_quotes() {
        assert_eq!(quote_literal("public.\"o'k\""), "'public.\"o''k\"'");
    }

    #[test]
    fn copy_is_suspected_in_any_case() {
        assert!(may_copy_out("copy t TO STDOUT"));
        assert!(may_copy_out("select 1; CoPy (select 1) to stdout"));
        assert!(!may_copy_out("select 1"));
    }

    #[test]
    fn catalog_rows_become_columns_and_bad_rows_are_skipped() {
        let row = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
        let c = catalog_column(&row(&["16384", "2", "email", "25", "-1", "f"])).unwrap();
        assert_eq!(
            (c.table_oid, c.attnum, c.name.as_str()),
            (16384, 2, "email")
        );
        assert!(!c.generated);
        assert!(catalog_column(&row(&["x", "2", "email", "25", "-1", "f"])).is_none());
    }
}
