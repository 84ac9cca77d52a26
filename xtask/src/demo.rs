//! `cargo xtask demo`: the agent at work on an unmodified job, end to end.
//!
//! Everything it starts (PostgreSQL, the agent, cgroups, temp dirs) is torn down when it ends,
//! also on error (the harness types stop their process on drop).

use crate::util::{agent_bin, cargo, run_cmd, section, show};
use agent_tests::audit::JsonPath;
use agent_tests::net::preferred_or_free_port;
use agent_tests::process::shell_quote;
use agent_tests::{
    AgentOptions, AgentProcess, PgAuth, PgOptions, PgServer, Secret, action_of, cgroup2_mount,
};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const POLICY_TEMPLATE: &str = include_str!("demo-policy.toml");
const WORKLOAD: &str = "demo-chunker";
const DEFAULT_CGROUP_BASE: &str = "/chunk-agent";
const SQL: &str = "select current_user, current_setting('application_name') as application_name, \
                   inet_server_port()";
/// The role the agent logs in as; the job only ever claims to be [`JOB_USER`].
const SERVICE_ROLE: &str = "chunker";
const JOB_USER: &str = "jobuser";

pub fn run(no_setup: bool) -> Result<()> {
    if no_setup {
        println!("skipping setup (--no-setup)");
    } else {
        crate::setup::run()?;
    }

    section("1. build the agent");
    run_cmd(cargo().args(["build", "-p", "agent"]))?;
    let bin = agent_bin()?;

    section("2. start a throwaway PostgreSQL (the \"real\" database)");
    let pg = PgServer::start(PgOptions {
        port: Some(preferred_or_free_port(55432)?),
        auth: PgAuth::Scram,
        ..PgOptions::default()
    })?;
    // The shared service account a batch job would otherwise be handed.
    let secret = Secret::random("demo-")?;
    pg.create_login_role(SERVICE_ROLE, secret.value())?;
    // The role itself may do anything to these tables: only the agent's policy stops a write.
    pg.admin_sql(&format!(
        "create table orders (id int primary key, amount numeric); \
         insert into orders select g, g * 10 from generate_series(1, 100) g; \
         create table order_stats (orders bigint, total numeric); \
         grant all on orders, order_stats to {SERVICE_ROLE}"
    ))?;
    let port = pg.port();
    println!(
        "PostgreSQL {} listening on 127.0.0.1:{port} and [::1]:{port}, SCRAM authentication \
         (data in {}); role {SERVICE_ROLE} has a password, kept in {}",
        pg.bin_dir()
            .parent()
            .and_then(|p| p.file_name())
            .map(|v| v.to_string_lossy().into_owned())
            .unwrap_or_default(),
        pg.data_dir().display(),
        secret.path().display()
    );

    section("3. the policy: workload demo-chunker may reach target demo-db");
    let policy_dir = tempfile::Builder::new()
        .prefix("chunk-agent-demo-policies-")
        .tempdir()?;
    let policy_file = policy_dir.path().join("demo.toml");
    std::fs::write(
        &policy_file,
        POLICY_TEMPLATE
            .replace("{{PORT}}", &port.to_string())
            .replace("{{SECRET_FILE}}", &secret.path().display().to_string()),
    )?;
    println!("{}:\n", policy_file.display());
    println!("{}", std::fs::read_to_string(&policy_file)?);
    run_cmd(Command::new(&bin).arg("check").arg(policy_dir.path()))?;

    section("4. start the agent");
    let cgroup_base = if cgroup2_mount()?
        .join(DEFAULT_CGROUP_BASE.trim_start_matches('/'))
        .exists()
    {
        // Do not touch an existing /chunk-agent (another agent may own it).
        format!("/{}", agent_tests::unique_name("chunk-agent-demo"))
    } else {
        DEFAULT_CGROUP_BASE.to_string()
    };
    let listen_port = preferred_or_free_port(15432)?;
    show(
        Command::new(&bin)
            .arg("run")
            .arg("--policies")
            .arg(policy_dir.path())
            .args(["--listen-port", &listen_port.to_string()])
            .args(["--cgroup-base", &cgroup_base])
            .args(["--audit-log", "<temp file>"]),
    );
    let mut agent = AgentProcess::start_with(AgentOptions {
        policy_dir: Some(policy_dir.path().to_path_buf()),
        listen_port: Some(listen_port),
        cgroup_base: Some(cgroup_base.clone()),
        agent_bin: Some(bin.clone()),
        ..AgentOptions::default()
    })?;
    println!(
        "agent running (pid {}), proxy on 127.0.0.1:{listen_port} and [::1]:{listen_port}\n\
         its logs: {}\nits audit log: {}",
        agent.pid().unwrap_or_default(),
        agent.stderr_path().display(),
        agent.audit_path().display()
    );

    let psql = [
        "psql",
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        JOB_USER,
        "-d",
        "postgres",
        "-X",
        "-c",
        SQL,
    ];

    section("5. an unmodified job, started as workload demo-chunker");
    println!(
        "The job connects to the real address 127.0.0.1:{port} as {JOB_USER}, with no password; \
         the kernel hands the connection to the agent's proxy, which knows which job it is and \
         logs in as {SERVICE_ROLE} for it."
    );
    let mut job = agent.exec_command(WORKLOAD, &psql);
    job.env("PGCONNECT_TIMEOUT", "10");
    if cgroup_base == DEFAULT_CGROUP_BASE {
        // Show the command as a person would type it (the default base needs no option).
        println!(
            "$ agent exec --workload {WORKLOAD} -- {}",
            psql.iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" ")
        );
    } else {
        show(&job);
    }
    let status = job.status().context("cannot run agent exec")?;
    if !status.success() {
        bail!(
            "the job failed ({status}); agent logs:\n{}",
            agent.stderr_log()
        );
    }

    section("6. the job's statements are judged by the policy");
    println!(
        "Allowed: reading orders and writing order_stats. Denied, before it reaches the \
         database: any write to orders (rule orders-are-read-only), although the role could."
    );
    for (sql, expect_ok) in [
        (
            "insert into order_stats select count(*), sum(amount) from orders returning *",
            true,
        ),
        ("delete from orders where id = 1", false),
    ] {
        let mut args: Vec<String> = psql[..psql.len() - 1]
            .iter()
            .map(|a| a.to_string())
            .collect();
        args.push(sql.to_string());
        let mut job = agent.exec_command(WORKLOAD, &args);
        job.env("PGCONNECT_TIMEOUT", "10")
            .stdin(std::process::Stdio::null());
        println!(
            "$ agent exec --workload {WORKLOAD} -- psql ... -c {}",
            shell_quote(sql)
        );
        let out = job.output().context("cannot run agent exec")?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
        print!("{}", String::from_utf8_lossy(&out.stderr));
        if out.status.success() != expect_ok {
            bail!(
                "`{sql}` {}; agent logs:\n{}",
                if expect_ok {
                    "failed"
                } else {
                    "was not denied"
                },
                agent.stderr_log()
            );
        }
    }
    let left = pg.admin_sql("select count(*) from orders")?;
    println!(
        "orders still holds {} rows: the denied delete never ran",
        left.trim()
    );

    section("7. the same psql, outside any workload");
    println!(
        "Not a job of any workload: the agent leaves this connection alone, and without the \
         password the server refuses it."
    );
    let outside = Command::new(psql[0])
        .args(&psql[1..])
        .arg("--no-password")
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGPASSWORD")
        .stdin(std::process::Stdio::null())
        .output()
        .context("cannot run psql")?;
    print!("{}", String::from_utf8_lossy(&outside.stdout));
    print!("{}", String::from_utf8_lossy(&outside.stderr));
    if outside.status.success() {
        bail!(
            "psql outside the workload logged in without a password: the demo server is misconfigured"
        );
    }

    // The close of the relayed connection is audited once the proxy sees it end.
    let _ = agent.wait_for_event(
        |e| action_of(e) == "connection-closed",
        Duration::from_secs(5),
    );

    section("8. what the agent saw (its audit log)");
    let events = agent.audit_events();
    print_table(&events);
    let accepted: Vec<&Value> = events
        .iter()
        .filter(|e| action_of(e) == "connection-accepted")
        .collect();
    if let Some(first) = accepted.first() {
        println!("\nThe connection-accepted event in full:");
        println!("{}", serde_json::to_string_pretty(first)?);
    }

    section("9. tear down");
    let logged_in_as_service = events.iter().any(|e| {
        action_of(e) == "session-started" && e.str_at("chunk.upstream.role") == Some(SERVICE_ROLE)
    });
    let denied = events.iter().any(|e| {
        action_of(e) == "statement-denied" && e.str_at("rule.name") == Some("orders-are-read-only")
    });
    let all_ours = accepted
        .iter()
        .all(|e| e.str_at("chunk.workload") == Some(WORKLOAD));
    let verdict = if accepted.len() == 3 && all_ours && logged_in_as_service && denied {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "expected the 3 jobs' connections intercepted (found {}), logged in as \
             {SERVICE_ROLE}, and the delete denied by orders-are-read-only",
            accepted.len()
        ))
    };
    println!("stopping the agent (SIGTERM)");
    let status = agent.stop()?;
    println!("agent exited: {status}");
    // A stopped agent keeps its programs pinned (fail closed): the demo removes them.
    println!("removing the pinned eBPF state (agent uninstall)");
    let uninstall = agent.uninstall(false)?;
    anyhow::ensure!(
        uninstall.status.success(),
        "agent uninstall failed: {}",
        String::from_utf8_lossy(&uninstall.stderr)
    );
    drop(agent);
    println!("stopping PostgreSQL");
    drop(pg);
    verdict?;
    println!(
        "\ndemo OK: the jobs' connections went through the agent, were attributed to their \
         workload, process and cgroup, and ran as {SERVICE_ROLE} without the job ever holding \
         the password; the write the policy forbids was refused before reaching the database; \
         the other connection was not touched."
    );
    Ok(())
}

/// One row of the audit table.
fn row(event: &Value) -> Vec<String> {
    let s = |path: &str| event.str_at(path).unwrap_or("").to_string();
    let n = |path: &str| {
        event
            .u64_at(path)
            .map(|n| n.to_string())
            .unwrap_or_default()
    };
    let time = event
        .str_at("@timestamp")
        .and_then(|t| t.split_once('T'))
        .map(|(_, t)| t.chars().take(12).collect())
        .unwrap_or_default();
    let action = action_of(event).to_string();
    let (pid, process, destination) = if action == "agent-started" {
        let listen = event
            .at("agent.listen")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        (
            n("agent.pid"),
            "(the agent)".to_string(),
            format!("listen {listen}"),
        )
    } else {
        let process = match (
            event.str_at("process.name"),
            event.str_at("process.executable"),
        ) {
            (Some(name), Some(exe)) => format!("{name} ({exe})"),
            (Some(name), None) => name.to_string(),
            (None, Some(exe)) => exe.to_string(),
            (None, None) => String::new(),
        };
        let ip = s("destination.ip");
        let destination = match (ip.contains(':'), n("destination.port")) {
            (_, port) if ip.is_empty() => port,
            (true, port) => format!("[{ip}]:{port}"),
            (false, port) => format!("{ip}:{port}"),
        };
        (n("process.pid"), process, destination)
    };
    let bytes = match (
        event.u64_at("chunk.bytes.client_to_server"),
        event.u64_at("chunk.bytes.server_to_client"),
    ) {
        (Some(up), Some(down)) => format!("{up} up / {down} down"),
        _ => String::new(),
    };
    vec![
        time,
        action,
        s("chunk.workload"),
        pid,
        process,
        s("chunk.cgroup.path"),
        destination,
        bytes,
        match (
            event.str_at("chunk.upstream.role"),
            event.str_at("rule.name"),
        ) {
            (Some(role), _) => format!(
                "logged in upstream as {role} (database {})",
                s("chunk.upstream.database")
            ),
            (None, Some(rule)) => format!("rule {rule}"),
            (None, None) => s("event.reason"),
        },
    ]
}

fn print_table(events: &[Value]) {
    if events.is_empty() {
        println!("(no audit events)");
        return;
    }
    let header: Vec<String> = [
        "TIME",
        "ACTION",
        "WORKLOAD",
        "PID",
        "PROCESS",
        "CGROUP",
        "DESTINATION",
        "BYTES",
        "DETAIL",
    ]
    .iter()
    .map(|h| h.to_string())
    .collect();
    let rows: Vec<Vec<String>> = std::iter::once(header)
        .chain(events.iter().map(row))
        .collect();
    // Drop columns that are empty in every event.
    let columns: Vec<usize> = (0..rows[0].len())
        .filter(|&c| rows[1..].iter().any(|r| !r[c].is_empty()))
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .map(|&c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for (i, r) in rows.iter().enumerate() {
        let line: Vec<String> = columns
            .iter()
            .zip(&widths)
            .map(|(&c, &w)| format!("{:<w$}", r[c]))
            .collect();
        println!("{}", line.join("  ").trim_end());
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
            println!("{}", rule.join("  "));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_template_has_the_port_placeholder() {
        assert_eq!(POLICY_TEMPLATE.matches("{{PORT}}").count(), 2);
        assert!(POLICY_TEMPLATE.contains("name = \"demo-chunker\""));
        assert!(POLICY_TEMPLATE.contains("name = \"demo-db\""));
    }

    #[test]
    fn renders_audit_rows() {
        let event: Value = serde_json::json!({
            "@timestamp": "2025-01-01T12:34:56.789012Z",
            "event": {"action": "connection-closed"},
            "process": {"pid": 7, "name": "psql", "executable": "/usr/bin/psql"},
            "destination": {"ip": "::1", "port": 5432},
            "chunk": {"workload": "w", "cgroup": {"path": "/a/b"},
                      "bytes": {"client_to_server": 10, "server_to_client": 20}},
        });
        assert_eq!(
            row(&event),
            [
                "12:34:56.789",
                "connection-closed",
                "w",
                "7",
                "psql (/usr/bin/psql)",
                "/a/b",
                "[::1]:5432",
                "10 up / 20 down",
                "",
            ]
        );
    }
}
