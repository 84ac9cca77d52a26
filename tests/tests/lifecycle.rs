//! End-to-end tests of the agent's process lifecycle and CLI around interception: `agent exec`
//! exit codes and errors, clean shutdown, `agent check` on a valid policy set. Real agent binary,
//! real cgroups; no database needed.

#![forbid(unsafe_code)]

use agent_tests::agent::require_agent_bin;
use agent_tests::cgroup::cgroup2_mount;
use agent_tests::{
    AgentProcess, OutputExt, free_port, loopback_addresses, run_with_timeout, single_target_policy,
    unique_name,
};
use anyhow::Result;
use std::process::Command;
use std::time::Duration;

const WORKLOAD: &str = "itest-lifecycle";

fn policy() -> Result<String> {
    Ok(single_target_policy(
        WORKLOAD,
        &[],
        "itest-db",
        "tcp",
        &loopback_addresses(free_port()?),
    ))
}

#[test]
fn exec_propagates_the_command_exit_code() -> Result<()> {
    let agent = AgentProcess::start(&policy()?)?;
    let out = agent.exec(WORKLOAD, &["sh", "-c", "echo ran; exit 7"])?;
    assert_eq!(out.status.code(), Some(7), "{}", out.describe());
    assert_eq!(out.stdout_text(), "ran\n");
    let out = agent.exec(WORKLOAD, &["true"])?;
    assert_eq!(out.status.code(), Some(0), "{}", out.describe());
    Ok(())
}

#[test]
fn exec_without_a_running_agent_fails_clearly() -> Result<()> {
    let bin = require_agent_bin();
    let dir = tempfile::tempdir()?;
    let marker = dir.path().join("ran");
    let base = format!("/{}", unique_name("itest-noagent"));
    let out = run_with_timeout(
        Command::new(&bin)
            .args(["exec", "--workload", WORKLOAD, "--cgroup-base", &base, "--"])
            .arg("touch")
            .arg(&marker),
        Duration::from_secs(30),
    )?;
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr_text().contains(WORKLOAD),
        "the error should name the workload: {}",
        out.describe()
    );
    assert!(
        !marker.exists(),
        "the command must not run when no agent serves the workload"
    );
    assert!(
        !cgroup2_mount()?.join(base.trim_start_matches('/')).exists(),
        "agent exec must not create the cgroup base"
    );
    Ok(())
}

#[test]
fn sigterm_stops_the_agent_and_removes_its_cgroups() -> Result<()> {
    let mut agent = AgentProcess::start(&policy()?)?;
    let mount = cgroup2_mount()?;
    let base_dir = mount.join(agent.cgroup_base().trim_start_matches('/'));
    let jobs_dir = mount.join(agent.jobs_cgroup(WORKLOAD).trim_start_matches('/'));
    assert!(
        jobs_dir.is_dir(),
        "the running agent must have created {}",
        jobs_dir.display()
    );
    let status = agent.stop()?;
    assert!(
        status.success(),
        "the agent should exit 0 on SIGTERM, got {status}\n--- agent stderr ---\n{}",
        agent.stderr_log()
    );
    assert!(
        !base_dir.exists(),
        "the agent left its (empty) cgroups behind: {}",
        base_dir.display()
    );
    Ok(())
}

#[test]
fn valid_policy_passes_check_with_a_one_line_summary() -> Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("ok.toml"), policy()?)?;
    let out = run_with_timeout(
        Command::new(require_agent_bin())
            .arg("check")
            .arg(dir.path()),
        Duration::from_secs(30),
    )?;
    assert_eq!(out.status.code(), Some(0), "{}", out.describe());
    let stdout = out.stdout_text();
    assert_eq!(
        stdout.trim().lines().count(),
        1,
        "expected a one-line summary: {}",
        out.describe()
    );
    Ok(())
}

/// A TCP echo-less listener standing in for a protected server: accepts and holds connections.
fn listener() -> Result<(std::net::TcpListener, u16)> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = l.local_addr()?.port();
    Ok((l, port))
}

fn two_workload_policy(port: u16) -> String {
    format!(
        "[[workload]]\nname = \"{WORKLOAD}\"\ntargets = [\"itest-db\"]\n\n\
         [[workload]]\nname = \"itest-added\"\ntargets = [\"itest-db\"]\n\n\
         [[target]]\nname = \"itest-db\"\nprotocol = \"tcp\"\naddresses = [\"127.0.0.1:{port}\"]\n"
    )
}

fn connect_as(agent: &AgentProcess, workload: &str, port: u16) -> Result<std::process::Output> {
    agent.exec(
        workload,
        &[
            "python3",
            "-c",
            &format!("import socket; socket.create_connection(('127.0.0.1', {port})).close()"),
        ],
    )
}

#[test]
fn policy_changes_are_reloaded_and_an_invalid_set_keeps_the_previous_one() -> Result<()> {
    let (_server, port) = listener()?;
    let agent = AgentProcess::start(&single_target_policy(
        WORKLOAD,
        &[],
        "itest-db",
        "tcp",
        &[format!("127.0.0.1:{port}")],
    ))?;
    let file = std::fs::read_dir(agent.policy_dir())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "toml"))
        .expect("the agent's policy file");

    // A new workload appears in the policy files: reloaded without a restart.
    std::fs::write(&file, two_workload_policy(port))?;
    agent.wait_for_event(
        |e| agent_tests::action_of(e) == "policy-reloaded",
        Duration::from_secs(10),
    )?;
    let out = connect_as(&agent, "itest-added", port)?;
    assert!(out.status.success(), "{}", out.describe());
    agent.wait_for_event(
        |e| {
            agent_tests::action_of(e) == "connection-accepted"
                && agent_tests::audit::JsonPath::str_at(e, "chunk.workload") == Some("itest-added")
        },
        Duration::from_secs(10),
    )?;

    // An invalid set is refused with its file and line; the previous set stays in force.
    std::fs::write(
        &file,
        format!("{}\nbogus_field = 1\n", two_workload_policy(port)),
    )?;
    let failed = agent.wait_for_event(
        |e| agent_tests::action_of(e) == "policy-reload-failed",
        Duration::from_secs(10),
    )?;
    let message =
        agent_tests::audit::JsonPath::str_at(&failed, "error.message").unwrap_or_default();
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        message.contains(&format!("{name}:")),
        "no file:line in {message:?}"
    );
    let out = connect_as(&agent, "itest-added", port)?;
    assert!(
        out.status.success(),
        "the previous set must stay: {}",
        out.describe()
    );

    // SIGHUP reloads too.
    std::fs::write(&file, two_workload_policy(port))?;
    let pid = agent.pid().expect("agent pid");
    agent.wait_for_event(
        |e| agent_tests::action_of(e) == "policy-reloaded",
        Duration::from_secs(10),
    )?;
    Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()?;
    agent.wait_for_event(
        |e| {
            agent_tests::action_of(e) == "policy-reloaded"
                && agent_tests::audit::JsonPath::str_at(e, "event.reason") == Some("SIGHUP")
        },
        Duration::from_secs(10),
    )?;
    Ok(())
}
