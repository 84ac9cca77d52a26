//! End-to-end interception tests: real kernel (eBPF cgroup programs), real agent binary, real
//! PostgreSQL, real psql. Each test starts its own PostgreSQL and its own agent, with unique
//! ports and cgroups, so the tests run in parallel. Nothing is skipped: a missing prerequisite
//! (root, cgroup v2, PostgreSQL, the agent binary) fails the test.

#![forbid(unsafe_code)]

use agent_tests::audit::JsonPath;
use agent_tests::cgroup::cgroup2_mount;
use agent_tests::{
    AgentProcess, OutputExt, PgOptions, PgServer, TestCgroup, action_of, command_in_cgroup,
    loopback_addresses, run_with_timeout, single_target_policy,
};
use anyhow::{Context, Result};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

const WORKLOAD: &str = "itest-chunker";
const TARGET: &str = "itest-db";
/// How long to wait for an expected audit event.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait before concluding that an event did not happen.
const QUIET_PERIOD: Duration = Duration::from_millis(1200);

/// A PostgreSQL server and an agent protecting its loopback addresses (127.0.0.1 and ::1, not
/// 127.0.0.2) for the workload [`WORKLOAD`]. The agent is declared first so it stops first.
struct Fixture {
    agent: AgentProcess,
    pg: PgServer,
}

impl Fixture {
    fn start(cgroups: &[&str]) -> Result<Self> {
        let pg = PgServer::start(PgOptions::default())?;
        let policy = single_target_policy(
            WORKLOAD,
            cgroups,
            TARGET,
            "tcp",
            &loopback_addresses(pg.port()),
        );
        let agent = AgentProcess::start(&policy)?;
        Ok(Self { agent, pg })
    }

    /// `psql ... -c sql` to `host` as a job of the workload (`agent exec`); returns psql's stdout
    /// (trimmed) and fails unless it succeeds.
    fn psql_as_job(&self, host: &str, sql: &str) -> Result<String> {
        let out = self.agent.exec(WORKLOAD, &self.pg.psql_args(host, sql))?;
        anyhow::ensure!(
            out.status.success(),
            "psql under agent exec failed: {}",
            out.describe()
        );
        Ok(out.stdout_text().trim().to_string())
    }

    fn accepted_events(&self) -> Vec<Value> {
        self.agent.events_with_action("connection-accepted")
    }
}

fn is_accepted(event: &Value) -> bool {
    action_of(event) == "connection-accepted"
}

/// Formats events for assertion messages.
fn dump(events: &[Value]) -> String {
    events
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `args` under `agent exec` through `sh`, which writes its pid (= the pid of the `exec`ed
/// program) to a file first. Returns (output, pid).
fn exec_with_pid(agent: &AgentProcess, args: &[String]) -> Result<(std::process::Output, u64)> {
    let dir = tempfile::tempdir()?;
    let pidfile = dir.path().join("pid");
    let script = format!("echo $$ > '{}'; exec \"$@\"", pidfile.display());
    let mut full = vec!["sh".to_string(), "-c".into(), script, "sh".into()];
    full.extend(args.iter().cloned());
    let out = agent.exec(WORKLOAD, &full)?;
    let pid = std::fs::read_to_string(&pidfile)
        .with_context(|| format!("the job did not write its pid: {}", out.describe()))?
        .trim()
        .parse()?;
    Ok((out, pid))
}

#[test]
fn psql_in_workload_cgroup_goes_through_the_proxy() -> Result<()> {
    let f = Fixture::start(&[])?;
    let psql = f.pg.psql_args("127.0.0.1", "select 42");
    let (out, pid) = exec_with_pid(&f.agent, &psql)?;
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(out.stdout_text().trim(), "42");

    let event = f.agent.wait_for_event(is_accepted, EVENT_TIMEOUT)?;
    let jobs_prefix = format!("{}/", f.agent.jobs_cgroup(WORKLOAD));
    assert_eq!(event.str_at("chunk.workload"), Some(WORKLOAD), "{event}");
    assert_eq!(event.str_at("chunk.target"), Some(TARGET), "{event}");
    assert_eq!(event.u64_at("process.pid"), Some(pid), "{event}");
    assert_eq!(event.str_at("process.name"), Some("psql"), "{event}");
    if let Some(exe) = event.str_at("process.executable") {
        assert_eq!(Path::new(exe), f.pg.psql_path().canonicalize()?, "{event}");
    }
    let cgroup = event.str_at("chunk.cgroup.path").unwrap_or_default();
    assert!(
        cgroup.starts_with(&jobs_prefix),
        "chunk.cgroup.path should start with {jobs_prefix}: {event}"
    );
    assert_eq!(event.str_at("destination.ip"), Some("127.0.0.1"), "{event}");
    assert_eq!(
        event.u64_at("destination.port"),
        Some(u64::from(f.pg.port())),
        "{event}"
    );
    assert_eq!(event.str_at("event.outcome"), Some("success"), "{event}");
    assert!(event.str_at("chunk.connection_id").is_some(), "{event}");
    Ok(())
}

#[test]
fn relayed_connection_close_is_audited_with_byte_counts() -> Result<()> {
    let f = Fixture::start(&[])?;
    assert_eq!(f.psql_as_job("127.0.0.1", "select 42")?, "42");

    let accepted = f.agent.wait_for_event(is_accepted, EVENT_TIMEOUT)?;
    let connection_id = accepted
        .str_at("chunk.connection_id")
        .context("connection-accepted without chunk.connection_id")?
        .to_string();
    let closed = f.agent.wait_for_event(
        |e| {
            action_of(e) == "connection-closed"
                && e.str_at("chunk.connection_id") == Some(connection_id.as_str())
        },
        EVENT_TIMEOUT,
    )?;
    let up = closed.u64_at("chunk.bytes.client_to_server").unwrap_or(0);
    let down = closed.u64_at("chunk.bytes.server_to_client").unwrap_or(0);
    // A psql session sends at least a startup packet and a query, and receives at least the
    // authentication, parameter status and result messages.
    assert!(up > 0 && down > 0, "no relayed bytes counted: {closed}");
    assert_eq!(closed.str_at("chunk.workload"), Some(WORKLOAD), "{closed}");
    Ok(())
}

#[test]
fn psql_outside_any_workload_connects_directly() -> Result<()> {
    let f = Fixture::start(&[])?;
    assert_eq!(f.pg.psql_direct("select 42")?, "42");
    thread::sleep(QUIET_PERIOD);
    let events = f.agent.audit_events();
    assert!(
        !events
            .iter()
            .any(|e| action_of(e).starts_with("connection-")),
        "a connection from outside any workload was intercepted:\n{}",
        dump(&events)
    );
    Ok(())
}

#[test]
fn unprotected_destination_from_workload_is_untouched() -> Result<()> {
    let f = Fixture::start(&[])?;
    // A server on a port no target uses. Had the connection been redirected to the proxy, the
    // server would see the proxy's socket as its peer, not the job's.
    let server = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = server.local_addr()?.port();
    let script = "import socket, sys\n\
                  s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)\n\
                  print(s.getsockname()[1])\n";
    let out = f
        .agent
        .exec(WORKLOAD, &["python3", "-c", script, &port.to_string()])?;
    assert!(out.status.success(), "{}", out.describe());
    let (_conn, peer) = server.accept()?;
    assert_eq!(out.stdout_text().trim(), peer.port().to_string());
    thread::sleep(QUIET_PERIOD);
    let events = f.agent.audit_events();
    assert!(
        !events
            .iter()
            .any(|e| action_of(e).starts_with("connection-")),
        "a connection to an unprotected destination was intercepted:\n{}",
        dump(&events)
    );
    Ok(())
}

#[test]
fn another_local_address_of_the_protected_server_is_refused() -> Result<()> {
    let f = Fixture::start(&[])?;
    // PostgreSQL also listens on 127.0.0.2, which is not a target address but reaches the same
    // server: from a workload it is refused in the kernel, not let through.
    let out = f
        .agent
        .exec(WORKLOAD, &f.pg.psql_args("127.0.0.2", "select 1"))?;
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr_text().contains("Operation not permitted"),
        "{}",
        out.describe()
    );
    // Outside the workload the same address works: the refusal is the agent's.
    let psql = f.pg.psql_args("127.0.0.2", "select 42");
    let out = run_with_timeout(
        Command::new(&psql[0])
            .args(&psql[1..])
            .env("PGCONNECT_TIMEOUT", "10"),
        Duration::from_secs(60),
    )?;
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(out.stdout_text().trim(), "42");
    Ok(())
}

#[test]
fn ipv6_loopback_target_is_intercepted() -> Result<()> {
    let f = Fixture::start(&[])?;
    assert_eq!(f.psql_as_job("::1", "select 42")?, "42");
    let event = f.agent.wait_for_event(is_accepted, EVENT_TIMEOUT)?;
    assert_eq!(event.str_at("destination.ip"), Some("::1"), "{event}");
    assert_eq!(
        event.u64_at("destination.port"),
        Some(u64::from(f.pg.port())),
        "{event}"
    );
    assert_eq!(event.str_at("chunk.workload"), Some(WORKLOAD), "{event}");
    assert_eq!(event.str_at("process.name"), Some("psql"), "{event}");
    Ok(())
}

#[test]
fn getpeername_shows_the_original_destination() -> Result<()> {
    let f = Fixture::start(&[])?;
    let script = "import socket, sys\n\
                  s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)\n\
                  peer = s.getpeername()\n\
                  print(peer[0], peer[1])\n";
    let port = f.pg.port().to_string();
    for host in ["127.0.0.1", "::1"] {
        let out = f
            .agent
            .exec(WORKLOAD, &["python3", "-c", script, host, &port])?;
        assert!(out.status.success(), "{}", out.describe());
        assert_eq!(
            out.stdout_text().trim(),
            format!("{host} {port}"),
            "getpeername() must show the original destination, not the proxy ({})",
            f.agent.listen_port()
        );
        // ... and the connection did go through the proxy.
        let event = f.agent.wait_for_event(
            |e| is_accepted(e) && e.str_at("destination.ip") == Some(host),
            EVENT_TIMEOUT,
        )?;
        assert_eq!(event.str_at("chunk.workload"), Some(WORKLOAD), "{event}");
        assert_eq!(
            event.u64_at("destination.port"),
            Some(u64::from(f.pg.port())),
            "{event}"
        );
    }
    Ok(())
}

#[test]
fn glob_pattern_cgroup_is_intercepted() -> Result<()> {
    // The pattern's static prefix exists before the agent starts; the matching cgroup is created
    // afterwards, like a scheduler would for each run.
    let root = TestCgroup::create_unique("itest-glob")?;
    root.mkdir("nightly")?;
    let pattern = format!("{}/nightly/*", root.path());
    let f = Fixture::start(&[&pattern])?;

    let (run_path, run_dir) = root.mkdir("nightly/run-1")?;
    let psql = f.pg.psql_args("127.0.0.1", "select 42");
    let out = run_with_timeout(
        &mut command_in_cgroup(&run_dir, &psql[0], &psql[1..]),
        Duration::from_secs(60),
    )?;
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(out.stdout_text().trim(), "42");
    let event = f.agent.wait_for_event(is_accepted, EVENT_TIMEOUT)?;
    assert_eq!(event.str_at("chunk.workload"), Some(WORKLOAD), "{event}");
    assert_eq!(
        event.str_at("chunk.cgroup.path"),
        Some(run_path.as_str()),
        "{event}"
    );
    assert_eq!(event.str_at("process.name"), Some("psql"), "{event}");

    // A sibling that does not match the pattern connects directly.
    let (other_path, other_dir) = root.mkdir("other/x")?;
    let out = run_with_timeout(
        &mut command_in_cgroup(&other_dir, &psql[0], &psql[1..]),
        Duration::from_secs(60),
    )?;
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(out.stdout_text().trim(), "42");
    thread::sleep(QUIET_PERIOD);
    let accepted = f.accepted_events();
    assert_eq!(
        accepted.len(),
        1,
        "only the run in {run_path} should be intercepted, not the one in {other_path}:\n{}",
        dump(&accepted)
    );
    Ok(())
}

#[test]
fn invalid_policy_is_rejected_with_file_and_line() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // Line 3 has a field the policy schema does not know.
    std::fs::write(
        dir.path().join("bad.toml"),
        "[[workload]]\n\
         name = \"w\"\n\
         colour = \"blue\"\n\
         cgroups = []\n\
         targets = [\"t\"]\n\
         \n\
         [[target]]\n\
         name = \"t\"\n\
         protocol = \"tcp\"\n\
         addresses = [\"127.0.0.1:5432\"]\n",
    )?;
    let bin = agent_tests::agent::require_agent_bin();

    let out = run_with_timeout(
        Command::new(&bin).arg("check").arg(dir.path()),
        Duration::from_secs(30),
    )?;
    assert_eq!(out.status.code(), Some(1), "{}", out.describe());
    assert!(
        out.stderr_text().contains("bad.toml:3:"),
        "agent check must report bad.toml:3:COL: {}",
        out.describe()
    );

    // `agent run` refuses to start on it, quickly, with the same location.
    let scratch = tempfile::tempdir()?;
    let base = format!("/{}", agent_tests::unique_name("itest-bad"));
    let out = run_with_timeout(
        Command::new(&bin)
            .arg("run")
            .arg("--policies")
            .arg(dir.path())
            .arg("--listen-port")
            .arg(agent_tests::free_port()?.to_string())
            .arg("--cgroup-base")
            .arg(&base)
            .arg("--audit-log")
            .arg(scratch.path().join("audit.jsonl")),
        Duration::from_secs(15),
    );
    let _ = agent_tests::cgroup::remove_cgroup_tree(
        &cgroup2_mount()?.join(base.trim_start_matches('/')),
    );
    let out = out.context("agent run did not exit quickly on an invalid policy")?;
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr_text().contains("bad.toml:3:"),
        "agent run must report bad.toml:3:COL: {}",
        out.describe()
    );
    Ok(())
}

#[test]
fn exec_cgroup_is_removed_when_the_command_exits() -> Result<()> {
    // No database needed: the job only reports its own cgroup.
    let policy = single_target_policy(
        WORKLOAD,
        &[],
        TARGET,
        "tcp",
        &loopback_addresses(agent_tests::free_port()?),
    );
    let agent = AgentProcess::start(&policy)?;
    let out = agent.exec(WORKLOAD, &["cat", "/proc/self/cgroup"])?;
    assert!(out.status.success(), "{}", out.describe());
    let job_cgroup = agent_tests::cgroup::cgroup_from_proc_text(&out.stdout_text())
        .context("no 0:: line in the job's /proc/self/cgroup")?;
    let jobs = agent.jobs_cgroup(WORKLOAD);
    assert!(
        job_cgroup.starts_with(&format!("{jobs}/")),
        "the job ran in {job_cgroup}, not below {jobs}"
    );
    let mount = cgroup2_mount()?;
    let job_dir = mount.join(job_cgroup.trim_start_matches('/'));
    assert!(
        !job_dir.exists(),
        "the job cgroup {} is still there after the job exited",
        job_dir.display()
    );
    assert!(
        mount.join(jobs.trim_start_matches('/')).is_dir(),
        "the workload's jobs cgroup {jobs} must stay while the agent runs"
    );
    Ok(())
}
