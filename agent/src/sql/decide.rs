//! Classified statements + a workload's access rules for a target -> a [`Decision`].
//!
//! Precedence, per statement:
//! 1. built-in denials: unparseable text, COPY to/from a program or a server file, settings
//!    that change how SQL is read, a function on `functions.deny` or on the built-in list of
//!    dangerous functions (unless named exactly in `functions.allow`);
//! 2. `deny` rules: the first one (in file order) matching any effect;
//! 3. every effect must be allowed by an `allow` rule (CALL: by `functions.allow`) or covered
//!    by an `approve` rule, else `default-deny` names the first effect that is not;
//! 4. `approve` rules: the first one (in file order) matching any effect;
//! 5. allowed (statements with nothing to judge are allowed by `builtin:harmless` /
//!    `builtin:no-effect`).
//!
//! Per message: the first denied statement denies the whole message (nothing of it runs);
//! else the first statement needing approval makes the whole message wait; else allowed.
//!
//! Unqualified names: a table may be in any schema of the access table's `search_path` (and a
//! name starting with `pg_` in `pg_catalog`; a function in `pg_catalog` first). An effect is
//! allowed only if every candidate is; a deny or approve rule matches if any candidate does.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::classify::ParseError;
use super::effects::{
    Classification, Effect, Object, ObjectKind, Operation, Prepared, QualifiedName,
};
use crate::policy::{Access, AccessRule, FunctionPattern, SourceLocation};

/// SQLSTATE of a denied statement: `insufficient_privilege`.
pub const DENIED_SQLSTATE: &str = crate::pg::sqlstate::INSUFFICIENT_PRIVILEGE;

/// The built-in list of dangerous functions, matched case-insensitively on the function's
/// name (whatever its schema); `*` matches any characters. Server files, large objects on
/// the server's file system, other sessions, server configuration and replication, and
/// functions that run SQL given as a string (which the agent cannot judge).
pub const DANGEROUS_FUNCTIONS: &[&str] = &[
    "pg_read_file*",
    "pg_read_binary_file*",
    "pg_stat_file",
    "pg_ls_*",
    "pg_file_write",
    "pg_file_rename",
    "pg_file_unlink",
    "pg_file_sync",
    "pg_logdir_ls",
    "lo_import",
    "lo_export",
    "dblink*",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_signal_backend",
    "pg_reload_conf",
    "pg_rotate_logfile*",
    "set_config",
    "pg_promote",
    "pg_switch_wal",
    "pg_create_restore_point",
    "pg_backup_start",
    "pg_backup_stop",
    "pg_start_backup",
    "pg_stop_backup",
    "pg_wal_replay_pause",
    "pg_wal_replay_resume",
    "pg_create_physical_replication_slot",
    "pg_create_logical_replication_slot",
    "pg_drop_replication_slot",
    "pg_copy_*_replication_slot",
    "pg_replication_slot_advance",
    "pg_logical_slot_*",
    "pg_logical_emit_message",
    "pg_replication_origin_*",
    "pg_log_backend_memory_contexts",
    "pg_import_system_collations",
    "query_to_xml*",
    "table_to_xml*",
    "schema_to_xml*",
    "database_to_xml*",
    "cursor_to_xml*",
    "ts_stat",
    // Runs the query given as text (core full-text search).
    "ts_rewrite",
    // tablefunc: build and run SQL from text arguments.
    "crosstab*",
    "connectby*",
    // xml2: runs a query built from text arguments.
    "xpath_table",
    // pageinspect: raw pages of any relation, whatever the table rules say.
    "get_raw_page",
];

/// Whether `name` (a function name) is on [`DANGEROUS_FUNCTIONS`].
pub fn is_dangerous_function(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    DANGEROUS_FUNCTIONS.iter().any(|p| wildcard_match(p, &name))
}

/// `*`-only glob match.
fn wildcard_match(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((prefix, rest)) => {
            let Some(tail) = s.strip_prefix(prefix) else {
                return false;
            };
            if rest.is_empty() {
                return true;
            }
            (0..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| wildcard_match(rest, &tail[i..]))
        }
    }
}

/// The rule that made a decision: a policy rule (with where it is written) or a built-in
/// one (`builtin:...`, `default-deny`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleRef {
    /// `no-audit-writes`, `allow[0]`, `functions.allow:staging.refresh_stats`,
    /// `builtin:dangerous-function`, `default-deny` ...
    pub name: String,
    /// Where the rule is written (`None` for built-in rules).
    pub source: Option<SourceLocation>,
}

impl RuleRef {
    pub fn builtin(name: &str) -> Self {
        Self {
            name: name.to_string(),
            source: None,
        }
    }

    fn of(rule: &AccessRule) -> Self {
        Self {
            name: rule.name.clone(),
            source: Some(rule.source.clone()),
        }
    }

    fn function(list: &str, pattern: &FunctionPattern) -> Self {
        Self {
            name: format!("functions.{list}:{pattern}"),
            source: Some(pattern.source.clone()),
        }
    }
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{} ({source})", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// What to do with a statement (or a whole message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow {
        rule: RuleRef,
    },
    Deny {
        rule: RuleRef,
        /// Why, in one sentence (names the operation, object or function).
        reason: String,
        /// What to change in the policy (or in the job) if this should be allowed.
        hint: String,
    },
    /// Allowed once approved (the approval service does the waiting).
    NeedsApproval {
        rule: RuleRef,
        /// Distinct approvals needed.
        approvers: u32,
        /// Groups the approvers must be in (empty: any approver).
        groups: Vec<String>,
        /// Deny if not approved within this time.
        timeout: Duration,
    },
}

impl Decision {
    pub fn rule(&self) -> &RuleRef {
        match self {
            Decision::Allow { rule }
            | Decision::Deny { rule, .. }
            | Decision::NeedsApproval { rule, .. } => rule,
        }
    }

    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    pub fn is_denied(&self) -> bool {
        matches!(self, Decision::Deny { .. })
    }

    pub fn needs_approval(&self) -> bool {
        matches!(self, Decision::NeedsApproval { .. })
    }

    /// `allow`, `deny` or `approval` (e.g. for audit events).
    pub fn outcome(&self) -> &'static str {
        match self {
            Decision::Allow { .. } => "allow",
            Decision::Deny { .. } => "deny",
            Decision::NeedsApproval { .. } => "approval",
        }
    }

    fn severity(&self) -> u8 {
        match self {
            Decision::Allow { .. } => 0,
            Decision::NeedsApproval { .. } => 1,
            Decision::Deny { .. } => 2,
        }
    }

    fn deny(rule: RuleRef, reason: impl Into<String>, hint: impl Into<String>) -> Self {
        Decision::Deny {
            rule,
            reason: reason.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for Decision {
    /// One line: `ALLOW by allow[0] (p.toml:12)`, `DENY by no-audit-writes (p.toml:20): ...`,
    /// `NEEDS APPROVAL by bulk-deletes (p.toml:30): 1 approver from dba within 10m`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allow { rule } => write!(f, "ALLOW by {rule}"),
            Decision::Deny { rule, reason, .. } => write!(f, "DENY by {rule}: {reason}"),
            Decision::NeedsApproval {
                rule,
                approvers,
                groups,
                timeout,
            } => {
                let who = if *approvers == 1 {
                    "approver"
                } else {
                    "approvers"
                };
                write!(f, "NEEDS APPROVAL by {rule}: {approvers} {who}")?;
                if !groups.is_empty() {
                    write!(f, " from {}", groups.join(", "))?;
                }
                write!(f, " within {}", humantime::format_duration(*timeout))
            }
        }
    }
}

/// The fields of the ErrorResponse for a denied statement (severity `ERROR`, SQLSTATE
/// [`DENIED_SQLSTATE`]): the proxy sends S/V = `severity`, C = `sqlstate`, M = `message`,
/// D = `detail`, H = `hint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub severity: &'static str,
    pub sqlstate: &'static str,
    pub message: String,
    pub detail: String,
    pub hint: String,
}

/// How one effect fares against the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Allowed(RuleRef),
    NeedsApproval(RuleRef),
    Denied(RuleRef),
    /// No allow rule covers it (nor an approve rule).
    NotAllowed,
}

/// An effect and how it fares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectVerdict {
    pub effect: Effect,
    /// The names an unqualified name may resolve to (empty for objects without a schema).
    pub candidates: Vec<QualifiedName>,
    pub outcome: Outcome,
}

/// One statement, classified and decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementVerdict {
    pub classification: Classification,
    pub effects: Vec<EffectVerdict>,
    /// The statement's own decision (for EXECUTE: without the prepared statement's).
    pub decision: Decision,
    /// PREPARE: the decision to remember for the prepared statement (what EXECUTE gets).
    pub prepared_decision: Option<Decision>,
}

/// Everything decided about a message, without the session's prepared statements: what the
/// decision cache holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub statements: Vec<StatementVerdict>,
    /// The message's decision, when no EXECUTE needs resolving.
    pub decision: Decision,
    /// The statement that made `decision` (`None`: no statement, or all allowed).
    pub deciding_statement: Option<usize>,
    /// Whether some statement is an EXECUTE (the final decision needs the session's
    /// prepared statements).
    pub has_execute: bool,
}

/// The decisions a session remembers for its prepared statements (protocol-level Parse
/// with a name, and SQL-level PREPARE: they share one namespace in PostgreSQL).
pub trait PreparedStatements {
    /// The remembered decision of prepared statement `name`, if there is one.
    fn decision(&self, name: &str) -> Option<Decision>;
}

/// A session without prepared statements.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPreparedStatements;

impl PreparedStatements for NoPreparedStatements {
    fn decision(&self, _name: &str) -> Option<Decision> {
        None
    }
}

impl PreparedStatements for HashMap<String, Decision> {
    fn decision(&self, name: &str) -> Option<Decision> {
        self.get(name).cloned()
    }
}

/// The decision on a whole message, with its per-statement details.
#[derive(Debug, Clone)]
pub struct Verdict {
    evaluation: Arc<Evaluation>,
    /// Set when EXECUTE statements were resolved: (decision, deciding statement, the
    /// statements' final decisions).
    resolved: Option<(Decision, Option<usize>)>,
    cached: bool,
}

impl Verdict {
    pub(crate) fn new(evaluation: Arc<Evaluation>, cached: bool) -> Self {
        Self {
            evaluation,
            resolved: None,
            cached,
        }
    }

    /// The decision on the whole message.
    pub fn decision(&self) -> &Decision {
        match &self.resolved {
            Some((decision, _)) => decision,
            None => &self.evaluation.decision,
        }
    }

    /// Index (0-based) of the statement that made the decision: the first denied one, or the
    /// first needing approval; `None` when allowed.
    pub fn deciding_statement(&self) -> Option<usize> {
        match &self.resolved {
            Some((_, i)) => *i,
            None => self.evaluation.deciding_statement,
        }
    }

    pub fn statements(&self) -> &[StatementVerdict] {
        &self.evaluation.statements
    }

    pub fn evaluation(&self) -> &Arc<Evaluation> {
        &self.evaluation
    }

    /// Whether the evaluation came from the decision cache (no parse).
    pub fn was_cached(&self) -> bool {
        self.cached
    }

    /// The prepared statements this message (SQL PREPARE / DEALLOCATE / DISCARD ALL) defines
    /// or drops, in order: `(Some(name), Some(decision))` to remember, `(Some(name), None)`
    /// to forget, `(None, None)` to forget all. Apply them only if the message runs.
    pub fn prepared_changes(&self) -> Vec<(Option<&str>, Option<&Decision>)> {
        let mut changes = Vec::new();
        for s in self.statements() {
            match &s.classification.prepared {
                Prepared::Prepare(name) => {
                    changes.push((Some(name.as_str()), s.prepared_decision.as_ref()));
                }
                Prepared::Deallocate(name) => changes.push((name.as_deref(), None)),
                Prepared::None | Prepared::Execute(_) => {}
            }
        }
        changes
    }

    /// The decision a protocol-level Parse of this text leaves for its prepared statement:
    /// the message's decision.
    pub fn decision_to_remember(&self) -> Decision {
        self.decision().clone()
    }

    /// The ErrorResponse fields when the message is denied.
    pub fn denial(&self) -> Option<Denial> {
        let Decision::Deny { rule, reason, hint } = self.decision() else {
            return None;
        };
        let total = self.statements().len();
        let mut detail = format!("Denied by rule {rule}.");
        if let (Some(i), true) = (self.deciding_statement(), total > 1) {
            detail.push_str(&format!(
                " Statement {} of {total} is denied, so none of them was run.",
                i + 1
            ));
        }
        Some(Denial {
            severity: "ERROR",
            sqlstate: DENIED_SQLSTATE,
            message: format!("permission denied by policy: {reason}"),
            detail,
            hint: hint.clone(),
        })
    }

    /// Combines EXECUTE statements with the decisions of the prepared statements they run
    /// (PREPAREs earlier in the same message first, then the session's).
    pub(crate) fn resolve(mut self, session: &dyn PreparedStatements) -> Self {
        if !self.evaluation.has_execute {
            return self;
        }
        let mut local: HashMap<&str, Option<&Decision>> = HashMap::new();
        let mut all_dropped = false;
        let mut finals: Vec<Decision> = Vec::with_capacity(self.evaluation.statements.len());
        for s in &self.evaluation.statements {
            let mut decision = s.decision.clone();
            match &s.classification.prepared {
                Prepared::Prepare(name) => {
                    local.insert(name, s.prepared_decision.as_ref());
                }
                Prepared::Deallocate(Some(name)) => {
                    local.insert(name, None);
                }
                Prepared::Deallocate(None) => {
                    local.clear();
                    all_dropped = true;
                }
                Prepared::Execute(name) => {
                    let remembered = match local.get(name.as_str()) {
                        Some(d) => d.cloned(),
                        None if all_dropped => None,
                        None => session.decision(name),
                    };
                    let executed = remembered.unwrap_or_else(|| {
                        Decision::deny(
                            RuleRef::builtin("builtin:unknown-prepared-statement"),
                            format!("EXECUTE of `{name}`, which the agent has not seen prepared"),
                            "prepare the statement in this session before executing it",
                        )
                    });
                    // The prepared statement's decision, unless the EXECUTE itself (its
                    // parameters) is worse.
                    if executed.severity() >= decision.severity() {
                        decision = executed;
                    }
                }
                Prepared::None => {}
            }
            finals.push(decision);
        }
        let (decision, deciding) = combine(&finals);
        self.resolved = Some((decision, deciding));
        self
    }
}

/// The message's decision from its statements' decisions.
fn combine(decisions: &[Decision]) -> (Decision, Option<usize>) {
    if let Some(i) = decisions.iter().position(Decision::is_denied) {
        return (decisions[i].clone(), Some(i));
    }
    if let Some(i) = decisions.iter().position(Decision::needs_approval) {
        return (decisions[i].clone(), Some(i));
    }
    match decisions.first() {
        Some(d) => (d.clone(), None),
        None => (
            Decision::Allow {
                rule: RuleRef::builtin("builtin:harmless"),
            },
            None,
        ),
    }
}

/// The rules of one workload for one target, ready to judge statements.
pub(crate) struct Judge<'a> {
    pub(crate) workload: &'a str,
    pub(crate) target: &'a str,
    pub(crate) access: Option<&'a Access>,
}

impl Judge<'_> {
    /// The evaluation of an unparseable message.
    pub(crate) fn unparseable(&self, error: &ParseError) -> Evaluation {
        Evaluation {
            statements: Vec::new(),
            decision: Decision::deny(
                RuleRef::builtin("builtin:unparseable"),
                format!("the statement could not be parsed: {error}"),
                "send valid PostgreSQL SQL; the agent never forwards what it cannot judge",
            ),
            deciding_statement: None,
            has_execute: false,
        }
    }

    /// Decides every statement of a message (without resolving EXECUTEs).
    pub(crate) fn evaluate(&self, classifications: Vec<Classification>) -> Evaluation {
        let statements: Vec<StatementVerdict> = classifications
            .into_iter()
            .map(|c| self.statement(c))
            .collect();
        let has_execute = statements
            .iter()
            .any(|s| matches!(s.classification.prepared, Prepared::Execute(_)));
        let decisions: Vec<Decision> = statements.iter().map(|s| s.decision.clone()).collect();
        let (decision, deciding_statement) = combine(&decisions);
        Evaluation {
            statements,
            decision,
            deciding_statement,
            has_execute,
        }
    }

    fn statement(&self, classification: Classification) -> StatementVerdict {
        let Some(access) = self.access else {
            let decision = Decision::deny(
                RuleRef::builtin("builtin:no-access-rules"),
                format!(
                    "workload `{}` has no SQL access rules for target `{}`: every statement \
                     is denied",
                    self.workload, self.target
                ),
                format!(
                    "add a [[workload.access]] table with target = \"{}\" to workload `{}`",
                    self.target, self.workload
                ),
            );
            return StatementVerdict {
                classification,
                effects: Vec::new(),
                decision,
                prepared_decision: None,
            };
        };

        let effects: Vec<EffectVerdict> = classification
            .effects
            .iter()
            .map(|e| self.effect(access, e))
            .collect();
        let decision = self.decide(access, &classification, &effects);
        let (decision, prepared_decision) = match (&classification.prepared, decision) {
            // A PREPARE runs nothing: deny it if its statement is denied; otherwise it is
            // allowed and EXECUTE gets the statement's decision (an approval waits there).
            (Prepared::Prepare(_), d @ Decision::Deny { .. }) => (d.clone(), Some(d)),
            (Prepared::Prepare(_), d) => (
                Decision::Allow {
                    rule: RuleRef::builtin("builtin:prepare"),
                },
                Some(d),
            ),
            (_, d) => (d, None),
        };
        StatementVerdict {
            classification,
            effects,
            decision,
            prepared_decision,
        }
    }

    fn decide(&self, access: &Access, c: &Classification, effects: &[EffectVerdict]) -> Decision {
        // 1. Built-in denials.
        if let Some(forbidden) = c.forbidden.first() {
            return Decision::deny(
                RuleRef::builtin(forbidden.rule_name()),
                forbidden.reason(),
                forbidden.hint(),
            );
        }
        for f in &c.functions {
            if let Some(decision) = self.function(access, f) {
                return decision;
            }
        }
        // 2. Deny rules, in file order.
        for rule in &access.deny {
            if let Some(e) = effects
                .iter()
                .find(|e| matches!(&e.outcome, Outcome::Denied(r) if r.name == rule.name))
            {
                let reason = match &rule.reason {
                    Some(reason) => format!("{} ({reason})", describe(e)),
                    None => format!("{} is denied by rule `{}`", describe(e), rule.name),
                };
                return Decision::deny(
                    RuleRef::of(rule),
                    reason,
                    format!(
                        "this is an explicit deny rule of workload `{}` for target `{}`",
                        self.workload, self.target
                    ),
                );
            }
        }
        // 3. Everything must be allowed (or approvable).
        if let Some(e) = effects.iter().find(|e| e.outcome == Outcome::NotAllowed) {
            return self.default_deny(access, e);
        }
        // 4. Approval rules, in file order.
        for approval in &access.approve {
            let matched = effects.iter().any(
                |e| matches!(&e.outcome, Outcome::NeedsApproval(r) if r.name == approval.rule.name),
            );
            if matched {
                return Decision::NeedsApproval {
                    rule: RuleRef::of(&approval.rule),
                    approvers: approval.approvers,
                    groups: approval.groups.clone(),
                    timeout: approval.timeout,
                };
            }
        }
        // 5. Allowed.
        let rule = match effects.first() {
            Some(EffectVerdict {
                outcome: Outcome::Allowed(rule),
                ..
            }) => rule.clone(),
            _ if c.harmless => RuleRef::builtin("builtin:harmless"),
            _ => RuleRef::builtin("builtin:no-effect"),
        };
        Decision::Allow { rule }
    }

    /// A denial for calling function `f`, if it is denied.
    fn function(&self, access: &Access, f: &QualifiedName) -> Option<Decision> {
        let candidates = function_candidates(access, f);
        let any = |p: &FunctionPattern| {
            candidates
                .iter()
                .any(|(schema, name)| p.matches(Some(schema), name))
        };
        if let Some(p) = access.functions.deny.iter().find(|p| any(p)) {
            return Some(Decision::deny(
                RuleRef::function("deny", p),
                format!("function `{f}` is denied by functions.deny `{p}`"),
                format!(
                    "this is an explicit deny of workload `{}` for target `{}`",
                    self.workload, self.target
                ),
            ));
        }
        if is_dangerous_function(&f.name) {
            let allowed = access.functions.allow.iter().any(|p| {
                p.is_exact()
                    && candidates
                        .iter()
                        .all(|(schema, name)| p.matches(Some(schema), name))
            });
            if !allowed {
                return Some(Decision::deny(
                    RuleRef::builtin("builtin:dangerous-function"),
                    format!(
                        "function `{f}` is on the built-in list of dangerous functions (server \
                         files, other sessions, server configuration, or SQL run from a string)"
                    ),
                    format!(
                        "if workload `{}` really needs it, name it exactly in functions.allow \
                         of its [[workload.access]] for target `{}` ({})",
                        self.workload, self.target, access.source
                    ),
                ));
            }
        }
        None
    }

    fn effect(&self, access: &Access, effect: &Effect) -> EffectVerdict {
        let candidates = object_candidates(access, &effect.object);
        let op = effect.operation;
        let objects: Vec<Option<(&str, &str)>> = if candidates.is_empty() {
            vec![None]
        } else {
            candidates
                .iter()
                .map(|q| Some((q.schema.as_deref().unwrap_or(""), q.name.as_str())))
                .collect()
        };
        let any = |rule: &AccessRule| objects.iter().any(|&o| rule.matches(op, o));

        let outcome = if let Some(rule) = access.deny.iter().find(|r| any(r)) {
            Outcome::Denied(RuleRef::of(rule))
        } else if let Some(a) = access.approve.iter().find(|a| any(&a.rule)) {
            Outcome::NeedsApproval(RuleRef::of(&a.rule))
        } else if op == Operation::Call {
            let allowed_by = access.functions.allow.iter().find(|p| {
                objects
                    .iter()
                    .all(|o| o.is_some_and(|(schema, name)| p.matches(Some(schema), name)))
            });
            match allowed_by {
                Some(p) => Outcome::Allowed(RuleRef::function("allow", p)),
                None => Outcome::NotAllowed,
            }
        } else {
            let mut first = None;
            let all =
                objects
                    .iter()
                    .all(|&o| match access.allow.iter().find(|r| r.matches(op, o)) {
                        Some(rule) => {
                            first.get_or_insert(rule);
                            true
                        }
                        None => false,
                    });
            match (all, first) {
                (true, Some(rule)) => Outcome::Allowed(RuleRef::of(rule)),
                _ => Outcome::NotAllowed,
            }
        };
        EffectVerdict {
            effect: effect.clone(),
            candidates,
            outcome,
        }
    }

    fn default_deny(&self, access: &Access, e: &EffectVerdict) -> Decision {
        let op = e.effect.operation;
        let rule = RuleRef {
            name: "default-deny".into(),
            source: Some(access.source.clone()),
        };
        if op == Operation::Call {
            let name = e
                .candidates
                .first()
                .map_or_else(|| e.effect.object.to_string(), |q| q.to_string());
            return Decision::deny(
                rule,
                format!(
                    "CALL of {} is not allowed for workload `{}` on target `{}`: procedures \
                     are opaque",
                    describe_object(e),
                    self.workload,
                    self.target
                ),
                format!(
                    "to allow it, add \"{}\" to functions.allow in the [[workload.access]] for \
                     target `{}` ({})",
                    name.trim_end_matches("()"),
                    self.target,
                    access.source
                ),
            );
        }
        let example = match (&e.effect.object, e.candidates.first()) {
            (Object::Named(..), Some(q)) => format!(
                "{{ operations = [\"{op}\"], tables = [\"{}.{}\"] }}",
                q.schema.as_deref().unwrap_or("public"),
                q.name
            ),
            _ => format!("{{ operations = [\"{op}\"] }}"),
        };
        Decision::deny(
            rule,
            format!(
                "{} is not allowed for workload `{}` on target `{}` (no allow rule matches)",
                describe(e),
                self.workload,
                self.target
            ),
            format!(
                "to allow it, add {example} to `allow` in the [[workload.access]] for target \
                 `{}` ({})",
                self.target, access.source
            ),
        )
    }
}

/// `write on staging.events`, `read on orders (public.orders)`, `do`.
fn describe(e: &EffectVerdict) -> String {
    match &e.effect.object {
        Object::None => format!("`{}`", e.effect.operation),
        _ => format!("`{}` on {}", e.effect.operation, describe_object(e)),
    }
}

fn describe_object(e: &EffectVerdict) -> String {
    let written = e.effect.object.to_string();
    match (&e.effect.object, e.candidates.as_slice()) {
        (Object::Named(_, q), [only]) if q.schema.is_none() => {
            format!("`{written}` (as `{only}`)")
        }
        (Object::Named(_, q), many) if q.schema.is_none() && !many.is_empty() => {
            let names: Vec<String> = many.iter().map(|c| format!("`{c}`")).collect();
            format!("`{written}` (as any of {})", names.join(", "))
        }
        _ => format!("`{written}`"),
    }
}

/// The schema-qualified names an object may be: itself if qualified; else one per schema of
/// the search path (plus `pg_catalog` first for names starting with `pg_`, where PostgreSQL
/// looks first). Empty for objects outside schemas.
fn object_candidates(access: &Access, object: &Object) -> Vec<QualifiedName> {
    let Object::Named(kind, name) = object else {
        return Vec::new();
    };
    if name.schema.is_some() {
        return vec![name.clone()];
    }
    let mut schemas: Vec<&str> = Vec::with_capacity(access.search_path.len() + 1);
    if *kind == ObjectKind::Routine || name.name.starts_with("pg_") {
        schemas.push("pg_catalog");
    }
    for schema in &access.search_path {
        if !schemas.contains(&schema.as_str()) {
            schemas.push(schema);
        }
    }
    schemas
        .into_iter()
        .map(|schema| QualifiedName::new(Some(schema), &name.name))
        .collect()
}

/// Like [`object_candidates`] for a called function, as (schema, name) pairs.
fn function_candidates(access: &Access, f: &QualifiedName) -> Vec<(String, String)> {
    object_candidates(access, &Object::Named(ObjectKind::Routine, f.clone()))
        .into_iter()
        .map(|q| (q.schema.unwrap_or_default(), q.name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dangerous_functions_match_by_name_and_prefix() {
        for name in [
            "pg_read_file",
            "PG_READ_FILE",
            "pg_ls_dir",
            "pg_ls_waldir",
            "dblink",
            "dblink_exec",
            "lo_export",
            "set_config",
            "pg_copy_logical_replication_slot",
            "query_to_xml_and_xmlschema",
        ] {
            assert!(is_dangerous_function(name), "{name}");
        }
        for name in [
            "now",
            "count",
            "lo_create",
            "pg_sleep",
            "current_setting",
            "pg_copy",
        ] {
            assert!(!is_dangerous_function(name), "{name}");
        }
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("a*b", "ab"));
        assert!(wildcard_match("a*b", "axxb"));
        assert!(!wildcard_match("a*b", "axxbc"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match(
            "pg_copy_*_replication_slot",
            "pg_copy_physical_replication_slot"
        ));
    }
}
