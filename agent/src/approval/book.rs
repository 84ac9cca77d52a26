//! The approval book: pending approval requests, recent decisions and time-bound grants.
//! Pure: no I/O, no clock (every operation takes `now`).
//!
//! - A request ([`ApprovalBook::request`]) waits until enough distinct eligible approvers
//!   approve it, one eligible approver denies it, or its timeout passes
//!   ([`ApprovalBook::expire`]).
//! - Eligible: in one of the groups of every rule the statement needs approval for (rules
//!   without groups accept anyone the approval service authenticates), and not the requester.
//!   The **requester** is the workload: an approver whose subject equals the requesting
//!   workload's name, or the token subject the session was opened with, cannot approve.
//!   (Denying one's own request is allowed: it only withdraws it.)
//! - A grant ([`ApprovalBook::grant`]) lets a workload run statements on a target without
//!   waiting until it expires: it covers a statement when, for every rule the statement needs
//!   approval for, the rule needs a single approver, the granter is eligible for it, and every
//!   effect of the statement is within the grant's operations and tables (matched like an
//!   `allow` rule of the policy: an unqualified name must match under every schema it may
//!   resolve to). Rules needing several approvers are never bypassed by a grant.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};

use crate::policy::{AccessRule, ObjectPattern, Operation, SourceLocation};

/// Most pending requests at once (more: refused, the service is overwhelmed).
pub const MAX_PENDING: usize = 1024;
/// Most grants at once.
pub const MAX_GRANTS: usize = 1024;
/// Decided requests kept for listing and for answering late votes (409 instead of 404).
pub const HISTORY: usize = 256;
/// The longest a grant may last.
pub const MAX_GRANT_DURATION: Duration = Duration::from_secs(24 * 3600);

/// The id of an approval request, e.g. `r-7f3a-12`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RequestId(String);

/// The id of a grant, e.g. `g-7f3a-3`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct GrantId(String);

impl RequestId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl GrantId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who sent the statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requester {
    pub workload: String,
    pub pid: u32,
    pub uid: u32,
    /// The process name (`comm`).
    pub process: String,
    pub cgroup: Option<String>,
    /// The subject of the token the session was opened with, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_subject: Option<String>,
}

/// One effect of a statement, as a grant is matched against it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectRef {
    #[serde(serialize_with = "op")]
    pub operation: Operation,
    /// The `(schema, name)` pairs the object may be (several for an unqualified name); empty
    /// when the effect concerns no object in a schema.
    #[serde(skip)]
    pub objects: Vec<(String, String)>,
    /// As shown to approvers: `write staging.events`.
    pub shown: String,
}

/// A rule a statement needs approval for, with the effects of the statement(s) it applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleNeed {
    pub rule: String,
    /// `file:line` of the rule.
    pub ruleset: Option<String>,
    pub approvers: u32,
    pub groups: Vec<String>,
    #[serde(serialize_with = "secs")]
    pub timeout: Duration,
    pub effects: Vec<EffectRef>,
}

/// What the statement does, for approvers and audit. Never literal values: `text` is the
/// normalised text with literals as `?`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct StatementSummary {
    /// `DELETE`, `TRUNCATE TABLE` ...
    pub kinds: Vec<String>,
    #[serde(serialize_with = "ops")]
    pub operations: Vec<Operation>,
    /// Tables (and other schema objects) the statement concerns, as written.
    pub tables: Vec<String>,
    /// Normalised text, literals replaced by `?` (absent when the text could not be
    /// normalised). Shown to approvers, never written to the audit log.
    pub text: Option<String>,
    /// SHA-256 (hex, 16 digits) of the normalised text: ties audit events to a statement
    /// shape without the text.
    pub digest: Option<String>,
    /// The rules the message needs approval for (at least one).
    pub needs: Vec<RuleNeed>,
    /// Whether a grant may cover it (`false` when the effects are not all known, e.g. an
    /// `EXECUTE` of a prepared statement).
    pub grantable: bool,
}

impl StatementSummary {
    /// Distinct approvals needed: the most any rule asks for.
    pub fn approvers_needed(&self) -> u32 {
        self.needs
            .iter()
            .map(|n| n.approvers)
            .max()
            .unwrap_or(1)
            .max(1)
    }

    /// How long the request may wait: the shortest timeout of its rules.
    pub fn timeout(&self) -> Duration {
        self.needs
            .iter()
            .map(|n| n.timeout)
            .min()
            .unwrap_or(Duration::ZERO)
    }

    /// The rule names, comma-separated.
    pub fn rules(&self) -> String {
        let names: Vec<&str> = self.needs.iter().map(|n| n.rule.as_str()).collect();
        names.join(", ")
    }
}

/// A statement waiting for approval, as submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestSpec {
    pub workload: String,
    pub target: String,
    /// The proxy's id of the connection (as in the audit events).
    pub connection_id: u64,
    pub requester: Requester,
    pub statement: StatementSummary,
}

/// An authenticated approver (from the approver's token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approver {
    pub subject: String,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Vote {
    Approve,
    Deny,
}

/// A request waiting for its approvals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    pub id: RequestId,
    #[serde(flatten)]
    pub spec: RequestSpec,
    pub approvers_needed: u32,
    #[serde(serialize_with = "time")]
    pub requested_at: SystemTime,
    #[serde(serialize_with = "time")]
    pub expires_at: SystemTime,
    /// Subjects that approved so far, in order.
    pub approvals: Vec<String>,
    #[serde(skip)]
    seq: u64,
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Resolution {
    Approved {
        approvers: Vec<String>,
    },
    Denied {
        by: String,
    },
    Expired {
        #[serde(serialize_with = "secs")]
        after: Duration,
    },
    /// The statement stopped waiting (the client went away or cancelled).
    Withdrawn,
}

/// A request that ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decided {
    #[serde(flatten)]
    pub request: Pending,
    #[serde(flatten)]
    pub resolution: Resolution,
    #[serde(serialize_with = "time")]
    pub decided_at: SystemTime,
}

/// What a vote did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoteOutcome {
    /// Counted; more approvals are needed.
    Recorded { approvals: usize, needed: u32 },
    /// This approver had already approved: not counted twice.
    AlreadyCounted { approvals: usize, needed: u32 },
    /// The request is approved (it is now decided).
    Approved { approvers: Vec<String> },
    /// The request is denied (it is now decided).
    Denied { by: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoteError {
    #[error("no approval request {0}")]
    Unknown(String),
    #[error("approval request {id} is already decided ({outcome})")]
    AlreadyDecided { id: String, outcome: String },
    #[error("approval request {0} has expired")]
    Expired(String),
    #[error("{subject} may not decide approval request {id}: rule `{rule}` needs an approver in {}", groups.join(", "))]
    NotInGroup {
        id: String,
        subject: String,
        rule: String,
        groups: Vec<String>,
    },
    #[error("{subject} may not approve approval request {id}: it is the requester's own")]
    SelfApproval { id: String, subject: String },
}

impl VoteError {
    /// A short stable code for audit events.
    pub fn code(&self) -> &'static str {
        match self {
            VoteError::Unknown(_) => "unknown-request",
            VoteError::AlreadyDecided { .. } => "already-decided",
            VoteError::Expired(_) => "expired",
            VoteError::NotInGroup { .. } => "not-in-group",
            VoteError::SelfApproval { .. } => "self-approval",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("too many statements are waiting for approval (at most {MAX_PENDING})")]
    TooMany,
    #[error("the statement needs no approval rule")]
    NothingToApprove,
}

/// A grant to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantSpec {
    pub workload: String,
    pub target: String,
    pub operations: Vec<Operation>,
    /// `schema.table` globs, as in policy rules. Empty only when every operation concerns no
    /// table (`do`, `set`, ...).
    pub tables: Vec<String>,
    pub duration: Duration,
    pub by: Approver,
    pub reason: Option<String>,
}

/// A time-bound grant.
#[derive(Debug, Clone, Serialize)]
pub struct Grant {
    pub id: GrantId,
    pub workload: String,
    pub target: String,
    /// The operations granted, with those they imply (`bulk_write` and `copy_in` imply
    /// `write`, `copy_out` implies `read`).
    #[serde(serialize_with = "ops")]
    pub operations: Vec<Operation>,
    pub tables: Vec<String>,
    pub by: String,
    pub by_groups: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(serialize_with = "time")]
    pub created_at: SystemTime,
    #[serde(serialize_with = "time")]
    pub expires_at: SystemTime,
    #[serde(skip)]
    rule: AccessRule,
}

impl Grant {
    /// Whether this grant lets `statement` of `workload` on `target` pass without waiting.
    pub fn covers(&self, workload: &str, target: &str, statement: &StatementSummary) -> bool {
        if self.workload != workload || self.target != target || !statement.grantable {
            return false;
        }
        !statement.needs.is_empty()
            && statement.needs.iter().all(|need| {
                need.approvers <= 1
                    && eligible_for(&self.by_groups, &need.groups)
                    && !need.effects.is_empty()
                    && need.effects.iter().all(|e| self.covers_effect(e))
            })
    }

    fn covers_effect(&self, effect: &EffectRef) -> bool {
        if effect.objects.is_empty() {
            return self.rule.matches(effect.operation, None);
        }
        effect
            .objects
            .iter()
            .all(|(schema, name)| self.rule.matches(effect.operation, Some((schema, name))))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("a grant needs at least one operation")]
    NoOperations,
    #[error("{0}")]
    BadTable(String),
    #[error(
        "operations on tables ({0}) need `tables` patterns; operations on no table ({1}) must be granted without tables, in a grant of their own"
    )]
    TablesMismatch(String, String),
    #[error(
        "a grant lasts from 1s to {}",
        humantime::format_duration(MAX_GRANT_DURATION)
    )]
    BadDuration,
    #[error("{0} may not grant to workload {0}: it is its own")]
    SelfGrant(String),
    #[error("too many grants (at most {MAX_GRANTS})")]
    TooMany,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevokeError {
    #[error("no grant {0} (unknown, revoked or expired)")]
    Unknown(String),
}

/// What [`ApprovalBook::expire`] removed.
#[derive(Debug, Clone, Default)]
pub struct ExpiredItems {
    pub requests: Vec<Decided>,
    pub grants: Vec<Grant>,
}

/// The book's state at a time, for listings.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub pending: Vec<Pending>,
    pub grants: Vec<Grant>,
    /// Recently decided requests, newest first.
    pub recent: Vec<Decided>,
}

/// Pending requests, recent decisions and grants.
#[derive(Debug)]
pub struct ApprovalBook {
    tag: String,
    next: u64,
    pending: BTreeMap<RequestId, Pending>,
    decided: VecDeque<Decided>,
    grants: BTreeMap<GrantId, Grant>,
}

impl ApprovalBook {
    /// A book whose ids contain `tag` (e.g. a few random hex digits, so ids are not reused
    /// after a restart).
    pub fn new(tag: &str) -> Self {
        Self {
            tag: tag.to_string(),
            next: 1,
            pending: BTreeMap::new(),
            decided: VecDeque::new(),
            grants: BTreeMap::new(),
        }
    }

    fn next_seq(&mut self) -> u64 {
        let n = self.next;
        self.next += 1;
        n
    }

    /// Files a request; it expires at `now` + the shortest timeout of its rules.
    pub fn request(&mut self, now: SystemTime, spec: RequestSpec) -> Result<Pending, RequestError> {
        if spec.statement.needs.is_empty() {
            return Err(RequestError::NothingToApprove);
        }
        if self.pending.len() >= MAX_PENDING {
            return Err(RequestError::TooMany);
        }
        let seq = self.next_seq();
        let id = RequestId(format!("r-{}-{seq}", self.tag));
        let pending = Pending {
            id: id.clone(),
            approvers_needed: spec.statement.approvers_needed(),
            requested_at: now,
            expires_at: now + spec.statement.timeout(),
            spec,
            approvals: Vec::new(),
            seq,
        };
        self.pending.insert(id, pending.clone());
        Ok(pending)
    }

    /// A pending request (not yet expired at `now`).
    pub fn pending(&self, now: SystemTime, id: &str) -> Option<&Pending> {
        self.pending
            .get(&RequestId(id.to_string()))
            .filter(|p| now < p.expires_at)
    }

    /// A request decided recently.
    pub fn decided(&self, id: &str) -> Option<&Decided> {
        self.decided.iter().find(|d| d.request.id.as_str() == id)
    }

    /// An approver's vote. Returns the request as it is after the vote, and what the vote did.
    pub fn vote(
        &mut self,
        now: SystemTime,
        id: &str,
        approver: &Approver,
        vote: Vote,
    ) -> Result<(Pending, VoteOutcome), VoteError> {
        let key = RequestId(id.to_string());
        let Some(pending) = self.pending.get_mut(&key) else {
            return Err(match self.decided(id) {
                Some(d) if matches!(d.resolution, Resolution::Expired { .. }) => {
                    VoteError::Expired(id.to_string())
                }
                Some(d) => VoteError::AlreadyDecided {
                    id: id.to_string(),
                    outcome: outcome_name(&d.resolution).to_string(),
                },
                None => VoteError::Unknown(id.to_string()),
            });
        };
        if now >= pending.expires_at {
            return Err(VoteError::Expired(id.to_string()));
        }
        if let Some(need) = pending
            .spec
            .statement
            .needs
            .iter()
            .find(|n| !eligible_for(&approver.groups, &n.groups))
        {
            return Err(VoteError::NotInGroup {
                id: id.to_string(),
                subject: approver.subject.clone(),
                rule: need.rule.clone(),
                groups: need.groups.clone(),
            });
        }
        let needed = pending.approvers_needed;
        let outcome = match vote {
            Vote::Deny => VoteOutcome::Denied {
                by: approver.subject.clone(),
            },
            Vote::Approve => {
                if is_requester(&pending.spec, &approver.subject) {
                    return Err(VoteError::SelfApproval {
                        id: id.to_string(),
                        subject: approver.subject.clone(),
                    });
                }
                if pending.approvals.contains(&approver.subject) {
                    return Ok((
                        pending.clone(),
                        VoteOutcome::AlreadyCounted {
                            approvals: pending.approvals.len(),
                            needed,
                        },
                    ));
                }
                pending.approvals.push(approver.subject.clone());
                if pending.approvals.len() >= needed as usize {
                    VoteOutcome::Approved {
                        approvers: pending.approvals.clone(),
                    }
                } else {
                    return Ok((
                        pending.clone(),
                        VoteOutcome::Recorded {
                            approvals: pending.approvals.len(),
                            needed,
                        },
                    ));
                }
            }
        };
        let resolution = match &outcome {
            VoteOutcome::Approved { approvers } => Resolution::Approved {
                approvers: approvers.clone(),
            },
            VoteOutcome::Denied { by } => Resolution::Denied { by: by.clone() },
            VoteOutcome::Recorded { .. } | VoteOutcome::AlreadyCounted { .. } => {
                unreachable!("only decisive votes get here")
            }
        };
        let decided = self.decide(now, &key, resolution);
        Ok((decided.request, outcome))
    }

    /// The statement stopped waiting: the request ends as withdrawn.
    pub fn withdraw(&mut self, now: SystemTime, id: &RequestId) -> Option<Decided> {
        self.pending
            .contains_key(id)
            .then(|| self.decide(now, id, Resolution::Withdrawn))
    }

    fn decide(&mut self, now: SystemTime, id: &RequestId, resolution: Resolution) -> Decided {
        let request = self
            .pending
            .remove(id)
            .expect("decide is called on pending requests");
        let decided = Decided {
            request,
            resolution,
            decided_at: now,
        };
        if self.decided.len() >= HISTORY {
            self.decided.pop_back();
        }
        self.decided.push_front(decided.clone());
        decided
    }

    /// Ends the requests and grants whose time is up at `now`.
    pub fn expire(&mut self, now: SystemTime) -> ExpiredItems {
        let due: Vec<RequestId> = self
            .pending
            .values()
            .filter(|p| now >= p.expires_at)
            .map(|p| p.id.clone())
            .collect();
        let requests = due
            .iter()
            .map(|id| {
                let after = self.pending[id].spec.statement.timeout();
                self.decide(now, id, Resolution::Expired { after })
            })
            .collect();
        let gone: Vec<GrantId> = self
            .grants
            .values()
            .filter(|g| now >= g.expires_at)
            .map(|g| g.id.clone())
            .collect();
        let grants = gone
            .iter()
            .filter_map(|id| self.grants.remove(id))
            .collect();
        ExpiredItems { requests, grants }
    }

    /// When the next request or grant expires.
    pub fn next_deadline(&self) -> Option<SystemTime> {
        self.pending
            .values()
            .map(|p| p.expires_at)
            .chain(self.grants.values().map(|g| g.expires_at))
            .min()
    }

    /// Creates a grant from `now` for `spec.duration`.
    pub fn grant(&mut self, now: SystemTime, spec: GrantSpec) -> Result<Grant, GrantError> {
        if spec.operations.is_empty() {
            return Err(GrantError::NoOperations);
        }
        if spec.duration < Duration::from_secs(1) || spec.duration > MAX_GRANT_DURATION {
            return Err(GrantError::BadDuration);
        }
        if spec.by.subject == spec.workload {
            return Err(GrantError::SelfGrant(spec.by.subject));
        }
        let operations = implied(&spec.operations);
        let (with, without): (Vec<Operation>, Vec<Operation>) =
            operations.iter().partition(|op| op.has_objects());
        let tables = match (spec.tables.is_empty(), with.is_empty(), without.is_empty()) {
            (false, false, true) => Some(
                spec.tables
                    .iter()
                    .map(|t| ObjectPattern::parse(t).map_err(GrantError::BadTable))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            (true, true, false) => None,
            _ => {
                let names = |ops: &[Operation]| {
                    ops.iter()
                        .map(|o| o.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                return Err(GrantError::TablesMismatch(names(&with), names(&without)));
            }
        };
        if self.grants.len() >= MAX_GRANTS {
            return Err(GrantError::TooMany);
        }
        let seq = self.next_seq();
        let id = GrantId(format!("g-{}-{seq}", self.tag));
        let grant = Grant {
            rule: AccessRule {
                name: id.0.clone(),
                operations: operations.clone(),
                tables,
                reason: None,
                source: SourceLocation {
                    file: "grant".into(),
                    line: 0,
                },
            },
            id: id.clone(),
            workload: spec.workload,
            target: spec.target,
            operations,
            tables: spec.tables,
            by: spec.by.subject,
            by_groups: spec.by.groups,
            reason: spec.reason,
            created_at: now,
            expires_at: now + spec.duration,
        };
        self.grants.insert(id, grant.clone());
        Ok(grant)
    }

    /// The first live grant covering the statement (see [`Grant::covers`]).
    pub fn covered_by_grant(
        &self,
        now: SystemTime,
        workload: &str,
        target: &str,
        statement: &StatementSummary,
    ) -> Option<&Grant> {
        self.grants
            .values()
            .filter(|g| now < g.expires_at)
            .find(|g| g.covers(workload, target, statement))
    }

    /// Ends a grant before its time.
    pub fn revoke(&mut self, now: SystemTime, id: &str) -> Result<Grant, RevokeError> {
        let key = GrantId(id.to_string());
        match self.grants.get(&key) {
            Some(g) if now < g.expires_at => Ok(self.grants.remove(&key).expect("present")),
            _ => Err(RevokeError::Unknown(id.to_string())),
        }
    }

    /// Pending requests (oldest first), live grants and recent decisions at `now`.
    pub fn list(&self, now: SystemTime) -> Listing {
        let mut pending: Vec<Pending> = self
            .pending
            .values()
            .filter(|p| now < p.expires_at)
            .cloned()
            .collect();
        pending.sort_by_key(|p| p.seq);
        let mut grants: Vec<Grant> = self
            .grants
            .values()
            .filter(|g| now < g.expires_at)
            .cloned()
            .collect();
        grants.sort_by_key(|g| g.created_at);
        Listing {
            pending,
            grants,
            recent: self.decided.iter().cloned().collect(),
        }
    }
}

/// Whether someone in `groups` may approve for a rule requiring `required` (empty: anyone).
fn eligible_for(groups: &[String], required: &[String]) -> bool {
    required.is_empty() || required.iter().any(|g| groups.contains(g))
}

/// Whether `subject` is the requester of `spec` (see the module documentation).
fn is_requester(spec: &RequestSpec, subject: &str) -> bool {
    subject == spec.workload || spec.requester.token_subject.as_deref() == Some(subject)
}

/// `operations` with the operations they imply, in documentation order.
fn implied(operations: &[Operation]) -> Vec<Operation> {
    let mut all: Vec<Operation> = operations.to_vec();
    for op in operations {
        match op {
            Operation::BulkWrite | Operation::CopyIn => all.push(Operation::Write),
            Operation::CopyOut => all.push(Operation::Read),
            _ => {}
        }
    }
    Operation::ALL
        .into_iter()
        .filter(|op| all.contains(op))
        .collect()
}

/// `approved`, `denied`, `expired` or `withdrawn`.
pub fn outcome_name(resolution: &Resolution) -> &'static str {
    match resolution {
        Resolution::Approved { .. } => "approved",
        Resolution::Denied { .. } => "denied",
        Resolution::Expired { .. } => "expired",
        Resolution::Withdrawn => "withdrawn",
    }
}

fn time<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

fn op<S: Serializer>(op: &Operation, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(op.as_str())
}

fn ops<S: Serializer>(ops: &[Operation], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(ops.iter().map(|o| o.as_str()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    pub(crate) fn effect(op: Operation, schema: &str, name: &str) -> EffectRef {
        EffectRef {
            operation: op,
            objects: vec![(schema.into(), name.into())],
            shown: format!("{op} {schema}.{name}"),
        }
    }

    pub(crate) fn need(approvers: u32, groups: &[&str], effects: Vec<EffectRef>) -> RuleNeed {
        RuleNeed {
            rule: "bulk-staging".into(),
            ruleset: Some("p.toml:9".into()),
            approvers,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            timeout: Duration::from_secs(600),
            effects,
        }
    }

    /// `DELETE FROM staging.events` by workload `nightly-chunker`.
    pub(crate) fn spec(approvers: u32, groups: &[&str]) -> RequestSpec {
        let effects = vec![
            effect(Operation::Write, "staging", "events"),
            effect(Operation::BulkWrite, "staging", "events"),
        ];
        RequestSpec {
            workload: "nightly-chunker".into(),
            target: "orders-db".into(),
            connection_id: 7,
            requester: Requester {
                workload: "nightly-chunker".into(),
                pid: 4321,
                uid: 1000,
                process: "psql".into(),
                cgroup: Some("/chunk-agent/jobs/nightly-chunker/job-1".into()),
                token_subject: Some("svc-chunker".into()),
            },
            statement: StatementSummary {
                kinds: vec!["DELETE".into()],
                operations: vec![Operation::Write, Operation::BulkWrite],
                tables: vec!["staging.events".into()],
                text: Some("delete from staging.events".into()),
                digest: Some("0123456789abcdef".into()),
                needs: vec![need(approvers, groups, effects)],
                grantable: true,
            },
        }
    }

    pub(crate) fn approver(subject: &str, groups: &[&str]) -> Approver {
        Approver {
            subject: subject.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn book() -> ApprovalBook {
        ApprovalBook::new("test")
    }

    #[test]
    fn two_approvers_approve_and_the_request_is_decided() {
        let mut b = book();
        let p = b.request(t(0), spec(2, &["dba"])).unwrap();
        assert_eq!(p.id.as_str(), "r-test-1");
        assert_eq!(p.expires_at, t(600));
        let (_, first) = b
            .vote(
                t(1),
                p.id.as_str(),
                &approver("alice", &["dba"]),
                Vote::Approve,
            )
            .unwrap();
        assert_eq!(
            first,
            VoteOutcome::Recorded {
                approvals: 1,
                needed: 2
            }
        );
        assert_eq!(b.list(t(1)).pending[0].approvals, ["alice"]);
        let (after, second) = b
            .vote(
                t(2),
                p.id.as_str(),
                &approver("bob", &["ops", "dba"]),
                Vote::Approve,
            )
            .unwrap();
        assert_eq!(
            second,
            VoteOutcome::Approved {
                approvers: vec!["alice".into(), "bob".into()]
            }
        );
        assert_eq!(after.approvals, ["alice", "bob"]);
        assert!(b.list(t(2)).pending.is_empty());
        assert_eq!(b.list(t(2)).recent.len(), 1);
        assert_eq!(b.next_deadline(), None);
        let late = b.vote(
            t(3),
            p.id.as_str(),
            &approver("carol", &["dba"]),
            Vote::Approve,
        );
        assert!(
            matches!(late, Err(VoteError::AlreadyDecided { ref outcome, .. }) if outcome == "approved")
        );
    }

    #[test]
    fn the_same_approver_counts_once() {
        let mut b = book();
        let p = b.request(t(0), spec(2, &[])).unwrap();
        let alice = approver("alice", &[]);
        b.vote(t(1), p.id.as_str(), &alice, Vote::Approve).unwrap();
        let (after, again) = b.vote(t(2), p.id.as_str(), &alice, Vote::Approve).unwrap();
        assert_eq!(
            again,
            VoteOutcome::AlreadyCounted {
                approvals: 1,
                needed: 2
            }
        );
        assert_eq!(after.approvals, ["alice"]);
        assert_eq!(b.list(t(2)).pending.len(), 1, "still waiting");
    }

    #[test]
    fn an_approver_outside_the_groups_is_refused() {
        let mut b = book();
        let p = b.request(t(0), spec(1, &["dba"])).unwrap();
        let err = b
            .vote(
                t(1),
                p.id.as_str(),
                &approver("mallory", &["dev"]),
                Vote::Approve,
            )
            .unwrap_err();
        assert_eq!(err.code(), "not-in-group");
        assert!(err.to_string().contains("dba"), "{err}");
        let err = b
            .vote(
                t(1),
                p.id.as_str(),
                &approver("mallory", &["dev"]),
                Vote::Deny,
            )
            .unwrap_err();
        assert_eq!(err.code(), "not-in-group", "denying needs the group too");
        assert_eq!(b.list(t(1)).pending[0].approvals.len(), 0);
    }

    #[test]
    fn every_rule_of_the_message_restricts_the_approvers() {
        let mut b = book();
        let mut s = spec(1, &["dba"]);
        let mut second = need(
            1,
            &["security"],
            vec![effect(Operation::Ddl, "public", "t")],
        );
        second.rule = "ddl".into();
        s.statement.needs.push(second);
        let p = b.request(t(0), s).unwrap();
        let err = b
            .vote(
                t(1),
                p.id.as_str(),
                &approver("alice", &["dba"]),
                Vote::Approve,
            )
            .unwrap_err();
        assert!(matches!(err, VoteError::NotInGroup { ref rule, .. } if rule == "ddl"));
        let (_, ok) = b
            .vote(
                t(1),
                p.id.as_str(),
                &approver("bob", &["dba", "security"]),
                Vote::Approve,
            )
            .unwrap();
        assert!(matches!(ok, VoteOutcome::Approved { .. }));
    }

    #[test]
    fn the_requester_cannot_approve_its_own_request() {
        let mut b = book();
        let p = b.request(t(0), spec(1, &[])).unwrap();
        for subject in ["nightly-chunker", "svc-chunker"] {
            let err = b
                .vote(t(1), p.id.as_str(), &approver(subject, &[]), Vote::Approve)
                .unwrap_err();
            assert_eq!(err.code(), "self-approval", "{subject}");
        }
        // Denying its own request only withdraws it: allowed.
        let (_, outcome) = b
            .vote(
                t(2),
                p.id.as_str(),
                &approver("svc-chunker", &[]),
                Vote::Deny,
            )
            .unwrap();
        assert_eq!(
            outcome,
            VoteOutcome::Denied {
                by: "svc-chunker".into()
            }
        );
    }

    #[test]
    fn one_deny_decides_even_after_approvals() {
        let mut b = book();
        let p = b.request(t(0), spec(2, &["dba"])).unwrap();
        b.vote(
            t(1),
            p.id.as_str(),
            &approver("alice", &["dba"]),
            Vote::Approve,
        )
        .unwrap();
        let (_, outcome) = b
            .vote(t(2), p.id.as_str(), &approver("bob", &["dba"]), Vote::Deny)
            .unwrap();
        assert_eq!(outcome, VoteOutcome::Denied { by: "bob".into() });
        assert!(b.list(t(2)).pending.is_empty());
        assert_eq!(
            b.decided(p.id.as_str()).unwrap().resolution,
            Resolution::Denied { by: "bob".into() }
        );
    }

    #[test]
    fn requests_expire_at_their_timeout() {
        let mut b = book();
        let p = b.request(t(0), spec(1, &[])).unwrap();
        assert_eq!(b.next_deadline(), Some(t(600)));
        assert!(b.expire(t(599)).requests.is_empty());
        assert!(b.pending(t(599), p.id.as_str()).is_some());
        assert!(b.pending(t(600), p.id.as_str()).is_none(), "due is gone");
        let err = b
            .vote(
                t(600),
                p.id.as_str(),
                &approver("alice", &[]),
                Vote::Approve,
            )
            .unwrap_err();
        assert_eq!(err.code(), "expired");
        let expired = b.expire(t(600)).requests;
        assert_eq!(expired.len(), 1);
        assert_eq!(
            expired[0].resolution,
            Resolution::Expired {
                after: Duration::from_secs(600)
            }
        );
        let err = b
            .vote(
                t(601),
                p.id.as_str(),
                &approver("alice", &[]),
                Vote::Approve,
            )
            .unwrap_err();
        assert_eq!(err.code(), "expired", "after the sweep too");
        assert_eq!(
            b.vote(t(601), "r-test-99", &approver("alice", &[]), Vote::Approve)
                .unwrap_err()
                .code(),
            "unknown-request"
        );
    }

    #[test]
    fn the_shortest_timeout_and_the_most_approvers_of_the_rules_apply() {
        let mut s = spec(1, &[]);
        let mut other = need(3, &[], vec![effect(Operation::Ddl, "public", "t")]);
        other.timeout = Duration::from_secs(30);
        s.statement.needs.push(other);
        let mut b = book();
        let p = b.request(t(0), s).unwrap();
        assert_eq!(p.approvers_needed, 3);
        assert_eq!(p.expires_at, t(30));
    }

    #[test]
    fn withdrawn_requests_end_and_cannot_be_voted_on() {
        let mut b = book();
        let p = b.request(t(0), spec(1, &[])).unwrap();
        let d = b.withdraw(t(1), &p.id).unwrap();
        assert_eq!(d.resolution, Resolution::Withdrawn);
        assert!(b.withdraw(t(2), &p.id).is_none());
        let err = b
            .vote(t(2), p.id.as_str(), &approver("alice", &[]), Vote::Approve)
            .unwrap_err();
        assert_eq!(err.code(), "already-decided");
    }

    fn grant_spec(ops: &[Operation], tables: &[&str], by: Approver) -> GrantSpec {
        GrantSpec {
            workload: "nightly-chunker".into(),
            target: "orders-db".into(),
            operations: ops.to_vec(),
            tables: tables.iter().map(|t| t.to_string()).collect(),
            duration: Duration::from_secs(7200),
            by,
            reason: Some("backfill".into()),
        }
    }

    #[test]
    fn a_grant_covers_matching_statements_until_it_expires() {
        let mut b = book();
        let g = b
            .grant(
                t(0),
                grant_spec(
                    &[Operation::BulkWrite],
                    &["staging.events"],
                    approver("alice", &["dba"]),
                ),
            )
            .unwrap();
        assert_eq!(
            g.operations,
            [Operation::Write, Operation::BulkWrite],
            "bulk_write implies write"
        );
        let s = spec(1, &["dba"]).statement;
        let covered = b.covered_by_grant(t(10), "nightly-chunker", "orders-db", &s);
        assert_eq!(covered.map(|g| &g.id), Some(&g.id));
        assert!(
            b.covered_by_grant(t(10), "other", "orders-db", &s)
                .is_none()
        );
        assert!(
            b.covered_by_grant(t(10), "nightly-chunker", "other-db", &s)
                .is_none()
        );
        assert_eq!(b.next_deadline(), Some(t(7200)));
        assert!(
            b.covered_by_grant(t(7200), "nightly-chunker", "orders-db", &s)
                .is_none()
        );
        let expired = b.expire(t(7200));
        assert_eq!(expired.grants.len(), 1);
        assert!(b.list(t(7200)).grants.is_empty());
    }

    #[test]
    fn a_grant_does_not_cover_a_statement_with_an_extra_effect() {
        let mut b = book();
        b.grant(
            t(0),
            grant_spec(
                &[Operation::Write, Operation::BulkWrite],
                &["staging.*"],
                approver("alice", &["dba"]),
            ),
        )
        .unwrap();
        let mut s = spec(1, &["dba"]).statement;
        assert!(
            b.covered_by_grant(t(1), "nightly-chunker", "orders-db", &s)
                .is_some()
        );
        s.needs[0]
            .effects
            .push(effect(Operation::Read, "public", "orders"));
        assert!(
            b.covered_by_grant(t(1), "nightly-chunker", "orders-db", &s)
                .is_none()
        );
    }

    #[test]
    fn an_unqualified_name_is_covered_only_under_every_schema_it_may_be() {
        let mut b = book();
        b.grant(
            t(0),
            grant_spec(
                &[Operation::BulkWrite],
                &["staging.*"],
                approver("alice", &[]),
            ),
        )
        .unwrap();
        let mut s = spec(1, &[]).statement;
        for e in &mut s.needs[0].effects {
            e.objects = vec![
                ("staging".into(), "events".into()),
                ("public".into(), "events".into()),
            ];
        }
        assert!(
            b.covered_by_grant(t(1), "nightly-chunker", "orders-db", &s)
                .is_none()
        );
    }

    #[test]
    fn grants_do_not_bypass_group_or_multi_approver_rules_or_unknown_effects() {
        let mut b = book();
        b.grant(
            t(0),
            grant_spec(
                &[Operation::BulkWrite],
                &["staging.events"],
                approver("dev", &["dev"]),
            ),
        )
        .unwrap();
        let s = spec(1, &["dba"]).statement;
        assert!(
            b.covered_by_grant(t(1), "nightly-chunker", "orders-db", &s)
                .is_none(),
            "granter not in dba"
        );
        let s = spec(2, &[]).statement;
        assert!(
            b.covered_by_grant(t(1), "nightly-chunker", "orders-db", &s)
                .is_none(),
            "two approvers"
        );
        let mut s = spec(1, &[]).statement;
        assert!(
            b.covered_by_grant(t(1), "nightly-chunker", "orders-db", &s)
                .is_some()
        );
        s.grantable = false;
        assert!(
            b.covered_by_grant(t(1), "nightly-chunker", "orders-db", &s)
                .is_none(),
            "EXECUTE"
        );
        let mut s = spec(1, &[]).statement;
        s.needs[0].effects.clear();
        assert!(
            b.covered_by_grant(t(1), "nightly-chunker", "orders-db", &s)
                .is_none(),
            "no effects"
        );
    }

    #[test]
    fn grants_are_validated() {
        let mut b = book();
        let alice = approver("alice", &[]);
        let err = |b: &mut ApprovalBook, s: GrantSpec| b.grant(t(0), s).unwrap_err();
        assert_eq!(
            err(&mut b, grant_spec(&[], &["a.b"], alice.clone())),
            GrantError::NoOperations
        );
        assert!(matches!(
            err(&mut b, grant_spec(&[Operation::Write], &["events"], alice.clone())),
            GrantError::BadTable(m) if m.contains("schema")
        ));
        assert!(matches!(
            err(&mut b, grant_spec(&[Operation::Write], &[], alice.clone())),
            GrantError::TablesMismatch(..)
        ));
        assert!(matches!(
            err(
                &mut b,
                grant_spec(&[Operation::Write, Operation::Do], &["a.b"], alice.clone())
            ),
            GrantError::TablesMismatch(..)
        ));
        assert!(
            b.grant(t(0), grant_spec(&[Operation::Do], &[], alice.clone()))
                .is_ok()
        );
        let mut long = grant_spec(&[Operation::Write], &["a.b"], alice.clone());
        long.duration = Duration::from_secs(25 * 3600);
        assert_eq!(err(&mut b, long), GrantError::BadDuration);
        assert!(matches!(
            err(
                &mut b,
                grant_spec(
                    &[Operation::Write],
                    &["a.b"],
                    approver("nightly-chunker", &[])
                )
            ),
            GrantError::SelfGrant(_)
        ));
    }

    #[test]
    fn a_revoked_grant_covers_nothing() {
        let mut b = book();
        let g = b
            .grant(
                t(0),
                grant_spec(
                    &[Operation::BulkWrite],
                    &["staging.events"],
                    approver("alice", &[]),
                ),
            )
            .unwrap();
        let s = spec(1, &[]).statement;
        assert!(
            b.covered_by_grant(t(1), "nightly-chunker", "orders-db", &s)
                .is_some()
        );
        assert_eq!(b.revoke(t(2), g.id.as_str()).unwrap().id, g.id);
        assert!(
            b.covered_by_grant(t(3), "nightly-chunker", "orders-db", &s)
                .is_none()
        );
        assert_eq!(
            b.revoke(t(3), g.id.as_str()).unwrap_err(),
            RevokeError::Unknown(g.id.to_string())
        );
    }

    #[test]
    fn listings_serialize_without_hidden_fields() {
        let mut b = book();
        b.request(t(0), spec(1, &["dba"])).unwrap();
        let v = serde_json::to_value(b.list(t(1))).unwrap();
        let p = &v["pending"][0];
        assert_eq!(p["id"], "r-test-1");
        assert_eq!(p["workload"], "nightly-chunker");
        assert_eq!(p["statement"]["needs"][0]["timeout"], 600);
        assert_eq!(
            p["statement"]["operations"],
            serde_json::json!(["write", "bulk_write"])
        );
        assert!(p["expires_at"].as_str().unwrap().ends_with('Z'));
        assert!(p.get("seq").is_none());
    }
}
