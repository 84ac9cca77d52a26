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
    sync::Mutex,
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

/// Where audit lines go.
pub struct AuditLog {
    out: Mutex<Box<dyn Write + Send>>,
}

impl AuditLog {
    /// `-` is standard output; anything else a file opened for appending.
    pub fn open(target: &Path) -> io::Result<Self> {
        let out: Box<dyn Write + Send> = if target == Path::new("-") {
            Box::new(io::stdout())
        } else {
            Box::new(open_append(target)?)
        };
        Ok(Self {
            out: Mutex::new(out),
        })
    }

    pub fn to_writer(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
        }
    }

    /// Stamps the event with `@timestamp` and writes it as one line.
    pub fn emit(&self, mut event: Value) {
        let now = humantime::format_rfc3339_micros(SystemTime::now()).to_string();
        if let Some(map) = event.as_object_mut() {
            map.insert("@timestamp".into(), Value::String(now));
        }
        let mut line = event.to_string();
        line.push('\n');
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(err) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
            tracing::error!(%err, "cannot write the audit log");
        }
    }
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
