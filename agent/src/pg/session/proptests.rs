//! Property tests: random message sequences never panic and stay within the limits; and a
//! model server answering random pipelines gets every message attributed to the request
//! that caused it, whatever the interleaving of client and server messages.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::pg::codec::backend::{
    CommandComplete, CopyResponse, DataRow, ErrorResponse, FieldDescription, FunctionCallResponse,
    NotificationResponse, ParameterStatus, ReadyForQuery, Severity,
};
use crate::pg::codec::frontend::{
    Bind, Close, CopyFail, Describe, Execute, FunctionCall, Parse, Query,
};

const NAMES: [&str; 3] = ["", "a", "b"];
const SQL: [&str; 8] = [
    "select 1",
    "select 1; select 2",
    "",
    "copy t from stdin",
    "DEALLOCATE a",
    "DEALLOCATE ALL; DISCARD ALL",
    "CLOSE a; DECLARE b CURSOR FOR SELECT 1",
    "BEGIN ATOMIC; DEALLOCATE b",
];
const TAGS: [&str; 10] = [
    "SELECT 1",
    "INSERT 0 1",
    "DEALLOCATE",
    "DEALLOCATE ALL",
    "DISCARD ALL",
    "PREPARE",
    "CLOSE CURSOR",
    "CLOSE CURSOR ALL",
    "DECLARE CURSOR",
    "COPY 3",
];

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(&NAMES[..]).prop_map(str::to_owned)
}

fn target() -> impl Strategy<Value = TargetKind> {
    prop_oneof![Just(TargetKind::Statement), Just(TargetKind::Portal)]
}

fn frontend() -> impl Strategy<Value = FrontendMessage> {
    prop_oneof![
        prop::sample::select(&SQL[..])
            .prop_map(|sql| FrontendMessage::Query(Query { sql: sql.into() })),
        (
            name(),
            prop::sample::select(&SQL[..]),
            prop::collection::vec(any::<u32>(), 0..3)
        )
            .prop_map(|(name, sql, param_types)| FrontendMessage::Parse(Parse {
                name,
                query: sql.into(),
                param_types,
            })),
        (name(), name(), prop::collection::vec(-1i16..3, 0..4)).prop_map(
            |(portal, statement, result_formats)| FrontendMessage::Bind(Bind {
                portal,
                statement,
                param_formats: vec![],
                params: vec![],
                result_formats,
            })
        ),
        (target(), name())
            .prop_map(|(kind, name)| FrontendMessage::Describe(Describe { kind, name })),
        (name(), 0i32..3)
            .prop_map(|(portal, max_rows)| FrontendMessage::Execute(Execute { portal, max_rows })),
        (target(), name()).prop_map(|(kind, name)| FrontendMessage::Close(Close { kind, name })),
        Just(FrontendMessage::Sync),
        Just(FrontendMessage::Flush),
        Just(FrontendMessage::CopyData(Bytes::from_static(b"x\n"))),
        Just(FrontendMessage::CopyDone),
        Just(FrontendMessage::CopyFail(CopyFail {
            message: "no".into()
        })),
        Just(FrontendMessage::FunctionCall(FunctionCall {
            oid: 1,
            arg_formats: vec![],
            args: vec![],
            result_format: 0,
        })),
    ]
}

fn copy_response() -> CopyResponse {
    CopyResponse {
        format: 0,
        column_formats: vec![],
    }
}

fn backend() -> impl Strategy<Value = BackendMessage> {
    prop_oneof![
        prop::collection::vec("[a-z]{0,3}", 0..4).prop_map(|names| {
            BackendMessage::RowDescription(RowDescription {
                fields: names
                    .into_iter()
                    .map(|n| FieldDescription::text(n, 25))
                    .collect(),
            })
        }),
        Just(BackendMessage::DataRow(
            DataRow::from_values([Some(&b"v"[..])]).unwrap()
        )),
        prop::sample::select(&TAGS[..])
            .prop_map(|tag| BackendMessage::CommandComplete(CommandComplete { tag: tag.into() })),
        Just(BackendMessage::EmptyQueryResponse),
        Just(BackendMessage::ErrorResponse(ErrorResponse::new(
            Severity::Error,
            "42000",
            "e"
        ))),
        Just(BackendMessage::NoticeResponse(ErrorResponse::new(
            Severity::Notice,
            "00000",
            "n"
        ))),
        Just(BackendMessage::NotificationResponse(NotificationResponse {
            process_id: 1,
            channel: "c".into(),
            payload: "p".into(),
        })),
        prop_oneof![Just("on"), Just("off")].prop_map(|v| BackendMessage::ParameterStatus(
            ParameterStatus {
                name: "standard_conforming_strings".into(),
                value: v.into(),
            }
        )),
        Just(BackendMessage::ParseComplete),
        Just(BackendMessage::BindComplete),
        Just(BackendMessage::CloseComplete),
        Just(BackendMessage::NoData),
        Just(BackendMessage::PortalSuspended),
        prop::collection::vec(any::<u32>(), 0..3).prop_map(|types| {
            BackendMessage::ParameterDescription(ParameterDescription { types })
        }),
        Just(BackendMessage::CopyInResponse(copy_response())),
        Just(BackendMessage::CopyOutResponse(copy_response())),
        Just(BackendMessage::CopyBothResponse(copy_response())),
        Just(BackendMessage::CopyData(Bytes::from_static(b"x\n"))),
        Just(BackendMessage::CopyDone),
        prop_oneof![
            Just(TransactionStatus::Idle),
            Just(TransactionStatus::InTransaction),
            Just(TransactionStatus::Failed)
        ]
        .prop_map(|status| BackendMessage::ReadyForQuery(ReadyForQuery { status })),
        Just(BackendMessage::FunctionCallResponse(FunctionCallResponse {
            result: None
        })),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    Client(FrontendMessage),
    Server(BackendMessage, bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        frontend().prop_map(Step::Client),
        (backend(), any::<bool>()).prop_map(|(m, raw)| Step::Server(m, raw)),
    ]
}

fn feed(t: &mut SessionTracker, msg: &BackendMessage, raw: bool) {
    if raw {
        let mut buf = BytesMut::new();
        msg.encode(&mut buf);
        let _ = t.on_backend_tag(buf[0], &buf[5..]);
    } else {
        let _ = t.on_backend(msg);
    }
}

const SMALL: TrackerLimits = TrackerLimits {
    max_pending: 16,
    max_statements: 2,
    max_portals: 2,
    max_metadata_bytes: 2048,
};

/// Portal bookkeeping is bounded by the portal count, not refused by the byte budget.
const PORTAL_SLACK: usize = (SMALL.max_portals + 1) * 512;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_messages_never_panic_and_stay_bounded(
        steps in prop::collection::vec(step(), 0..200),
    ) {
        let mut t = SessionTracker::new(SMALL);
        for step in &steps {
            match step {
                Step::Client(msg) => {
                    let before = t.pending();
                    if t.on_frontend(msg).is_err() {
                        prop_assert_eq!(t.pending(), before, "a refused message is not recorded");
                    }
                }
                Step::Server(msg, raw) => feed(&mut t, msg, *raw),
            }
            prop_assert!(t.pending() <= SMALL.max_pending);
            prop_assert!(t.statement_count() <= SMALL.max_statements + 1);
            prop_assert!(t.portal_count() <= SMALL.max_portals + 1);
            prop_assert!(t.metadata_bytes() <= SMALL.max_metadata_bytes + PORTAL_SLACK);
        }
    }
}

// ------------------------------------------------------------------------------------------
// Model server

#[derive(Debug, Clone)]
enum Statement {
    Rows(u8),
    Command,
    Error,
}

#[derive(Debug, Clone)]
enum Op {
    Parse(usize),
    Bind(usize, usize),
    DescribeStatement(usize, bool),
    DescribePortal(usize),
    /// Rows, then PortalSuspended (true) or CommandComplete.
    Execute(usize, u8, bool),
    Close(TargetKind, usize),
}

#[derive(Debug, Clone)]
enum Batch {
    Simple(Vec<Statement>),
    /// Ops, then Sync; the op at `fail_at` (if any) gets an ErrorResponse.
    Extended(Vec<Op>, Option<usize>),
}

fn statement() -> impl Strategy<Value = Statement> {
    prop_oneof![
        (0u8..4).prop_map(Statement::Rows),
        Just(Statement::Command),
        Just(Statement::Error),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize).prop_map(Op::Parse),
        (0..3usize, 0..3usize).prop_map(|(p, s)| Op::Bind(p, s)),
        (0..3usize, any::<bool>()).prop_map(|(s, rows)| Op::DescribeStatement(s, rows)),
        (0..3usize).prop_map(Op::DescribePortal),
        (0..3usize, 0u8..4, any::<bool>()).prop_map(|(p, n, s)| Op::Execute(p, n, s)),
        (target(), 0..3usize).prop_map(|(t, n)| Op::Close(t, n)),
    ]
}

fn batch() -> impl Strategy<Value = Batch> {
    prop_oneof![
        prop::collection::vec(statement(), 0..4).prop_map(Batch::Simple),
        (
            prop::collection::vec(op(), 0..6),
            prop::option::of(0..6usize)
        )
            .prop_map(|(ops, fail)| Batch::Extended(ops, fail)),
    ]
}

/// A server message the model sends: the index of the client message it answers (which must
/// have been sent first), whether it completes it, and for a simple query the statement.
struct Answer {
    msg: BackendMessage,
    answers: usize,
    completes: bool,
    statement: Option<usize>,
}

fn rows(n: u8) -> impl Iterator<Item = BackendMessage> {
    (0..n).map(|_| BackendMessage::DataRow(DataRow::from_values([Some(&b"1"[..])]).unwrap()))
}

fn rd() -> BackendMessage {
    BackendMessage::RowDescription(RowDescription {
        fields: vec![FieldDescription::text("a", 23)],
    })
}

fn cc(tag: &str) -> BackendMessage {
    BackendMessage::CommandComplete(CommandComplete { tag: tag.into() })
}

fn error() -> BackendMessage {
    BackendMessage::ErrorResponse(ErrorResponse::new(Severity::Error, "42000", "e"))
}

fn ready() -> BackendMessage {
    BackendMessage::ReadyForQuery(ReadyForQuery {
        status: TransactionStatus::Idle,
    })
}

/// The client stream and the server's answers for `batches`.
fn script(batches: &[Batch]) -> (Vec<FrontendMessage>, Vec<Answer>) {
    let mut client = Vec::new();
    let mut server = Vec::new();
    let mut answer = |msg, answers, completes, statement| {
        server.push(Answer {
            msg,
            answers,
            completes,
            statement,
        });
    };
    for batch in batches {
        match batch {
            Batch::Simple(statements) => {
                let q = client.len();
                client.push(FrontendMessage::Query(Query {
                    sql: "select 1".into(),
                }));
                if statements.is_empty() {
                    answer(BackendMessage::EmptyQueryResponse, q, false, Some(0));
                }
                let mut last = 0;
                for (i, st) in statements.iter().enumerate() {
                    last = i;
                    match st {
                        Statement::Rows(n) => {
                            answer(rd(), q, false, Some(i));
                            for row in rows(*n) {
                                answer(row, q, false, Some(i));
                            }
                            answer(cc("SELECT 1"), q, false, Some(i));
                        }
                        Statement::Command => answer(cc("INSERT 0 1"), q, false, Some(i)),
                        Statement::Error => {
                            answer(error(), q, false, Some(i));
                            break;
                        }
                    }
                }
                answer(ready(), q, true, Some(last));
            }
            Batch::Extended(ops, fail_at) => {
                let mut failed = false;
                for (i, op) in ops.iter().enumerate() {
                    let at = client.len();
                    client.push(match op {
                        Op::Parse(s) => FrontendMessage::Parse(Parse {
                            name: NAMES[*s].into(),
                            query: "select 1".into(),
                            param_types: vec![],
                        }),
                        Op::Bind(p, s) => FrontendMessage::Bind(Bind {
                            portal: NAMES[*p].into(),
                            statement: NAMES[*s].into(),
                            param_formats: vec![],
                            params: vec![],
                            result_formats: vec![1],
                        }),
                        Op::DescribeStatement(s, _) => FrontendMessage::Describe(Describe {
                            kind: TargetKind::Statement,
                            name: NAMES[*s].into(),
                        }),
                        Op::DescribePortal(p) => FrontendMessage::Describe(Describe {
                            kind: TargetKind::Portal,
                            name: NAMES[*p].into(),
                        }),
                        Op::Execute(p, _, suspend) => FrontendMessage::Execute(Execute {
                            portal: NAMES[*p].into(),
                            max_rows: if *suspend { 1 } else { 0 },
                        }),
                        Op::Close(kind, n) => FrontendMessage::Close(Close {
                            kind: *kind,
                            name: NAMES[*n].into(),
                        }),
                    });
                    if failed {
                        continue;
                    }
                    if *fail_at == Some(i) {
                        answer(error(), at, true, None);
                        failed = true;
                        continue;
                    }
                    match op {
                        Op::Parse(_) => answer(BackendMessage::ParseComplete, at, true, None),
                        Op::Bind(..) => answer(BackendMessage::BindComplete, at, true, None),
                        Op::DescribeStatement(_, returns_rows) => {
                            answer(
                                BackendMessage::ParameterDescription(ParameterDescription {
                                    types: vec![23],
                                }),
                                at,
                                false,
                                None,
                            );
                            let last = if *returns_rows {
                                rd()
                            } else {
                                BackendMessage::NoData
                            };
                            answer(last, at, true, None);
                        }
                        Op::DescribePortal(_) => answer(rd(), at, true, None),
                        Op::Execute(_, n, suspend) => {
                            for row in rows(*n) {
                                answer(row, at, false, None);
                            }
                            let last = if *suspend {
                                BackendMessage::PortalSuspended
                            } else {
                                cc("SELECT 1")
                            };
                            answer(last, at, true, None);
                        }
                        Op::Close(..) => answer(BackendMessage::CloseComplete, at, true, None),
                    }
                }
                let sync = client.len();
                client.push(FrontendMessage::Sync);
                answer(ready(), sync, true, None);
            }
        }
    }
    (client, server)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn model_server_answers_are_attributed_to_their_requests(
        batches in prop::collection::vec(batch(), 0..8),
        schedule in prop::collection::vec(any::<bool>(), 0..400),
        raw in any::<bool>(),
    ) {
        let (client, server) = script(&batches);
        let mut t = SessionTracker::default();
        let mut sent = 0;
        let mut answered = 0;
        let mut schedule = schedule.into_iter();
        while answered < server.len() {
            let next = &server[answered];
            let can_answer = next.answers < sent;
            let prefer_server = schedule.next().unwrap_or(true);
            if sent < client.len() && (!can_answer || !prefer_server) {
                let id = t.on_frontend(&client[sent]).expect("well-formed client");
                // Every client message of the model is a request: ids are consecutive.
                prop_assert_eq!(id, RequestId(sent as u64 + 1));
                sent += 1;
                continue;
            }
            prop_assert!(can_answer);
            let got = if raw {
                let mut buf = BytesMut::new();
                next.msg.encode(&mut buf);
                t.on_backend_tag(buf[0], &buf[5..])
            } else {
                t.on_backend(&next.msg)
            };
            let Some(request) = got.request() else {
                return Err(TestCaseError::fail(format!(
                    "{} for #{}: {got:?}",
                    next.msg.name(),
                    next.answers + 1
                )));
            };
            prop_assert_eq!(request.id(), RequestId(next.answers as u64 + 1), "{}", next.msg.name());
            prop_assert_eq!(got.completes(), next.completes, "{}", next.msg.name());
            if let Some(statement) = next.statement {
                prop_assert_eq!(request.kind(), &RequestKind::Query { statement });
            }
            answered += 1;
        }
        prop_assert_eq!(t.pending(), 0);
        prop_assert!(!t.discarding());
    }
}
