//! Audit events: one JSON object per line, with Elastic Common Schema (ECS) field names
//! (`@timestamp`, `event.*`, `source.*`, `destination.*`, `process.*`, `user.*`) and the agent's
//! own fields under `chunk.*`.
//!
//! Builders are pure (they take facts, return a JSON value); [`AuditLog`] stamps and writes them.
//! Events never carry secrets: builders only take identities, addresses and counts.

use std::{
    fmt::Write as _,
    fs::{File, OpenOptions},
    io::{self, Write},
    net::SocketAddr,
    path::Path,
    sync::{
        Mutex, RwLock,
        mpsc::{Receiver, SyncSender, sync_channel},
    },
    thread::JoinHandle,
    time::SystemTime,
};

use serde_json::{Value, json};

use crate::identity::{ConnectionFacts, Identity};

fn ip_and_port(addr: SocketAddr) -> Value {
    let ip = match addr {
        SocketAddr::V6(v6) => v6
            .ip()
            .to_ipv4_mapped()
            .map_or_else(|| v6.ip().to_string(), |v4| v4.to_string()),
        SocketAddr::V4(v4) => v4.ip().to_string(),
    };
    json!({ "ip": ip, "port": addr.port() })
}

fn network_event(action: &str, outcome: &str, types: &[&str]) -> Value {
    json!({
        "kind": "event",
        "category": ["network"],
        "type": types,
        "action": action,
        "outcome": outcome,
    })
}

fn process_fields(facts: &ConnectionFacts) -> Value {
    let mut process = json!({ "pid": facts.pid, "name": facts.process_name });
    if let Some(exe) = &facts.executable {
        process["executable"] = json!(exe);
    }
    process
}

fn connection_base(
    action: &str,
    outcome: &str,
    types: &[&str],
    connection_id: u64,
    facts: &ConnectionFacts,
) -> Value {
    json!({
        "event": network_event(action, outcome, types),
        "source": ip_and_port(facts.client),
        "destination": ip_and_port(facts.original_destination),
        "process": process_fields(facts),
        "user": { "id": facts.uid.to_string() },
        "group": { "id": facts.gid.to_string() },
        "chunk": {
            "connection_id": connection_id.to_string(),
            "cgroup": { "id": facts.cgroup_id, "path": facts.cgroup_path },
        },
    })
}

/// The agent has attached its programs and its proxy listens.
pub fn agent_started(pid: u32, listen: &[SocketAddr], workloads: usize, targets: usize) -> Value {
    json!({
        "event": { "kind": "event", "category": ["process"], "type": ["start"],
                   "action": "agent-started", "outcome": "success" },
        "agent": { "pid": pid, "listen": listen.iter().map(ToString::to_string).collect::<Vec<_>>() },
        "chunk": { "policy": { "workloads": workloads, "targets": targets } },
    })
}

pub fn agent_stopped(pid: u32, reason: &str) -> Value {
    json!({
        "event": { "kind": "event", "category": ["process"], "type": ["end"],
                   "action": "agent-stopped", "outcome": "success", "reason": reason },
        "agent": { "pid": pid },
    })
}

/// A new policy set is in force.
pub fn policy_reloaded(trigger: &str, summary: &str) -> Value {
    json!({
        "event": { "kind": "event", "category": ["configuration"], "type": ["change"],
                   "action": "policy-reloaded", "outcome": "success", "reason": trigger },
        "chunk": { "policy": { "summary": summary } },
    })
}

/// A new policy set was refused; the previous one stays in force.
pub fn policy_reload_failed(trigger: &str, errors: &[String]) -> Value {
    json!({
        "event": { "kind": "event", "category": ["configuration"], "type": ["change"],
                   "action": "policy-reload-failed", "outcome": "failure", "reason": trigger },
        "error": { "message": errors.join("\n") },
        "chunk": { "policy": { "errors": errors.len() } },
    })
}

/// An internal error of the agent that operators must see.
pub fn agent_error(message: &str) -> Value {
    json!({
        "event": { "kind": "event", "category": ["process"], "type": ["error"],
                   "action": "agent-error", "outcome": "failure" },
        "error": { "message": message },
    })
}

/// A route around the proxy the agent cannot close: a protected local PostgreSQL server's unix
/// socket that workload processes can connect to (see `intercept::unix`).
pub fn bypass_route_open(socket: &crate::intercept::unix::OpenSocket) -> Value {
    json!({
        "event": { "kind": "event", "category": ["configuration"], "type": ["info"],
                   "action": "bypass-route-open", "outcome": "unknown",
                   "reason": format!(
                       "{} can connect to this unix socket of a protected local server without \
                        the agent (set unix_socket_permissions/unix_socket_group or disable \
                        unix sockets: see docs/fail-closed.md)",
                       socket.reach
                   ) },
        "file": { "path": socket.path.display().to_string() },
        "chunk": { "target": socket.target, "reachable_by": socket.reach.to_string() },
    })
}

pub fn connection_accepted(connection_id: u64, facts: &ConnectionFacts, id: &Identity) -> Value {
    let mut event = connection_base(
        "connection-accepted",
        "success",
        &["connection", "start", "allowed"],
        connection_id,
        facts,
    );
    event["chunk"]["workload"] = json!(id.workload);
    event["chunk"]["target"] = json!(id.target);
    event
}

/// A connection from below a pattern root that matched no workload, relayed untouched.
pub fn connection_passthrough(connection_id: u64, facts: &ConnectionFacts) -> Value {
    connection_base(
        "connection-passthrough",
        "success",
        &["connection", "start"],
        connection_id,
        facts,
    )
}

pub fn connection_refused(
    connection_id: u64,
    facts: &ConnectionFacts,
    code: &str,
    reason: &str,
) -> Value {
    let mut event = connection_base(
        "connection-refused",
        "failure",
        &["connection", "denied"],
        connection_id,
        facts,
    );
    event["event"]["reason"] = json!(reason);
    event["chunk"]["refusal"] = json!(code);
    event
}

/// A connection the kernel told the agent nothing about: refused before any identity exists.
pub fn connection_unrecorded(
    connection_id: u64,
    client: SocketAddr,
    why: crate::intercept::Unrecorded,
) -> Value {
    json!({
        "event": { "kind": "event", "category": ["network"], "type": ["connection", "denied"],
                   "action": "connection-refused", "outcome": "failure",
                   "reason": why.to_string() },
        "source": ip_and_port(client),
        "chunk": { "connection_id": connection_id.to_string(), "refusal": why.code() },
    })
}

/// A PostgreSQL session logged in upstream for a workload.
pub fn session_started(
    connection_id: u64,
    facts: &ConnectionFacts,
    id: &Identity,
    upstream_role: &str,
    database: &str,
) -> Value {
    let mut event = connection_base(
        "session-started",
        "success",
        &["start", "allowed"],
        connection_id,
        facts,
    );
    event["event"]["category"] = json!(["database", "session"]);
    event["chunk"]["workload"] = json!(id.workload);
    event["chunk"]["target"] = json!(id.target);
    event["chunk"]["upstream"] = json!({ "role": upstream_role, "database": database });
    event
}

/// The agent could not log in to a target with the policy's credential.
pub fn upstream_auth_failed(
    connection_id: u64,
    facts: &ConnectionFacts,
    id: &Identity,
    message: &str,
) -> Value {
    let mut event = connection_base(
        "upstream-auth-failed",
        "failure",
        &["start", "denied"],
        connection_id,
        facts,
    );
    event["event"]["category"] = json!(["authentication", "database"]);
    event["chunk"]["workload"] = json!(id.workload);
    event["chunk"]["target"] = json!(id.target);
    event["error"] = json!({ "message": message });
    event
}

/// A cancel request, forwarded to the real upstream session or dropped (unknown key).
pub fn cancel_request(
    connection_id: u64,
    facts: &ConnectionFacts,
    id: &Identity,
    outcome: &Result<(), String>,
) -> Value {
    let (action, result) = match outcome {
        Ok(()) => ("cancel-forwarded", "success"),
        Err(_) => ("cancel-dropped", "failure"),
    };
    let mut event = connection_base(action, result, &["connection"], connection_id, facts);
    event["event"]["category"] = json!(["database"]);
    event["chunk"]["workload"] = json!(id.workload);
    event["chunk"]["target"] = json!(id.target);
    if let Err(reason) = outcome {
        event["event"]["reason"] = json!(reason);
    }
    event
}

/// A just-in-time role dropped (or not) after its session, or by the reaper.
pub fn ephemeral_role(
    connection_id: Option<u64>,
    target: &str,
    role: &str,
    action: &str,
    error: Option<&str>,
) -> Value {
    let mut event = json!({
        "event": { "kind": "event", "category": ["iam"], "type": ["user", "deletion"],
                   "action": action, "outcome": if error.is_some() { "failure" } else { "success" } },
        "user": { "target": { "name": role } },
        "chunk": { "target": target },
    });
    if let Some(id) = connection_id {
        event["chunk"]["connection_id"] = json!(id.to_string());
    }
    if let Some(error) = error {
        event["error"] = json!({ "message": error });
    }
    event
}

/// A policy decision on a client message (a statement, a prepared statement's use, a
/// function call). Carries the rule and the statement kinds, never the SQL text or values.
pub fn statement_decision(
    connection_id: u64,
    facts: &ConnectionFacts,
    id: &Identity,
    judged: &crate::pg::gate::Judged,
) -> Value {
    use crate::sql::Decision;
    let (action, outcome, kind) = match &judged.decision {
        Decision::Allow { .. } => ("statement-allowed", "success", "allowed"),
        Decision::Deny { .. } => ("statement-denied", "failure", "denied"),
        Decision::NeedsApproval { .. } => ("statement-needs-approval", "failure", "denied"),
    };
    let mut event = connection_base(action, outcome, &["access", kind], connection_id, facts);
    event["event"]["category"] = json!(["database"]);
    let rule = judged.decision.rule();
    event["rule"] =
        json!({ "name": rule.name, "ruleset": rule.source.as_ref().map(ToString::to_string) });
    if let Decision::Deny { reason, .. } = &judged.decision {
        event["event"]["reason"] = json!(reason);
    }
    event["chunk"]["workload"] = json!(id.workload);
    event["chunk"]["target"] = json!(id.target);
    event["chunk"]["statement"] = json!({
        "message": judged.message,
        "kinds": judged.kinds,
        "cached_decision": judged.cached,
    });
    event
}

/// Values masked in the results of one statement (`request`: the client request they answer;
/// `None` for a notice or notification outside any request): which rules fired, where, how
/// many values. Never a value.
pub fn values_masked(
    connection_id: u64,
    facts: &ConnectionFacts,
    id: &Identity,
    request: Option<u64>,
    counts: &[crate::mask::MaskCount],
) -> Value {
    let mut event = connection_base(
        "values-masked",
        "success",
        &["access", "info"],
        connection_id,
        facts,
    );
    event["event"]["category"] = json!(["database"]);
    event["chunk"]["workload"] = json!(id.workload);
    event["chunk"]["target"] = json!(id.target);
    event["chunk"]["masking"] = json!({
        "request": request,
        "total": counts.iter().map(|c| c.count).sum::<u64>(),
        "rules": counts,
    });
    event
}

/// A session's audit events that come per statement (decisions, masked values), built
/// cheaply: the members that never change within the session (`source`, `destination`,
/// `process`, `user`, `group`, and `chunk`'s connection id, cgroup, workload and target) are
/// serialised once, and each event only writes its own members around them. The lines carry
/// the same members as [`statement_decision`] and [`values_masked`] plus `@timestamp`.
pub struct SessionEvents {
    /// The constant top-level members, `"destination":…,…,"user":…` (no braces).
    common: String,
    /// The constant members of `chunk`, `"cgroup":…,…,"workload":…` (no braces).
    chunk: String,
}

impl SessionEvents {
    pub fn new(connection_id: u64, facts: &ConnectionFacts, id: &Identity) -> Self {
        let mut base = match connection_base("", "", &[], connection_id, facts) {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        base.remove("event");
        let mut chunk = match base.remove("chunk") {
            Some(Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        chunk.insert("workload".into(), json!(id.workload));
        chunk.insert("target".into(), json!(id.target));
        Self {
            common: members(base),
            chunk: members(chunk),
        }
    }

    /// The line of [`statement_decision`] (stamped, with its newline).
    pub fn statement_decision(&self, judged: &crate::pg::gate::Judged) -> String {
        use crate::sql::Decision;
        let (action, outcome, kind) = match &judged.decision {
            Decision::Allow { .. } => ("statement-allowed", "success", "allowed"),
            Decision::Deny { .. } => ("statement-denied", "failure", "denied"),
            Decision::NeedsApproval { .. } => ("statement-needs-approval", "failure", "denied"),
        };
        let mut line = self.open(512);
        line.push_str(",\"statement\":{\"cached_decision\":");
        line.push_str(if judged.cached { "true" } else { "false" });
        line.push_str(",\"kinds\":[");
        for (i, k) in judged.kinds.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            push_json_str(&mut line, k);
        }
        line.push_str("],\"message\":");
        push_json_str(&mut line, judged.message);
        line.push_str("}},");
        line.push_str(&self.common);
        line.push_str(",\"event\":{\"action\":");
        push_json_str(&mut line, action);
        line.push_str(",\"category\":[\"database\"],\"kind\":\"event\",\"outcome\":");
        push_json_str(&mut line, outcome);
        if let Decision::Deny { reason, .. } = &judged.decision {
            line.push_str(",\"reason\":");
            push_json_str(&mut line, reason);
        }
        line.push_str(",\"type\":[\"access\",");
        push_json_str(&mut line, kind);
        line.push_str("]},\"rule\":{\"name\":");
        let rule = judged.decision.rule();
        push_json_str(&mut line, &rule.name);
        line.push_str(",\"ruleset\":");
        match &rule.source {
            Some(source) => push_json_str(&mut line, &source.to_string()),
            None => line.push_str("null"),
        }
        line.push_str("}}\n");
        line
    }

    /// The line of [`values_masked`] (stamped, with its newline).
    pub fn values_masked(&self, request: Option<u64>, counts: &[crate::mask::MaskCount]) -> String {
        let masking = json!({
            "request": request,
            "total": counts.iter().map(|c| c.count).sum::<u64>(),
            "rules": counts,
        });
        let mut line = self.open(512);
        line.push_str(",\"masking\":");
        line.push_str(&masking.to_string());
        line.push_str("},");
        line.push_str(&self.common);
        line.push_str(
            ",\"event\":{\"action\":\"values-masked\",\"category\":[\"database\"],\
             \"kind\":\"event\",\"outcome\":\"success\",\"type\":[\"access\",\"info\"]}}\n",
        );
        line
    }

    /// `{"@timestamp":"…","chunk":{<constant chunk members>`: the start of every line.
    fn open(&self, capacity: usize) -> String {
        let mut line = String::with_capacity(self.common.len() + self.chunk.len() + capacity);
        line.push_str("{\"@timestamp\":\"");
        let _ = write!(
            line,
            "{}",
            humantime::format_rfc3339_micros(SystemTime::now())
        );
        line.push_str("\",\"chunk\":{");
        line.push_str(&self.chunk);
        line
    }
}

/// The members of a JSON object as text, without the braces.
fn members(map: serde_json::Map<String, Value>) -> String {
    let text = Value::Object(map).to_string();
    text[1..text.len() - 1].to_owned()
}

/// Appends `s` as a JSON string.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Totals of a relayed connection when it ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transfer {
    pub client_to_server: u64,
    pub server_to_client: u64,
}

pub fn connection_closed(
    connection_id: u64,
    facts: &ConnectionFacts,
    workload: Option<&str>,
    transfer: Transfer,
    error: Option<&str>,
) -> Value {
    let outcome = if error.is_some() {
        "failure"
    } else {
        "success"
    };
    let mut event = connection_base(
        "connection-closed",
        outcome,
        &["connection", "end"],
        connection_id,
        facts,
    );
    event["chunk"]["workload"] = json!(workload);
    event["chunk"]["bytes"] = json!({
        "client_to_server": transfer.client_to_server,
        "server_to_client": transfer.server_to_client,
    });
    if let Some(error) = error {
        event["error"] = json!({ "message": error });
    }
    event
}

/// A session's recording was finished: where it is and its final digest (so the recording can
/// be checked later against this event's copy: `agent verify --digest`).
pub fn session_recorded(
    connection_id: u64,
    facts: &ConnectionFacts,
    id: &Identity,
    recording: &crate::record::Finished,
) -> Value {
    let mut event = connection_base(
        "session-recorded",
        "success",
        &["info"],
        connection_id,
        facts,
    );
    event["event"]["category"] = json!(["database", "session"]);
    event["chunk"]["workload"] = json!(id.workload);
    event["chunk"]["target"] = json!(id.target);
    let summary = &recording.summary;
    event["chunk"]["session"] = json!({
        "id": recording.session,
        "file": recording.path.display().to_string(),
        "entries": recording.entries,
        "bytes": recording.bytes,
        "digest": recording.digest,
        "truncated": recording.truncated,
        "dropped": recording.dropped,
        "statements": summary.statements,
        "denied": summary.denied,
        "approvals": summary.approvals,
        "masked": summary.masked,
    });
    event
}

/// A session's recording could not be written: the statement was refused (`fail-closed`) or
/// the session went on unrecorded (`continue`), as the policy says.
pub fn recording_failed(
    connection_id: u64,
    facts: &ConnectionFacts,
    id: &Identity,
    session: &str,
    error: &str,
    fail_closed: bool,
) -> Value {
    let mut event = connection_base(
        "recording-failed",
        "failure",
        &["error"],
        connection_id,
        facts,
    );
    event["event"]["category"] = json!(["database", "session"]);
    event["chunk"]["workload"] = json!(id.workload);
    event["chunk"]["target"] = json!(id.target);
    event["chunk"]["session"] = json!({ "id": session });
    event["chunk"]["recording"] =
        json!({ "on_error": if fail_closed { "fail-closed" } else { "continue" } });
    event["error"] = json!({ "message": error });
    event
}

// ------------------------------------------------------------------------------------------------
// Workload tokens (`crate::pg::token_auth`): a session's token accepted or refused, and a session
// ended because its token expired. The token's subject, issuer, groups and the roles they map to;
// never the token itself.
// ------------------------------------------------------------------------------------------------

fn token_event(
    action: &str,
    outcome: &str,
    types: &[&str],
    connection_id: u64,
    facts: &ConnectionFacts,
    id: &Identity,
) -> Value {
    let mut event = connection_base(action, outcome, types, connection_id, facts);
    event["event"]["category"] = json!(["authentication", "session"]);
    event["chunk"]["workload"] = json!(id.workload);
    event["chunk"]["target"] = json!(id.target);
    event
}

/// A session's workload token was verified: who it names (`user.name` is the token's subject).
pub fn token_accepted(
    connection_id: u64,
    facts: &ConnectionFacts,
    id: &Identity,
    token: &crate::pg::token_auth::VerifiedToken,
) -> Value {
    let mut event = token_event(
        "token-accepted",
        "success",
        &["start", "allowed"],
        connection_id,
        facts,
        id,
    );
    event["user"]["name"] = json!(token.claims.subject);
    event["chunk"]["token"] = json!({
        "source": token.source.as_str(),
        "subject": token.claims.subject,
        "issuer": token.claims.issuer,
        "groups": token.claims.groups,
        "roles": token.roles,
        "expires_at": humantime::format_rfc3339_seconds(token.claims.expires_at).to_string(),
    });
    event
}

/// A session was refused for its workload token (missing, invalid, expired, no role).
pub fn token_refused(
    connection_id: u64,
    facts: &ConnectionFacts,
    id: &Identity,
    refusal: &crate::pg::token_auth::TokenRefusal,
) -> Value {
    let mut event = token_event(
        "token-refused",
        "failure",
        &["start", "denied"],
        connection_id,
        facts,
        id,
    );
    event["event"]["reason"] = json!(refusal.to_string());
    event["chunk"]["refusal"] = json!(refusal.code());
    let mut token = json!({});
    if let Some(source) = refusal.source() {
        token["source"] = json!(source.as_str());
    }
    if let Some(subject) = refusal.subject() {
        token["subject"] = json!(subject);
        event["user"]["name"] = json!(subject);
    }
    event["chunk"]["token"] = token;
    event
}

/// A session was ended because its workload token expired.
pub fn session_token_expired(
    connection_id: u64,
    facts: &ConnectionFacts,
    id: &Identity,
    token: &crate::pg::token_auth::VerifiedToken,
) -> Value {
    let mut event = token_event(
        "session-token-expired",
        "success",
        &["end"],
        connection_id,
        facts,
        id,
    );
    event["user"]["name"] = json!(token.claims.subject);
    event["chunk"]["token"] = json!({
        "source": token.source.as_str(),
        "subject": token.claims.subject,
        "expires_at": humantime::format_rfc3339_seconds(token.claims.expires_at).to_string(),
    });
    event
}

#[cfg(test)]
mod token_event_tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::oidc::{Claims, TokenError};
    use crate::pg::token_auth::{TokenRefusal, VerifiedToken};
    use crate::policy::TokenSource;

    fn facts() -> ConnectionFacts {
        ConnectionFacts {
            client: "127.0.0.1:40000".parse().unwrap(),
            original_destination: "127.0.0.1:5432".parse().unwrap(),
            pid: 42,
            uid: 1000,
            gid: 1000,
            process_name: "psql".into(),
            executable: None,
            cgroup_id: 7,
            cgroup_path: Some("/chunk-agent/jobs/w/job-1-0".into()),
        }
    }

    fn id() -> Identity {
        Identity {
            workload: "w".into(),
            target: "db".into(),
            target_index: 0,
        }
    }

    fn token() -> VerifiedToken {
        let exp = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        VerifiedToken {
            claims: Claims {
                subject: "system:serviceaccount:batch:nightly".into(),
                issuer: "https://idp.test".into(),
                groups: vec!["etl".into()],
                expires_at: exp,
                not_before: None,
                jwt_id: Some("j".into()),
            },
            source: TokenSource::Exec,
            roles: vec!["reader".into()],
            valid_until: exp,
        }
    }

    /// One event of each token builder (for the schema and catalogue tests).
    pub(super) fn samples() -> Vec<Value> {
        vec![
            token_accepted(1, &facts(), &id(), &token()),
            token_refused(
                2,
                &facts(),
                &id(),
                &TokenRefusal::Missing {
                    workload: "w".into(),
                    sources: "exec".into(),
                },
            ),
            session_token_expired(3, &facts(), &id(), &token()),
        ]
    }

    #[test]
    fn token_events_match_the_schema_and_name_the_subject() {
        let accepted = token_accepted(1, &facts(), &id(), &token());
        assert_eq!(
            accepted["user"]["name"],
            "system:serviceaccount:batch:nightly"
        );
        assert_eq!(accepted["chunk"]["token"]["groups"], json!(["etl"]));
        assert_eq!(accepted["chunk"]["token"]["roles"], json!(["reader"]));
        let refused = token_refused(
            2,
            &facts(),
            &id(),
            &TokenRefusal::Invalid {
                origin: TokenSource::Password,
                error: TokenError::BadSignature,
            },
        );
        assert_eq!(refused["chunk"]["refusal"], "token-invalid");
        assert_eq!(refused["chunk"]["token"]["source"], "password");
        let expired = session_token_expired(3, &facts(), &id(), &token());
        for mut event in [accepted, refused, expired] {
            event["@timestamp"] = json!("2027-01-15T10:00:00.000000Z");
            let errors = schema::validate_event(&event);
            assert!(errors.is_empty(), "{errors:?} in {event}");
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Approvals (`crate::approval`): approval requests and votes, time-bound grants, the approval
// API. Never the statement's text (only its kinds, operations, tables and a digest of its
// normalised text), never a token.
// ------------------------------------------------------------------------------------------------

fn approval_event(action: &str, outcome: &str, category: &[&str], types: &[&str]) -> Value {
    json!({
        "event": { "kind": "event", "category": category, "type": types,
                   "action": action, "outcome": outcome },
    })
}

/// `chunk.approval.statement` of a request.
fn approval_statement(s: &crate::approval::StatementSummary) -> Value {
    let mut statement = json!({
        "kinds": s.kinds,
        "operations": s.operations.iter().map(|o| o.as_str()).collect::<Vec<_>>(),
        "tables": s.tables,
    });
    if let Some(digest) = &s.digest {
        statement["digest"] = json!(digest);
    }
    statement
}

/// An approval event about request `p`: the requester (process, user, connection, workload,
/// target), the first rule, and `chunk.approval`.
fn approval_request_event(
    action: &str,
    outcome: &str,
    types: &[&str],
    p: &crate::approval::Pending,
) -> Value {
    let spec = &p.spec;
    let mut event = approval_event(action, outcome, &["database"], types);
    event["process"] = json!({ "pid": spec.requester.pid, "name": spec.requester.process });
    event["user"] = json!({ "id": spec.requester.uid.to_string() });
    if let Some(need) = spec.statement.needs.first() {
        event["rule"] = json!({ "name": need.rule, "ruleset": need.ruleset });
    }
    let mut groups: Vec<&str> = Vec::new();
    for g in spec.statement.needs.iter().flat_map(|n| &n.groups) {
        if !groups.contains(&g.as_str()) {
            groups.push(g);
        }
    }
    let mut approval = json!({
        "id": p.id,
        "rules": spec.statement.needs.iter().map(|n| n.rule.as_str()).collect::<Vec<_>>(),
        "approvers_needed": p.approvers_needed,
        "approvals": p.approvals,
        "groups": groups,
        "expires_at": humantime::format_rfc3339_micros(p.expires_at).to_string(),
        "statement": approval_statement(&spec.statement),
    });
    if let Some(subject) = &spec.requester.token_subject {
        approval["requester_subject"] = json!(subject);
    }
    event["chunk"] = json!({
        "connection_id": spec.connection_id.to_string(),
        "workload": spec.workload,
        "target": spec.target,
        "approval": approval,
    });
    if let Some(cgroup) = &spec.requester.cgroup {
        event["chunk"]["cgroup"] = json!({ "path": cgroup });
    }
    event
}

/// A statement waits for approval: request filed.
pub fn approval_requested(p: &crate::approval::Pending) -> Value {
    approval_request_event("approval-requested", "success", &["access", "start"], p)
}

/// An approval counted; more are needed.
pub fn approval_vote_recorded(p: &crate::approval::Pending, by: &str) -> Value {
    let mut event =
        approval_request_event("approval-vote-recorded", "success", &["access", "info"], p);
    event["chunk"]["approval"]["by"] = json!(by);
    event["chunk"]["approval"]["vote"] = json!("approve");
    event
}

/// A request ended: `approval-approved`, `approval-denied`, `approval-expired` or
/// `approval-withdrawn` (the statement stopped waiting).
pub fn approval_decided(d: &crate::approval::book::Decided) -> Value {
    use crate::approval::Resolution;
    let (action, outcome, types): (&str, &str, &[&str]) = match &d.resolution {
        Resolution::Approved { .. } => (
            "approval-approved",
            "success",
            &["access", "allowed", "end"],
        ),
        Resolution::Denied { .. } => ("approval-denied", "failure", &["access", "denied", "end"]),
        Resolution::Expired { .. } => ("approval-expired", "failure", &["access", "denied", "end"]),
        Resolution::Withdrawn => ("approval-withdrawn", "failure", &["access", "end"]),
    };
    let mut event = approval_request_event(action, outcome, types, &d.request);
    match &d.resolution {
        Resolution::Approved { approvers } => {
            event["chunk"]["approval"]["approvals"] = json!(approvers)
        }
        Resolution::Denied { by } => {
            event["chunk"]["approval"]["by"] = json!(by);
            event["chunk"]["approval"]["vote"] = json!("deny");
            event["event"]["reason"] = json!(format!("denied by {by}"));
        }
        Resolution::Expired { after } => {
            event["event"]["reason"] = json!(format!(
                "not approved within {}",
                humantime::format_duration(*after)
            ));
        }
        Resolution::Withdrawn => {
            event["event"]["reason"] = json!("the statement stopped waiting");
        }
    }
    event
}

/// A vote the approval service refused (`refusal`: `self-approval`, `not-in-group`,
/// `unknown-request`, `already-decided`, `expired`).
pub fn approval_vote_refused(id: &str, by: &str, vote: &str, refusal: &str, reason: &str) -> Value {
    let mut event = approval_event(
        "approval-vote-refused",
        "failure",
        &["database"],
        &["access", "denied"],
    );
    event["event"]["reason"] = json!(reason);
    event["chunk"] = json!({
        "refusal": refusal,
        "approval": { "id": id, "by": by, "vote": vote },
    });
    event
}

/// A request to the approval API without a valid token (never the token itself).
pub fn approval_auth_failed(client: SocketAddr, refusal: &str, reason: &str) -> Value {
    let mut event = approval_event(
        "approval-auth-failed",
        "failure",
        &["authentication"],
        &["start", "denied"],
    );
    event["event"]["reason"] = json!(reason);
    event["source"] = ip_and_port(client);
    event["chunk"] = json!({ "refusal": refusal });
    event
}

/// A webhook notification could not be delivered (never the webhook's URL).
pub fn approval_notify_failed(reason: &str) -> Value {
    let mut event = approval_event(
        "approval-notify-failed",
        "failure",
        &["network"],
        &["error"],
    );
    event["error"] = json!({ "message": reason });
    event
}

fn grant_fields(g: &crate::approval::Grant) -> Value {
    let mut grant = json!({
        "id": g.id,
        "operations": g.operations.iter().map(|o| o.as_str()).collect::<Vec<_>>(),
        "tables": g.tables,
        "by": g.by,
        "expires_at": humantime::format_rfc3339_micros(g.expires_at).to_string(),
        "duration_s": g.expires_at.duration_since(g.created_at).unwrap_or_default().as_secs(),
    });
    if let Some(reason) = &g.reason {
        grant["reason"] = json!(reason);
    }
    grant
}

/// An approver granted a workload a class of statements on a target for a while.
pub fn grant_created(g: &crate::approval::Grant) -> Value {
    let mut event = approval_event("grant-created", "success", &["iam"], &["creation"]);
    event["chunk"] =
        json!({ "workload": g.workload, "target": g.target, "grant": grant_fields(g) });
    event
}

/// A grant was refused (invalid, or for the approver's own workload).
pub fn grant_refused(by: &str, workload: &str, target: &str, reason: &str) -> Value {
    let mut event = approval_event(
        "grant-refused",
        "failure",
        &["iam"],
        &["creation", "denied"],
    );
    event["event"]["reason"] = json!(reason);
    event["chunk"] = json!({ "workload": workload, "target": target, "grant": { "by": by } });
    event
}

/// A statement needing approval passed at once under a grant.
pub fn grant_used(g: &crate::approval::Grant, spec: &crate::approval::RequestSpec) -> Value {
    let mut event = approval_event(
        "grant-used",
        "success",
        &["database"],
        &["access", "allowed"],
    );
    event["process"] = json!({ "pid": spec.requester.pid, "name": spec.requester.process });
    event["user"] = json!({ "id": spec.requester.uid.to_string() });
    event["chunk"] = json!({
        "connection_id": spec.connection_id.to_string(),
        "workload": spec.workload,
        "target": spec.target,
        "grant": { "id": g.id, "by": g.by },
        "approval": { "statement": approval_statement(&spec.statement) },
    });
    event
}

/// A grant ended: revoked by `revoked_by` (`grant-revoked`) or at its time (`grant-expired`).
pub fn grant_ended(g: &crate::approval::Grant, revoked_by: Option<&str>) -> Value {
    let action = if revoked_by.is_some() {
        "grant-revoked"
    } else {
        "grant-expired"
    };
    let mut event = approval_event(action, "success", &["iam"], &["deletion"]);
    event["chunk"] =
        json!({ "workload": g.workload, "target": g.target, "grant": grant_fields(g) });
    if let Some(by) = revoked_by {
        event["chunk"]["grant"]["revoked_by"] = json!(by);
    }
    event
}

/// How many audit lines may wait for the writer before `emit` blocks (back-pressure: lines are
/// never dropped).
const QUEUE_LINES: usize = 16 * 1024;

/// How long the writer lets lines gather after writing a batch: one wake-up and one write per
/// interval at most, instead of one per line (a statement's event would otherwise cost the
/// proxy a thread wake-up and a `write(2)`). Bounds how late a line reaches the sink.
const BATCH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(5);

/// Where audit lines go. Sessions hand lines to a writer thread through a bounded queue, so the
/// proxy's hot path never waits on the disk; the writer writes what has gathered in batches,
/// at most every [`BATCH_INTERVAL`], and flushes after each batch. Dropping the log flushes
/// everything queued.
pub struct AuditLog {
    /// Read-locked to send (senders do not contend), write-locked to close.
    queue: RwLock<Option<SyncSender<String>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl AuditLog {
    /// `-` is standard output; anything else a file opened for appending.
    pub fn open(target: &Path) -> io::Result<Self> {
        let out: Box<dyn Write + Send> = if target == Path::new("-") {
            Box::new(io::stdout())
        } else {
            Box::new(open_append(target)?)
        };
        Ok(Self::to_writer(out))
    }

    pub fn to_writer(out: Box<dyn Write + Send>) -> Self {
        Self::to_sink(Box::new(sink::WriterSink::new(out)))
    }

    /// The sinks of `config` (a file or stdout, and/or syslog); see [`sink`].
    pub fn open_config(config: &sink::AuditConfig) -> io::Result<Self> {
        Ok(Self::to_sink(config.open()?))
    }

    /// Lines go to `sink`, from the writer thread.
    pub fn to_sink(sink: Box<dyn sink::AuditSink>) -> Self {
        let (queue, lines) = sync_channel::<String>(QUEUE_LINES);
        let writer = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_lines(lines, sink))
            .expect("cannot start the audit writer thread");
        Self {
            queue: RwLock::new(Some(queue)),
            writer: Mutex::new(Some(writer)),
        }
    }

    /// Stamps the event with `@timestamp` and queues it as one line.
    pub fn emit(&self, mut event: Value) {
        let now = humantime::format_rfc3339_micros(SystemTime::now()).to_string();
        if let Some(map) = event.as_object_mut() {
            map.insert("@timestamp".into(), Value::String(now));
        }
        let mut line = event.to_string();
        line.push('\n');
        self.emit_line(line);
    }

    /// Queues a line already stamped and serialised, newline included ([`SessionEvents`]).
    pub fn emit_line(&self, line: String) {
        let queue = self.queue.read().unwrap_or_else(|e| e.into_inner());
        match &*queue {
            Some(queue) if queue.send(line).is_ok() => {}
            _ => tracing::error!("the audit writer is gone: an audit event was not written"),
        }
    }

    /// Writes out everything queued and stops the writer. Later events are reported as lost.
    pub fn close(&self) {
        drop(self.queue.write().unwrap_or_else(|e| e.into_inner()).take());
        if let Some(writer) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = writer.join();
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.close();
    }
}

/// The writer thread: writes the lines that have gathered, flushes, then lets more gather for
/// [`BATCH_INTERVAL`] (the queue is bounded: emitters wait if it fills meanwhile).
fn write_lines(lines: Receiver<String>, mut out: Box<dyn sink::AuditSink>) {
    while let Ok(line) = lines.recv() {
        let mut result = out.write_line(&line);
        while let Ok(more) = lines.try_recv() {
            result = result.and_then(|()| out.write_line(&more));
        }
        if let Err(err) = result.and_then(|()| out.flush()) {
            tracing::error!(%err, "cannot write the audit log");
        }
        std::thread::sleep(BATCH_INTERVAL);
    }
    let _ = out.flush();
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Where the writer thread puts audit lines: a file (optionally rotated by size), standard
/// output, syslog (RFC 5424 over UDP, TCP with octet-counting framing (RFC 6587), or a unix
/// socket), or several of them.
pub mod sink {
    use std::{
        fs::{File, OpenOptions},
        io::{self, BufWriter, Write},
        net::{TcpStream, ToSocketAddrs, UdpSocket},
        os::unix::net::{UnixDatagram, UnixStream},
        path::{Path, PathBuf},
        str::FromStr,
        time::{Duration, Instant},
    };

    /// Receives whole lines (a JSON object and `\n`) from the writer thread.
    pub trait AuditSink: Send {
        fn write_line(&mut self, line: &str) -> io::Result<()>;
        /// Called whenever no more lines are waiting.
        fn flush(&mut self) -> io::Result<()>;
    }

    /// Any writer (standard output, a file, a test buffer), buffered.
    pub struct WriterSink(BufWriter<Box<dyn Write + Send>>);

    impl WriterSink {
        pub fn new(out: Box<dyn Write + Send>) -> Self {
            Self(BufWriter::with_capacity(64 * 1024, out))
        }
    }

    impl AuditSink for WriterSink {
        fn write_line(&mut self, line: &str) -> io::Result<()> {
            self.0.write_all(line.as_bytes())
        }
        fn flush(&mut self) -> io::Result<()> {
            self.0.flush()
        }
    }

    /// Every line to each sink; a failing sink does not stop the others.
    pub struct Tee(pub Vec<Box<dyn AuditSink>>);

    impl AuditSink for Tee {
        fn write_line(&mut self, line: &str) -> io::Result<()> {
            let mut first_error = None;
            for sink in &mut self.0 {
                if let Err(err) = sink.write_line(line) {
                    first_error.get_or_insert(err);
                }
            }
            first_error.map_or(Ok(()), Err)
        }
        fn flush(&mut self) -> io::Result<()> {
            let mut first_error = None;
            for sink in &mut self.0 {
                if let Err(err) = sink.flush() {
                    first_error.get_or_insert(err);
                }
            }
            first_error.map_or(Ok(()), Err)
        }
    }

    /// A file appended to, rotated when the next line would take it past `max_bytes`:
    /// `PATH.N-1` becomes `PATH.N` (the old `PATH.N` is gone), ..., `PATH` becomes `PATH.1`,
    /// and a new `PATH` is started. `keep` is N (0: the old file is simply removed). A line is
    /// never split across files.
    pub struct RotatingFile {
        path: PathBuf,
        max_bytes: u64,
        keep: usize,
        out: BufWriter<File>,
        size: u64,
    }

    impl RotatingFile {
        pub fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<Self> {
            let file = open_append(path)?;
            let size = file.metadata()?.len();
            Ok(Self {
                path: path.to_path_buf(),
                max_bytes,
                keep,
                out: BufWriter::with_capacity(64 * 1024, file),
                size,
            })
        }

        fn numbered(&self, n: usize) -> PathBuf {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        }

        fn rotate(&mut self) -> io::Result<()> {
            self.out.flush()?;
            for n in (1..self.keep).rev() {
                match std::fs::rename(self.numbered(n), self.numbered(n + 1)) {
                    Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                    _ => {}
                }
            }
            if self.keep > 0 {
                std::fs::rename(&self.path, self.numbered(1))?;
            } else {
                std::fs::remove_file(&self.path)?;
            }
            self.out = BufWriter::with_capacity(64 * 1024, open_append(&self.path)?);
            self.size = 0;
            Ok(())
        }
    }

    impl AuditSink for RotatingFile {
        fn write_line(&mut self, line: &str) -> io::Result<()> {
            if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
                self.rotate()?;
            }
            self.out.write_all(line.as_bytes())?;
            self.size += line.len() as u64;
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            self.out.flush()
        }
    }

    fn open_append(path: &Path) -> io::Result<File> {
        use std::os::unix::fs::OpenOptionsExt as _;
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)
    }

    /// Sizes like `100MB`, `512k`, `1G`, `4096` (K, M, G: powers of 1024; a trailing `B` or
    /// `iB` is allowed).
    pub fn parse_size(text: &str) -> Result<u64, String> {
        let t = text.trim();
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (number, unit) = t.split_at(digits);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("{text:?}: expected a size such as 100MB"))?;
        let unit = unit.trim().to_ascii_lowercase();
        let unit = unit.trim_end_matches("ib").trim_end_matches('b');
        let factor: u64 = match unit {
            "" => 1,
            "k" => 1 << 10,
            "m" => 1 << 20,
            "g" => 1 << 30,
            _ => return Err(format!("{text:?}: unknown unit (use K, M or G)")),
        };
        number
            .checked_mul(factor)
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{text:?}: size out of range"))
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum SyslogTransport {
        /// `host:port`: one datagram per event.
        Udp(String),
        /// `host:port`: octet-counting framing (`LEN SP MSG`, RFC 6587).
        Tcp(String),
        /// A unix socket (`/dev/log`): datagrams, or octet-counted frames if it is a stream
        /// socket.
        Unix(PathBuf),
    }

    /// `udp://HOST:PORT`, `tcp://HOST:PORT` or `unix:///PATH`, optionally followed by
    /// `?facility=NAME` (default `authpriv`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SyslogTarget {
        pub transport: SyslogTransport,
        /// The RFC 5424 facility number (0-23).
        pub facility: u8,
    }

    /// `authpriv`: security messages, readable by administrators only.
    pub const DEFAULT_FACILITY: u8 = 10;

    const FACILITIES: &[(&str, u8)] = &[
        ("kern", 0),
        ("user", 1),
        ("mail", 2),
        ("daemon", 3),
        ("auth", 4),
        ("syslog", 5),
        ("lpr", 6),
        ("news", 7),
        ("uucp", 8),
        ("cron", 9),
        ("authpriv", 10),
        ("ftp", 11),
        ("ntp", 12),
        ("security", 13),
        ("console", 14),
        ("local0", 16),
        ("local1", 17),
        ("local2", 18),
        ("local3", 19),
        ("local4", 20),
        ("local5", 21),
        ("local6", 22),
        ("local7", 23),
    ];

    impl FromStr for SyslogTarget {
        type Err = String;

        fn from_str(text: &str) -> Result<Self, String> {
            let (address, query) = text.split_once('?').unwrap_or((text, ""));
            let mut facility = DEFAULT_FACILITY;
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                match pair.split_once('=') {
                    Some(("facility", name)) => {
                        facility = FACILITIES
                            .iter()
                            .find(|(n, _)| *n == name)
                            .map(|(_, f)| *f)
                            .ok_or_else(|| format!("{text:?}: unknown syslog facility {name:?}"))?;
                    }
                    _ => return Err(format!("{text:?}: unknown option {pair:?}")),
                }
            }
            let host_port = |rest: &str| {
                if rest
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
                {
                    Ok(rest.to_string())
                } else {
                    Err(format!("{text:?}: expected HOST:PORT after the scheme"))
                }
            };
            let transport = if let Some(rest) = address.strip_prefix("udp://") {
                SyslogTransport::Udp(host_port(rest)?)
            } else if let Some(rest) = address.strip_prefix("tcp://") {
                SyslogTransport::Tcp(host_port(rest)?)
            } else if let Some(rest) = address.strip_prefix("unix://") {
                if !rest.starts_with('/') {
                    return Err(format!(
                        "{text:?}: expected an absolute path: unix:///dev/log"
                    ));
                }
                SyslogTransport::Unix(PathBuf::from(rest))
            } else {
                return Err(format!(
                    "{text:?}: expected udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH"
                ));
            };
            Ok(Self {
                transport,
                facility,
            })
        }
    }

    /// The RFC 5424 severity of an audit line: `agent-error` is an error (3), any other
    /// failure a warning (4), the rest informational (6).
    pub fn severity(action: &str, outcome: &str) -> u8 {
        match (action, outcome) {
            ("agent-error", _) => 3,
            (_, "failure") => 4,
            _ => 6,
        }
    }

    /// An RFC 5424 header field: printable US-ASCII without spaces, at most `max`
    /// characters, `-` when empty.
    fn header_field(value: &str, max: usize) -> String {
        let clean: String = value
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(max)
            .collect();
        if clean.is_empty() { "-".into() } else { clean }
    }

    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`: no structured data; MSGID is
    /// the event's action, MSG the JSON line (without its newline).
    #[allow(clippy::too_many_arguments)]
    pub fn format_rfc5424(
        facility: u8,
        severity: u8,
        timestamp: &str,
        hostname: &str,
        app_name: &str,
        procid: u32,
        msgid: &str,
        msg: &str,
    ) -> String {
        format!(
            "<{}>1 {} {} {} {} {} - {}",
            u16::from(facility) * 8 + u16::from(severity),
            header_field(timestamp, 64),
            header_field(hostname, 255),
            header_field(app_name, 48),
            procid,
            header_field(msgid, 32),
            msg.trim_end_matches('\n'),
        )
    }

    /// RFC 6587 octet counting: `LEN SP MSG`.
    pub fn octet_frame(message: &str) -> String {
        format!("{} {message}", message.len())
    }

    enum Connection {
        Udp(UdpSocket),
        Tcp(TcpStream),
        UnixDgram(UnixDatagram),
        UnixStream(UnixStream),
    }

    const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
    const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
    /// After a failure, lines are dropped (and counted) for this long before reconnecting,
    /// so a dead collector does not stall the agent.
    const RETRY_AFTER: Duration = Duration::from_secs(5);

    /// Sends each line as one syslog message. Best effort when the collector is unreachable
    /// (lines are dropped and counted, reported when it is back): keep a file sink beside it
    /// for completeness.
    pub struct Syslog {
        target: SyslogTarget,
        hostname: String,
        pid: u32,
        connection: Option<Connection>,
        retry_at: Option<Instant>,
        dropped: u64,
    }

    impl Syslog {
        /// Connects (an error if the first connection fails: a typo should stop the agent).
        pub fn open(target: SyslogTarget) -> io::Result<Self> {
            let mut sink = Self {
                hostname: nix::unistd::gethostname()
                    .map(|h| h.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                pid: std::process::id(),
                connection: None,
                retry_at: None,
                dropped: 0,
                target,
            };
            sink.connection = Some(sink.connect()?);
            Ok(sink)
        }

        fn connect(&self) -> io::Result<Connection> {
            let resolve = |host_port: &str| {
                host_port.to_socket_addrs()?.next().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, format!("{host_port}: no address"))
                })
            };
            Ok(match &self.target.transport {
                SyslogTransport::Udp(host_port) => {
                    let addr = resolve(host_port)?;
                    let local = if addr.is_ipv4() {
                        "0.0.0.0:0"
                    } else {
                        "[::]:0"
                    };
                    let socket = UdpSocket::bind(local)?;
                    socket.connect(addr)?;
                    Connection::Udp(socket)
                }
                SyslogTransport::Tcp(host_port) => {
                    let stream = TcpStream::connect_timeout(&resolve(host_port)?, CONNECT_TIMEOUT)?;
                    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
                    stream.set_nodelay(true)?;
                    Connection::Tcp(stream)
                }
                SyslogTransport::Unix(path) => {
                    let socket = UnixDatagram::unbound()?;
                    match socket.connect(path) {
                        Ok(()) => Connection::UnixDgram(socket),
                        // EPROTOTYPE: a stream socket.
                        Err(err)
                            if err.raw_os_error() == Some(nix::errno::Errno::EPROTOTYPE as i32) =>
                        {
                            let stream = UnixStream::connect(path)?;
                            stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
                            Connection::UnixStream(stream)
                        }
                        Err(err) => return Err(err),
                    }
                }
            })
        }

        /// The syslog message of an audit line.
        pub fn message(&self, line: &str) -> String {
            #[derive(serde::Deserialize, Default)]
            struct Event {
                #[serde(default)]
                action: String,
                #[serde(default)]
                outcome: String,
            }
            #[derive(serde::Deserialize)]
            struct Line {
                #[serde(rename = "@timestamp", default)]
                timestamp: String,
                #[serde(default)]
                event: Event,
            }
            let parsed: Line = serde_json::from_str(line).unwrap_or(Line {
                timestamp: String::new(),
                event: Event::default(),
            });
            let timestamp = if parsed.timestamp.is_empty() {
                humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
            } else {
                parsed.timestamp
            };
            format_rfc5424(
                self.target.facility,
                severity(&parsed.event.action, &parsed.event.outcome),
                &timestamp,
                &self.hostname,
                "chunk-agent",
                self.pid,
                &parsed.event.action,
                line,
            )
        }

        fn send(connection: &mut Connection, message: &str) -> io::Result<()> {
            match connection {
                Connection::Udp(socket) => socket.send(message.as_bytes()).map(drop),
                Connection::UnixDgram(socket) => socket.send(message.as_bytes()).map(drop),
                Connection::Tcp(stream) => stream.write_all(octet_frame(message).as_bytes()),
                Connection::UnixStream(stream) => stream.write_all(octet_frame(message).as_bytes()),
            }
        }
    }

    impl AuditSink for Syslog {
        fn write_line(&mut self, line: &str) -> io::Result<()> {
            let message = self.message(line);
            if self.connection.is_none() {
                if self.retry_at.is_some_and(|at| Instant::now() < at) {
                    self.dropped += 1;
                    return Ok(());
                }
                match self.connect() {
                    Ok(connection) => {
                        if self.dropped > 0 {
                            tracing::warn!(
                                dropped = self.dropped,
                                "syslog collector reachable again; audit lines were not sent to it meanwhile"
                            );
                        }
                        self.dropped = 0;
                        self.retry_at = None;
                        self.connection = Some(connection);
                    }
                    Err(err) => {
                        self.dropped += 1;
                        self.retry_at = Some(Instant::now() + RETRY_AFTER);
                        return Err(err);
                    }
                }
            }
            let Some(connection) = self.connection.as_mut() else {
                return Ok(());
            };
            if let Err(err) = Self::send(connection, &message) {
                // A datagram too large for the socket: this line is lost, the socket is fine.
                if err.raw_os_error() == Some(nix::errno::Errno::EMSGSIZE as i32) {
                    return Err(err);
                }
                self.connection = None;
                self.dropped += 1;
                self.retry_at = Some(Instant::now() + RETRY_AFTER);
                return Err(err);
            }
            Ok(())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Where the audit log goes (`agent run --audit-log`, `--audit-rotate-size`,
    /// `--audit-rotate-keep`, `--audit-syslog`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AuditConfig {
        /// A file appended to, `-` for standard output, `None` for neither.
        pub log: Option<PathBuf>,
        /// Rotate the file when it would grow past this many bytes.
        pub rotate_size: Option<u64>,
        /// Rotated files kept (`PATH.1` ... `PATH.N`).
        pub rotate_keep: usize,
        pub syslog: Option<SyslogTarget>,
    }

    impl Default for AuditConfig {
        fn default() -> Self {
            Self {
                log: Some(PathBuf::from("-")),
                rotate_size: None,
                rotate_keep: 5,
                syslog: None,
            }
        }
    }

    impl AuditConfig {
        pub fn open(&self) -> io::Result<Box<dyn AuditSink>> {
            let mut sinks: Vec<Box<dyn AuditSink>> = Vec::new();
            match (&self.log, self.rotate_size) {
                (None, _) => {}
                (Some(path), _) if path == Path::new("-") => {
                    sinks.push(Box::new(WriterSink::new(Box::new(io::stdout()))));
                }
                (Some(path), Some(max)) => {
                    sinks.push(Box::new(RotatingFile::open(path, max, self.rotate_keep)?));
                }
                (Some(path), None) => {
                    sinks.push(Box::new(WriterSink::new(Box::new(open_append(path)?))));
                }
            }
            if let Some(target) = &self.syslog {
                sinks.push(Box::new(Syslog::open(target.clone())?));
            }
            Ok(match sinks.len() {
                1 => sinks.pop().expect("one sink"),
                _ => Box::new(Tee(sinks)),
            })
        }
    }
}

/// The JSON Schema every audit line satisfies (`docs/audit-event.schema.json`), and a
/// validator for the subset of JSON Schema it uses (`type`, `properties`, `required`,
/// `additionalProperties`, `items`, `enum`, `minimum`, `maximum`, `format: date-time`,
/// `$ref` to `#/$defs/...`). Any other keyword is reported, so the schema cannot silently
/// use something that is not checked.
pub mod schema {
    use serde_json::Value;

    pub const EVENT_SCHEMA: &str = include_str!("../../docs/audit-event.schema.json");

    pub fn event_schema() -> Value {
        serde_json::from_str(EVENT_SCHEMA).expect("docs/audit-event.schema.json is valid JSON")
    }

    /// Why `event` does not satisfy the audit event schema (empty: it does).
    pub fn validate_event(event: &Value) -> Vec<String> {
        let schema = event_schema();
        let mut errors = Vec::new();
        check(&schema, &schema, event, "", &mut errors);
        errors
    }

    /// Why `instance` does not satisfy `schema` (empty: it does).
    pub fn validate(schema: &Value, instance: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        check(schema, schema, instance, "", &mut errors);
        errors
    }

    fn type_matches(name: &str, v: &Value) -> bool {
        match name {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            _ => false,
        }
    }

    fn check(root: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
        let here = if at.is_empty() { "(root)" } else { at };
        let Some(schema) = schema.as_object() else {
            if schema == &Value::Bool(false) {
                errors.push(format!("{here}: not allowed"));
            }
            return;
        };
        for (keyword, value) in schema {
            match keyword.as_str() {
                "$schema" | "$id" | "$comment" | "$defs" | "title" | "description" | "examples" => {
                }
                "$ref" => {
                    let target = value
                        .as_str()
                        .and_then(|r| r.strip_prefix("#/$defs/"))
                        .and_then(|name| root.get("$defs").and_then(|d| d.get(name)));
                    match target {
                        Some(target) => check(root, target, v, at, errors),
                        None => errors.push(format!("{here}: unresolvable $ref {value}")),
                    }
                }
                "type" => {
                    let ok = match value {
                        Value::String(t) => type_matches(t, v),
                        Value::Array(ts) => ts
                            .iter()
                            .any(|t| t.as_str().is_some_and(|t| type_matches(t, v))),
                        _ => false,
                    };
                    if !ok {
                        errors.push(format!("{here}: {v} is not of type {value}"));
                    }
                }
                "enum" => {
                    if !value.as_array().is_some_and(|allowed| allowed.contains(v)) {
                        errors.push(format!("{here}: {v} is not one of {value}"));
                    }
                }
                "minimum" => {
                    if let (Some(n), Some(min)) = (v.as_f64(), value.as_f64())
                        && n < min
                    {
                        errors.push(format!("{here}: {v} is below {min}"));
                    }
                }
                "maximum" => {
                    if let (Some(n), Some(max)) = (v.as_f64(), value.as_f64())
                        && n > max
                    {
                        errors.push(format!("{here}: {v} is above {max}"));
                    }
                }
                "format" => {
                    if value == "date-time"
                        && let Some(s) = v.as_str()
                        && humantime::parse_rfc3339(s).is_err()
                    {
                        errors.push(format!("{here}: {s:?} is not an RFC 3339 date-time"));
                    }
                }
                "required" => {
                    if let (Some(obj), Some(names)) = (v.as_object(), value.as_array()) {
                        for name in names.iter().filter_map(Value::as_str) {
                            if !obj.contains_key(name) {
                                errors.push(format!("{here}: missing required {name:?}"));
                            }
                        }
                    }
                }
                "properties" => {
                    if let (Some(obj), Some(props)) = (v.as_object(), value.as_object()) {
                        for (name, sub) in props {
                            if let Some(child) = obj.get(name) {
                                check(root, sub, child, &format!("{at}/{name}"), errors);
                            }
                        }
                    }
                }
                "additionalProperties" => {
                    if let Some(obj) = v.as_object() {
                        let known = schema.get("properties").and_then(Value::as_object);
                        for (name, child) in obj {
                            if known.is_some_and(|k| k.contains_key(name)) {
                                continue;
                            }
                            match value {
                                Value::Bool(false) => {
                                    errors.push(format!("{here}: undocumented field {name:?}"))
                                }
                                Value::Bool(true) => {}
                                sub => check(root, sub, child, &format!("{at}/{name}"), errors),
                            }
                        }
                    }
                }
                "items" => {
                    if let Some(items) = v.as_array() {
                        for (i, item) in items.iter().enumerate() {
                            check(root, value, item, &format!("{at}/{i}"), errors);
                        }
                    }
                }
                other => errors.push(format!("{here}: unsupported schema keyword {other:?}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn facts() -> ConnectionFacts {
        ConnectionFacts {
            client: "[::ffff:127.0.0.1]:40000".parse().unwrap(),
            original_destination: "[::1]:5432".parse().unwrap(),
            pid: 42,
            uid: 1000,
            gid: 100,
            process_name: "psql".into(),
            executable: Some("/usr/bin/psql".into()),
            cgroup_id: 9,
            cgroup_path: Some("/chunk-agent/jobs/w/job".into()),
        }
    }

    #[test]
    fn accepted_event_has_ecs_fields_and_the_identity() {
        let id = Identity {
            workload: "w".into(),
            target: "db".into(),
            target_index: 0,
        };
        let e = connection_accepted(5, &facts(), &id);
        assert_eq!(e["event"]["action"], "connection-accepted");
        assert_eq!(
            e["source"]["ip"], "127.0.0.1",
            "mapped addresses print as IPv4"
        );
        assert_eq!(e["destination"]["ip"], "::1");
        assert_eq!(e["destination"]["port"], 5432);
        assert_eq!(e["process"]["pid"], 42);
        assert_eq!(e["user"]["id"], "1000");
        assert_eq!(e["chunk"]["workload"], "w");
        assert_eq!(e["chunk"]["cgroup"]["path"], "/chunk-agent/jobs/w/job");
    }

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn emitted_lines_are_timestamped_json() {
        let sink = Sink::default();
        let log = AuditLog::to_writer(Box::new(sink.clone()));
        log.emit(agent_stopped(1, "signal"));
        log.emit(agent_error("boom"));
        log.close();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0]["@timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[1]["error"]["message"], "boom");
    }

    fn identity() -> Identity {
        Identity {
            workload: "w".into(),
            target: "db".into(),
            target_index: 0,
        }
    }

    fn judged(decision: crate::sql::Decision) -> crate::pg::gate::Judged {
        crate::pg::gate::Judged {
            message: "Query",
            decision,
            kinds: vec!["DELETE".into()],
            cached: true,
        }
    }

    /// One event of every kind the agent emits, built by the builders.
    fn every_event() -> Vec<Value> {
        use crate::sql::{Decision, RuleRef};
        let f = facts();
        let id = identity();
        let rule = RuleRef {
            name: "orders-read-only".into(),
            source: Some(crate::policy::SourceLocation {
                file: "demo.toml".into(),
                line: 12,
            }),
        };
        let finished = crate::record::Finished {
            path: "/var/lib/chunk-agent/sessions/s.jsonl".into(),
            session: "s".into(),
            entries: 10,
            bytes: 4000,
            digest: "ab".repeat(32),
            truncated: false,
            dropped: 0,
            summary: crate::record::format::Summary::default(),
        };
        let mut no_facts = f.clone();
        no_facts.executable = None;
        no_facts.cgroup_path = None;
        vec![
            agent_started(1, &["127.0.0.1:15432".parse().unwrap()], 2, 3),
            agent_stopped(1, "signal"),
            agent_error("boom"),
            bypass_route_open(&crate::intercept::unix::OpenSocket {
                path: "/var/run/postgresql/.s.PGSQL.5432".into(),
                target: "db".into(),
                reach: crate::intercept::unix::Reach::Group(110),
            }),
            connection_accepted(1, &f, &id),
            connection_passthrough(2, &no_facts),
            connection_refused(3, &f, "no-workload", "no workload for this cgroup"),
            connection_unrecorded(
                4,
                "127.0.0.1:1234".parse().unwrap(),
                crate::intercept::Unrecorded::Missing,
            ),
            session_started(5, &f, &id, "app_ro", "app"),
            upstream_auth_failed(6, &f, &id, "password authentication failed"),
            cancel_request(7, &f, &id, &Ok(())),
            cancel_request(8, &f, &id, &Err("unknown key".into())),
            ephemeral_role(Some(9), "db", "jit_w_1", "ephemeral-role-dropped", None),
            ephemeral_role(None, "db", "jit_w_2", "ephemeral-role-reaped", Some("gone")),
            statement_decision(10, &f, &id, &judged(Decision::Allow { rule: rule.clone() })),
            statement_decision(
                11,
                &f,
                &id,
                &judged(Decision::Deny {
                    rule: rule.clone(),
                    reason: "`write` on `orders`".into(),
                    hint: "h".into(),
                }),
            ),
            statement_decision(
                12,
                &f,
                &id,
                &judged(Decision::NeedsApproval {
                    rule: RuleRef::builtin("default-deny"),
                    approvers: 1,
                    groups: vec![],
                    timeout: std::time::Duration::from_secs(60),
                }),
            ),
            connection_closed(13, &f, Some("w"), Transfer::default(), None),
            connection_closed(14, &f, None, Transfer::default(), Some("reset")),
            session_recorded(15, &f, &id, &finished),
            values_masked(
                17,
                &f,
                &id,
                Some(3),
                &[crate::mask::MaskCount {
                    rule: "cards".into(),
                    site: "column public.payments.card".into(),
                    found: "value",
                    count: 2,
                }],
            ),
            recording_failed(16, &f, &id, "s", "No space left on device", true),
            approval_samples::requested(),
            approval_samples::vote_recorded(),
            approval_samples::decided(crate::approval::Resolution::Approved {
                approvers: vec!["alice".into()],
            }),
            approval_samples::decided(crate::approval::Resolution::Denied { by: "bob".into() }),
            approval_samples::decided(crate::approval::Resolution::Expired {
                after: std::time::Duration::from_secs(600),
            }),
            approval_samples::decided(crate::approval::Resolution::Withdrawn),
            approval_vote_refused("r-1", "mallory", "approve", "not-in-group", "not in dba"),
            approval_auth_failed(
                "127.0.0.1:5000".parse().unwrap(),
                "expired",
                "token expired",
            ),
            approval_notify_failed("the webhook answered 500"),
            approval_samples::grant_created(),
            grant_refused("alice", "w", "db", "a grant lasts from 1s to 24h"),
            approval_samples::grant_used(),
            approval_samples::grant_ended(Some("bob")),
            approval_samples::grant_ended(None),
        ]
        .into_iter()
        .chain(super::token_event_tests::samples())
        .collect()
    }

    /// Sample approval events (see `crate::approval`), for the schema checks.
    mod approval_samples {
        use serde_json::Value;
        use std::time::{Duration, SystemTime};

        use crate::approval::{
            ApprovalBook, Approver, Grant, GrantSpec, Pending, RequestSpec, Requester, Resolution,
            StatementSummary,
            book::{Decided, EffectRef, RuleNeed},
        };
        use crate::policy::Operation;

        fn now() -> SystemTime {
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
        }

        fn spec() -> RequestSpec {
            RequestSpec {
                workload: "w".into(),
                target: "db".into(),
                connection_id: 17,
                requester: Requester {
                    workload: "w".into(),
                    pid: 42,
                    uid: 1000,
                    process: "psql".into(),
                    cgroup: Some("/chunk-agent/jobs/w/job".into()),
                    token_subject: Some("svc-w".into()),
                },
                statement: StatementSummary {
                    kinds: vec!["DELETE".into()],
                    operations: vec![Operation::Write, Operation::BulkWrite],
                    tables: vec!["staging.events".into()],
                    text: Some("delete from staging.events".into()),
                    digest: Some("0123456789abcdef".into()),
                    needs: vec![RuleNeed {
                        rule: "bulk-staging".into(),
                        ruleset: Some("demo.toml:30".into()),
                        approvers: 1,
                        groups: vec!["dba".into()],
                        timeout: Duration::from_secs(600),
                        effects: vec![EffectRef {
                            operation: Operation::BulkWrite,
                            objects: vec![("staging".into(), "events".into())],
                            shown: "bulk_write staging.events".into(),
                        }],
                    }],
                    grantable: true,
                },
            }
        }

        fn pending() -> Pending {
            ApprovalBook::new("t").request(now(), spec()).unwrap()
        }

        fn grant() -> Grant {
            ApprovalBook::new("t")
                .grant(
                    now(),
                    GrantSpec {
                        workload: "w".into(),
                        target: "db".into(),
                        operations: vec![Operation::BulkWrite],
                        tables: vec!["staging.events".into()],
                        duration: Duration::from_secs(7200),
                        by: Approver {
                            subject: "alice".into(),
                            groups: vec!["dba".into()],
                        },
                        reason: Some("backfill".into()),
                    },
                )
                .unwrap()
        }

        pub(super) fn requested() -> Value {
            super::approval_requested(&pending())
        }

        pub(super) fn vote_recorded() -> Value {
            super::approval_vote_recorded(&pending(), "alice")
        }

        pub(super) fn decided(resolution: Resolution) -> Value {
            super::approval_decided(&Decided {
                request: pending(),
                resolution,
                decided_at: now(),
            })
        }

        pub(super) fn grant_created() -> Value {
            super::grant_created(&grant())
        }

        pub(super) fn grant_used() -> Value {
            super::grant_used(&grant(), &spec())
        }

        pub(super) fn grant_ended(revoked_by: Option<&str>) -> Value {
            super::grant_ended(&grant(), revoked_by)
        }
    }

    /// The per-session pre-serialised lines carry exactly the builders' members (and a
    /// timestamp), also with text that needs escaping.
    #[test]
    fn session_event_lines_equal_the_built_events() {
        use crate::sql::{Decision, RuleRef};
        let mut f = facts();
        f.process_name = "we\"ird\\na\tme\u{1}é".into();
        f.cgroup_path = None;
        let id = Identity {
            workload: "w\"1".into(),
            target: "db".into(),
            target_index: 0,
        };
        let events = SessionEvents::new(7, &f, &id);
        let rule = RuleRef {
            name: "orders \"ro\"".into(),
            source: Some(crate::policy::SourceLocation {
                file: "demo.toml".into(),
                line: 12,
            }),
        };
        let decisions = [
            Decision::Allow { rule: rule.clone() },
            Decision::Deny {
                rule: RuleRef::builtin("default-deny"),
                reason: "`write` on\n`orders`".into(),
                hint: "h".into(),
            },
            Decision::NeedsApproval {
                rule,
                approvers: 1,
                groups: vec![],
                timeout: std::time::Duration::from_secs(60),
            },
        ];
        let parse = |line: String| {
            assert!(line.ends_with('\n'));
            let mut v: Value = serde_json::from_str(&line).unwrap();
            let stamp = v.as_object_mut().unwrap().remove("@timestamp").unwrap();
            assert!(stamp.as_str().unwrap().ends_with('Z'));
            v
        };
        for decision in decisions {
            for kinds in [vec![], vec!["SELECT".to_string(), "DELETE".into()]] {
                let judged = crate::pg::gate::Judged {
                    message: "Parse",
                    decision: decision.clone(),
                    kinds,
                    cached: false,
                };
                assert_eq!(
                    parse(events.statement_decision(&judged)),
                    statement_decision(7, &f, &id, &judged)
                );
            }
        }
        let counts = [crate::mask::MaskCount {
            rule: "cards".into(),
            site: "column public.payments.card".into(),
            found: "value",
            count: 2,
        }];
        for request in [Some(3), None] {
            assert_eq!(
                parse(events.values_masked(request, &counts)),
                values_masked(7, &f, &id, request, &counts)
            );
        }
    }

    #[test]
    fn every_event_kind_satisfies_the_documented_schema() {
        let sink = Sink::default();
        let log = AuditLog::to_writer(Box::new(sink.clone()));
        let events = every_event();
        for event in &events {
            log.emit(event.clone());
        }
        log.close();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let schema = schema::event_schema();
        let mut actions = std::collections::BTreeSet::new();
        for line in text.lines() {
            let event: Value = serde_json::from_str(line).expect("a line is JSON");
            let errors = schema::validate(&schema, &event);
            assert!(errors.is_empty(), "{line}\n{errors:#?}");
            actions.insert(event["event"]["action"].as_str().unwrap().to_string());
        }
        assert_eq!(text.lines().count(), events.len());
        // Every action the schema lists is built (and so checked) here.
        let listed: std::collections::BTreeSet<String> =
            schema["properties"]["event"]["properties"]["action"]["enum"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect();
        assert_eq!(actions, listed);
    }

    #[test]
    fn every_action_in_the_schema_is_in_the_catalogue() {
        let doc = include_str!("../../docs/audit-schema.md");
        let schema = schema::event_schema();
        for action in schema["properties"]["event"]["properties"]["action"]["enum"]
            .as_array()
            .unwrap()
        {
            let heading = format!("### `{}`", action.as_str().unwrap());
            assert!(
                doc.contains(&heading),
                "docs/audit-schema.md lacks {heading}"
            );
        }
    }

    #[test]
    fn the_validator_rejects_what_the_schema_forbids() {
        let schema = schema::event_schema();
        let mut event = agent_error("x");
        event["@timestamp"] = json!("2026-01-01T00:00:00.000000Z");
        assert!(schema::validate(&schema, &event).is_empty());
        let mut bad = event.clone();
        bad.as_object_mut().unwrap().remove("@timestamp");
        assert!(schema::validate(&schema, &bad)[0].contains("@timestamp"));
        let mut bad = event.clone();
        bad["event"]["action"] = json!("made-up");
        assert!(!schema::validate(&schema, &bad).is_empty());
        let mut bad = event.clone();
        bad["chunk"] = json!({ "undocumented": 1 });
        assert!(schema::validate(&schema, &bad)[0].contains("undocumented"));
        let mut bad = event.clone();
        bad["@timestamp"] = json!("yesterday");
        assert!(!schema::validate(&schema, &bad).is_empty());
        let mut bad = event;
        bad["source"] = json!({ "ip": "::1", "port": 70000 });
        assert!(!schema::validate(&schema, &bad).is_empty());
        let unsupported = json!({ "type": "string", "pattern": "x" });
        assert!(schema::validate(&unsupported, &json!("x"))[0].contains("pattern"));
    }

    #[test]
    fn no_secret_reaches_an_event() {
        let text: String = every_event().iter().map(ToString::to_string).collect();
        // The builders take identities, addresses, counts and messages, never SQL or values.
        for needle in ["password=", "select ", "delete from", "hunter2"] {
            assert!(!text.to_lowercase().contains(needle), "{needle}");
        }
    }

    mod sinks {
        use std::{
            io::{BufRead as _, BufReader, Read as _},
            net::{TcpListener, UdpSocket},
            os::unix::net::UnixDatagram,
        };

        use super::super::sink::*;
        use super::*;

        #[test]
        fn rfc5424_has_pri_version_timestamp_host_app_procid_msgid_and_no_structured_data() {
            let msg = format_rfc5424(
                10,
                4,
                "2026-01-01T12:00:00.000001Z",
                "db host",
                "chunk-agent",
                42,
                "statement-denied",
                "{\"a\":1}\n",
            );
            assert_eq!(
                msg,
                "<84>1 2026-01-01T12:00:00.000001Z dbhost chunk-agent 42 statement-denied - {\"a\":1}"
            );
            assert_eq!(
                format_rfc5424(16, 6, "", "", "a", 1, "", "m"),
                "<134>1 - - a 1 - - m"
            );
        }

        #[test]
        fn severity_follows_the_outcome() {
            assert_eq!(severity("agent-error", "failure"), 3);
            assert_eq!(severity("statement-denied", "failure"), 4);
            assert_eq!(severity("connection-accepted", "success"), 6);
        }

        #[test]
        fn tcp_frames_are_octet_counted() {
            assert_eq!(
                octet_frame("<14>1 - - - - - - hé"),
                "21 <14>1 - - - - - - hé"
            );
        }

        #[test]
        fn syslog_targets_parse() {
            let t: SyslogTarget = "udp://127.0.0.1:514".parse().unwrap();
            assert_eq!(t.transport, SyslogTransport::Udp("127.0.0.1:514".into()));
            assert_eq!(t.facility, DEFAULT_FACILITY);
            let t: SyslogTarget = "tcp://[::1]:6514?facility=local3".parse().unwrap();
            assert_eq!(t.transport, SyslogTransport::Tcp("[::1]:6514".into()));
            assert_eq!(t.facility, 19);
            let t: SyslogTarget = "unix:///dev/log".parse().unwrap();
            assert_eq!(t.transport, SyslogTransport::Unix("/dev/log".into()));
            for bad in [
                "udp://host",
                "http://x:1",
                "unix://dev/log",
                "tcp://h:1?facility=x",
            ] {
                assert!(bad.parse::<SyslogTarget>().is_err(), "{bad}");
            }
        }

        #[test]
        fn sizes_parse() {
            assert_eq!(parse_size("100MB").unwrap(), 100 << 20);
            assert_eq!(parse_size("512k").unwrap(), 512 << 10);
            assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
            assert_eq!(parse_size("4096").unwrap(), 4096);
            assert!(parse_size("0").is_err());
            assert!(parse_size("10TB").is_err());
            assert!(parse_size("MB").is_err());
        }

        fn emit_all(sink: Box<dyn AuditSink>, n: usize) {
            let log = AuditLog::to_sink(sink);
            for i in 0..n {
                log.emit(agent_error(&format!("event {i}")));
            }
            log.close();
        }

        #[test]
        fn the_file_rotates_at_the_size_threshold_and_keeps_n() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("audit.log");
            // Each line is about 200 bytes: 2 per file.
            let sink = RotatingFile::open(&path, 450, 2).unwrap();
            emit_all(Box::new(sink), 7);
            let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();
            let current = read(&path);
            let one = read(&dir.path().join("audit.log.1"));
            let two = read(&dir.path().join("audit.log.2"));
            assert!(!dir.path().join("audit.log.3").exists());
            assert_eq!(current.lines().count(), 1);
            assert_eq!(one.lines().count(), 2);
            assert_eq!(two.lines().count(), 2);
            assert!(current.contains("event 6"));
            assert!(one.contains("event 4") && one.contains("event 5"));
            assert!(two.contains("event 2") && two.contains("event 3"));
            for text in [current, one, two] {
                assert!(std::fs::metadata(&path).unwrap().len() <= 450);
                for line in text.lines() {
                    serde_json::from_str::<Value>(line).expect("whole lines only");
                }
            }
        }

        #[test]
        fn the_existing_size_counts_and_keep_zero_drops_the_old_file() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("audit.log");
            std::fs::write(&path, "x".repeat(400) + "\n").unwrap();
            emit_all(Box::new(RotatingFile::open(&path, 450, 0).unwrap()), 1);
            assert!(!dir.path().join("audit.log.1").exists());
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.starts_with("{"),
                "rotated away the old content: {text}"
            );
        }

        #[test]
        fn syslog_over_udp_sends_one_datagram_per_event() {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            server
                .set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let url = format!("udp://{}", server.local_addr().unwrap());
            let sink = Syslog::open(url.parse().unwrap()).unwrap();
            emit_all(Box::new(sink), 2);
            let mut buf = [0u8; 4096];
            for i in 0..2 {
                let n = server.recv(&mut buf).unwrap();
                let msg = std::str::from_utf8(&buf[..n]).unwrap();
                assert!(msg.starts_with("<83>1 20"), "{msg}");
                let parts: Vec<&str> = msg.splitn(8, ' ').collect();
                assert_eq!(parts[3], "chunk-agent");
                assert_eq!(parts[4], std::process::id().to_string());
                assert_eq!(parts[5], "agent-error");
                assert_eq!(parts[6], "-");
                let event: Value = serde_json::from_str(parts[7]).unwrap();
                assert_eq!(event["error"]["message"], format!("event {i}"));
                assert_eq!(event["@timestamp"], parts[1]);
            }
        }

        #[test]
        fn syslog_over_tcp_uses_octet_counting() {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("tcp://{}", listener.local_addr().unwrap());
            let sink = Syslog::open(url.parse().unwrap()).unwrap();
            let (stream, _) = listener.accept().unwrap();
            emit_all(Box::new(sink), 3);
            let mut reader = BufReader::new(stream);
            for i in 0..3 {
                let mut len = Vec::new();
                reader.read_until(b' ', &mut len).unwrap();
                let len: usize = std::str::from_utf8(&len[..len.len() - 1])
                    .unwrap()
                    .parse()
                    .unwrap();
                let mut msg = vec![0; len];
                reader.read_exact(&mut msg).unwrap();
                let msg = String::from_utf8(msg).unwrap();
                assert!(msg.starts_with("<83>1 "), "{msg}");
                assert!(msg.ends_with('}'), "{msg}");
                assert!(msg.contains(&format!("event {i}")));
            }
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest).unwrap();
            assert!(rest.is_empty());
        }

        #[test]
        fn syslog_over_a_unix_datagram_socket() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("log");
            let server = UnixDatagram::bind(&path).unwrap();
            let url = format!("unix://{}?facility=local0", path.display());
            emit_all(Box::new(Syslog::open(url.parse().unwrap()).unwrap()), 1);
            let mut buf = [0u8; 4096];
            let n = server.recv(&mut buf).unwrap();
            let msg = std::str::from_utf8(&buf[..n]).unwrap();
            assert!(msg.starts_with("<131>1 "), "{msg}");
        }

        #[test]
        fn an_unreachable_collector_is_an_error_at_start() {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            drop(listener);
            let url = format!("tcp://{addr}");
            assert!(Syslog::open(url.parse().unwrap()).is_err());
        }

        #[test]
        fn a_tee_writes_every_sink_and_the_config_builds_one() {
            let dir = tempfile::tempdir().unwrap();
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let config = AuditConfig {
                log: Some(dir.path().join("audit.log")),
                rotate_size: Some(1 << 20),
                rotate_keep: 3,
                syslog: Some(
                    format!("udp://{}", server.local_addr().unwrap())
                        .parse()
                        .unwrap(),
                ),
            };
            let log = AuditLog::open_config(&config).unwrap();
            log.emit(agent_stopped(1, "test"));
            log.close();
            let text = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
            assert!(text.contains("agent-stopped"));
            let mut buf = [0u8; 4096];
            let n = server.recv(&mut buf).unwrap();
            assert!(
                std::str::from_utf8(&buf[..n])
                    .unwrap()
                    .contains("agent-stopped")
            );
        }
    }
}
