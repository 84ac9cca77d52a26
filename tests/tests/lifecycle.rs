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
