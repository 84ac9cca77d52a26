//! Audit events: one JSON object per line, with Elastic Common Schema (ECS) field names
//! (`@timestamp`, `event.*`, `source.*`, `destination.*`, `process.*`, `user.*`) and the agent's
//! own fields under `chunk.*`.
//!
//! Builders are pure (they take facts, return a JSON value); [`AuditLog`] stamps and writes them.
//! Events never carry secrets: builders only take identities, addresses and counts.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    net::SocketAddr,
    path::Path,
    sync::{
        Mutex,
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
pub fn connection_unrecorded(connection_id: u64, client: SocketAddr) -> Value {
    json!({
        "event": { "kind": "event", "category": ["network"], "type": ["connection", "denied"],
                   "action": "connection-refused", "outcome": "failure",
                   "reason": "no interception record for this connection" },
        "source": ip_and_port(client),
        "chunk": { "connection_id": connection_id.to_string(), "refusal": "unrecorded" },
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

/// How many audit lines may wait for the writer before `emit` blocks (back-pressure: lines are
/// never dropped).
const QUEUE_LINES: usize = 16 * 1024;

/// Where audit lines go. Sessions hand lines to a writer thread through a bounded queue, so the
/// proxy's hot path never waits on the disk; the writer batches them and flushes whenever the
/// queue runs empty. Dropping the log flushes everything queued.
pub struct AuditLog {
    queue: Mutex<Option<SyncSender<String>>>,
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
        let (queue, lines) = sync_channel::<String>(QUEUE_LINES);
        let writer = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_lines(lines, out))
            .expect("cannot start the audit writer thread");
        Self {
            queue: Mutex::new(Some(queue)),
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
        let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match queue {
            Some(queue) if queue.send(line).is_ok() => {}
            _ => tracing::error!("the audit writer is gone: an audit event was not written"),
        }
    }

    /// Writes out everything queued and stops the writer. Later events are reported as lost.
    pub fn close(&self) {
        drop(self.queue.lock().unwrap_or_else(|e| e.into_inner()).take());
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

/// The writer thread: writes lines as they come, flushing when no more are waiting.
fn write_lines(lines: Receiver<String>, out: Box<dyn Write + Send>) {
    let mut out = io::BufWriter::with_capacity(64 * 1024, out);
    while let Ok(line) = lines.recv() {
        let mut result = out.write_all(line.as_bytes());
        while let Ok(more) = lines.try_recv() {
            result = result.and_then(|()| out.write_all(more.as_bytes()));
        }
        if let Err(err) = result.and_then(|()| out.flush()) {
            tracing::error!(%err, "cannot write the audit log");
        }
    }
    let _ = out.flush();
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
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
}
