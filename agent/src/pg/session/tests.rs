//! Scenario tests: realistic message sequences, each run through both `on_backend` (decoded
//! messages) and `on_backend_tag` (raw frames).

use bytes::{Bytes, BytesMut};

use super::*;
use crate::pg::codec::backend::{
    CommandComplete, CopyResponse, DataRow, ErrorResponse, FieldDescription, FunctionCallResponse,
    NotificationResponse, ParameterStatus, ReadyForQuery, Severity,
};
use crate::pg::codec::frontend::{
    Bind, Close, CopyFail, Describe, Execute, FunctionCall, Parse, PasswordMessage, Query,
};

// ------------------------------------------------------------------------------------------
// Messages

fn query(sql: &str) -> FrontendMessage {
    FrontendMessage::Query(Query { sql: sql.into() })
}

fn parse(name: &str, sql: &str, types: &[u32]) -> FrontendMessage {
    FrontendMessage::Parse(Parse {
        name: name.into(),
        query: sql.into(),
        param_types: types.to_vec(),
    })
}

fn bind(portal: &str, statement: &str, result_formats: &[i16]) -> FrontendMessage {
    FrontendMessage::Bind(Bind {
        portal: portal.into(),
        statement: statement.into(),
        param_formats: vec![],
        params: vec![Some(Bytes::from_static(b"42"))],
        result_formats: result_formats.to_vec(),
    })
}

fn describe(target: TargetKind, name: &str) -> FrontendMessage {
    FrontendMessage::Describe(Describe {
        kind: target,
        name: name.into(),
    })
}

fn execute(portal: &str, max_rows: i32) -> FrontendMessage {
    FrontendMessage::Execute(Execute {
        portal: portal.into(),
        max_rows,
    })
}

fn close(target: TargetKind, name: &str) -> FrontendMessage {
    FrontendMessage::Close(Close {
        kind: target,
        name: name.into(),
    })
}

const S: TargetKind = TargetKind::Statement;
const P: TargetKind = TargetKind::Portal;

fn copy_data() -> FrontendMessage {
    FrontendMessage::CopyData(Bytes::from_static(b"1\talice\n"))
}

fn row_description(columns: &[&str]) -> BackendMessage {
    BackendMessage::RowDescription(RowDescription {
        fields: columns
            .iter()
            .map(|c| FieldDescription::text(*c, 23))
            .collect(),
    })
}

fn data_row() -> BackendMessage {
    BackendMessage::DataRow(DataRow::from_values([Some(&b"1"[..]), None]).unwrap())
}

fn complete(tag: &str) -> BackendMessage {
    BackendMessage::CommandComplete(CommandComplete { tag: tag.into() })
}

fn ready(status: TransactionStatus) -> BackendMessage {
    BackendMessage::ReadyForQuery(ReadyForQuery { status })
}

const IDLE: TransactionStatus = TransactionStatus::Idle;
const IN_TX: TransactionStatus = TransactionStatus::InTransaction;
const FAILED: TransactionStatus = TransactionStatus::Failed;

fn error() -> BackendMessage {
    BackendMessage::ErrorResponse(ErrorResponse::new(Severity::Error, "42601", "syntax error"))
}

fn notice() -> BackendMessage {
    BackendMessage::NoticeResponse(ErrorResponse::new(Severity::Notice, "00000", "hello"))
}

fn param_description(types: &[u32]) -> BackendMessage {
    BackendMessage::ParameterDescription(ParameterDescription {
        types: types.to_vec(),
    })
}

fn copy_response(direction: CopyDirection) -> BackendMessage {
    let r = CopyResponse {
        format: 0,
        column_formats: vec![0, 0],
    };
    match direction {
        CopyDirection::In => BackendMessage::CopyInResponse(r),
        CopyDirection::Out => BackendMessage::CopyOutResponse(r),
        CopyDirection::Both => BackendMessage::CopyBothResponse(r),
    }
}

fn server_copy_data() -> BackendMessage {
    BackendMessage::CopyData(Bytes::from_static(b"1\talice\n"))
}

// ------------------------------------------------------------------------------------------
// Harness

/// An attribution, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Req {
        id: u64,
        completes: bool,
        kind: RequestKind,
        /// (column name, format) of the RowDescription that applies.
        columns: Option<Vec<(String, i16)>>,
        copy: Option<CopyDirection>,
    },
    Session,
    Unexpected,
}

impl Got {
    fn id(&self) -> Option<u64> {
        match self {
            Self::Req { id, .. } => Some(*id),
            _ => None,
        }
    }

    fn completes(&self) -> bool {
        matches!(
            self,
            Self::Req {
                completes: true,
                ..
            }
        )
    }

    fn kind(&self) -> &RequestKind {
        match self {
            Self::Req { kind, .. } => kind,
            other => panic!("not a request: {other:?}"),
        }
    }

    fn columns(&self) -> Option<Vec<(String, i16)>> {
        match self {
            Self::Req { columns, .. } => columns.clone(),
            _ => None,
        }
    }

    fn copy(&self) -> Option<CopyDirection> {
        match self {
            Self::Req { copy, .. } => *copy,
            _ => None,
        }
    }
}

fn own(a: Attribution<'_>) -> Got {
    match a {
        Attribution::Request { request, completes } => Got::Req {
            id: request.id().0,
            completes,
            kind: request.kind().clone(),
            columns: request.row_description().map(|rd| {
                rd.fields
                    .iter()
                    .map(|f| (f.name.clone(), f.format))
                    .collect()
            }),
            copy: request.copy(),
        },
        Attribution::Session => Got::Session,
        Attribution::Unexpected => Got::Unexpected,
    }
}

struct Harness {
    t: SessionTracker,
    /// Feed server messages as raw frames (`on_backend_tag`).
    raw: bool,
}

impl Harness {
    fn new(raw: bool) -> Self {
        Self::with_limits(raw, TrackerLimits::default())
    }

    fn with_limits(raw: bool, limits: TrackerLimits) -> Self {
        Self {
            t: SessionTracker::new(limits),
            raw,
        }
    }

    /// Sends a client message that must be accepted.
    fn send(&mut self, msg: FrontendMessage) -> u64 {
        match self.t.on_frontend(&msg) {
            Ok(id) => id.0,
            Err(e) => panic!("{msg:?} refused: {e}"),
        }
    }

    fn recv(&mut self, msg: BackendMessage) -> Got {
        let got = if self.raw {
            let mut buf = BytesMut::new();
            msg.encode(&mut buf);
            own(self.t.on_backend_tag(buf[0], &buf[5..]))
        } else {
            own(self.t.on_backend(&msg))
        };
        assert!(self.t.pending() <= self.t.limits.max_pending);
        got
    }

    /// Receives `msg` and checks it answers request `id` (and whether it completes it).
    fn expect(&mut self, msg: BackendMessage, id: u64, completes: bool) -> Got {
        let name = msg.name();
        let got = self.recv(msg);
        assert_eq!(
            (got.id(), got.completes()),
            (Some(id), completes),
            "{name}: {got:?}"
        );
        got
    }
}

/// Runs a scenario with decoded messages, then with raw frames.
fn both(scenario: impl Fn(&mut Harness)) {
    for raw in [false, true] {
        scenario(&mut Harness::new(raw));
    }
}

fn cols(names: &[(&str, i16)]) -> Option<Vec<(String, i16)>> {
    Some(names.iter().map(|(n, f)| ((*n).to_owned(), *f)).collect())
}

// ------------------------------------------------------------------------------------------
// Simple query

#[test]
fn simple_query_attributes_every_message_to_its_statement() {
    both(|h| {
        let q = h.send(query("select 1"));
        assert_eq!(q, 1);
        let got = h.expect(row_description(&["a"]), q, false);
        assert_eq!(got.kind(), &RequestKind::Query { statement: 0 });
        assert_eq!(got.columns(), cols(&[("a", 0)]));
        let got = h.expect(data_row(), q, false);
        assert_eq!(got.columns(), cols(&[("a", 0)]));
        h.expect(complete("SELECT 1"), q, false);
        h.expect(ready(IDLE), q, true);
        assert_eq!(h.t.pending(), 0);
    });
}

#[test]
fn multi_statement_query_numbers_its_result_sets() {
    both(|h| {
        let q = h.send(query("select 1; select 2, 3; insert into t values (1)"));
        for msg in [row_description(&["a"]), data_row(), complete("SELECT 1")] {
            let got = h.expect(msg, q, false);
            assert_eq!(got.kind(), &RequestKind::Query { statement: 0 });
            assert_eq!(got.columns(), cols(&[("a", 0)]));
        }
        for msg in [
            row_description(&["b", "c"]),
            data_row(),
            data_row(),
            complete("SELECT 2"),
        ] {
            let got = h.expect(msg, q, false);
            assert_eq!(got.kind(), &RequestKind::Query { statement: 1 });
            assert_eq!(got.columns(), cols(&[("b", 0), ("c", 0)]));
        }
        let got = h.expect(complete("INSERT 0 1"), q, false);
        assert_eq!(got.kind(), &RequestKind::Query { statement: 2 });
        assert_eq!(got.columns(), None, "an INSERT has no columns");
        let got = h.expect(ready(IDLE), q, true);
        assert_eq!(got.kind(), &RequestKind::Query { statement: 2 });
    });
}

#[test]
fn error_in_the_second_statement_ends_the_query_at_ready() {
    both(|h| {
        let q = h.send(query("select 1; select x; select 3"));
        h.expect(row_description(&["a"]), q, false);
        h.expect(data_row(), q, false);
        h.expect(complete("SELECT 1"), q, false);
        let got = h.expect(error(), q, false);
        assert_eq!(got.kind(), &RequestKind::Query { statement: 1 });
        // Nothing but ReadyForQuery may follow.
        assert_eq!(h.recv(row_description(&["c"])), Got::Unexpected);
        assert_eq!(h.recv(data_row()), Got::Unexpected);
        h.expect(ready(IDLE), q, true);
        assert_eq!(h.t.pending(), 0);
    });
}

#[test]
fn empty_query_gets_empty_query_response_then_ready() {
    both(|h| {
        let q = h.send(query(""));
        let got = h.expect(BackendMessage::EmptyQueryResponse, q, false);
        assert_eq!(got.kind(), &RequestKind::Query { statement: 0 });
        h.expect(ready(IDLE), q, true);
    });
}

#[test]
fn pipelined_simple_queries_are_answered_in_order() {
    both(|h| {
        let q1 = h.send(query("select 1"));
        let q2 = h.send(query("select 2"));
        assert_eq!(h.t.pending(), 2);
        h.expect(row_description(&["a"]), q1, false);
        h.expect(complete("SELECT 0"), q1, false);
        h.expect(ready(IDLE), q1, true);
        let got = h.expect(row_description(&["b"]), q2, false);
        assert_eq!(got.columns(), cols(&[("b", 0)]));
        h.expect(data_row(), q2, false);
        h.expect(complete("SELECT 1"), q2, false);
        h.expect(ready(IDLE), q2, true);
    });
}

// ------------------------------------------------------------------------------------------
// Extended protocol

/// pgbench -M extended / libpq PQsendQueryParams: Parse, Bind, Describe(portal), Execute,
/// Sync, several batches in flight.
#[test]
fn pipelined_extended_protocol_like_pgbench() {
    both(|h| {
        let mut batches = Vec::new();
        for i in 0..3 {
            let sql = format!("select abalance, {i} from pgbench_accounts where aid = $1");
            batches.push([
                h.send(parse("", &sql, &[])),
                h.send(bind("", "", &[])),
                h.send(describe(P, "")),
                h.send(execute("", 0)),
                h.send(FrontendMessage::Sync),
            ]);
        }
        assert_eq!(h.t.pending(), 15);
        for [p, b, d, e, s] in batches {
            let got = h.expect(BackendMessage::ParseComplete, p, true);
            assert_eq!(
                got.kind(),
                &RequestKind::Parse {
                    name: Name::protocol("")
                }
            );
            let got = h.expect(BackendMessage::BindComplete, b, true);
            assert_eq!(
                got.kind(),
                &RequestKind::Bind {
                    portal: Name::protocol(""),
                    statement: Name::protocol("")
                }
            );
            let got = h.expect(row_description(&["abalance", "n"]), d, true);
            assert_eq!(
                got.kind(),
                &RequestKind::Describe {
                    target: P,
                    name: Name::protocol("")
                }
            );
            let got = h.expect(data_row(), e, false);
            assert_eq!(got.columns(), cols(&[("abalance", 0), ("n", 0)]));
            assert_eq!(
                got.kind(),
                &RequestKind::Execute {
                    portal: Name::protocol(""),
                    statement: Some(Name::protocol("")),
                    max_rows: 0
                }
            );
            h.expect(complete("SELECT 1"), e, true);
            let got = h.expect(ready(IDLE), s, true);
            assert_eq!(got.kind(), &RequestKind::Sync);
        }
        assert_eq!(h.t.pending(), 0);
        // The implicit transaction ended: the unnamed portal is gone, the statement stays.
        assert!(h.t.portal("").is_none());
        assert!(h.t.statement("").is_some());
    });
}

/// tokio-postgres: prepare = Parse + Describe(statement) + Sync; then each query is Bind +
/// Execute + Sync with no Describe: the rows still get the statement's columns, in the
/// formats Bind asked for.
#[test]
fn cached_statement_without_describe_keeps_its_row_description() {
    both(|h| {
        let sql = "select id, name from users where id = $1";
        let p = h.send(parse("s0", sql, &[0]));
        let d = h.send(describe(S, "s0"));
        let s = h.send(FrontendMessage::Sync);
        h.expect(BackendMessage::ParseComplete, p, true);
        h.expect(param_description(&[23]), d, false);
        h.expect(row_description(&["id", "name"]), d, true);
        h.expect(ready(IDLE), s, true);
        let st = h.t.statement("s0").expect("prepared");
        assert_eq!(st.sql(), sql);
        assert_eq!(st.param_types(), [23]);
        assert_eq!(st.row_description().map(|rd| rd.fields.len()), Some(2));

        for (formats, expected) in [
            (&[1][..], cols(&[("id", 1), ("name", 1)])),
            (&[0, 1][..], cols(&[("id", 0), ("name", 1)])),
            (&[][..], cols(&[("id", 0), ("name", 0)])),
        ] {
            let b = h.send(bind("", "s0", formats));
            let e = h.send(execute("", 0));
            let s = h.send(FrontendMessage::Sync);
            h.expect(BackendMessage::BindComplete, b, true);
            for _ in 0..3 {
                let got = h.expect(data_row(), e, false);
                assert_eq!(got.columns(), expected, "formats {formats:?}");
                assert_eq!(
                    got.kind(),
                    &RequestKind::Execute {
                        portal: Name::protocol(""),
                        statement: Some(Name::protocol("s0")),
                        max_rows: 0
                    }
                );
            }
            h.expect(complete("SELECT 3"), e, true);
            h.expect(ready(IDLE), s, true);
        }
    });
}

#[test]
fn execute_with_a_row_limit_suspends_then_resumes() {
    both(|h| {
        let b0 = h.send(query("BEGIN"));
        h.expect(complete("BEGIN"), b0, false);
        h.expect(ready(IN_TX), b0, true);

        let p = h.send(parse("", "select n from generate_series(1, 3) n", &[]));
        let b = h.send(bind("c1", "", &[]));
        let d = h.send(describe(P, "c1"));
        let e1 = h.send(execute("c1", 2));
        h.send(FrontendMessage::Flush);
        h.expect(BackendMessage::ParseComplete, p, true);
        h.expect(BackendMessage::BindComplete, b, true);
        h.expect(row_description(&["n"]), d, true);
        h.expect(data_row(), e1, false);
        h.expect(data_row(), e1, false);
        let got = h.expect(BackendMessage::PortalSuspended, e1, true);
        assert_eq!(
            got.kind(),
            &RequestKind::Execute {
                portal: Name::protocol("c1"),
                statement: Some(Name::protocol("")),
                max_rows: 2
            }
        );

        let e2 = h.send(execute("c1", 2));
        let s = h.send(FrontendMessage::Sync);
        let got = h.expect(data_row(), e2, false);
        assert_eq!(got.columns(), cols(&[("n", 0)]));
        h.expect(complete("SELECT 1"), e2, true);
        h.expect(ready(IN_TX), s, true);
        assert!(
            h.t.portal("c1").is_some(),
            "portals live until the transaction ends"
        );

        let c = h.send(query("COMMIT"));
        h.expect(complete("COMMIT"), c, false);
        h.expect(ready(IDLE), c, true);
        assert!(h.t.portal("c1").is_none());
    });
}

#[test]
fn error_mid_pipeline_drops_the_pending_requests_until_sync() {
    both(|h| {
        let p1 = h.send(parse("s1", "select 1", &[]));
        let b1 = h.send(bind("", "nope", &[]));
        let e1 = h.send(execute("", 0));
        let c1 = h.send(close(S, "s1"));
        let s1 = h.send(FrontendMessage::Sync);
        let p2 = h.send(parse("s2", "select 2", &[]));
        let b2 = h.send(bind("", "s2", &[]));
        let e2 = h.send(execute("", 0));
        let s2 = h.send(FrontendMessage::Sync);
        assert_eq!(h.t.pending(), 9);

        h.expect(BackendMessage::ParseComplete, p1, true);
        let got = h.expect(error(), b1, true);
        assert!(matches!(got.kind(), RequestKind::Bind { .. }));
        // Execute and Close were skipped by the server: the Sync is next.
        assert_eq!(h.t.pending(), 5);
        assert_eq!(h.t.front().map(Request::id), Some(RequestId(s1)));
        assert!(!h.t.discarding());
        h.expect(ready(IDLE), s1, true);
        let _ = (e1, c1);
        assert!(h.t.statement("s1").is_some(), "the Close was skipped");

        h.expect(BackendMessage::ParseComplete, p2, true);
        h.expect(BackendMessage::BindComplete, b2, true);
        h.expect(data_row(), e2, false);
        h.expect(complete("SELECT 1"), e2, true);
        h.expect(ready(IDLE), s2, true);
        assert_eq!(h.t.pending(), 0);
    });
}

#[test]
fn failed_parse_never_enters_the_table_and_drops_the_unnamed_statement() {
    both(|h| {
        let p = h.send(parse("", "select 1", &[]));
        let s = h.send(FrontendMessage::Sync);
        h.expect(BackendMessage::ParseComplete, p, true);
        h.expect(ready(IDLE), s, true);
        assert!(h.t.statement("").is_some());

        let p1 = h.send(parse("s1", "selec 1", &[]));
        let p2 = h.send(parse("", "selec 2", &[]));
        let s = h.send(FrontendMessage::Sync);
        h.expect(error(), p1, true);
        assert_eq!(h.t.pending(), 1, "the second Parse is skipped");
        h.expect(ready(IDLE), s, true);
        assert!(h.t.statement("s1").is_none());
        assert!(
            h.t.statement("").is_some(),
            "the skipped Parse replaced nothing"
        );
        let _ = p2;

        let p3 = h.send(parse("", "selec 3", &[]));
        let s = h.send(FrontendMessage::Sync);
        h.expect(error(), p3, true);
        h.expect(ready(IDLE), s, true);
        assert!(
            h.t.statement("").is_none(),
            "a failed unnamed Parse drops the old one"
        );
        assert_eq!(h.t.metadata_bytes(), 0);
    });
}

#[test]
fn error_before_the_sync_is_sent_discards_until_sync() {
    both(|h| {
        let p = h.send(parse("", "selec", &[]));
        h.send(FrontendMessage::Flush);
        h.expect(error(), p, true);
        assert!(h.t.discarding());
        // The server skips these: they get ids but no queue entry.
        let b = h.send(bind("", "", &[]));
        let e = h.send(execute("", 0));
        let q = h.send(query("select 1"));
        assert!(p < b && b < e && e < q);
        assert_eq!(h.t.pending(), 0);
        let s = h.send(FrontendMessage::Sync);
        assert!(!h.t.discarding());
        h.expect(ready(IDLE), s, true);
        let q = h.send(query("select 1"));
        h.expect(complete("SELECT 0"), q, false);
        h.expect(ready(IDLE), q, true);
    });
}

#[test]
fn describe_statement_with_no_rows_records_no_data() {
    both(|h| {
        let p = h.send(parse("ins", "insert into t values ($1)", &[23]));
        let d = h.send(describe(S, "ins"));
        let b = h.send(bind("", "ins", &[]));
        let e = h.send(execute("", 0));
        let s = h.send(FrontendMessage::Sync);
        h.expect(BackendMessage::ParseComplete, p, true);
        h.expect(param_description(&[23]), d, false);
        h.expect(BackendMessage::NoData, d, true);
        h.expect(BackendMessage::BindComplete, b, true);
        let got = h.expect(complete("INSERT 0 1"), e, true);
        assert_eq!(got.columns(), None);
        h.expect(ready(IDLE), s, true);
        assert_eq!(
            h.t.statement("ins").map(|s| s.described().clone()),
            Some(Described::NoData)
        );
    });
}

#[test]
fn describe_after_bind_still_applies_to_the_portal() {
    both(|h| {
        let p = h.send(parse("s", "select 1 as a", &[]));
        let b = h.send(bind("", "s", &[1]));
        let d = h.send(describe(S, "s"));
        let e = h.send(execute("", 0));
        let s = h.send(FrontendMessage::Sync);
        h.expect(BackendMessage::ParseComplete, p, true);
        h.expect(BackendMessage::BindComplete, b, true);
        h.expect(param_description(&[]), d, false);
        h.expect(row_description(&["a"]), d, true);
        let got = h.expect(data_row(), e, false);
        assert_eq!(got.columns(), cols(&[("a", 1)]));
        h.expect(complete("SELECT 1"), e, true);
        h.expect(ready(IDLE), s, true);
    });
}

/// A portal runs the statement it was bound to: when the unnamed statement is replaced, the
/// new statement's description must not be applied to the old portal's rows.
#[test]
fn replaced_statement_description_is_not_applied_to_an_older_portal() {
    both(|h| {
        let p = h.send(parse("", "select ssn from people", &[]));
        let d = h.send(describe(S, ""));
        let b = h.send(bind("p1", "", &[]));
        let p2 = h.send(parse("", "select 1 as harmless", &[]));
        let d2 = h.send(describe(S, ""));
        let e = h.send(execute("p1", 0));
        let s = h.send(FrontendMessage::Sync);
        h.expect(BackendMessage::ParseComplete, p, true);
        h.expect(param_description(&[]), d, false);
        h.expect(row_description(&["ssn"]), d, true);
        h.expect(BackendMessage::BindComplete, b, true);
        h.expect(BackendMessage::ParseComplete, p2, true);
        h.expect(param_description(&[]), d2, false);
        h.expect(row_description(&["harmless"]), d2, true);
        let got = h.expect(data_row(), e, false);
        assert_eq!(got.columns(), None, "unknown, never the new statement's");
        h.expect(complete("SELECT 1"), e, true);
        h.expect(ready(IDLE), s, true);
    });
}

#[test]
fn a_portal_executed_in_steps_derives_its_description_once() {
    both(|h| {
        let p = h.send(parse("s", "select a, b from t", &[]));
        let d = h.send(describe(S, "s"));
        let s = h.send(FrontendMessage::Sync);
        h.expect(BackendMessage::ParseComplete, p, true);
        h.expect(param_description(&[]), d, false);
        h.expect(row_description(&["a", "b"]), d, true);
        h.expect(ready(IDLE), s, true);
        let tx = h.send(query("BEGIN"));
        h.expect(complete("BEGIN"), tx, false);
        h.expect(ready(IN_TX), tx, true);

        let b = h.send(bind("p", "s", &[1]));
        h.expect(BackendMessage::BindComplete, b, true);
        let mut seen = Vec::new();
        for _ in 0..3 {
            let e = h.send(execute("p", 1));
            h.expect(data_row(), e, false);
            if let Some(Described::Rows(rd)) = h.t.front().map(Request::result) {
                seen.push(Arc::clone(rd));
            }
            let got = h.expect(BackendMessage::PortalSuspended, e, true);
            assert_eq!(got.columns(), cols(&[("a", 1), ("b", 1)]));
        }
        let portal = h.t.portal("p").expect("bound");
        assert_eq!(portal.described(), &Described::Unknown, "never described");
        let cached = portal.derived.as_ref().expect("derived once");
        assert_eq!(seen.len(), 3);
        assert!(
            seen.iter().all(|rd| Arc::ptr_eq(rd, cached)),
            "shared, not copied"
        );
    });
}

#[test]
fn portal_formats_follow_bind_rules() {
    both(|h| {
        let p = h.send(parse("s", "select 1, 2, 3", &[]));
        let d = h.send(describe(S, "s"));
        let s = h.send(FrontendMessage::Sync);
        h.expect(BackendMessage::ParseComplete, p, true);
        h.expect(param_description(&[]), d, false);
        h.expect(row_description(&["a", "b", "c"]), d, true);
        h.expect(ready(IDLE), s, true);

        let tx = h.send(query("BEGIN"));
        h.expect(complete("BEGIN"), tx, false);
        h.expect(ready(IN_TX), tx, true);
        for (portal, codes) in [
            ("none", &[][..]),
            ("one", &[1][..]),
            ("each", &[0, 1, 1][..]),
        ] {
            let b = h.send(bind(portal, "s", codes));
            let s = h.send(FrontendMessage::Sync);
            h.expect(BackendMessage::BindComplete, b, true);
            h.expect(ready(IN_TX), s, true);
        }
        let formats = |name: &str| {
            let portal = h.t.portal(name).expect("bound");
            assert_eq!(portal.statement(), Some(&Name::protocol("s")));
            (0..3).map(|i| portal.result_format(i)).collect::<Vec<_>>()
        };
        assert_eq!(formats("none"), [0, 0, 0]);
        assert_eq!(formats("one"), [1, 1, 1]);
        assert_eq!(formats("each"), [0, 1, 1]);
        let derived = h.t.portal_row_description("each").expect("derived");
        let derived: Vec<i16> = derived.fields.iter().map(|f| f.format).collect();
        assert_eq!(derived, [0, 1, 1]);
        // All text: the statement's description is shared, not copied.
        let shared = h.t.portal_row_description("none").expect("derived");
        let Some(Described::Rows(statement_rd)) = h.t.statement("s").map(|s| s.described()) else {
            panic!("described");
        };
        assert!(Arc::ptr_eq(&shared, statement_rd));
    });
}

#[test]
fn result_formats_are_compact_and_safe() {
    let f = ResultFormats::from_codes(&[0, 1, 2, 0]);
    assert_eq!(
        (0..4).map(|i| f.format(i)).collect::<Vec<_>>(),
        [0, 1, 1, 0]
    );
    assert_eq!(f.format(4), 1, "beyond the codes: never assumed text");
    assert!(!f.all_text());
    assert!(ResultFormats::from_codes(&[0, 0]).all_text());
    assert!(ResultFormats::from_codes(&[]).all_text());
    let excess = ResultFormats::from_codes(&vec![0; MAX_RESULT_COLUMNS + 1]);
    assert_eq!(excess.format(0), 1);
    assert_eq!(format!("{f:?}"), "[0, 1, 1, 0]");
}

// ------------------------------------------------------------------------------------------
// COPY

#[test]
fn copy_in_from_a_simple_query() {
    both(|h| {
        let q = h.send(query("copy t from stdin"));
        let got = h.expect(copy_response(CopyDirection::In), q, false);
        assert_eq!(got.copy(), Some(CopyDirection::In));
        assert!(h.t.copy_in_progress());
        assert_eq!(h.send(copy_data()), q);
        assert_eq!(h.send(copy_data()), q);
        assert_eq!(h.send(FrontendMessage::Flush), q);
        assert_eq!(h.send(FrontendMessage::CopyDone), q);
        assert!(!h.t.copy_in_progress());
        let got = h.expect(complete("COPY 2"), q, false);
        assert_eq!(got.copy(), None);
        h.expect(ready(IDLE), q, true);
        assert_eq!(
            h.t.on_frontend(&copy_data()),
            Err(ClientViolation::CopyOutsideCopy {
                message: "CopyData"
            })
        );
    });
}

#[test]
fn copy_fail_gets_an_error_then_ready() {
    both(|h| {
        let q = h.send(query("copy t from stdin"));
        h.expect(copy_response(CopyDirection::In), q, false);
        h.send(copy_data());
        let fail = FrontendMessage::CopyFail(CopyFail {
            message: "client gave up".into(),
        });
        assert_eq!(h.send(fail), q);
        assert!(!h.t.copy_in_progress());
        h.expect(error(), q, false);
        h.expect(ready(IDLE), q, true);
    });
}

/// The server fails the COPY (bad row) while the client is still sending: the client may go
/// on until its CopyDone, which the server ignores.
#[test]
fn copy_in_error_lets_the_client_finish_its_side() {
    both(|h| {
        let q = h.send(query("copy t from stdin"));
        h.expect(copy_response(CopyDirection::In), q, false);
        h.send(copy_data());
        h.expect(error(), q, false);
        h.expect(ready(IDLE), q, true);
        assert_eq!(h.send(copy_data()), q);
        assert_eq!(h.send(FrontendMessage::CopyDone), q);
        let q2 = h.send(query("select 1"));
        h.expect(complete("SELECT 0"), q2, false);
        h.expect(ready(IDLE), q2, true);
    });
}

/// tokio-postgres / libpq (extended): Parse, Bind, Execute, Sync in one write; the server
/// ignores that Sync during COPY; the client sends CopyDone and another Sync.
#[test]
fn copy_in_through_the_extended_protocol_ignores_the_early_sync() {
    both(|h| {
        let p = h.send(parse("", "copy t from stdin", &[]));
        let b = h.send(bind("", "", &[]));
        let e = h.send(execute("", 0));
        let early = h.send(FrontendMessage::Sync);
        h.expect(BackendMessage::ParseComplete, p, true);
        h.expect(BackendMessage::BindComplete, b, true);
        let got = h.expect(copy_response(CopyDirection::In), e, false);
        assert_eq!(got.copy(), Some(CopyDirection::In));
        assert_eq!(h.t.pending(), 1, "the early Sync is consumed by the COPY");
        let _ = early;
        assert_eq!(h.send(copy_data()), e);
        assert_eq!(h.send(FrontendMessage::Sync), e, "ignored during COPY");
        assert_eq!(h.t.pending(), 1);
        h.send(FrontendMessage::CopyDone);
        let s = h.send(FrontendMessage::Sync);
        assert_eq!(h.t.pending(), 2);
        h.expect(complete("COPY 1"), e, true);
        h.expect(ready(IDLE), s, true);
        assert_eq!(h.t.pending(), 0);
    });
}

#[test]
fn copy_out_data_belongs_to_the_query() {
    both(|h| {
        let q = h.send(query("copy t to stdout"));
        let got = h.expect(copy_response(CopyDirection::Out), q, false);
        assert_eq!(got.copy(), Some(CopyDirection::Out));
        assert!(!h.t.copy_in_progress());
        for _ in 0..3 {
            let got = h.expect(server_copy_data(), q, false);
            assert_eq!(got.copy(), Some(CopyDirection::Out));
        }
        h.expect(BackendMessage::CopyDone, q, false);
        h.expect(complete("COPY 3"), q, false);
        assert_eq!(h.recv(server_copy_data()), Got::Unexpected);
        h.expect(ready(IDLE), q, true);
    });
}

#[test]
fn copy_out_through_execute_completes_at_command_complete() {
    both(|h| {
        let p = h.send(parse("", "copy t to stdout", &[]));
        let b = h.send(bind("", "", &[]));
        let e = h.send(execute("", 0));
        let s = h.send(FrontendMessage::Sync);
        h.expect(BackendMessage::ParseComplete, p, true);
        h.expect(BackendMessage::BindComplete, b, true);
        h.expect(copy_response(CopyDirection::Out), e, false);
        h.expect(server_copy_data(), e, false);
        h.expect(BackendMessage::CopyDone, e, false);
        h.expect(complete("COPY 1"), e, true);
        h.expect(ready(IDLE), s, true);
    });
}

#[test]
fn copy_both_is_tracked_for_replication() {
    both(|h| {
        let q = h.send(query("START_REPLICATION SLOT s LOGICAL 0/0"));
        let got = h.expect(copy_response(CopyDirection::Both), q, false);
        assert_eq!(got.copy(), Some(CopyDirection::Both));
        assert!(h.t.copy_in_progress());
        h.expect(server_copy_data(), q, false);
        assert_eq!(h.send(copy_data()), q);
        assert_eq!(h.send(FrontendMessage::CopyDone), q);
        h.expect(BackendMessage::CopyDone, q, false);
        h.expect(complete("COPY 0"), q, false);
        h.expect(ready(IDLE), q, true);
    });
}

// ------------------------------------------------------------------------------------------
// Function calls, asynchronous messages, transaction status

#[test]
fn function_call_gets_its_result_then_ready() {
    both(|h| {
        let call = FrontendMessage::FunctionCall(FunctionCall {
            oid: 1598,
            arg_formats: vec![],
            args: vec![],
            result_format: 0,
        });
        let f = h.send(call.clone());
        let got = h.expect(
            BackendMessage::FunctionCallResponse(FunctionCallResponse {
                result: Some(Bytes::from_static(b"0.5")),
            }),
            f,
            false,
        );
        assert_eq!(got.kind(), &RequestKind::FunctionCall { oid: 1598 });
        h.expect(ready(IDLE), f, true);

        let f = h.send(call);
        h.expect(error(), f, false);
        h.expect(ready(IDLE), f, true);
    });
}

#[test]
fn notices_notifications_and_parameter_status_belong_to_the_session() {
    both(|h| {
        assert_eq!(
            h.recv(ready(IDLE)),
            Got::Session,
            "the login's ReadyForQuery"
        );
        let notification = || {
            BackendMessage::NotificationResponse(NotificationResponse {
                process_id: 7,
                channel: "jobs".into(),
                payload: "done".into(),
            })
        };
        let status = || {
            BackendMessage::ParameterStatus(ParameterStatus {
                name: "application_name".into(),
                value: "x".into(),
            })
        };
        assert_eq!(h.recv(notification()), Got::Session);
        let q = h.send(query("listen jobs; select pg_notify('jobs', 'x')"));
        h.expect(complete("LISTEN"), q, false);
        assert_eq!(h.recv(notice()), Got::Session);
        h.expect(row_description(&["pg_notify"]), q, false);
        assert_eq!(h.recv(status()), Got::Session);
        h.expect(data_row(), q, false);
        h.expect(complete("SELECT 1"), q, false);
        assert_eq!(h.recv(notification()), Got::Session);
        h.expect(ready(IDLE), q, true);
        // An error while nothing is pending: an administrator's shutdown.
        assert_eq!(h.recv(error()), Got::Session);
    });
}

#[test]
fn transaction_status_follows_ready_for_query() {
    both(|h| {
        assert_eq!(h.t.transaction_status(), IDLE);
        let q = h.send(query("BEGIN"));
        h.expect(complete("BEGIN"), q, false);
        h.expect(ready(IN_TX), q, true);
        assert_eq!(h.t.transaction_status(), IN_TX);

        let q = h.send(query("select x"));
        h.expect(error(), q, false);
        h.expect(ready(FAILED), q, true);
        assert_eq!(h.t.transaction_status(), FAILED);

        let q = h.send(query("ROLLBACK"));
        h.expect(complete("ROLLBACK"), q, false);
        h.expect(ready(IDLE), q, true);
        assert_eq!(h.t.transaction_status(), IDLE);
    });
}

// ------------------------------------------------------------------------------------------
// Statement and portal tables

/// Prepares `names` (Parse + Describe(statement) each, one Sync).
fn prepare(h: &mut Harness, names: &[&str]) {
    let mut ids = Vec::new();
    for name in names {
        ids.push((
            h.send(parse(name, "select 1 as a", &[])),
            h.send(describe(S, name)),
        ));
    }
    let s = h.send(FrontendMessage::Sync);
    for (p, d) in ids {
        h.expect(BackendMessage::ParseComplete, p, true);
        h.expect(param_description(&[]), d, false);
        h.expect(row_description(&["a"]), d, true);
    }
    h.expect(ready(IDLE), s, true);
}

#[test]
fn close_evicts_statements_and_portals() {
    both(|h| {
        prepare(h, &["s1", "s2"]);
        let q = h.send(query("BEGIN"));
        h.expect(complete("BEGIN"), q, false);
        h.expect(ready(IN_TX), q, true);
        let b = h.send(bind("p1", "s1", &[]));
        let c1 = h.send(close(S, "s1"));
        let c2 = h.send(close(P, "p1"));
        let c3 = h.send(close(S, "never-prepared"));
        let s = h.send(FrontendMessage::Sync);
        h.expect(BackendMessage::BindComplete, b, true);
        assert!(h.t.portal("p1").is_some());
        let got = h.expect(BackendMessage::CloseComplete, c1, true);
        assert_eq!(
            got.kind(),
            &RequestKind::Close {
                target: S,
                name: Name::protocol("s1")
            }
        );
        assert!(h.t.statement("s1").is_none());
        h.expect(BackendMessage::CloseComplete, c2, true);
        assert!(h.t.portal("p1").is_none());
        h.expect(BackendMessage::CloseComplete, c3, true);
        h.expect(ready(IN_TX), s, true);
        assert!(h.t.statement("s2").is_some());
        assert_eq!(h.t.statement_count(), 1);
    });
}

#[test]
fn sql_deallocate_evicts_the_named_statement() {
    both(|h| {
        prepare(h, &["s1", "S2", "s3"]);
        let q = h.send(query("select 1; DEALLOCATE s1; deallocate prepare \"S2\""));
        h.expect(complete("SELECT 1"), q, false);
        h.expect(complete("DEALLOCATE"), q, false);
        assert!(h.t.statement("s1").is_none());
        assert!(h.t.statement("S2").is_some());
        h.expect(complete("DEALLOCATE"), q, false);
        assert!(h.t.statement("S2").is_none());
        h.expect(ready(IDLE), q, true);
        assert!(h.t.statement("s3").is_some());
        assert_eq!(h.t.statement_count(), 1);
    });
}

#[test]
fn deallocate_all_and_discard_all_evict_everything() {
    both(|h| {
        prepare(h, &["s1", "s2"]);
        let q = h.send(query("DEALLOCATE ALL"));
        h.expect(complete("DEALLOCATE ALL"), q, false);
        h.expect(ready(IDLE), q, true);
        assert_eq!(h.t.statement_count(), 0);
        assert_eq!(h.t.metadata_bytes(), 0);

        prepare(h, &["s1", "s2"]);
        let q = h.send(query("DISCARD ALL"));
        h.expect(complete("DISCARD ALL"), q, false);
        h.expect(ready(IDLE), q, true);
        assert_eq!(h.t.statement_count(), 0);
        assert_eq!(h.t.metadata_bytes(), 0);
    });
}

#[test]
fn deallocate_of_an_unreadable_name_forgets_every_statement() {
    both(|h| {
        prepare(h, &["s1", "s2"]);
        let q = h.send(query(r#"DEALLOCATE U&"\0073\0031""#));
        h.expect(complete("DEALLOCATE"), q, false);
        h.expect(ready(IDLE), q, true);
        assert_eq!(h.t.statement_count(), 0, "fail closed");
    });
}

#[test]
fn deallocate_through_the_extended_protocol_reads_the_statement_text() {
    both(|h| {
        prepare(h, &["s1", "s2"]);
        let p = h.send(parse("", "DEALLOCATE s2", &[]));
        let b = h.send(bind("", "", &[]));
        let e = h.send(execute("", 0));
        let s = h.send(FrontendMessage::Sync);
        h.expect(BackendMessage::ParseComplete, p, true);
        h.expect(BackendMessage::BindComplete, b, true);
        h.expect(complete("DEALLOCATE"), e, true);
        h.expect(ready(IDLE), s, true);
        assert!(h.t.statement("s2").is_none());
        assert!(h.t.statement("s1").is_some());
    });
}

#[test]
fn sql_cursors_evict_stale_portals() {
    both(|h| {
        prepare(h, &["s1"]);
        let q = h.send(query("BEGIN"));
        h.expect(complete("BEGIN"), q, false);
        h.expect(ready(IN_TX), q, true);
        for portal in ["c", "d"] {
            let b = h.send(bind(portal, "s1", &[]));
            let s = h.send(FrontendMessage::Sync);
            h.expect(BackendMessage::BindComplete, b, true);
            h.expect(ready(IN_TX), s, true);
        }
        let q = h.send(query(
            "CLOSE c; DECLARE c CURSOR FOR SELECT ssn FROM people",
        ));
        h.expect(complete("CLOSE CURSOR"), q, false);
        assert!(h.t.portal("c").is_none());
        h.expect(complete("DECLARE CURSOR"), q, false);
        h.expect(ready(IN_TX), q, true);
        assert!(
            h.t.portal("c").is_none(),
            "a SQL cursor is not the bound portal"
        );
        assert!(h.t.portal("d").is_some());

        let q = h.send(query("CLOSE ALL"));
        h.expect(complete("CLOSE CURSOR ALL"), q, false);
        h.expect(ready(IN_TX), q, true);
        assert_eq!(h.t.portal_count(), 0);
    });
}

#[test]
fn unnamed_statement_is_replaced_by_parse_and_dropped_by_a_simple_query() {
    both(|h| {
        let p = h.send(parse("", "select 1", &[]));
        let s = h.send(FrontendMessage::Sync);
        h.expect(BackendMessage::ParseComplete, p, true);
        h.expect(ready(IDLE), s, true);
        let first = h.t.statement("").map(PreparedStatement::parsed_by);
        assert_eq!(first, Some(RequestId(p)));

        let p2 = h.send(parse("", "select 2", &[]));
        let s = h.send(FrontendMessage::Sync);
        h.expect(BackendMessage::ParseComplete, p2, true);
        h.expect(ready(IDLE), s, true);
        assert_eq!(h.t.statement("").map(|s| s.sql()), Some("select 2"));
        assert_eq!(h.t.statement_count(), 1);

        let q = h.send(query("select 3"));
        h.expect(complete("SELECT 0"), q, false);
        assert!(h.t.statement("").is_none());
        h.expect(ready(IDLE), q, true);
    });
}

#[test]
fn names_are_keyed_like_the_server_keys_them() {
    both(|h| {
        let base = "n".repeat(NAME_KEY_LEN);
        let p = h.send(parse(&format!("{base}_first"), "select 1", &[]));
        let s = h.send(FrontendMessage::Sync);
        h.expect(BackendMessage::ParseComplete, p, true);
        h.expect(ready(IDLE), s, true);
        // Any name with the same first 63 bytes is the same statement to the server.
        assert!(h.t.statement(&format!("{base}_second")).is_some());
        assert!(h.t.statement(&base).is_some());
        let c = h.send(close(S, &format!("{base}_third")));
        let s = h.send(FrontendMessage::Sync);
        h.expect(BackendMessage::CloseComplete, c, true);
        h.expect(ready(IDLE), s, true);
        assert_eq!(h.t.statement_count(), 0);
    });
}

#[test]
fn describe_of_an_unbound_portal_keeps_its_description() {
    both(|h| {
        let q = h.send(query("BEGIN; DECLARE cur CURSOR FOR SELECT 1 AS a"));
        h.expect(complete("BEGIN"), q, false);
        h.expect(complete("DECLARE CURSOR"), q, false);
        h.expect(ready(IN_TX), q, true);
        let d = h.send(describe(P, "cur"));
        let e = h.send(execute("cur", 10));
        let s = h.send(FrontendMessage::Sync);
        h.expect(row_description(&["a"]), d, true);
        let got = h.expect(data_row(), e, false);
        assert_eq!(got.columns(), cols(&[("a", 0)]));
        let got = h.expect(complete("FETCH 1"), e, true);
        assert_eq!(
            got.kind(),
            &RequestKind::Execute {
                portal: Name::protocol("cur"),
                statement: None,
                max_rows: 10
            }
        );
        h.expect(ready(IN_TX), s, true);
    });
}

// ------------------------------------------------------------------------------------------
// Client violations and limits

#[test]
fn copy_messages_outside_copy_are_client_violations() {
    let mut t = SessionTracker::default();
    for msg in [
        copy_data(),
        FrontendMessage::CopyDone,
        FrontendMessage::CopyFail(CopyFail {
            message: "x".into(),
        }),
    ] {
        let err = t.on_frontend(&msg).unwrap_err();
        assert_eq!(
            err,
            ClientViolation::CopyOutsideCopy {
                message: msg.name()
            }
        );
        assert_eq!(err.sqlstate(), "08P01");
    }
    // A COPY may start while a query is pending: data sent ahead is tolerated.
    t.on_frontend(&query("copy t from stdin")).unwrap();
    assert!(t.on_frontend(&copy_data()).is_ok());
}

#[test]
fn other_requests_during_copy_in_are_client_violations() {
    both(|h| {
        let q = h.send(query("copy t from stdin"));
        h.expect(copy_response(CopyDirection::In), q, false);
        for msg in [
            query("select 1"),
            parse("", "select 1", &[]),
            execute("", 0),
        ] {
            assert_eq!(
                h.t.on_frontend(&msg),
                Err(ClientViolation::MessageDuringCopy {
                    message: msg.name()
                })
            );
        }
        assert_eq!(h.t.pending(), 1, "refused messages are not recorded");
        h.send(FrontendMessage::CopyDone);
        h.expect(complete("COPY 0"), q, false);
        h.expect(ready(IDLE), q, true);
    });
}

#[test]
fn requests_sent_before_copy_in_response_are_consumed_by_the_copy() {
    both(|h| {
        let q = h.send(query("copy t from stdin"));
        let q2 = h.send(query("select 1"));
        // The server reads the second Query as COPY data and fails the COPY: it never runs.
        h.expect(copy_response(CopyDirection::In), q, false);
        assert!(!h.t.copy_in_progress());
        assert_eq!(h.t.pending(), 1);
        let _ = q2;
        h.expect(error(), q, false);
        h.expect(ready(IDLE), q, true);
        assert_eq!(h.t.pending(), 0);
    });
}

#[test]
fn messages_after_terminate_and_password_messages_are_violations() {
    let mut t = SessionTracker::default();
    assert_eq!(
        t.on_frontend(&FrontendMessage::PasswordMessage(
            PasswordMessage::from_password("x")
        )),
        Err(ClientViolation::UnexpectedPassword)
    );
    assert!(t.on_frontend(&FrontendMessage::Terminate).is_ok());
    assert_eq!(
        t.on_frontend(&query("select 1")),
        Err(ClientViolation::AfterTerminate { message: "Query" })
    );
}

#[test]
fn pipeline_depth_is_limited() {
    let mut t = SessionTracker::new(TrackerLimits {
        max_pending: 3,
        ..TrackerLimits::default()
    });
    for _ in 0..3 {
        t.on_frontend(&FrontendMessage::Sync).unwrap();
    }
    let err = t.on_frontend(&FrontendMessage::Sync).unwrap_err();
    assert_eq!(err, ClientViolation::PipelineTooDeep { limit: 3 });
    assert_eq!(err.sqlstate(), "54000");
    assert_eq!(
        t.on_frontend(&query("select 1")),
        Err(ClientViolation::PipelineTooDeep { limit: 3 })
    );
    assert_eq!(t.pending(), 3);
    // Flush never queues anything.
    assert!(t.on_frontend(&FrontendMessage::Flush).is_ok());
    t.on_backend(&ready(IDLE));
    assert!(t.on_frontend(&FrontendMessage::Sync).is_ok());
}

#[test]
fn statement_and_portal_counts_are_limited() {
    let limits = TrackerLimits {
        max_statements: 2,
        max_portals: 1,
        ..TrackerLimits::default()
    };
    for raw in [false, true] {
        let mut h = Harness::with_limits(raw, limits);
        prepare(&mut h, &["s1"]);
        h.send(parse("s2", "select 2", &[]));
        // Counted while pending.
        assert_eq!(
            h.t.on_frontend(&parse("s3", "select 3", &[])),
            Err(ClientViolation::TooManyStatements { limit: 2 })
        );
        // Re-preparing a known name, or the unnamed statement, is not a new entry.
        h.send(parse("s1", "select 1", &[]));
        h.send(parse("", "select 0", &[]));
        h.send(bind("p1", "s1", &[]));
        assert_eq!(
            h.t.on_frontend(&bind("p2", "s1", &[])),
            Err(ClientViolation::TooManyPortals { limit: 1 })
        );
        h.send(bind("", "s1", &[]));
    }
}

#[test]
fn statement_memory_is_limited() {
    let mut t = SessionTracker::new(TrackerLimits {
        max_metadata_bytes: 10_000,
        ..TrackerLimits::default()
    });
    let big = "x".repeat(6_000);
    t.on_frontend(&parse("a", &big, &[])).unwrap();
    assert_eq!(
        t.on_frontend(&parse("b", &big, &[])),
        Err(ClientViolation::StatementMemory { limit: 10_000 })
    );
    // A description that does not fit is dropped, and counted.
    t.on_frontend(&describe(S, "a")).unwrap();
    t.on_backend(&BackendMessage::ParseComplete);
    t.on_backend(&param_description(&[]));
    let wide: Vec<String> = (0..100).map(|i| format!("column_{i:03}")).collect();
    let wide: Vec<&str> = wide.iter().map(String::as_str).collect();
    t.on_backend(&row_description(&wide));
    assert_eq!(t.dropped_descriptions(), 1);
    assert_eq!(
        t.statement("a").map(|s| s.described().clone()),
        Some(Described::Unknown)
    );
    assert!(t.metadata_bytes() <= 10_000);
}

// ------------------------------------------------------------------------------------------
// Robustness

#[test]
fn unexpected_server_messages_do_not_panic() {
    both(|h| {
        for msg in [
            BackendMessage::ParseComplete,
            BackendMessage::BindComplete,
            BackendMessage::CloseComplete,
            BackendMessage::NoData,
            BackendMessage::PortalSuspended,
            BackendMessage::EmptyQueryResponse,
            BackendMessage::CopyDone,
            data_row(),
            server_copy_data(),
            complete("SELECT 1"),
            row_description(&["a"]),
            param_description(&[23]),
            copy_response(CopyDirection::In),
            BackendMessage::FunctionCallResponse(FunctionCallResponse { result: None }),
        ] {
            assert_eq!(h.recv(msg), Got::Unexpected);
        }
        let q = h.send(query("select 1"));
        // The wrong completion for a Query.
        assert_eq!(h.recv(BackendMessage::ParseComplete), Got::Unexpected);
        assert_eq!(h.recv(BackendMessage::PortalSuspended), Got::Unexpected);
        h.expect(row_description(&["a"]), q, false);
        h.expect(complete("SELECT 0"), q, false);
        h.expect(ready(IDLE), q, true);
        // A ReadyForQuery nobody asked for.
        let p = h.send(parse("", "select 1", &[]));
        assert_eq!(h.recv(ready(IDLE)), Got::Unexpected);
        h.expect(BackendMessage::ParseComplete, p, true);
    });
}

#[test]
fn ready_for_query_resynchronizes_after_missing_answers() {
    both(|h| {
        let p = h.send(parse("", "select 1", &[]));
        let b = h.send(bind("", "", &[]));
        let s = h.send(FrontendMessage::Sync);
        let q = h.send(query("select 2"));
        // The server's answers to Parse and Bind went missing (e.g. swallowed by a peer).
        let _ = (p, b);
        h.expect(ready(IDLE), s, true);
        assert_eq!(h.t.pending(), 1);
        h.expect(complete("SELECT 0"), q, false);
        h.expect(ready(IDLE), q, true);
    });
}

#[test]
fn raw_frames_with_bad_bodies_do_not_panic() {
    let mut t = SessionTracker::default();
    let q = t.on_frontend(&query("select 1")).unwrap();
    // An undecodable RowDescription: attributed, columns unknown.
    let a = t.on_backend_tag(b'T', b"\x00\x01garbage");
    assert_eq!(a.id(), Some(q));
    assert_eq!(a.row_description(), None);
    let a = t.on_backend_tag(b'D', b"");
    assert_eq!((a.id(), a.row_description()), (Some(q), None));
    assert_eq!(t.on_backend_tag(b'C', b"no terminator").id(), Some(q));
    assert_eq!(t.on_backend_tag(b'Z', b"X"), Attribution::Unexpected);
    assert_eq!(t.on_backend_tag(b'Z', b""), Attribution::Unexpected);
    assert_eq!(
        t.on_backend_tag(b'S', b"\xff\0\xff\0"),
        Attribution::Session
    );
    assert_eq!(t.on_backend_tag(b'?', b""), Attribution::Unexpected);
    assert_eq!(t.on_backend_tag(b'Z', b"I").id(), Some(q));
}

#[test]
fn standard_conforming_strings_is_followed() {
    for (setting, survivors) in [("off", 1), ("on", 0)] {
        let mut t = SessionTracker::default();
        t.on_backend(&BackendMessage::ParameterStatus(ParameterStatus {
            name: "standard_conforming_strings".into(),
            value: setting.into(),
        }));
        prepare_in(&mut t, "x");
        prepare_in(&mut t, "y");
        // Read with backslash escapes, the literal ends before DEALLOCATE x; read without,
        // the name cannot be found and every statement is forgotten (never a wrong one).
        let q = t
            .on_frontend(&query(r"select 'it\'s'; DEALLOCATE x"))
            .unwrap();
        assert_eq!(t.on_backend(&complete("SELECT 1")).id(), Some(q));
        assert_eq!(t.on_backend(&complete("DEALLOCATE")).id(), Some(q));
        assert_eq!(
            t.statement_count(),
            survivors,
            "standard_conforming_strings={setting}"
        );
        assert_eq!(t.statement("y").is_some(), survivors == 1);
    }
}

fn prepare_in(t: &mut SessionTracker, name: &str) {
    t.on_frontend(&parse(name, "select 1", &[])).unwrap();
    t.on_frontend(&FrontendMessage::Sync).unwrap();
    t.on_backend(&BackendMessage::ParseComplete);
    t.on_backend(&ready(IDLE));
}

#[test]
fn debug_output_hides_sql_text() {
    let mut t = SessionTracker::default();
    prepare_in(&mut t, "s");
    let debug = format!("{:?}", t.statement("s").unwrap());
    assert!(!debug.contains("select 1"), "{debug}");
    assert!(debug.contains("<8 bytes>"), "{debug}");
}

/// What a relay reads before the first row (to prepare masking) is what the rows get.
#[test]
fn front_row_description_before_the_first_row_matches_the_rows() {
    both(|h| {
        let p = h.send(parse("s0", "select a, b from t", &[]));
        let d = h.send(describe(S, "s0"));
        let s = h.send(FrontendMessage::Sync);
        h.expect(BackendMessage::ParseComplete, p, true);
        h.expect(param_description(&[]), d, false);
        h.expect(row_description(&["a", "b"]), d, true);
        h.expect(ready(IDLE), s, true);

        let b = h.send(bind("", "s0", &[1]));
        let e = h.send(execute("", 0));
        let s = h.send(FrontendMessage::Sync);
        h.expect(BackendMessage::BindComplete, b, true);
        let before =
            h.t.front_row_description()
                .expect("known before the first row");
        let formats: Vec<i16> = before.fields.iter().map(|f| f.format).collect();
        assert_eq!(formats, [1, 1]);
        let got = h.expect(data_row(), e, false);
        assert_eq!(got.columns(), cols(&[("a", 1), ("b", 1)]));
        h.expect(complete("SELECT 1"), e, true);
        h.expect(ready(IDLE), s, true);
    });
}
