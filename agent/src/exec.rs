//! `agent exec`: runs an unmodified command in a fresh cgroup of a workload
//! (`<base>/jobs/<workload>/job-<pid>-<n>`), like `systemd-run --scope`, and removes the cgroup
//! when the command is done.
//!
//! Without `unsafe` there is no hook between fork and exec, so this process moves itself into the
//! job cgroup, spawns the command (which inherits the cgroup), and moves itself back out. It makes
//! no connection in between.
//!
//! With `--token-file`, the job's workload token is read here and written, before the command
//! starts, to `<token dir>/<workload>/<job>.jwt` (directories 0700, file 0600, owned by root),
//! where the proxy looks for the token of connections from that job cgroup
//! ([`crate::pg::token_auth`]). The token is never put in the command's arguments or
//! environment. Without `--token-file`, a file left at that name by a crashed run is removed, so a
//! job never inherits another's token; the file is removed when the command ends.

use std::{
    fs,
    io::Write as _,
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    process::{Command, ExitStatus},
    thread,
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use zeroize::Zeroizing;

use crate::cgroup::{self, Cgroup2, CgroupError};
use crate::pg::token_auth::{MAX_TOKEN_FILE, exec_token_file};

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
    #[error("token file {path}: {reason}")]
    TokenFile { path: PathBuf, reason: String },
    #[error("cannot hand the token to the agent ({path}): {source}")]
    TokenHandoff {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The job's workload token: the file given to `--token-file` (if any) and where the agent
/// reads job tokens.
#[derive(Debug, Clone, Copy)]
pub struct JobToken<'a> {
    pub file: Option<&'a Path>,
    pub dir: &'a Path,
}

/// Reads a token file given on the command line: UTF-8, at most 64 KiB, trimmed, not empty.
fn read_token(path: &Path) -> Result<Zeroizing<String>, ExecError> {
    let bad = |reason: String| ExecError::TokenFile {
        path: path.to_owned(),
        reason,
    };
    let meta = fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() || meta.len() > MAX_TOKEN_FILE {
        return Err(bad("not a regular file of at most 64 KiB".into()));
    }
    let bytes = Zeroizing::new(fs::read(path).map_err(|e| bad(e.to_string()))?);
    let text = std::str::from_utf8(&bytes).map_err(|_| bad("not UTF-8".into()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(bad("empty".into()));
    }
    Ok(Zeroizing::new(token.to_owned()))
}

/// Writes (or, without a token, removes) the token file of job `job`, atomically, readable by
/// root only.
fn hand_over(
    dir: &Path,
    workload: &str,
    job: &str,
    token: Option<&str>,
) -> Result<PathBuf, ExecError> {
    let path = exec_token_file(dir, workload, job);
    let handoff = |source| ExecError::TokenHandoff {
        path: path.clone(),
        source,
    };
    let Some(token) = token else {
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(handoff(e)),
            _ => return Ok(path),
        }
    };
    let parent = path.parent().expect("a token file has a parent");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .map_err(handoff)?;
    for d in [dir, parent] {
        fs::set_permissions(d, fs::Permissions::from_mode(0o700)).map_err(handoff)?;
    }
    let tmp = parent.join(format!(".{job}.tmp"));
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(handoff)?;
    file.write_all(token.as_bytes()).map_err(handoff)?;
    drop(file);
    fs::rename(&tmp, &path).map_err(handoff)?;
    Ok(path)
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
    token: &JobToken<'_>,
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
    let job_token = token.file.map(read_token).transpose()?;
    let me = std::process::id();
    let home = cgroups.of_process(me)?;
    let job = fresh_job_cgroup(cgroups, &parent, me)?;
    let job_name = job.rsplit('/').next().unwrap_or_default().to_owned();
    let token_path = match hand_over(
        token.dir,
        workload,
        &job_name,
        job_token.as_deref().map(|t| t.as_str()),
    ) {
        Ok(path) => path,
        Err(err) => {
            let _ = cgroups.remove(&job);
            return Err(err);
        }
    };

    cgroups.move_process(&job, me)?;
    let (program, args) = argv.split_first().expect("clap requires a command");
    let spawned = Command::new(program).args(args).spawn();
    // Back out whatever happened: the job cgroup must only hold the job.
    let moved_back = cgroups.move_process(&home, me);
    let mut child = match spawned {
        Ok(child) => child,
        Err(source) => {
            let _ = fs::remove_file(&token_path);
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
    let status = wait_forwarding_signals(&mut child);
    cleanup(cgroups, &job);
    if let Err(err) = fs::remove_file(&token_path)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(%err, path = %token_path.display(), "job token file left behind");
    }
    status
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_handed_over_root_only_and_removed_without_one() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("exec-tokens");
        let path = hand_over(&dir, "w", "job-1-0", Some("a.b.c")).unwrap();
        assert_eq!(path, dir.join("w").join("job-1-0.jwt"));
        assert_eq!(fs::read_to_string(&path).unwrap(), "a.b.c");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("w")), 0o700);
        // A later job of the same name without a token does not inherit it.
        hand_over(&dir, "w", "job-1-0", None).unwrap();
        assert!(!path.exists());
        hand_over(&dir, "w", "job-1-0", None).unwrap();
    }

    #[test]
    fn token_file_is_trimmed_and_must_not_be_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("t");
        fs::write(&file, " a.b.c \n").unwrap();
        assert_eq!(read_token(&file).unwrap().as_str(), "a.b.c");
        fs::write(&file, "\n").unwrap();
        let err = read_token(&file).unwrap_err().to_string();
        assert!(err.contains("empty"), "{err}");
        assert!(read_token(&tmp.path().join("missing")).is_err());
    }
}
