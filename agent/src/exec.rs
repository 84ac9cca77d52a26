//! `agent exec`: runs an unmodified command in a fresh cgroup of a workload
//! (`<base>/jobs/<workload>/job-<pid>-<n>`), like `systemd-run --scope`, and removes the cgroup
//! when the command is done.
//!
//! Without `unsafe` there is no hook between fork and exec, so this process moves itself into the
//! job cgroup, spawns the command (which inherits the cgroup), and moves itself back out. It makes
//! no connection in between.

use std::{
    process::{Command, ExitStatus},
    thread,
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use crate::cgroup::{self, Cgroup2, CgroupError};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(
        "workload {workload:?} has no cgroup {path}: is `agent run` running with a policy that \
         declares it (and the same --cgroup-base)?"
    )]
    AgentNotRunning { workload: String, path: String },
    #[error("invalid workload name {0:?}")]
    BadWorkload(String),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("waiting for the command: {0}")]
    Wait(std::io::Error),
}

/// How long to wait for stragglers to die after the command ends and its cgroup is killed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `argv` in a new job cgroup below `exec_root/workload` and returns its exit status.
/// Processes the command left behind are killed when it exits, as when a scope stops.
pub fn run(
    cgroups: &Cgroup2,
    exec_root: &str,
    workload: &str,
    argv: &[String],
) -> Result<ExitStatus, ExecError> {
    if workload.is_empty() || workload.contains('/') || workload.starts_with('.') {
        return Err(ExecError::BadWorkload(workload.to_owned()));
    }
    let parent = cgroup::join(exec_root, workload);
    if !cgroups.exists(&parent) {
        return Err(ExecError::AgentNotRunning {
            workload: workload.to_owned(),
            path: parent,
        });
    }
    let me = std::process::id();
    let home = cgroups.of_process(me)?;
    let job = fresh_job_cgroup(cgroups, &parent, me)?;

    cgroups.move_process(&job, me)?;
    let (program, args) = argv.split_first().expect("clap requires a command");
    let spawned = Command::new(program).args(args).spawn();
    // Back out whatever happened: the job cgroup must only hold the job.
    let moved_back = cgroups.move_process(&home, me);
    let mut child = match spawned {
        Ok(child) => child,
        Err(source) => {
            let _ = cgroups.remove(&job);
            return Err(ExecError::Spawn {
                program: program.clone(),
                source,
            });
        }
    };
    if let Err(err) = moved_back {
        tracing::warn!(%err, "could not leave the job cgroup");
    }
    let status = wait_forwarding_signals(&mut child)?;
    cleanup(cgroups, &job);
    Ok(status)
}

fn fresh_job_cgroup(cgroups: &Cgroup2, parent: &str, pid: u32) -> Result<String, CgroupError> {
    let mut n = 0u32;
    loop {
        let job = cgroup::join(parent, &format!("job-{pid}-{n}"));
        if !cgroups.exists(&job) {
            cgroups.create(&job)?;
            return Ok(job);
        }
        n += 1;
    }
}

/// Waits for the child; SIGTERM/SIGINT/SIGHUP sent to `agent exec` are passed on to it.
fn wait_forwarding_signals(child: &mut std::process::Child) -> Result<ExitStatus, ExecError> {
    let pid = Pid::from_raw(child.id() as i32);
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .map_err(ExecError::Wait)?;
    let handle = signals.handle();
    let forwarder = thread::spawn(move || {
        for sig in signals.forever() {
            if let Ok(sig) = Signal::try_from(sig) {
                let _ = kill(pid, sig);
            }
        }
    });
    let status = child.wait().map_err(ExecError::Wait);
    handle.close();
    let _ = forwarder.join();
    status
}

fn cleanup(cgroups: &Cgroup2, job: &str) {
    if cgroups.is_populated(job).unwrap_or(false) {
        tracing::info!(cgroup = %job, "killing processes the command left behind");
        let _ = cgroups.kill_all(job);
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while cgroups.is_populated(job).unwrap_or(false) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
    }
    // Child cgroups the job made itself go first.
    let mut tree = cgroups.walk(job);
    tree.reverse();
    for (path, _) in tree {
        if let Err(err) = cgroups.remove(&path) {
            tracing::warn!(%err, "job cgroup left behind");
        }
    }
}
