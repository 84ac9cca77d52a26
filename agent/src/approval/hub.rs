//! The approval service's async core: an [`ApprovalBook`] behind a lock, the sessions waiting
//! on its requests, a sweeper that expires requests and grants on time (by the [`Clock`]), and
//! the audit events (and webhook notifications) of every step.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::sync::{Notify, oneshot};

use super::book::{
    ApprovalBook, Approver, Decided, Grant, GrantError, GrantId, GrantSpec, Listing, Pending,
    RequestError, RequestId, RequestSpec, Resolution, RevokeError, Vote, VoteError, VoteOutcome,
};
use super::clock::Clock;
use super::notify::Notifier;
use crate::audit;
use crate::sql::{DENIED_SQLSTATE, Denial, RuleRef};

/// Where the hub's audit events go (the agent's [`audit::AuditLog`], or a test recorder).
pub trait Audit: Send + Sync + 'static {
    fn emit(&self, event: Value);
}

impl Audit for audit::AuditLog {
    fn emit(&self, event: Value) {
        audit::AuditLog::emit(self, event);
    }
}

/// What happens to a statement needing approval ([`ApprovalHub::submit`]).
#[derive(Debug)]
pub enum Admission {
    /// A live grant covers it: forward it now.
    Granted(GrantId),
    /// It waits: send [`HeldStatement::notice`] to the client, then await
    /// [`HeldStatement::wait`].
    Held(HeldStatement),
    /// Refused at once (no approval service, or too many waiting).
    Refused(Refused),
}

/// Enough approvers approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    pub id: RequestId,
    pub approvers: Vec<String>,
}

/// Why a statement needing approval does not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The request, when one was filed.
    pub id: Option<RequestId>,
    pub reason: RefusalReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusalReason {
    Denied { by: String },
    Expired { after: Duration },
    ServiceUnavailable { why: String },
}

impl Refused {
    fn unavailable(id: Option<RequestId>, why: impl Into<String>) -> Self {
        Self {
            id,
            reason: RefusalReason::ServiceUnavailable { why: why.into() },
        }
    }

    /// The ErrorResponse fields (SQLSTATE 42501) for the client, naming the request and the
    /// approver or the timeout. `rule` is the rule the statement needed approval for.
    pub fn denial(&self, rule: &RuleRef) -> Denial {
        let request = self
            .id
            .as_ref()
            .map_or_else(String::new, |id| format!("approval request {id} "));
        let (message, hint) = match &self.reason {
            RefusalReason::Denied { by } => (
                format!("permission denied by policy: {request}was denied by {by}"),
                "ask the approver why, or change the statement".to_string(),
            ),
            RefusalReason::Expired { after } => (
                format!(
                    "permission denied by policy: {request}was not approved within {}",
                    humantime::format_duration(*after)
                ),
                "ask an approver to approve it sooner, or for a time-bound grant".to_string(),
            ),
            RefusalReason::ServiceUnavailable { why } => (
                format!(
                    "permission denied by policy: this statement needs approval ({rule}) and the \
                     approval service is unavailable: {why}"
                ),
                "configure the agent's approval service, or ask an approver for a time-bound \
                 grant"
                    .to_string(),
            ),
        };
        Denial {
            severity: "ERROR",
            sqlstate: DENIED_SQLSTATE,
            message,
            detail: format!("Rule {rule} requires an approval."),
            hint,
        }
    }
}

/// A statement waiting for approval. Dropping it (the client went away, the wait was
/// cancelled) withdraws the request.
#[derive(Debug)]
pub struct HeldStatement {
    id: RequestId,
    notice: String,
    resolution: Option<oneshot::Receiver<Resolution>>,
    hub: ApprovalHub,
}

impl HeldStatement {
    pub fn id(&self) -> &RequestId {
        &self.id
    }

    /// The text of the NoticeResponse telling the client it waits, and where to approve.
    pub fn notice(&self) -> &str {
        &self.notice
    }

    /// Waits for the decision.
    pub async fn wait(mut self) -> Result<Approved, Refused> {
        let receiver = self.resolution.as_mut().expect("not yet waited on");
        let outcome = receiver.await;
        self.resolution = None;
        let id = Some(self.id.clone());
        match outcome {
            Ok(Resolution::Approved { approvers }) => Ok(Approved {
                id: self.id.clone(),
                approvers,
            }),
            Ok(Resolution::Denied { by }) => Err(Refused {
                id,
                reason: RefusalReason::Denied { by },
            }),
            Ok(Resolution::Expired { after }) => Err(Refused {
                id,
                reason: RefusalReason::Expired { after },
            }),
            Ok(Resolution::Withdrawn) | Err(_) => Err(Refused::unavailable(
                id,
                "the approval service stopped while the statement waited",
            )),
        }
    }
}

impl Drop for HeldStatement {
    fn drop(&mut self) {
        if self.resolution.is_some() {
            self.hub.withdraw(&self.id);
        }
    }
}

/// Settings of the hub.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// Base URL approvers reach the approval API at (for notices and notifications), e.g.
    /// `http://127.0.0.1:15480`.
    pub public_url: String,
}

/// The approval service, shared by the sessions and the approval API. Cheap to clone.
#[derive(Clone)]
pub struct ApprovalHub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ApprovalHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalHub")
            .field("public_url", &self.inner.public_url)
            .field("unavailable", &self.inner.unavailable)
            .finish_non_exhaustive()
    }
}

struct Inner {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    audit: Arc<dyn Audit>,
    notifier: Option<Notifier>,
    public_url: String,
    /// Set when the service cannot approve anything (no approver authentication).
    unavailable: Option<String>,
    changed: Arc<Notify>,
    sweeper: Mutex<Option<tokio::task::AbortHandle>>,
}

struct State {
    book: ApprovalBook,
    waiters: HashMap<RequestId, oneshot::Sender<Resolution>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(sweeper) = self
            .sweeper
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            sweeper.abort();
        }
    }
}

impl ApprovalHub {
    /// A working hub. Spawns its sweeper on the current tokio runtime.
    pub fn new(
        settings: HubSettings,
        audit: Arc<dyn Audit>,
        clock: Arc<dyn Clock>,
        notifier: Option<Notifier>,
    ) -> Self {
        let tag = format!("{:04x}", rand::random::<u16>());
        let hub = Self::build(settings.public_url, audit, clock, notifier, None, &tag);
        let sweeper = tokio::spawn(sweep_loop(
            Arc::downgrade(&hub.inner),
            Arc::clone(&hub.inner.changed),
            Arc::clone(&hub.inner.clock),
        ));
        *hub.inner.sweeper.lock().unwrap_or_else(|e| e.into_inner()) = Some(sweeper.abort_handle());
        hub
    }

    /// A hub that refuses every statement needing approval (fail closed), saying `why`.
    pub fn unavailable(why: impl Into<String>, audit: Arc<dyn Audit>) -> Self {
        Self::build(
            String::new(),
            audit,
            Arc::new(super::clock::SystemClock),
            None,
            Some(why.into()),
            "0000",
        )
    }

    fn build(
        public_url: String,
        audit: Arc<dyn Audit>,
        clock: Arc<dyn Clock>,
        notifier: Option<Notifier>,
        unavailable: Option<String>,
        tag: &str,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    book: ApprovalBook::new(tag),
                    waiters: HashMap::new(),
                }),
                clock,
                audit,
                notifier,
                public_url: public_url.trim_end_matches('/').to_string(),
                unavailable,
                changed: Arc::new(Notify::new()),
                sweeper: Mutex::new(None),
            }),
        }
    }

    /// Why the service refuses everything, if it does.
    pub fn unavailable_reason(&self) -> Option<&str> {
        self.inner.unavailable.as_deref()
    }

    pub fn now(&self) -> SystemTime {
        self.inner.clock.now()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where request `id` can be approved.
    pub fn approve_url(&self, id: &RequestId) -> String {
        format!("{}/approvals/{id}", self.inner.public_url)
    }

    /// The NoticeResponse text for request `id`.
    pub fn pending_notice(&self, pending: &Pending) -> String {
        let statement = &pending.spec.statement;
        let needed = pending.approvers_needed;
        let mut who = format!("{needed} approval{}", if needed == 1 { "" } else { "s" });
        let groups: Vec<&str> = statement
            .needs
            .iter()
            .flat_map(|n| n.groups.iter().map(String::as_str))
            .collect();
        if !groups.is_empty() {
            who.push_str(&format!(" from {}", groups.join(", ")));
        }
        format!(
            "waiting for approval: request {id} (rule {rules}: {who} within {timeout}); approve \
             at {url} or with `agent approvals approve {id}`",
            id = pending.id,
            rules = statement.rules(),
            timeout = humantime::format_duration(statement.timeout()),
            url = self.approve_url(&pending.id),
        )
    }

    /// Files a statement needing approval: passes it at once under a live grant, holds it, or
    /// refuses it when the service is unavailable.
    pub fn submit(&self, spec: RequestSpec) -> Admission {
        if let Some(why) = &self.inner.unavailable {
            return Admission::Refused(Refused::unavailable(None, why.clone()));
        }
        let now = self.now();
        let mut state = self.state();
        self.sweep_locked(&mut state, now);
        if let Some(grant) =
            state
                .book
                .covered_by_grant(now, &spec.workload, &spec.target, &spec.statement)
        {
            let id = grant.id.clone();
            let event = audit::grant_used(grant, &spec);
            drop(state);
            self.inner.audit.emit(event);
            return Admission::Granted(id);
        }
        let pending = match state.book.request(now, spec) {
            Ok(p) => p,
            Err(e @ (RequestError::TooMany | RequestError::NothingToApprove)) => {
                return Admission::Refused(Refused::unavailable(None, e.to_string()));
            }
        };
        let (tx, rx) = oneshot::channel();
        state.waiters.insert(pending.id.clone(), tx);
        drop(state);
        self.inner.changed.notify_one();
        let notice = self.pending_notice(&pending);
        self.record(audit::approval_requested(&pending), &notice);
        Admission::Held(HeldStatement {
            id: pending.id,
            notice,
            resolution: Some(rx),
            hub: self.clone(),
        })
    }

    /// An approver's vote on request `id`.
    pub fn vote(
        &self,
        id: &str,
        approver: &Approver,
        vote: Vote,
    ) -> Result<VoteOutcome, VoteError> {
        let now = self.now();
        let mut state = self.state();
        self.sweep_locked(&mut state, now);
        let result = state.book.vote(now, id, approver, vote);
        let (pending, outcome) = match result {
            Ok(ok) => ok,
            Err(err) => {
                drop(state);
                let vote = match vote {
                    Vote::Approve => "approve",
                    Vote::Deny => "deny",
                };
                self.inner.audit.emit(audit::approval_vote_refused(
                    id,
                    &approver.subject,
                    vote,
                    err.code(),
                    &err.to_string(),
                ));
                return Err(err);
            }
        };
        let resolution = match &outcome {
            VoteOutcome::Approved { approvers } => Some(Resolution::Approved {
                approvers: approvers.clone(),
            }),
            VoteOutcome::Denied { by } => Some(Resolution::Denied { by: by.clone() }),
            VoteOutcome::Recorded { .. } | VoteOutcome::AlreadyCounted { .. } => None,
        };
        let waiter = resolution
            .as_ref()
            .and_then(|_| state.waiters.remove(&pending.id));
        drop(state);
        match resolution {
            Some(resolution) => {
                let decided = Decided {
                    request: pending,
                    resolution: resolution.clone(),
                    decided_at: now,
                };
                if let Some(waiter) = waiter {
                    let _ = waiter.send(resolution);
                }
                self.inner.changed.notify_one();
                self.record_decided(&decided);
            }
            None => {
                if matches!(outcome, VoteOutcome::Recorded { .. }) {
                    let text = format!(
                        "{} approved request {} ({} of {})",
                        approver.subject,
                        pending.id,
                        pending.approvals.len(),
                        pending.approvers_needed
                    );
                    self.record(
                        audit::approval_vote_recorded(&pending, &approver.subject),
                        &text,
                    );
                }
            }
        }
        Ok(outcome)
    }

    /// Creates a grant.
    pub fn grant(&self, spec: GrantSpec) -> Result<Grant, GrantError> {
        let (by, workload, target) = (
            spec.by.subject.clone(),
            spec.workload.clone(),
            spec.target.clone(),
        );
        let now = self.now();
        let result = self.state().book.grant(now, spec);
        match &result {
            Ok(grant) => {
                self.inner.changed.notify_one();
                let text = format!(
                    "{} granted {} {} on {} of {} until {}",
                    grant.by,
                    grant.workload,
                    ops_text(grant),
                    tables_text(grant),
                    grant.target,
                    humantime::format_rfc3339_seconds(grant.expires_at)
                );
                self.record(audit::grant_created(grant), &text);
            }
            Err(err) => self.inner.audit.emit(audit::grant_refused(
                &by,
                &workload,
                &target,
                &err.to_string(),
            )),
        }
        result
    }

    /// Ends a grant before its time.
    pub fn revoke(&self, id: &str, by: &Approver) -> Result<Grant, RevokeError> {
        let now = self.now();
        let grant = self.state().book.revoke(now, id)?;
        self.inner.changed.notify_one();
        let text = format!(
            "{} revoked grant {} ({} on {} of {})",
            by.subject,
            grant.id,
            grant.workload,
            grant.target,
            tables_text(&grant)
        );
        self.record(audit::grant_ended(&grant, Some(&by.subject)), &text);
        Ok(grant)
    }

    /// Pending requests, live grants and recent decisions.
    pub fn list(&self) -> Listing {
        let now = self.now();
        self.state().book.list(now)
    }

    /// One request, pending or recently decided, as JSON.
    pub fn request_json(&self, id: &str) -> Option<Value> {
        let now = self.now();
        let state = self.state();
        if let Some(p) = state.book.pending(now, id) {
            let mut v = serde_json::to_value(p).ok()?;
            v["outcome"] = Value::from("pending");
            return Some(v);
        }
        state
            .book
            .decided(id)
            .and_then(|d| serde_json::to_value(d).ok())
    }

    fn withdraw(&self, id: &RequestId) {
        let now = self.now();
        let mut state = self.state();
        state.waiters.remove(id);
        let decided = state.book.withdraw(now, id);
        drop(state);
        if let Some(decided) = decided {
            self.inner.changed.notify_one();
            self.record_decided(&decided);
        }
    }

    /// Expires what is due at `now` (the lock held): waiters get their answer; audited.
    fn sweep_locked(&self, state: &mut State, now: SystemTime) {
        let expired = state.book.expire(now);
        for decided in &expired.requests {
            if let Some(waiter) = state.waiters.remove(&decided.request.id) {
                let _ = waiter.send(decided.resolution.clone());
            }
        }
        for decided in &expired.requests {
            self.record_decided(decided);
        }
        for grant in &expired.grants {
            let text = format!("grant {} of {} expired", grant.id, grant.workload);
            self.record(audit::grant_ended(grant, None), &text);
        }
    }

    fn record_decided(&self, decided: &Decided) {
        let id = &decided.request.id;
        let text = match &decided.resolution {
            Resolution::Approved { approvers } => {
                format!("request {id} approved by {}", approvers.join(", "))
            }
            Resolution::Denied { by } => format!("request {id} denied by {by}"),
            Resolution::Expired { after } => format!(
                "request {id} expired: not approved within {}",
                humantime::format_duration(*after)
            ),
            Resolution::Withdrawn => {
                format!("request {id} withdrawn: the statement stopped waiting")
            }
        };
        self.record(audit::approval_decided(decided), &text);
    }

    /// Audits `event` (no notification).
    pub(crate) fn audit_event(&self, event: Value) {
        self.inner.audit.emit(event);
    }

    /// Audits `event` and notifies the webhook (if any) with `text`.
    fn record(&self, event: Value, text: &str) {
        if let Some(notifier) = &self.inner.notifier {
            notifier.notify(text, event.clone());
        }
        self.inner.audit.emit(event);
    }
}

fn ops_text(grant: &Grant) -> String {
    let ops: Vec<&str> = grant.operations.iter().map(|o| o.as_str()).collect();
    ops.join(", ")
}

fn tables_text(grant: &Grant) -> String {
    if grant.tables.is_empty() {
        "any object".to_string()
    } else {
        grant.tables.join(", ")
    }
}

/// Expires requests and grants when their time comes; wakes on every change of the book.
async fn sweep_loop(inner: Weak<Inner>, changed: Arc<Notify>, clock: Arc<dyn Clock>) {
    loop {
        let next = {
            let Some(inner) = inner.upgrade() else { return };
            let hub = ApprovalHub { inner };
            let now = hub.now();
            let mut state = hub.state();
            hub.sweep_locked(&mut state, now);
            state.book.next_deadline()
        };
        match next {
            Some(deadline) => {
                tokio::select! {
                    () = clock.sleep_until(deadline) => {}
                    () = changed.notified() => {}
                }
            }
            None => changed.notified().await,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::book::tests::{approver, spec, t};
    use super::super::clock::ManualClock;
    use super::*;
    use crate::policy::Operation;

    /// Collects audit events.
    #[derive(Default)]
    pub(crate) struct Recorder(pub Mutex<Vec<Value>>);

    impl Audit for Recorder {
        fn emit(&self, event: Value) {
            self.0.lock().unwrap().push(event);
        }
    }

    impl Recorder {
        pub(crate) fn actions(&self) -> Vec<String> {
            self.0
                .lock()
                .unwrap()
                .iter()
                .map(|e| e["event"]["action"].as_str().unwrap().to_string())
                .collect()
        }
    }

    pub(crate) fn hub(clock: &ManualClock) -> (ApprovalHub, Arc<Recorder>) {
        let recorder = Arc::new(Recorder::default());
        let hub = ApprovalHub::new(
            HubSettings {
                public_url: "http://127.0.0.1:15480/".into(),
            },
            recorder.clone(),
            Arc::new(clock.clone()),
            None,
        );
        (hub, recorder)
    }

    fn held(admission: Admission) -> HeldStatement {
        match admission {
            Admission::Held(h) => h,
            other => panic!("not held: {other:?}"),
        }
    }

    #[tokio::test]
    async fn hold_then_approve() {
        let clock = ManualClock::new(t(0));
        let (hub, audit) = hub(&clock);
        let h = held(hub.submit(spec(2, &["dba"])));
        let id = h.id().clone();
        assert!(
            h.notice().contains(&format!("request {id}")),
            "{}",
            h.notice()
        );
        assert!(
            h.notice()
                .contains(&format!("http://127.0.0.1:15480/approvals/{id}")),
            "{}",
            h.notice()
        );
        assert!(
            h.notice().contains("2 approvals from dba within 10m"),
            "{}",
            h.notice()
        );
        let waiting = tokio::spawn(h.wait());
        hub.vote(id.as_str(), &approver("alice", &["dba"]), Vote::Approve)
            .unwrap();
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        hub.vote(id.as_str(), &approver("bob", &["dba"]), Vote::Approve)
            .unwrap();
        let approved = waiting.await.unwrap().unwrap();
        assert_eq!(approved.id, id);
        assert_eq!(approved.approvers, ["alice", "bob"]);
        assert_eq!(
            audit.actions(),
            [
                "approval-requested",
                "approval-vote-recorded",
                "approval-approved"
            ]
        );
    }

    #[tokio::test]
    async fn hold_then_deny() {
        let clock = ManualClock::new(t(0));
        let (hub, audit) = hub(&clock);
        let h = held(hub.submit(spec(1, &["dba"])));
        let id = h.id().clone();
        let refused_vote = hub.vote(id.as_str(), &approver("eve", &["dev"]), Vote::Deny);
        assert_eq!(refused_vote.unwrap_err().code(), "not-in-group");
        hub.vote(id.as_str(), &approver("bob", &["dba"]), Vote::Deny)
            .unwrap();
        let refused = h.wait().await.unwrap_err();
        assert_eq!(refused.id, Some(id.clone()));
        assert_eq!(refused.reason, RefusalReason::Denied { by: "bob".into() });
        let denial = refused.denial(&RuleRef::builtin("bulk-staging"));
        assert_eq!(denial.sqlstate, "42501");
        assert!(denial.message.contains(id.as_str()) && denial.message.contains("bob"));
        assert_eq!(
            audit.actions(),
            [
                "approval-requested",
                "approval-vote-refused",
                "approval-denied"
            ]
        );
    }

    #[tokio::test]
    async fn hold_then_timeout() {
        let clock = ManualClock::new(t(0));
        let (hub, audit) = hub(&clock);
        let h = held(hub.submit(spec(1, &[])));
        let id = h.id().clone();
        let waiting = tokio::spawn(h.wait());
        clock.advance(Duration::from_secs(599));
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        clock.advance(Duration::from_secs(1));
        let refused = waiting.await.unwrap().unwrap_err();
        assert_eq!(
            refused.reason,
            RefusalReason::Expired {
                after: Duration::from_secs(600)
            }
        );
        let denial = refused.denial(&RuleRef::builtin("bulk-staging"));
        assert!(denial.message.contains(id.as_str()) && denial.message.contains("10m"));
        assert_eq!(audit.actions(), ["approval-requested", "approval-expired"]);
        let late = hub.vote(id.as_str(), &approver("alice", &[]), Vote::Approve);
        assert_eq!(late.unwrap_err().code(), "expired");
    }

    #[tokio::test]
    async fn self_approval_is_refused_and_the_statement_keeps_waiting() {
        let clock = ManualClock::new(t(0));
        let (hub, _audit) = hub(&clock);
        let h = held(hub.submit(spec(1, &[])));
        let err = hub
            .vote(
                h.id().as_str(),
                &approver("nightly-chunker", &[]),
                Vote::Approve,
            )
            .unwrap_err();
        assert_eq!(err.code(), "self-approval");
        assert_eq!(hub.list().pending.len(), 1);
    }

    #[tokio::test]
    async fn a_grant_passes_statements_until_it_expires_by_itself() {
        let clock = ManualClock::new(t(0));
        let (hub, audit) = hub(&clock);
        let grant = hub
            .grant(GrantSpec {
                workload: "nightly-chunker".into(),
                target: "orders-db".into(),
                operations: vec![Operation::BulkWrite],
                tables: vec!["staging.events".into()],
                duration: Duration::from_secs(7200),
                by: approver("alice", &["dba"]),
                reason: None,
            })
            .unwrap();
        match hub.submit(spec(1, &["dba"])) {
            Admission::Granted(id) => assert_eq!(id, grant.id),
            other => panic!("{other:?}"),
        }
        clock.advance(Duration::from_secs(7200));
        // The sweeper expires the grant by itself.
        for _ in 0..100 {
            if hub.list().grants.is_empty() && audit.actions().contains(&"grant-expired".into()) {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(
            audit.actions(),
            ["grant-created", "grant-used", "grant-expired"]
        );
        assert!(matches!(hub.submit(spec(1, &["dba"])), Admission::Held(_)));
    }

    #[tokio::test]
    async fn a_dropped_wait_withdraws_the_request() {
        let clock = ManualClock::new(t(0));
        let (hub, audit) = hub(&clock);
        let h = held(hub.submit(spec(1, &[])));
        let id = h.id().clone();
        drop(h);
        assert!(hub.list().pending.is_empty());
        assert_eq!(
            audit.actions(),
            ["approval-requested", "approval-withdrawn"]
        );
        let err = hub
            .vote(id.as_str(), &approver("alice", &[]), Vote::Approve)
            .unwrap_err();
        assert_eq!(err.code(), "already-decided");
    }

    #[tokio::test]
    async fn an_unavailable_hub_refuses_everything() {
        let audit = Arc::new(Recorder::default());
        let hub = ApprovalHub::unavailable("no approver authentication is configured", audit);
        match hub.submit(spec(1, &[])) {
            Admission::Refused(r) => {
                assert_eq!(r.id, None);
                let d = r.denial(&RuleRef::builtin("bulk-staging"));
                assert!(
                    d.message.contains("no approver authentication"),
                    "{}",
                    d.message
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
