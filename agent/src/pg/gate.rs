//! The statement gate: the policy decision on each client message, and what goes upstream
//! instead of a denied one. Pure: messages in, actions out.
//!
//! A denied statement never reaches the database. In its place the gate sends a `DO` block that
//! only raises the denial (SQLSTATE 42501, message, detail naming the rule, hint), so the
//! *server* produces the error exactly where the denied statement's own error would have been:
//! responses stay in order, and inside a transaction block the transaction really is aborted,
//! as PostgreSQL would have done. The block carries no SQL of the client: its texts are
//! hex-encoded, so nothing in them can end the quoting.
//!
//! - simple Query: decided as a whole (one denied statement denies the message); replaced by a
//!   Query running the block;
//! - Parse: decided; the decision is remembered under the statement name; a denied Parse is
//!   replaced by Parse/Bind/Execute of the block, and the rest of the batch is dropped until the
//!   client's Sync (the server would skip it after the error anyway); Bind, Describe and Execute
//!   of a denied statement (or of a portal bound to it) are denied the same way;
//! - FunctionCall: denied (replaced by a Query running the block: same response shape);
//! - SQL-level PREPARE / EXECUTE / DEALLOCATE / DISCARD ALL update the remembered decisions.
//!
//! A statement an `approve` rule matches (a Query, or a Parse) is held: the gate returns
//! [`GateAction::Hold`], the proxy submits it to the approval service and waits, then asks
//! [`Gate::resolve`] for what to send: the statement itself once approved (a Parse's
//! statement is then remembered as allowed), else the denial naming the request and the
//! approver or the timeout. Nothing of it reaches the server while it waits.

use std::{collections::HashMap, fmt::Write as _, sync::Arc};

use bytes::Bytes;

use super::codec::{
    FrontendMessage,
    frontend::{Bind, Execute, Parse, Query, TargetKind},
};
use crate::approval::{StatementSummary, summarize};
use crate::sql::{AccessControl, Decision, Denial, RuleRef, Verdict};

/// Most prepared statements / portals a session may name (more is a protocol abuse).
pub const MAX_NAMES: usize = 20_000;

/// What to do with a client message.
#[derive(Debug, Clone, PartialEq)]
pub enum GateAction {
    /// Forward it unchanged.
    Forward,
    /// Drop it: the rest of a denied extended-protocol batch, until Sync.
    Swallow,
    /// Send these messages instead; their responses carry the denial.
    Replace(Vec<FrontendMessage>),
    /// Wait for approval, then [`Gate::resolve`].
    Hold(Box<Hold>),
}

/// A statement waiting for approval.
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    /// The rule it needs approval for (the first, if several).
    pub rule: RuleRef,
    /// What approvers are shown (no literals).
    pub statement: StatementSummary,
    /// The held message (a Query or a Parse).
    pub message: FrontendMessage,
}

/// How a held statement's wait ended.
#[derive(Debug, Clone, PartialEq)]
pub enum HoldOutcome {
    /// Approved, or covered by a grant: the statement runs.
    Run,
    /// Not approved: the client gets this denial (42501) instead.
    Refuse(Denial),
}

/// A decision to audit.
#[derive(Debug, Clone)]
pub struct Judged {
    /// The protocol message the decision is about (`Query`, `Parse`, `Bind`, ...).
    pub message: &'static str,
    pub decision: Decision,
    /// Statement kinds (`SELECT`, `DELETE`, ...) when the message carried SQL.
    pub kinds: Vec<String>,
    /// Whether the decision came from the cache (no parse).
    pub cached: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("too many prepared statements or portals in one session (more than {MAX_NAMES})")]
pub struct TooManyNames;

/// The gate of one session.
pub struct Gate {
    access: Arc<AccessControl>,
    /// Remembered decisions of prepared statements (protocol Parse and SQL PREPARE share one
    /// namespace in PostgreSQL).
    prepared: HashMap<String, Decision>,
    /// Portal -> statement it was bound to.
    portals: HashMap<String, String>,
    discarding: bool,
}

impl Gate {
    pub fn new(access: Arc<AccessControl>) -> Self {
        Self {
            access,
            prepared: HashMap::new(),
            portals: HashMap::new(),
            discarding: false,
        }
    }

    /// Whether the rest of a denied batch is being dropped.
    pub fn discarding(&self) -> bool {
        self.discarding
    }

    /// Judges one client message.
    pub fn judge(
        &mut self,
        msg: &FrontendMessage,
    ) -> Result<(GateAction, Option<Judged>), TooManyNames> {
        if self.discarding {
            return Ok(match msg {
                FrontendMessage::Sync => {
                    self.discarding = false;
                    (GateAction::Forward, None)
                }
                FrontendMessage::Terminate => (GateAction::Forward, None),
                _ => (GateAction::Swallow, None),
            });
        }
        match msg {
            FrontendMessage::Query(q) => {
                let verdict = self.access.decide(&q.sql, &self.prepared);
                let judged = judged("Query", &verdict);
                if verdict.decision().is_allowed() {
                    self.apply_prepared_changes(&verdict)?;
                    return Ok((GateAction::Forward, Some(judged)));
                }
                if let Some(hold) = hold(&verdict, &q.sql, msg) {
                    return Ok((GateAction::Hold(hold), Some(judged)));
                }
                let raise = raise_sql(&denial_of(&verdict));
                Ok((
                    GateAction::Replace(vec![FrontendMessage::Query(Query { sql: raise })]),
                    Some(judged),
                ))
            }
            FrontendMessage::Parse(p) => {
                let verdict = self.access.decide(&p.query, &self.prepared);
                let judged = judged("Parse", &verdict);
                if let Some(hold) = hold(&verdict, &p.query, msg) {
                    // Remembered once resolved.
                    return Ok((GateAction::Hold(hold), Some(judged)));
                }
                self.remember(&p.name, verdict.decision_to_remember())?;
                if verdict.decision().is_allowed() {
                    Ok((GateAction::Forward, Some(judged)))
                } else {
                    Ok((self.deny_extended(&denial_of(&verdict)), Some(judged)))
                }
            }
            FrontendMessage::Bind(b) => match self.refused(&b.statement) {
                Some(decision) => Ok(self.deny_remembered("Bind", decision)),
                None => {
                    if self.portals.len() >= MAX_NAMES && !self.portals.contains_key(&b.portal) {
                        return Err(TooManyNames);
                    }
                    self.portals.insert(b.portal.clone(), b.statement.clone());
                    Ok((GateAction::Forward, None))
                }
            },
            FrontendMessage::Execute(e) => {
                let refused = self
                    .portals
                    .get(&e.portal)
                    .and_then(|statement| self.refused(statement));
                match refused {
                    Some(decision) => Ok(self.deny_remembered("Execute", decision)),
                    None => Ok((GateAction::Forward, None)),
                }
            }
            FrontendMessage::Describe(d) if d.kind == TargetKind::Statement => {
                match self.refused(&d.name) {
                    Some(decision) => Ok(self.deny_remembered("Describe", decision)),
                    None => Ok((GateAction::Forward, None)),
                }
            }
            FrontendMessage::Close(c) => {
                match c.kind {
                    TargetKind::Statement => {
                        self.prepared.remove(&c.name);
                    }
                    TargetKind::Portal => {
                        self.portals.remove(&c.name);
                    }
                }
                Ok((GateAction::Forward, None))
            }
            FrontendMessage::FunctionCall(_) => {
                let decision = self.access.function_call();
                let denial = denial_of_decision(&decision);
                let judged = Judged {
                    message: "FunctionCall",
                    decision,
                    kinds: Vec::new(),
                    cached: false,
                };
                Ok((
                    GateAction::Replace(vec![FrontendMessage::Query(Query {
                        sql: raise_sql(&denial),
                    })]),
                    Some(judged),
                ))
            }
            _ => Ok((GateAction::Forward, None)),
        }
    }

    /// What to send for a held statement, now that its wait ended: [`GateAction::Forward`]
    /// (the held message itself) or the denial.
    pub fn resolve(
        &mut self,
        hold: Hold,
        outcome: HoldOutcome,
    ) -> Result<GateAction, TooManyNames> {
        match (hold.message, outcome) {
            (FrontendMessage::Parse(p), HoldOutcome::Run) => {
                self.remember(
                    &p.name,
                    Decision::Allow {
                        rule: hold.rule.clone(),
                    },
                )?;
                Ok(GateAction::Forward)
            }
            (FrontendMessage::Parse(p), HoldOutcome::Refuse(denial)) => {
                self.remember(
                    &p.name,
                    Decision::Deny {
                        rule: hold.rule,
                        reason: denial.message.clone(),
                        hint: denial.hint.clone(),
                    },
                )?;
                Ok(self.deny_extended(&denial))
            }
            (_, HoldOutcome::Run) => Ok(GateAction::Forward),
            (_, HoldOutcome::Refuse(denial)) => {
                Ok(GateAction::Replace(vec![FrontendMessage::Query(Query {
                    sql: raise_sql(&denial),
                })]))
            }
        }
    }

    fn remember(&mut self, name: &str, decision: Decision) -> Result<(), TooManyNames> {
        if self.prepared.len() >= MAX_NAMES && !self.prepared.contains_key(name) {
            return Err(TooManyNames);
        }
        self.prepared.insert(name.to_owned(), decision);
        Ok(())
    }

    fn apply_prepared_changes(&mut self, verdict: &Verdict) -> Result<(), TooManyNames> {
        for change in verdict.prepared_changes() {
            match change {
                (Some(name), Some(decision)) => self.remember(name, decision.clone())?,
                (Some(name), None) => {
                    self.prepared.remove(name);
                }
                (None, _) => self.prepared.clear(),
            }
        }
        Ok(())
    }

    /// The remembered decision of `statement` if it is not an allow.
    fn refused(&self, statement: &str) -> Option<Decision> {
        self.prepared
            .get(statement)
            .filter(|d| !d.is_allowed())
            .cloned()
    }

    fn deny_remembered(
        &mut self,
        message: &'static str,
        decision: Decision,
    ) -> (GateAction, Option<Judged>) {
        let denial = denial_of_decision(&decision);
        let action = self.deny_extended(&denial);
        (
            action,
            Some(Judged {
                message,
                decision,
                kinds: Vec::new(),
                cached: true,
            }),
        )
    }

    fn deny_extended(&mut self, denial: &Denial) -> GateAction {
        self.discarding = true;
        GateAction::Replace(vec![
            FrontendMessage::Parse(Parse {
                name: String::new(),
                query: raise_sql(denial),
                param_types: Vec::new(),
            }),
            FrontendMessage::Bind(Bind {
                portal: String::new(),
                statement: String::new(),
                param_formats: Vec::new(),
                params: Vec::<Option<Bytes>>::new(),
                result_formats: Vec::new(),
            }),
            FrontendMessage::Execute(Execute {
                portal: String::new(),
                max_rows: 0,
            }),
        ])
    }
}

/// The hold of a statement whose decision is to wait for approval.
fn hold(verdict: &Verdict, sql: &str, msg: &FrontendMessage) -> Option<Box<Hold>> {
    match verdict.decision() {
        Decision::NeedsApproval { rule, .. } => Some(Box::new(Hold {
            rule: rule.clone(),
            statement: summarize(verdict, sql),
            message: msg.clone(),
        })),
        _ => None,
    }
}

fn judged(message: &'static str, verdict: &Verdict) -> Judged {
    Judged {
        message,
        decision: verdict.decision().clone(),
        kinds: verdict
            .statements()
            .iter()
            .map(|s| s.classification.kind.clone())
            .collect(),
        cached: verdict.was_cached(),
    }
}

/// The ErrorResponse fields of a decision that is not an allow.
fn denial_of(verdict: &Verdict) -> Denial {
    verdict
        .denial()
        .unwrap_or_else(|| denial_of_decision(verdict.decision()))
}

fn denial_of_decision(decision: &Decision) -> Denial {
    match decision {
        Decision::Deny { rule, reason, hint } => Denial {
            severity: "ERROR",
            sqlstate: crate::sql::DENIED_SQLSTATE,
            message: format!("permission denied by policy: {reason}"),
            detail: format!("Denied by rule {rule}."),
            hint: hint.clone(),
        },
        Decision::NeedsApproval { rule, .. } => Denial {
            severity: "ERROR",
            sqlstate: crate::sql::DENIED_SQLSTATE,
            message: format!("permission denied by policy: this statement needs approval ({rule})"),
            detail: format!(
                "Rule {rule} requires an approval, and this agent has no approval service \
                 configured: the statement is refused."
            ),
            hint: "ask an approver for a time-bound grant, or run the statement through an \
                   approved change process"
                .into(),
        },
        Decision::Allow { rule } => Denial {
            severity: "ERROR",
            sqlstate: crate::sql::DENIED_SQLSTATE,
            message: "permission denied by policy".into(),
            detail: format!("Rule {rule}."),
            hint: String::new(),
        },
    }
}

fn hex(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for b in text.bytes() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn text_expr(text: &str) -> String {
    format!("convert_from(decode('{}', 'hex'), 'UTF8')", hex(text))
}

/// A `DO` block that raises `denial` on the server. Only hex digits come from the denial, so
/// its texts (which may name tables the client chose) cannot break out of the quoting.
pub fn raise_sql(denial: &Denial) -> String {
    let mut sql = format!(
        "DO $chunk_agent$BEGIN RAISE EXCEPTION USING ERRCODE = '{}', MESSAGE = {}, DETAIL = {}",
        denial.sqlstate,
        text_expr(&denial.message),
        text_expr(&denial.detail),
    );
    if !denial.hint.is_empty() {
        let _ = write!(sql, ", HINT = {}", text_expr(&denial.hint));
    }
    sql.push_str("; END$chunk_agent$");
    sql
}

/// Whether an ErrorResponse field is one the gate's denials keep (S, V, C, M, D, H): the
/// others (context, source file, line, routine) describe the `DO` block, not the client's
/// statement.
pub fn keeps_denial_field(code: u8) -> bool {
    matches!(code, b'S' | b'V' | b'C' | b'M' | b'D' | b'H')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse_sources;
    use std::path::PathBuf;

    fn gate() -> Gate {
        let text = r#"
[[workload]]
name = "w"
targets = ["db"]

[[workload.access]]
target = "db"
allow = [{ operations = ["read"], tables = ["public.*"] }]
approve = [{ name = "deletes", operations = ["write"], tables = ["public.t"] }]

[[target]]
name = "db"
protocol = "postgres"
addresses = ["127.0.0.1:5432"]
[target.tls]
mode = "disable"
[target.credentials]
username = "u"
password = { file = "/etc/pw" }
"#;
        let set = parse_sources(&[(PathBuf::from("p.toml"), text.to_owned())]).expect("policy");
        let policy = crate::sql::SqlPolicy::new(&set);
        Gate::new(policy.access("w", "db").expect("access table"))
    }

    fn query(sql: &str) -> FrontendMessage {
        FrontendMessage::Query(Query { sql: sql.into() })
    }

    fn parse(name: &str, sql: &str) -> FrontendMessage {
        FrontendMessage::Parse(Parse {
            name: name.into(),
            query: sql.into(),
            param_types: Vec::new(),
        })
    }

    fn bind(portal: &str, statement: &str) -> FrontendMessage {
        FrontendMessage::Bind(Bind {
            portal: portal.into(),
            statement: statement.into(),
            param_formats: Vec::new(),
            params: Vec::new(),
            result_formats: Vec::new(),
        })
    }

    fn execute(portal: &str) -> FrontendMessage {
        FrontendMessage::Execute(Execute {
            portal: portal.into(),
            max_rows: 0,
        })
    }

    #[test]
    fn an_allowed_query_is_forwarded_and_judged() {
        let (action, judged) = gate().judge(&query("select * from t")).unwrap();
        assert_eq!(action, GateAction::Forward);
        assert!(judged.unwrap().decision.is_allowed());
    }

    #[test]
    fn a_denied_query_is_replaced_by_a_raise_that_carries_no_client_sql() {
        let (action, judged) = gate()
            .judge(&query("delete from t; select 'marker-literal'"))
            .unwrap();
        let GateAction::Replace(msgs) = action else {
            panic!("expected a replacement, got {action:?}");
        };
        let [FrontendMessage::Query(q)] = msgs.as_slice() else {
            panic!("one Query expected: {msgs:?}");
        };
        assert!(
            q.sql
                .starts_with("DO $chunk_agent$BEGIN RAISE EXCEPTION USING ERRCODE = '42501'")
        );
        assert!(!q.sql.contains("marker-literal") && !q.sql.contains("delete"));
        assert!(judged.unwrap().decision.is_denied());
    }

    #[test]
    fn a_denied_parse_becomes_a_raise_batch_and_the_rest_is_swallowed_until_sync() {
        let mut g = gate();
        let (action, _) = g.judge(&parse("s1", "drop table t")).unwrap();
        let GateAction::Replace(msgs) = action else {
            panic!("expected a replacement");
        };
        assert_eq!(msgs.len(), 3, "Parse, Bind, Execute");
        assert_eq!(g.judge(&bind("", "s1")).unwrap().0, GateAction::Swallow);
        assert_eq!(g.judge(&execute("")).unwrap().0, GateAction::Swallow);
        assert_eq!(
            g.judge(&FrontendMessage::Sync).unwrap().0,
            GateAction::Forward
        );
        assert!(!g.discarding());
        // A later batch binding the denied statement is denied again.
        let (action, judged) = g.judge(&bind("p", "s1")).unwrap();
        assert!(matches!(action, GateAction::Replace(_)));
        assert_eq!(judged.unwrap().message, "Bind");
    }

    #[test]
    fn execute_of_a_portal_bound_to_an_allowed_statement_is_forwarded() {
        let mut g = gate();
        assert_eq!(
            g.judge(&parse("s", "select 1 from t")).unwrap().0,
            GateAction::Forward
        );
        assert_eq!(g.judge(&bind("p", "s")).unwrap().0, GateAction::Forward);
        assert_eq!(g.judge(&execute("p")).unwrap().0, GateAction::Forward);
    }

    #[test]
    fn sql_level_prepare_of_a_denied_statement_denies_its_execute() {
        let mut g = gate();
        let (action, _) = g.judge(&query("prepare d as delete from t")).unwrap();
        assert!(
            matches!(action, GateAction::Replace(_)),
            "PREPARE of a write"
        );
        let (action, judged) = g.judge(&query("execute d")).unwrap();
        assert!(matches!(action, GateAction::Replace(_)), "{judged:?}");
    }

    #[test]
    fn function_calls_are_denied() {
        let msg = FrontendMessage::FunctionCall(crate::pg::codec::frontend::FunctionCall {
            oid: 1234,
            arg_formats: Vec::new(),
            args: Vec::new(),
            result_format: 0,
        });
        let (action, judged) = gate().judge(&msg).unwrap();
        assert!(matches!(action, GateAction::Replace(_)));
        assert!(judged.unwrap().decision.is_denied());
    }

    #[test]
    fn raise_texts_are_hex_so_quotes_and_dollar_tags_cannot_escape() {
        let denial = Denial {
            severity: "ERROR",
            sqlstate: "42501",
            message: "x'; drop table t; --$chunk_agent$".into(),
            detail: "d".into(),
            hint: String::new(),
        };
        let sql = raise_sql(&denial);
        assert_eq!(sql.matches("$chunk_agent$").count(), 2);
        assert!(!sql.contains("drop table"));
        assert!(!sql.contains("HINT"));
    }

    #[test]
    fn only_the_denial_fields_are_kept() {
        assert!(keeps_denial_field(b'M') && keeps_denial_field(b'H'));
        assert!(!keeps_denial_field(b'W') && !keeps_denial_field(b'F'));
    }

    fn denial() -> Denial {
        Denial {
            severity: "ERROR",
            sqlstate: "42501",
            message: "approval request r-1 was denied by bob".into(),
            detail: "Rule deletes requires an approval.".into(),
            hint: String::new(),
        }
    }

    #[test]
    fn a_query_needing_approval_is_held_then_forwarded_once_approved() {
        let mut g = gate();
        let msg = query("delete from public.t where id = 1");
        let (action, judged) = g.judge(&msg).unwrap();
        assert!(judged.unwrap().decision.needs_approval());
        let GateAction::Hold(hold) = action else {
            panic!("not held: {action:?}")
        };
        assert_eq!(hold.rule.name, "deletes");
        assert_eq!(hold.statement.kinds, ["DELETE"]);
        assert_eq!(
            g.resolve(*hold, HoldOutcome::Run).unwrap(),
            GateAction::Forward
        );
    }

    #[test]
    fn a_refused_hold_becomes_the_denial_and_a_parse_is_remembered_both_ways() {
        let mut g = gate();
        let (action, _) = g
            .judge(&parse("del", "delete from public.t where id = $1"))
            .unwrap();
        let GateAction::Hold(hold) = action else {
            panic!("not held: {action:?}")
        };
        let GateAction::Replace(messages) =
            g.resolve(*hold, HoldOutcome::Refuse(denial())).unwrap()
        else {
            panic!("not replaced")
        };
        let FrontendMessage::Parse(p) = &messages[0] else {
            panic!("not a raise batch: {messages:?}")
        };
        assert!(p.query.starts_with("DO $chunk_agent$"));
        assert!(
            g.discarding(),
            "the rest of the batch is dropped until Sync"
        );
        g.judge(&FrontendMessage::Sync).unwrap();
        // A later Bind of the refused statement is denied without asking again.
        let (action, _) = g.judge(&bind("", "del")).unwrap();
        assert!(matches!(action, GateAction::Replace(_)), "{action:?}");
        g.judge(&FrontendMessage::Sync).unwrap();

        // Approved: the statement is remembered as allowed for its Binds and Executes.
        let (action, _) = g
            .judge(&parse("ok", "delete from public.t where id = $1"))
            .unwrap();
        let GateAction::Hold(hold) = action else {
            panic!("not held")
        };
        assert_eq!(
            g.resolve(*hold, HoldOutcome::Run).unwrap(),
            GateAction::Forward
        );
        assert_eq!(g.judge(&bind("p", "ok")).unwrap().0, GateAction::Forward);
        assert_eq!(g.judge(&execute("p")).unwrap().0, GateAction::Forward);
    }
}
