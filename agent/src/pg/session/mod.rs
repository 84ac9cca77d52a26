//! Which client request every server message answers: a pure state machine of one session.
//!
//! [`SessionTracker`] is fed every message the client sends ([`SessionTracker::on_frontend`],
//! in order, before it is forwarded) and every message the server sends
//! ([`SessionTracker::on_backend`], or [`SessionTracker::on_backend_tag`] for relays that only
//! frame server messages), and keeps the queue of responses the server still owes, the way
//! the server itself processes the client's stream (the model of pgdog's protocol state).
//! No sockets, no clock, no runtime.
//!
//! # Requests and attributions
//!
//! Each client message that asks for something is a *request* with a stable [`RequestId`]
//! (increasing from 1): Query, Parse, Bind, Describe, Execute, Close, Sync, FunctionCall.
//! Flush, CopyData, CopyDone, CopyFail and Terminate are not requests of their own:
//! `on_frontend` returns the id of the request they belong to (the COPY's, else the latest).
//!
//! `on_backend` returns an [`Attribution`]: the [`Request`] the message answers and whether it
//! is the request's last message, or [`Attribution::Session`] for what belongs to no request
//! (NoticeResponse, NotificationResponse, ParameterStatus, an ErrorResponse while nothing is
//! pending such as an administrator's shutdown, the login's ReadyForQuery), or
//! [`Attribution::Unexpected`] for a message that matches nothing expected (the proxy logs
//! it; the tracker never panics and resynchronizes at the next ReadyForQuery).
//!
//! | request | server messages (the last one completes it) |
//! |---|---|
//! | Query | per statement: [RowDescription, DataRow*] CommandComplete, or EmptyQueryResponse, or COPY (below); an ErrorResponse ends the statements; then ReadyForQuery |
//! | Parse | ParseComplete |
//! | Bind | BindComplete |
//! | Describe (statement) | ParameterDescription, then RowDescription or NoData |
//! | Describe (portal) | RowDescription or NoData |
//! | Execute | DataRow*, then CommandComplete, EmptyQueryResponse or PortalSuspended (row limit) |
//! | Close | CloseComplete |
//! | Sync | ReadyForQuery |
//! | FunctionCall | FunctionCallResponse, ReadyForQuery |
//!
//! An ErrorResponse completes an extended-protocol request (Parse, Bind, Describe, Execute,
//! Close); the server then discards every message until Sync, so the requests queued before
//! the next Sync are dropped (they get no answer), and when no Sync is queued yet, the client's
//! next messages up to its Sync are not queued at all ([`SessionTracker::discarding`]).
//!
//! [`Request::row_description`] is the RowDescription that applies to the rows being
//! returned: for a simple-query statement, the one that preceded them; for an Execute, the
//! portal's (from Describe(portal), else derived from the statement's Describe with the
//! result formats of Bind: drivers that cache statements skip Describe). When it is not known
//! ([`Described::Unknown`]) masking must fail closed.
//!
//! # COPY
//!
//! CopyInResponse (or CopyBothResponse) opens the client's side of a COPY: CopyData, CopyDone
//! and CopyFail are then expected from the client, and Sync and Flush are ignored (the server
//! ignores them during COPY FROM STDIN, so libpq and tokio-postgres send a Sync with the
//! Execute and another after CopyDone); the COPY's request answers the CommandComplete or
//! ErrorResponse that follows. CopyOutResponse: the server's CopyData and CopyDone belong to
//! the COPY's request until its CommandComplete.
//!
//! # Tables
//!
//! [`SessionTracker::statement`] and [`SessionTracker::portal`] reflect what the server has
//! acknowledged (ParseComplete, BindComplete, CloseComplete, the answers to Describe), in the
//! server's order, so a failed or discarded Parse never enters the table. Names are keyed as
//! the server keys them (their first [`NAME_KEY_LEN`] bytes). The unnamed statement is
//! replaced by each Parse with an empty name and dropped by a simple Query (PostgreSQL does
//! both); portals live until Close or the end of the transaction (ReadyForQuery `Idle`);
//! statements until Close, `DEALLOCATE`, `DEALLOCATE ALL` or `DISCARD ALL`. For the SQL-level
//! `DEALLOCATE name`, `PREPARE name`, `CLOSE name` and `DECLARE name` (the CommandComplete tag
//! names no statement) the names are read from the query text; when they cannot be read with
//! certainty every statement (or portal) is forgotten.
//!
//! # Client violations and limits
//!
//! [`ClientViolation`]s are real protocol-state errors (COPY messages when no COPY can be in
//! progress, another request during COPY FROM STDIN, anything after Terminate, a password
//! message after startup) and exceeded [`TrackerLimits`] (requests awaiting a response,
//! prepared statements, portals, bytes of SQL text and descriptions kept). A message that
//! violates them is not recorded: the caller must not forward it. What the server itself
//! rejects (a Bind naming an unknown statement) is no violation.
//!
//! Memory is bounded by [`TrackerLimits`]; DataRow and CopyData contents are never kept; a
//! DataRow costs no allocation and every message is O(1) amortized.
//!
//! Names are compared as bytes; when `server_encoding` is not UTF8, a non-ASCII name longer
//! than 63 bytes may be cut elsewhere by the server (after conversion): such names are
//! tracked approximately. So are clients that send COPY data before the server's
//! CopyInResponse (no common driver does).

mod sql;
mod tables;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::mem;
use std::sync::Arc;

use bytes::Bytes;

pub use tables::{
    Described, MAX_RESULT_COLUMNS, NAME_KEY_LEN, Name, Portal, PreparedStatement, ResultFormats,
};

use self::sql::{EffectKind, Effects, Target};
use self::tables::key;
use crate::pg::codec::backend::{
    BackendMessage, ParameterDescription, RowDescription, TransactionStatus,
};
use crate::pg::codec::frontend::{FrontendMessage, TargetKind};
use crate::pg::sqlstate;

/// Bounds on what one session may make the tracker keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackerLimits {
    /// Requests awaiting a response (a client pipelining more is refused).
    pub max_pending: usize,
    /// Named prepared statements (the unnamed one does not count).
    pub max_statements: usize,
    /// Named portals (the unnamed one does not count).
    pub max_portals: usize,
    /// Estimated bytes of SQL text, parameter types and descriptions kept in the tables. A
    /// Parse that would exceed it is refused; a description that would exceed it is not kept
    /// (it becomes [`Described::Unknown`], see [`SessionTracker::dropped_descriptions`]).
    pub max_metadata_bytes: usize,
}

impl TrackerLimits {
    pub const DEFAULT_MAX_PENDING: usize = 100_000;
    pub const DEFAULT_MAX_STATEMENTS: usize = 10_000;
    pub const DEFAULT_MAX_PORTALS: usize = 10_000;
    pub const DEFAULT_MAX_METADATA_BYTES: usize = 64 << 20;
}

impl Default for TrackerLimits {
    fn default() -> Self {
        Self {
            max_pending: Self::DEFAULT_MAX_PENDING,
            max_statements: Self::DEFAULT_MAX_STATEMENTS,
            max_portals: Self::DEFAULT_MAX_PORTALS,
            max_metadata_bytes: Self::DEFAULT_MAX_METADATA_BYTES,
        }
    }
}

/// A client request's identity, assigned when the client sent it: 1, 2, 3, … per session
/// (0: no request yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RequestId(pub u64);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What a request asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestKind {
    /// A simple query. `statement`: the index (from 0) of the statement whose results are
    /// arriving; at ReadyForQuery, the last statement's.
    Query {
        statement: usize,
    },
    Parse {
        name: Name,
    },
    Bind {
        portal: Name,
        statement: Name,
    },
    Describe {
        target: TargetKind,
        name: Name,
    },
    /// `statement`: the portal's statement, known once the server answers (`None` for a
    /// portal the tracker does not know, e.g. a SQL cursor).
    Execute {
        portal: Name,
        statement: Option<Name>,
        max_rows: i32,
    },
    Close {
        target: TargetKind,
        name: Name,
    },
    Sync,
    FunctionCall {
        oid: u32,
    },
}

/// A COPY's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CopyDirection {
    /// COPY FROM STDIN: the client sends the data.
    In,
    /// COPY TO STDOUT: the server sends the data.
    Out,
    /// Both ways (streaming replication).
    Both,
}

/// A client request awaiting (or just given) its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    id: RequestId,
    kind: RequestKind,
    result: Described,
    copy: Option<CopyDirection>,
}

impl Request {
    pub fn id(&self) -> RequestId {
        self.id
    }

    pub fn kind(&self) -> &RequestKind {
        &self.kind
    }

    /// The columns of the rows being returned (Query: the current statement's; Execute: the
    /// portal's). Unknown before a simple-query statement's RowDescription, and for an
    /// Execute whose portal and statement were never described.
    pub fn result(&self) -> &Described {
        &self.result
    }

    /// The RowDescription that applies to the DataRows of this request, formats included.
    pub fn row_description(&self) -> Option<&RowDescription> {
        self.result.row_description()
    }

    /// The COPY in progress for this request, if any.
    pub fn copy(&self) -> Option<CopyDirection> {
        self.copy
    }
}

/// Which request a server message answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribution<'a> {
    /// It answers `request`; `completes`: it is the request's last message.
    Request {
        request: &'a Request,
        completes: bool,
    },
    /// It belongs to the session, not to a request (notices, notifications, parameter status).
    Session,
    /// It matches nothing expected (logged by the proxy; state is unchanged).
    Unexpected,
}

impl<'a> Attribution<'a> {
    pub fn request(&self) -> Option<&'a Request> {
        match self {
            Self::Request { request, .. } => Some(request),
            _ => None,
        }
    }

    pub fn id(&self) -> Option<RequestId> {
        self.request().map(Request::id)
    }

    pub fn completes(&self) -> bool {
        matches!(
            self,
            Self::Request {
                completes: true,
                ..
            }
        )
    }

    /// The RowDescription that applies to a DataRow so attributed.
    pub fn row_description(&self) -> Option<&'a RowDescription> {
        self.request().and_then(Request::row_description)
    }
}

/// A client message that breaks the protocol's state, or the tracker's limits. The message
/// was not recorded: do not forward it (end the session with an ErrorResponse carrying
/// [`ClientViolation::sqlstate`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientViolation {
    #[error("{message} message while no COPY FROM STDIN is in progress")]
    CopyOutsideCopy { message: &'static str },
    #[error("{message} message during COPY FROM STDIN (only CopyData, CopyDone, CopyFail)")]
    MessageDuringCopy { message: &'static str },
    #[error("{message} message after Terminate")]
    AfterTerminate { message: &'static str },
    #[error("unexpected password message: no authentication is in progress")]
    UnexpectedPassword,
    #[error("pipeline too deep: {limit} requests already await a response")]
    PipelineTooDeep { limit: usize },
    #[error("too many prepared statements (the limit is {limit})")]
    TooManyStatements { limit: usize },
    #[error("too many portals (the limit is {limit})")]
    TooManyPortals { limit: usize },
    #[error("prepared statements exceed the session's {limit} bytes")]
    StatementMemory { limit: usize },
}

impl ClientViolation {
    /// `08P01` for protocol violations, `54000` for exceeded limits.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Self::CopyOutsideCopy { .. }
            | Self::MessageDuringCopy { .. }
            | Self::AfterTerminate { .. }
            | Self::UnexpectedPassword => sqlstate::PROTOCOL_VIOLATION,
            Self::PipelineTooDeep { .. }
            | Self::TooManyStatements { .. }
            | Self::TooManyPortals { .. }
            | Self::StatementMemory { .. } => sqlstate::PROGRAM_LIMIT_EXCEEDED,
        }
    }
}

/// Blind COPY messages the client sent after a request, before its next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum CopyAfter {
    Nothing,
    Data,
    Ended,
}

/// What a queued request carries besides its public [`Request`].
#[derive(Debug, Default)]
enum Payload {
    #[default]
    None,
    Query(Effects),
    /// Moved into the statement table at ParseComplete; `cost` is charged meanwhile.
    Parse {
        sql: String,
        param_types: Vec<u32>,
        cost: usize,
    },
    Bind(ResultFormats),
    /// Describe(statement), until its RowDescription or NoData.
    DescribeStatement(Params),
}

/// The ParameterDescription answering a Describe(statement).
#[derive(Debug)]
enum Params {
    Awaited,
    /// `None`: undecodable (the statement keeps the types from Parse).
    Received(Option<Vec<u32>>),
}

#[derive(Debug)]
struct Pending {
    request: Request,
    payload: Payload,
    /// The server has begun answering it.
    started: bool,
    /// Query: the current statement's results are complete.
    ended: bool,
    /// Query, Sync, FunctionCall: an ErrorResponse came; only ReadyForQuery follows.
    failed: bool,
    copy_after: CopyAfter,
}

impl Pending {
    fn expects_ready(&self) -> bool {
        matches!(
            self.request.kind,
            RequestKind::Query { .. } | RequestKind::Sync | RequestKind::FunctionCall { .. }
        )
    }

    /// Query: the next statement's first message.
    fn begin_statement(&mut self) {
        if self.ended {
            self.ended = false;
            if let RequestKind::Query { statement } = &mut self.request.kind {
                *statement += 1;
            }
            self.request.result = Described::Unknown;
            self.request.copy = None;
        }
    }
}

/// A server message, reduced to what the tracker needs.
enum Event<'m> {
    RowDescription(Source<'m, RowDescription>),
    ParameterDescription(Source<'m, ParameterDescription>),
    DataRow,
    CommandComplete(&'m str),
    EmptyQuery,
    Error,
    ParseComplete,
    BindComplete,
    CloseComplete,
    NoData,
    PortalSuspended,
    CopyResponse(CopyDirection),
    CopyData,
    CopyDone,
    Ready(TransactionStatus),
    FunctionCallResponse,
    ParameterStatus(&'m str, &'m str),
    /// NoticeResponse, NotificationResponse.
    Async,
    /// Startup-phase messages, unknown tags, malformed bodies.
    Other,
}

/// A decoded message, or a raw body decoded only when needed.
enum Source<'m, T> {
    Decoded(&'m T),
    Raw(&'m [u8]),
}

impl Source<'_, RowDescription> {
    fn described(&self) -> Described {
        match self {
            Self::Decoded(rd) => Described::Rows(Arc::new((*rd).clone())),
            Self::Raw(body) => RowDescription::decode(&Bytes::copy_from_slice(body))
                .map_or(Described::Unknown, |rd| Described::Rows(Arc::new(rd))),
        }
    }
}

impl Source<'_, ParameterDescription> {
    fn types(&self) -> Option<Vec<u32>> {
        match self {
            Self::Decoded(pd) => Some(pd.types.clone()),
            Self::Raw(body) => ParameterDescription::decode(&Bytes::copy_from_slice(body))
                .ok()
                .map(|pd| pd.types),
        }
    }
}

impl<'m> Event<'m> {
    fn from_message(msg: &'m BackendMessage) -> Self {
        use BackendMessage as B;
        match msg {
            B::RowDescription(rd) => Self::RowDescription(Source::Decoded(rd)),
            B::ParameterDescription(pd) => Self::ParameterDescription(Source::Decoded(pd)),
            B::DataRow(_) => Self::DataRow,
            B::CommandComplete(cc) => Self::CommandComplete(&cc.tag),
            B::EmptyQueryResponse => Self::EmptyQuery,
            B::ErrorResponse(_) => Self::Error,
            B::NoticeResponse(_) | B::NotificationResponse(_) => Self::Async,
            B::ParameterStatus(ps) => Self::ParameterStatus(&ps.name, &ps.value),
            B::ParseComplete => Self::ParseComplete,
            B::BindComplete => Self::BindComplete,
            B::CloseComplete => Self::CloseComplete,
            B::NoData => Self::NoData,
            B::PortalSuspended => Self::PortalSuspended,
            B::CopyInResponse(_) => Self::CopyResponse(CopyDirection::In),
            B::CopyOutResponse(_) => Self::CopyResponse(CopyDirection::Out),
            B::CopyBothResponse(_) => Self::CopyResponse(CopyDirection::Both),
            B::CopyData(_) => Self::CopyData,
            B::CopyDone => Self::CopyDone,
            B::ReadyForQuery(r) => Self::Ready(r.status),
            B::FunctionCallResponse(_) => Self::FunctionCallResponse,
            B::Authentication(_) | B::BackendKeyData(_) | B::NegotiateProtocolVersion(_) => {
                Self::Other
            }
        }
    }

    fn from_frame(tag: u8, body: &'m [u8]) -> Self {
        match tag {
            b'T' => Self::RowDescription(Source::Raw(body)),
            b't' => Self::ParameterDescription(Source::Raw(body)),
            b'D' => Self::DataRow,
            b'C' => Self::CommandComplete(cstr(body).unwrap_or("")),
            b'I' => Self::EmptyQuery,
            b'E' => Self::Error,
            b'N' | b'A' => Self::Async,
            b'S' => {
                let mut parts = body.split(|b| *b == 0);
                match (parts.next(), parts.next()) {
                    (Some(name), Some(value)) => {
                        match (std::str::from_utf8(name), std::str::from_utf8(value)) {
                            (Ok(name), Ok(value)) => Self::ParameterStatus(name, value),
                            _ => Self::Async,
                        }
                    }
                    _ => Self::Async,
                }
            }
            b'1' => Self::ParseComplete,
            b'2' => Self::BindComplete,
            b'3' => Self::CloseComplete,
            b'n' => Self::NoData,
            b's' => Self::PortalSuspended,
            b'G' => Self::CopyResponse(CopyDirection::In),
            b'H' => Self::CopyResponse(CopyDirection::Out),
            b'W' => Self::CopyResponse(CopyDirection::Both),
            b'd' => Self::CopyData,
            b'c' => Self::CopyDone,
            b'Z' => match body {
                [b'I'] => Self::Ready(TransactionStatus::Idle),
                [b'T'] => Self::Ready(TransactionStatus::InTransaction),
                [b'E'] => Self::Ready(TransactionStatus::Failed),
                _ => Self::Other,
            },
            b'V' => Self::FunctionCallResponse,
            _ => Self::Other,
        }
    }
}

/// A NUL-terminated UTF-8 string filling `body`.
fn cstr(body: &[u8]) -> Option<&str> {
    std::str::from_utf8(body.strip_suffix(&[0])?).ok()
}

/// What a server message did to the queue.
enum Outcome {
    /// Answers the request at the front, which continues.
    Front,
    /// Completed the request now in `finished`.
    Finished,
    Session,
    Unexpected,
}

/// What one message did to the front request (taken out of the queue meanwhile).
enum Step {
    Continue,
    Complete,
    /// An extended-protocol request failed: complete it, discard until Sync.
    Fail,
    Unexpected,
}

/// The COPY whose data the client may send.
#[derive(Debug, Clone, Copy)]
struct ClientCopy {
    request: RequestId,
}

/// Which request each server message answers, and the session state that depends on it. See
/// the [module documentation](self).
#[derive(Debug)]
pub struct SessionTracker {
    limits: TrackerLimits,
    queue: VecDeque<Pending>,
    /// The request completed by the last server message (what its attribution borrows).
    finished: Option<Pending>,
    last_id: RequestId,
    status: TransactionStatus,
    statements: HashMap<Name, PreparedStatement>,
    portals: HashMap<Name, Portal>,
    /// Queued named Parse / Bind requests (counted against the table limits).
    pending_parses: usize,
    pending_binds: usize,
    /// Queued Query and Execute requests (a COPY may start).
    copy_capable: usize,
    /// Queued Query, Sync and FunctionCall requests (a ReadyForQuery will come).
    ready_expected: usize,
    /// Bytes charged for the statement table, queued Parses, and the portal table.
    statement_bytes: usize,
    parse_bytes: usize,
    portal_bytes: usize,
    client_copy: Option<ClientCopy>,
    discarding: bool,
    terminated: bool,
    standard_strings: bool,
    dropped_descriptions: u64,
    unnamed: Name,
}

impl Default for SessionTracker {
    fn default() -> Self {
        Self::new(TrackerLimits::default())
    }
}

impl SessionTracker {
    /// A session after login: idle, nothing prepared.
    pub fn new(limits: TrackerLimits) -> Self {
        Self {
            limits,
            queue: VecDeque::new(),
            finished: None,
            last_id: RequestId(0),
            status: TransactionStatus::Idle,
            statements: HashMap::new(),
            portals: HashMap::new(),
            pending_parses: 0,
            pending_binds: 0,
            copy_capable: 0,
            ready_expected: 0,
            statement_bytes: 0,
            parse_bytes: 0,
            portal_bytes: 0,
            client_copy: None,
            discarding: false,
            terminated: false,
            standard_strings: true,
            dropped_descriptions: 0,
            unnamed: Name::from_key(b""),
        }
    }

    /// The transaction status from the last ReadyForQuery.
    pub fn transaction_status(&self) -> TransactionStatus {
        self.status
    }

    /// A prepared statement the server acknowledged.
    pub fn statement(&self, name: &str) -> Option<&PreparedStatement> {
        self.statements.get(key(name))
    }

    /// A portal the server acknowledged.
    pub fn portal(&self, name: &str) -> Option<&Portal> {
        self.portals.get(key(name))
    }

    /// A portal's result columns with their formats: from Describe(portal), else derived from
    /// its statement's Describe and the formats of Bind. `None`: unknown or no rows.
    pub fn portal_row_description(&self, name: &str) -> Option<Arc<RowDescription>> {
        match self.portal_result(self.portal(name)?) {
            Described::Rows(rd) => Some(rd),
            _ => None,
        }
    }

    pub fn statement_count(&self) -> usize {
        self.statements.len()
    }

    pub fn portal_count(&self) -> usize {
        self.portals.len()
    }

    /// Requests awaiting a response.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// The request the server's next message should answer.
    pub fn front(&self) -> Option<&Request> {
        self.queue.front().map(|p| &p.request)
    }

    /// The columns of the rows the front request returns, as [`Request::row_description`]
    /// will say once the server starts answering it: for an Execute not yet started, the
    /// description of its portal (a relay that must prepare before the first row consumes
    /// it, e.g. to look names up, asks this).
    pub fn front_row_description(&self) -> Option<Arc<RowDescription>> {
        let p = self.queue.front()?;
        match (&p.request.kind, p.started) {
            (RequestKind::Execute { portal, .. }, false) => {
                match self.portal_result(self.portals.get(portal.as_bytes())?) {
                    Described::Rows(rd) => Some(rd),
                    _ => None,
                }
            }
            _ => match &p.request.result {
                Described::Rows(rd) => Some(Arc::clone(rd)),
                _ => None,
            },
        }
    }

    /// The client may send COPY data (the server sent CopyInResponse or CopyBothResponse and
    /// the client has not sent CopyDone or CopyFail).
    pub fn copy_in_progress(&self) -> bool {
        self.client_copy.is_some()
    }

    /// The server is discarding the client's messages until Sync (after an error in the
    /// extended protocol): requests sent now are never answered.
    pub fn discarding(&self) -> bool {
        self.discarding
    }

    /// Descriptions not kept because of [`TrackerLimits::max_metadata_bytes`].
    pub fn dropped_descriptions(&self) -> u64 {
        self.dropped_descriptions
    }

    /// Estimated bytes kept in the tables and queued Parses.
    pub fn metadata_bytes(&self) -> usize {
        self.statement_bytes + self.parse_bytes + self.portal_bytes
    }

    // ---------------------------------------------------------------------------------------
    // Client messages

    /// Records a client message, before it is forwarded. Returns the request it makes (or
    /// belongs to, see the module documentation).
    pub fn on_frontend(&mut self, msg: &FrontendMessage) -> Result<RequestId, ClientViolation> {
        use FrontendMessage as F;
        if self.terminated {
            return Err(ClientViolation::AfterTerminate {
                message: msg.name(),
            });
        }
        match msg {
            F::PasswordMessage(_) => Err(ClientViolation::UnexpectedPassword),
            F::Terminate => {
                self.terminated = true;
                Ok(self.last_id)
            }
            F::CopyData(_) => self.client_copy_message(msg.name(), false),
            F::CopyDone | F::CopyFail(_) => self.client_copy_message(msg.name(), true),
            F::Flush => Ok(self.current()),
            F::Sync => {
                if self.server_in_copy_in() {
                    // Ignored by the server until the COPY ends.
                    return Ok(self.current());
                }
                self.check_depth()?;
                self.discarding = false;
                Ok(self.push(RequestKind::Sync, Payload::None))
            }
            _ => {
                if self.client_copy.is_some() {
                    return Err(ClientViolation::MessageDuringCopy {
                        message: msg.name(),
                    });
                }
                if self.discarding {
                    // The server skips it: a request that will never be answered.
                    self.last_id = RequestId(self.last_id.0 + 1);
                    return Ok(self.last_id);
                }
                self.check_depth()?;
                self.request(msg)
            }
        }
    }

    fn request(&mut self, msg: &FrontendMessage) -> Result<RequestId, ClientViolation> {
        use FrontendMessage as F;
        let (kind, payload) = match msg {
            F::Query(q) => (
                RequestKind::Query { statement: 0 },
                Payload::Query(sql::scan(&q.sql, self.standard_strings)),
            ),
            F::Parse(p) => {
                let name = self.statement_name(&p.name);
                if !name.is_unnamed()
                    && !self.statements.contains_key(name.as_bytes())
                    && self.named_statements() + self.pending_parses >= self.limits.max_statements
                {
                    return Err(ClientViolation::TooManyStatements {
                        limit: self.limits.max_statements,
                    });
                }
                let cost = PreparedStatement::parse_cost(&p.query, p.param_types.len());
                if self.metadata_bytes() + cost > self.limits.max_metadata_bytes {
                    return Err(ClientViolation::StatementMemory {
                        limit: self.limits.max_metadata_bytes,
                    });
                }
                (
                    RequestKind::Parse { name },
                    Payload::Parse {
                        sql: p.query.clone(),
                        param_types: p.param_types.clone(),
                        cost,
                    },
                )
            }
            F::Bind(b) => {
                let portal = self.portal_name(&b.portal);
                if !portal.is_unnamed()
                    && !self.portals.contains_key(portal.as_bytes())
                    && self.named_portals() + self.pending_binds >= self.limits.max_portals
                {
                    return Err(ClientViolation::TooManyPortals {
                        limit: self.limits.max_portals,
                    });
                }
                (
                    RequestKind::Bind {
                        portal,
                        statement: self.statement_name(&b.statement),
                    },
                    Payload::Bind(ResultFormats::from_codes(&b.result_formats)),
                )
            }
            F::Describe(d) => {
                let (name, payload) = match d.kind {
                    TargetKind::Statement => (
                        self.statement_name(&d.name),
                        Payload::DescribeStatement(Params::Awaited),
                    ),
                    TargetKind::Portal => (self.portal_name(&d.name), Payload::None),
                };
                (
                    RequestKind::Describe {
                        target: d.kind,
                        name,
                    },
                    payload,
                )
            }
            F::Execute(e) => (
                RequestKind::Execute {
                    portal: self.portal_name(&e.portal),
                    statement: None,
                    max_rows: e.max_rows,
                },
                Payload::None,
            ),
            F::Close(c) => {
                let name = match c.kind {
                    TargetKind::Statement => self.statement_name(&c.name),
                    TargetKind::Portal => self.portal_name(&c.name),
                };
                (
                    RequestKind::Close {
                        target: c.kind,
                        name,
                    },
                    Payload::None,
                )
            }
            F::FunctionCall(f) => (RequestKind::FunctionCall { oid: f.oid }, Payload::None),
            // Handled by on_frontend.
            F::Sync
            | F::Flush
            | F::CopyData(_)
            | F::CopyDone
            | F::CopyFail(_)
            | F::Terminate
            | F::PasswordMessage(_) => return Ok(self.current()),
        };
        Ok(self.push(kind, payload))
    }

    fn client_copy_message(
        &mut self,
        message: &'static str,
        ends: bool,
    ) -> Result<RequestId, ClientViolation> {
        if let Some(copy) = self.client_copy {
            if ends {
                self.client_copy = None;
            }
            return Ok(copy.request);
        }
        if self.discarding || self.copy_capable > 0 {
            // Before the server's CopyInResponse (or after a COPY that failed to start: the
            // server ignores COPY messages outside COPY).
            if let Some(back) = self.queue.back_mut() {
                let now = if ends {
                    CopyAfter::Ended
                } else {
                    CopyAfter::Data
                };
                back.copy_after = back.copy_after.max(now);
            }
            return Ok(self.current());
        }
        Err(ClientViolation::CopyOutsideCopy { message })
    }

    /// The server is in COPY FROM STDIN (or COPY BOTH) for the front request, waiting for the
    /// client's data.
    fn server_in_copy_in(&self) -> bool {
        self.client_copy.is_some()
            && self.queue.front().is_some_and(|p| {
                matches!(
                    p.request.copy,
                    Some(CopyDirection::In | CopyDirection::Both)
                )
            })
    }

    fn check_depth(&self) -> Result<(), ClientViolation> {
        if self.queue.len() >= self.limits.max_pending {
            return Err(ClientViolation::PipelineTooDeep {
                limit: self.limits.max_pending,
            });
        }
        Ok(())
    }

    /// The request non-request messages belong to.
    fn current(&self) -> RequestId {
        match self.client_copy {
            Some(copy) => copy.request,
            None => self.last_id,
        }
    }

    fn push(&mut self, kind: RequestKind, payload: Payload) -> RequestId {
        self.last_id = RequestId(self.last_id.0 + 1);
        match &kind {
            RequestKind::Query { .. } => {
                self.copy_capable += 1;
                self.ready_expected += 1;
            }
            RequestKind::Execute { .. } => self.copy_capable += 1,
            RequestKind::Sync | RequestKind::FunctionCall { .. } => self.ready_expected += 1,
            RequestKind::Parse { name } if !name.is_unnamed() => self.pending_parses += 1,
            RequestKind::Bind { portal, .. } if !portal.is_unnamed() => self.pending_binds += 1,
            _ => {}
        }
        if let Payload::Parse { cost, .. } = &payload {
            self.parse_bytes += cost;
        }
        self.queue.push_back(Pending {
            request: Request {
                id: self.last_id,
                kind,
                result: Described::Unknown,
                copy: None,
            },
            payload,
            started: false,
            ended: false,
            failed: false,
            copy_after: CopyAfter::Nothing,
        });
        self.last_id
    }

    /// Undoes `push`'s accounting for a request leaving the queue.
    fn retire(&mut self, p: &Pending) {
        match &p.request.kind {
            RequestKind::Query { .. } => {
                self.copy_capable -= 1;
                self.ready_expected -= 1;
            }
            RequestKind::Execute { .. } => self.copy_capable -= 1,
            RequestKind::Sync | RequestKind::FunctionCall { .. } => self.ready_expected -= 1,
            RequestKind::Parse { name } if !name.is_unnamed() => self.pending_parses -= 1,
            RequestKind::Bind { portal, .. } if !portal.is_unnamed() => self.pending_binds -= 1,
            _ => {}
        }
        if let Payload::Parse { cost, .. } = &p.payload {
            self.parse_bytes -= cost;
        }
    }

    /// Interns a statement name (reusing the table's key when there is one).
    fn statement_name(&self, name: &str) -> Name {
        let k = key(name);
        if k.is_empty() {
            return self.unnamed.clone();
        }
        match self.statements.get_key_value(k) {
            Some((n, _)) => n.clone(),
            None => Name::from_key(k),
        }
    }

    fn portal_name(&self, name: &str) -> Name {
        let k = key(name);
        if k.is_empty() {
            return self.unnamed.clone();
        }
        match self.portals.get_key_value(k) {
            Some((n, _)) => n.clone(),
            None => Name::from_key(k),
        }
    }

    fn named_statements(&self) -> usize {
        self.statements.len() - usize::from(self.statements.contains_key(&b""[..]))
    }

    fn named_portals(&self) -> usize {
        self.portals.len() - usize::from(self.portals.contains_key(&b""[..]))
    }

    // ---------------------------------------------------------------------------------------
    // Server messages

    /// Attributes a server message (in order, as it arrives) and updates the session state.
    pub fn on_backend(&mut self, msg: &BackendMessage) -> Attribution<'_> {
        let outcome = self.apply(Event::from_message(msg));
        self.attribution(outcome)
    }

    /// [`Self::on_backend`] for a relay that frames server messages without decoding them:
    /// `body` is the message after its 5-byte header. Only RowDescription,
    /// ParameterDescription, CommandComplete, ReadyForQuery and ParameterStatus bodies are
    /// read; DataRow and CopyData are attributed by their tag alone.
    pub fn on_backend_tag(&mut self, tag: u8, body: &[u8]) -> Attribution<'_> {
        let outcome = self.apply(Event::from_frame(tag, body));
        self.attribution(outcome)
    }

    fn attribution(&self, outcome: Outcome) -> Attribution<'_> {
        let (pending, completes) = match outcome {
            Outcome::Front => (self.queue.front(), false),
            Outcome::Finished => (self.finished.as_ref(), true),
            Outcome::Session => return Attribution::Session,
            Outcome::Unexpected => return Attribution::Unexpected,
        };
        match pending {
            Some(p) => Attribution::Request {
                request: &p.request,
                completes,
            },
            None => Attribution::Unexpected,
        }
    }

    fn apply(&mut self, event: Event<'_>) -> Outcome {
        match event {
            Event::Async => return Outcome::Session,
            Event::ParameterStatus(name, value) => {
                if name == "standard_conforming_strings" {
                    self.standard_strings = value == "on";
                }
                return Outcome::Session;
            }
            Event::Other => return Outcome::Unexpected,
            Event::Ready(status) => return self.on_ready(status),
            // The hot path: rows and COPY data only read the front request.
            Event::DataRow | Event::CopyData => {
                if let Some(front) = self.queue.front()
                    && front.started
                {
                    let expected = match (&event, front.request.copy) {
                        (Event::DataRow, None) => {
                            !front.failed
                                && !front.ended
                                && matches!(
                                    front.request.kind,
                                    RequestKind::Query { .. } | RequestKind::Execute { .. }
                                )
                        }
                        (Event::CopyData, Some(CopyDirection::Out | CopyDirection::Both)) => true,
                        _ => false,
                    };
                    return if expected {
                        Outcome::Front
                    } else {
                        Outcome::Unexpected
                    };
                }
            }
            _ => {}
        }
        let Some(mut front) = self.queue.pop_front() else {
            return match event {
                // A FATAL error outside any request (administrator shutdown, idle timeout).
                Event::Error => Outcome::Session,
                _ => Outcome::Unexpected,
            };
        };
        if !front.started {
            self.start(&mut front);
        }
        match self.step(&mut front, event) {
            Step::Continue => {
                self.queue.push_front(front);
                Outcome::Front
            }
            Step::Unexpected => {
                self.queue.push_front(front);
                Outcome::Unexpected
            }
            Step::Complete => {
                self.retire(&front);
                self.finished = Some(front);
                Outcome::Finished
            }
            Step::Fail => {
                self.retire(&front);
                self.finished = Some(front);
                // The server skips everything until Sync.
                loop {
                    match self.queue.front() {
                        None => {
                            self.discarding = true;
                            break;
                        }
                        Some(p) if p.request.kind == RequestKind::Sync => break,
                        Some(_) => {
                            if let Some(p) = self.queue.pop_front() {
                                self.retire(&p);
                            }
                        }
                    }
                }
                Outcome::Finished
            }
        }
    }

    /// The server has begun answering `p`.
    fn start(&mut self, p: &mut Pending) {
        p.started = true;
        match &mut p.request.kind {
            RequestKind::Query { .. } => {
                // PostgreSQL runs a simple query in the unnamed statement and portal.
                let unnamed = self.unnamed.clone();
                self.remove_statement(&unnamed);
                self.remove_portal(&unnamed);
            }
            RequestKind::Execute {
                portal, statement, ..
            } => {
                let Some(found) = self.portals.get(portal.as_bytes()) else {
                    return;
                };
                statement.clone_from(&found.statement);
                let result = self.portal_result(found);
                // A description derived with binary formats is a new copy: keep it.
                let cache = match (&found.described, &found.derived, &result) {
                    (Described::Unknown, None, Described::Rows(rd))
                        if !found.formats.all_text() =>
                    {
                        Some(Arc::clone(rd))
                    }
                    _ => None,
                };
                p.request.result = result;
                if let Some(rd) = cache {
                    let portal = portal.clone();
                    self.cache_derived(&portal, rd);
                }
            }
            _ => {}
        }
    }

    fn step(&mut self, p: &mut Pending, event: Event<'_>) -> Step {
        use RequestKind as K;
        match (&p.request.kind, event) {
            (K::Query { .. }, event) => self.query_step(p, event),
            (_, Event::Error) => match p.request.kind {
                K::Sync | K::FunctionCall { .. } => {
                    p.failed = true;
                    Step::Continue
                }
                K::Parse { ref name } => {
                    // The server drops the unnamed statement before parsing the new one.
                    if name.is_unnamed() {
                        let unnamed = self.unnamed.clone();
                        self.remove_statement(&unnamed);
                    }
                    Step::Fail
                }
                _ => Step::Fail,
            },
            (K::Parse { name }, Event::ParseComplete) => {
                let name = name.clone();
                if let Payload::Parse {
                    sql,
                    param_types,
                    cost,
                } = mem::take(&mut p.payload)
                {
                    self.parse_bytes -= cost;
                    let st = PreparedStatement::new(name.clone(), sql, param_types, p.request.id);
                    self.insert_statement(name, st);
                }
                Step::Complete
            }
            (K::Bind { portal, statement }, Event::BindComplete) => {
                let formats = match mem::take(&mut p.payload) {
                    Payload::Bind(formats) => formats,
                    _ => ResultFormats::ALL_TEXT,
                };
                let parsed_by = self
                    .statements
                    .get(statement.as_bytes())
                    .map(|s| s.parsed_by);
                let portal =
                    Portal::new(portal.clone(), Some(statement.clone()), parsed_by, formats);
                self.insert_portal(portal);
                Step::Complete
            }
            (
                K::Describe {
                    target: TargetKind::Statement,
                    ..
                },
                Event::ParameterDescription(src),
            ) => match &mut p.payload {
                Payload::DescribeStatement(params @ Params::Awaited) => {
                    *params = Params::Received(src.types());
                    Step::Continue
                }
                _ => Step::Unexpected,
            },
            (K::Describe { target, name }, event @ (Event::RowDescription(_) | Event::NoData)) => {
                let described = match event {
                    Event::RowDescription(src) => src.described(),
                    _ => Described::NoData,
                };
                match target {
                    TargetKind::Statement => {
                        let Payload::DescribeStatement(Params::Received(types)) =
                            mem::take(&mut p.payload)
                        else {
                            return Step::Unexpected;
                        };
                        let name = name.clone();
                        self.describe_statement(&name, types, described);
                    }
                    TargetKind::Portal => {
                        let name = name.clone();
                        self.describe_portal(name, described);
                    }
                }
                Step::Complete
            }
            (K::Execute { .. }, event) => self.execute_step(p, event),
            (K::Close { target, name }, Event::CloseComplete) => {
                let name = name.clone();
                match target {
                    TargetKind::Statement => self.remove_statement(&name),
                    TargetKind::Portal => self.remove_portal(&name),
                }
                Step::Complete
            }
            (K::FunctionCall { .. }, Event::FunctionCallResponse) if !p.failed => Step::Continue,
            _ => Step::Unexpected,
        }
    }

    fn query_step(&mut self, p: &mut Pending, event: Event<'_>) -> Step {
        if p.failed {
            return Step::Unexpected;
        }
        match event {
            Event::Error => {
                p.begin_statement();
                p.failed = true;
                p.request.copy = None;
                Step::Continue
            }
            Event::RowDescription(src) => {
                p.begin_statement();
                if p.request.copy.is_some() {
                    return Step::Unexpected;
                }
                p.request.result = src.described();
                Step::Continue
            }
            Event::CommandComplete(tag) => {
                p.begin_statement();
                p.ended = true;
                p.request.copy = None;
                if let Payload::Query(effects) = &mut p.payload {
                    self.command_effects(tag, |kind| effects.take(kind));
                }
                Step::Continue
            }
            Event::EmptyQuery => {
                p.begin_statement();
                p.ended = true;
                Step::Continue
            }
            Event::CopyResponse(direction) => {
                p.begin_statement();
                p.request.copy = Some(direction);
                if direction != CopyDirection::Out {
                    self.open_client_copy(p);
                }
                Step::Continue
            }
            Event::DataRow if !p.ended && p.request.copy.is_none() => Step::Continue,
            Event::CopyData | Event::CopyDone
                if matches!(
                    p.request.copy,
                    Some(CopyDirection::Out | CopyDirection::Both)
                ) =>
            {
                Step::Continue
            }
            _ => Step::Unexpected,
        }
    }

    fn execute_step(&mut self, p: &mut Pending, event: Event<'_>) -> Step {
        match event {
            Event::DataRow if p.request.copy.is_none() => Step::Continue,
            Event::CommandComplete(tag) => {
                if sql_effect(tag).is_some() {
                    let mut effects = self.execute_effects(p);
                    self.command_effects(tag, |kind| effects.take(kind));
                }
                p.request.copy = None;
                Step::Complete
            }
            Event::EmptyQuery | Event::PortalSuspended if p.request.copy.is_none() => {
                Step::Complete
            }
            Event::CopyResponse(direction) if p.request.copy.is_none() => {
                p.request.copy = Some(direction);
                if direction != CopyDirection::Out {
                    self.open_client_copy(p);
                }
                Step::Continue
            }
            Event::CopyData | Event::CopyDone
                if matches!(
                    p.request.copy,
                    Some(CopyDirection::Out | CopyDirection::Both)
                ) =>
            {
                Step::Continue
            }
            _ => Step::Unexpected,
        }
    }

    /// The SQL-level effects of the statement an Execute ran.
    fn execute_effects(&self, p: &Pending) -> Effects {
        let RequestKind::Execute { portal, .. } = &p.request.kind else {
            return Effects::default();
        };
        let statement = self.portals.get(portal.as_bytes()).and_then(|portal| {
            let st = self.statements.get(portal.statement.as_ref()?.as_bytes())?;
            (Some(st.parsed_by) == portal.parsed_by).then_some(st)
        });
        match statement {
            Some(st) => sql::scan(&st.sql, self.standard_strings),
            None => Effects::unknown(),
        }
    }

    /// The server sent CopyInResponse or CopyBothResponse for `p` (out of the queue): the
    /// client's next messages are COPY data, up to its CopyDone or CopyFail. Syncs the client
    /// already sent are ignored by the server meanwhile; any other request it already sent is
    /// read by the COPY and fails it, without being run.
    fn open_client_copy(&mut self, p: &Pending) {
        let mut after = p.copy_after;
        loop {
            if after == CopyAfter::Ended {
                // The client already ended its side, before seeing the CopyInResponse.
                return;
            }
            let Some(next) = self.queue.front() else {
                self.client_copy = Some(ClientCopy {
                    request: p.request.id,
                });
                return;
            };
            let sync = next.request.kind == RequestKind::Sync;
            if let Some(next) = self.queue.pop_front() {
                after = next.copy_after;
                self.retire(&next);
            }
            if !sync {
                return;
            }
        }
    }

    fn on_ready(&mut self, status: TransactionStatus) -> Outcome {
        self.status = status;
        self.discarding = false;
        if status == TransactionStatus::Idle {
            self.clear_portals();
        }
        if self.ready_expected == 0 {
            // The login's ReadyForQuery, or a desynchronized server.
            return if self.last_id == RequestId(0) {
                Outcome::Session
            } else {
                Outcome::Unexpected
            };
        }
        // Requests still owed an answer before it are lost (resynchronization).
        while let Some(mut p) = self.queue.pop_front() {
            self.retire(&p);
            if p.expects_ready() {
                if !p.started {
                    self.start(&mut p);
                }
                self.finished = Some(p);
                return Outcome::Finished;
            }
        }
        Outcome::Unexpected
    }

    // ---------------------------------------------------------------------------------------
    // Tables

    fn portal_result(&self, portal: &Portal) -> Described {
        match &portal.described {
            Described::Unknown => {}
            described => return described.clone(),
        }
        if let Some(rd) = &portal.derived {
            return Described::Rows(Arc::clone(rd));
        }
        let statement = portal
            .statement
            .as_ref()
            .and_then(|name| self.statements.get(name.as_bytes()))
            .filter(|st| Some(st.parsed_by) == portal.parsed_by);
        match statement.map(|st| &st.described) {
            Some(Described::Rows(rd)) => Described::Rows(portal.formats.apply(rd)),
            Some(Described::NoData) => Described::NoData,
            _ => Described::Unknown,
        }
    }

    fn cache_derived(&mut self, name: &Name, rd: Arc<RowDescription>) {
        let cost = Described::Rows(Arc::clone(&rd)).cost();
        if !self.fits(cost, 0) {
            return;
        }
        if let Some(portal) = self.portals.get_mut(name.as_bytes()) {
            portal.derived = Some(rd);
            portal.cost += cost;
            self.portal_bytes += cost;
        }
    }

    fn insert_statement(&mut self, name: Name, st: PreparedStatement) {
        self.statement_bytes += st.cost;
        if let Some(old) = self.statements.insert(name, st) {
            self.statement_bytes -= old.cost;
        }
    }

    fn remove_statement(&mut self, name: &Name) {
        if let Some(old) = self.statements.remove(name.as_bytes()) {
            self.statement_bytes -= old.cost;
        }
    }

    fn clear_statements(&mut self) {
        self.statements.clear();
        self.statement_bytes = 0;
    }

    fn insert_portal(&mut self, portal: Portal) {
        self.portal_bytes += portal.cost;
        if let Some(old) = self.portals.insert(portal.name.clone(), portal) {
            self.portal_bytes -= old.cost;
        }
    }

    fn remove_portal(&mut self, name: &Name) {
        if let Some(old) = self.portals.remove(name.as_bytes()) {
            self.portal_bytes -= old.cost;
        }
    }

    fn clear_portals(&mut self) {
        self.portals.clear();
        self.portal_bytes = 0;
    }

    /// Whether `extra` more bytes fit, given that `freed` bytes are released.
    fn fits(&self, extra: usize, freed: usize) -> bool {
        self.metadata_bytes() - freed + extra <= self.limits.max_metadata_bytes
    }

    fn describe_statement(&mut self, name: &Name, types: Option<Vec<u32>>, described: Described) {
        let Some(st) = self.statements.get(name.as_bytes()) else {
            return;
        };
        let params = types.as_ref().map_or(st.param_types.len(), Vec::len);
        let cost = PreparedStatement::parse_cost(&st.sql, params) + described.cost();
        if !self.fits(cost, st.cost) {
            self.dropped_descriptions += 1;
            return;
        }
        let old = st.cost;
        if let Some(st) = self.statements.get_mut(name.as_bytes()) {
            if let Some(types) = types {
                st.param_types = types;
            }
            st.described = described;
            st.cost = cost;
            self.statement_bytes = self.statement_bytes - old + cost;
        }
    }

    fn describe_portal(&mut self, name: Name, described: Described) {
        let (freed, mut portal) = match self.portals.get(name.as_bytes()) {
            Some(portal) => (portal.cost, portal.clone()),
            // A portal the client did not Bind (a SQL cursor): keep its description too.
            None if name.is_unnamed() || self.named_portals() < self.limits.max_portals => {
                (0, Portal::new(name, None, None, ResultFormats::ALL_TEXT))
            }
            None => return,
        };
        portal.described = described;
        portal.cost = portal.compute_cost();
        if !self.fits(portal.cost, freed) {
            self.dropped_descriptions += 1;
            return;
        }
        self.insert_portal(portal);
    }

    /// Applies a CommandComplete tag's effect on the tables; `take` gives the name the
    /// statement named.
    fn command_effects(&mut self, tag: &str, mut take: impl FnMut(EffectKind) -> Target) {
        let Some(effect) = sql_effect(tag) else {
            return;
        };
        match effect {
            TagEffect::Deallocate => match take(EffectKind::Deallocate) {
                Target::Named(name) => self.remove_statement(&name),
                Target::All | Target::Unknown => self.clear_statements(),
            },
            TagEffect::DeallocateAll => {
                take(EffectKind::Deallocate);
                self.clear_statements();
            }
            TagEffect::DiscardAll => {
                self.clear_statements();
                self.clear_portals();
            }
            TagEffect::Prepare => {
                // A SQL-level statement the tracker knows nothing of: forget any stale entry.
                if let Target::Named(name) = take(EffectKind::Prepare) {
                    self.remove_statement(&name);
                }
            }
            TagEffect::Close => match take(EffectKind::Close) {
                Target::Named(name) => self.remove_portal(&name),
                Target::All | Target::Unknown => self.clear_portals(),
            },
            TagEffect::CloseAll => {
                take(EffectKind::Close);
                self.clear_portals();
            }
            TagEffect::Declare => {
                if let Target::Named(name) = take(EffectKind::Declare) {
                    self.remove_portal(&name);
                }
            }
        }
    }
}

/// CommandComplete tags that change the statement or portal tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagEffect {
    Deallocate,
    DeallocateAll,
    DiscardAll,
    Prepare,
    Close,
    CloseAll,
    Declare,
}

fn sql_effect(tag: &str) -> Option<TagEffect> {
    Some(match tag {
        "DEALLOCATE" => TagEffect::Deallocate,
        "DEALLOCATE ALL" => TagEffect::DeallocateAll,
        "DISCARD ALL" => TagEffect::DiscardAll,
        "PREPARE" => TagEffect::Prepare,
        "CLOSE CURSOR" => TagEffect::Close,
        "CLOSE CURSOR ALL" => TagEffect::CloseAll,
        "DECLARE CURSOR" => TagEffect::Declare,
        _ => return None,
    })
}
