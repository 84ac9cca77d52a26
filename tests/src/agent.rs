//! The real agent binary, run as a child process with its own policy dir, listen port, cgroup
//! base and audit log.

use crate::audit::{action_of, read_audit_log};
use crate::cgroup::{cgroup2_mount, remove_cgroup_tree};
use crate::process::{OutputExt, describe_command, run_with_timeout};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long `agent exec` may run in the harness before it is killed.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(120);

/// The agent binary: `$AGENT_BIN` if set, else `<target dir>/debug/agent`.
pub fn agent_bin() -> PathBuf {
    match std::env::var_os("AGENT_BIN") {
        Some(bin) if !bin.is_empty() => PathBuf::from(bin),
        _ => crate::target_dir().join("debug").join("agent"),
    }
}

/// [`agent_bin`], panicking with instructions if it does not exist.
pub fn require_agent_bin() -> PathBuf {
    let bin = agent_bin();
    assert!(
        bin.is_file(),
        "agent binary not found at {}: build it first with `cargo build -p agent` \
         (or set AGENT_BIN to its path; `cargo xtask test` does both)",
        bin.display()
    );
    bin
}

/// Options for [`AgentProcess::start_with`].
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Policy files to write into a fresh policy directory: `(file name, TOML)`.
    pub policy_files: Vec<(String, String)>,
    /// Use this existing policy directory instead of writing `policy_files`.
    pub policy_dir: Option<PathBuf>,
    /// `--listen-port`; `None` picks a free port (retrying if the agent loses a bind race).
    pub listen_port: Option<u16>,
    /// `--cgroup-base`; `None` picks a unique `/itest-<...>`.
    pub cgroup_base: Option<String>,
    /// Extra arguments for `agent run`.
    pub extra_args: Vec<String>,
    /// How long to wait for the `agent-started` audit event.
    pub startup_timeout: Duration,
    /// The agent binary; `None` uses [`agent_bin`].
    pub agent_bin: Option<PathBuf>,
    /// Extra environment variables for the agent (applied last: `RUST_LOG` here overrides the
    /// harness default).
    pub env: Vec<(String, String)>,
}

impl Default for AgentOptions {
    fn default() -> Self {
        Self {
            policy_files: Vec::new(),
            policy_dir: None,
            listen_port: None,
            cgroup_base: None,
            extra_args: Vec::new(),
            startup_timeout: Duration::from_secs(30),
            agent_bin: None,
            env: Vec::new(),
        }
    }
}

impl AgentOptions {
    /// Options with a single policy file `policy.toml` holding `toml`.
    pub fn with_policy(toml: &str) -> Self {
        Self {
            policy_files: vec![("policy.toml".into(), toml.into())],
            ..Self::default()
        }
    }
}

/// A running `agent run`. Stopped with SIGTERM (SIGKILL after 10 s) on drop; the cgroups under
/// its cgroup base are removed if the agent left any.
#[derive(Debug)]
pub struct AgentProcess {
    child: Option<Child>,
    dir: tempfile::TempDir,
    bin: PathBuf,
    policy_dir: PathBuf,
    listen_port: u16,
    cgroup_base: String,
    exit_status: Option<ExitStatus>,
    /// The options it was started with (for [`AgentProcess::restart`]).
    opts: AgentOptions,
}

impl AgentProcess {
    /// Starts the agent with the single policy file `policy_toml`.
    pub fn start(policy_toml: &str) -> Result<Self> {
        Self::start_with(AgentOptions::with_policy(policy_toml))
    }

    /// Starts the agent with the policy files of the existing directory `dir`.
    pub fn start_with_policy_dir(dir: &Path) -> Result<Self> {
        Self::start_with(AgentOptions {
            policy_dir: Some(dir.to_path_buf()),
            ..AgentOptions::default()
        })
    }

    /// Starts the agent and waits for its `agent-started` audit event.
    pub fn start_with(opts: AgentOptions) -> Result<Self> {
        let bin = match &opts.agent_bin {
            Some(bin) => {
                anyhow::ensure!(bin.is_file(), "agent binary not found at {}", bin.display());
                bin.clone()
            }
            None => require_agent_bin(),
        };
        let dir = tempfile::Builder::new()
            .prefix("agent-tests-agent-")
            .tempdir()
            .context("cannot create a temp dir for the agent")?;
        let policy_dir = match &opts.policy_dir {
            Some(existing) => existing.clone(),
            None => {
                let policy_dir = dir.path().join("policies");
                fs::create_dir(&policy_dir)?;
                for (name, text) in &opts.policy_files {
                    fs::write(policy_dir.join(name), text)
                        .with_context(|| format!("cannot write policy file {name}"))?;
                }
                policy_dir
            }
        };
        let cgroup_base = opts
            .cgroup_base
            .clone()
            .unwrap_or_else(|| format!("/{}", crate::unique_name("itest")));

        let attempts = if opts.listen_port.is_some() { 1 } else { 3 };
        let mut agent = Self {
            child: None,
            dir,
            bin,
            policy_dir,
            listen_port: 0,
            cgroup_base,
            exit_status: None,
            opts: opts.clone(),
        };
        for attempt in 1..=attempts {
            agent.listen_port = match opts.listen_port {
                Some(port) => port,
                None => crate::net::free_port()?,
            };
            agent.child = None;
            agent.exit_status = None;
            let _ = fs::remove_file(agent.audit_path());
            match agent.spawn_and_wait(&opts) {
                Ok(()) => return Ok(agent),
                Err(e) => {
                    let bind_race = agent.stderr_log().contains("in use");
                    let _ = agent.stop();
                    if !bind_race || attempt >= attempts {
                        return Err(e);
                    }
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    fn spawn_and_wait(&mut self, opts: &AgentOptions) -> Result<()> {
        self.spawn_and_wait_after(opts, 0)
    }

    /// Spawns the agent and waits for its `agent-started` event: the one after the first
    /// `previous_starts` of the audit log.
    fn spawn_and_wait_after(&mut self, opts: &AgentOptions, previous_starts: usize) -> Result<()> {
        let stderr = fs::File::create(self.stderr_path())?;
        let stdout = fs::File::create(self.dir.path().join("agent.stdout.log"))?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("run")
            .arg("--policies")
            .arg(&self.policy_dir)
            .arg("--listen-port")
            .arg(self.listen_port.to_string())
            .arg("--cgroup-base")
            .arg(&self.cgroup_base)
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--audit-log")
            .arg(self.audit_path())
            .args(&opts.extra_args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        // Plain text logs: they go to a file.
        cmd.env("NO_COLOR", "1");
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info,agent=debug,chunk_agent=debug");
        }
        for (name, value) in &opts.env {
            cmd.env(name, value);
        }
        let description = describe_command(&cmd);
        self.child = Some(
            cmd.spawn()
                .with_context(|| format!("cannot start `{description}`"))?,
        );

        let deadline = Instant::now() + opts.startup_timeout;
        loop {
            if let Some(status) = self.child_mut()?.try_wait()? {
                self.exit_status = Some(status);
                bail!(
                    "the agent exited with {status} before it was ready (`{description}`)\n\
                     --- agent stderr ---\n{}",
                    self.stderr_log()
                );
            }
            let events = read_audit_log(&self.audit_path())?;
            let starts = events
                .iter()
                .filter(|e| action_of(e) == "agent-started")
                .count();
            if starts > previous_starts {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "no agent-started audit event within {:?} (`{description}`)\n\
                     --- agent stderr ---\n{}",
                    opts.startup_timeout,
                    self.stderr_log()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn child_mut(&mut self) -> Result<&mut Child> {
        self.child.as_mut().context("the agent was not started")
    }

    /// The agent's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The proxy's port (on 127.0.0.1 and ::1).
    pub fn listen_port(&self) -> u16 {
        self.listen_port
    }

    /// The `--cgroup-base` (relative to the cgroup2 mount, e.g. `/itest-1a2b-0c3d`).
    pub fn cgroup_base(&self) -> &str {
        &self.cgroup_base
    }

    /// `<base>/jobs/<workload>`: the cgroup (relative to the mount) under which `agent exec`
    /// creates job cgroups.
    pub fn jobs_cgroup(&self, workload: &str) -> String {
        format!("{}/jobs/{workload}", self.cgroup_base)
    }

    /// The policy directory the agent was started with.
    pub fn policy_dir(&self) -> &Path {
        &self.policy_dir
    }

    /// The audit log file.
    /// The agent's `--data-dir` (session recordings are in its `sessions/`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The session recordings written so far.
    pub fn recordings(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = fs::read_dir(self.data_dir().join("sessions"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        files.sort();
        files
    }

    pub fn audit_path(&self) -> PathBuf {
        self.dir.path().join("audit.jsonl")
    }

    /// The file receiving the agent's stderr (its tracing logs).
    pub fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("agent.stderr.log")
    }

    /// The file receiving the agent's stdout.
    pub fn stdout_path(&self) -> PathBuf {
        self.dir.path().join("agent.stdout.log")
    }

    /// The agent's stderr so far.
    pub fn stderr_log(&self) -> String {
        fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    /// All complete audit events so far. Panics if a complete line is not JSON.
    pub fn audit_events(&self) -> Vec<Value> {
        read_audit_log(&self.audit_path()).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// The audit events whose `event.action` is `action`.
    pub fn events_with_action(&self, action: &str) -> Vec<Value> {
        self.audit_events()
            .into_iter()
            .filter(|e| action_of(e) == action)
            .collect()
    }

    /// Waits until an audit event satisfies `pred` and returns it; the error lists the events
    /// seen and the agent's stderr.
    pub fn wait_for_event(
        &self,
        pred: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let events = read_audit_log(&self.audit_path())?;
            if let Some(found) = events.iter().find(|e| pred(e)) {
                return Ok(found.clone());
            }
            if Instant::now() >= deadline {
                bail!(
                    "no matching audit event within {timeout:?}; events so far:\n{}\n\
                     --- agent stderr ---\n{}",
                    events
                        .iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join("\n"),
                    self.stderr_log()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// `agent exec --workload <workload> --cgroup-base <base> -- <args...>` as a `Command`.
    pub fn exec_command<S: AsRef<OsStr>>(&self, workload: &str, args: &[S]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("exec")
            .arg("--workload")
            .arg(workload)
            .arg("--cgroup-base")
            .arg(&self.cgroup_base)
            .arg("--")
            .args(args);
        cmd
    }

    /// Runs `args` as a job of `workload` through `agent exec` and returns its output (killed
    /// after [`EXEC_TIMEOUT`]).
    pub fn exec<S: AsRef<OsStr>>(&self, workload: &str, args: &[S]) -> Result<Output> {
        run_with_timeout(
            self.exec_command(workload, args)
                .env("PGCONNECT_TIMEOUT", "10"),
            EXEC_TIMEOUT,
        )
    }

    /// Whether the agent process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops the agent: SIGTERM, then SIGKILL if it is still running after 10 s. Returns its
    /// exit status.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.exit_status {
            return Ok(status);
        }
        let child = self.child_mut()?;
        let status = match child.try_wait()? {
            Some(status) => status,
            None => {
                let pid = child.id().to_string();
                let _ = Command::new("kill")
                    .args(["-TERM", &pid])
                    .stderr(Stdio::null())
                    .status();
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    if let Some(status) = child.try_wait()? {
                        break status;
                    }
                    if Instant::now() >= deadline {
                        eprintln!(
                            "warning: the agent (pid {pid}) ignored SIGTERM for 10 s: SIGKILL"
                        );
                        child.kill()?;
                        break child.wait()?;
                    }
                    thread::sleep(Duration::from_millis(20));
                }
            }
        };
        self.exit_status = Some(status);
        Ok(status)
    }
}

impl AgentProcess {
    /// Kills the agent with SIGKILL (no cleanup of any kind: a crash) and returns its status.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.exit_status {
            return Ok(status);
        }
        let child = self.child_mut()?;
        child.kill()?;
        let status = child.wait()?;
        self.exit_status = Some(status);
        Ok(status)
    }

    /// Starts the agent again after it stopped or was killed: same binary, options, port,
    /// cgroup base, policy directory and audit log; waits for its new `agent-started` event.
    pub fn restart(&mut self) -> Result<()> {
        anyhow::ensure!(
            !self.is_running(),
            "restart: the agent (pid {:?}) is still running",
            self.pid()
        );
        let starts = self.events_with_action("agent-started").len();
        let mut opts = self.opts.clone();
        opts.listen_port = Some(self.listen_port);
        self.child = None;
        self.exit_status = None;
        self.spawn_and_wait_after(&opts, starts)
    }

    /// Where this agent pins its programs, links and maps on bpffs (the agent's default for
    /// its cgroup base, unless `--bpffs-dir` was passed in `extra_args`).
    pub fn bpffs_dir(&self) -> PathBuf {
        let flag = self.opts.extra_args.iter().position(|a| a == "--bpffs-dir");
        match flag.and_then(|i| self.opts.extra_args.get(i + 1)) {
            Some(dir) => PathBuf::from(dir),
            None => {
                Path::new("/sys/fs/bpf/chunk-agent").join(self.cgroup_base.trim_start_matches('/'))
            }
        }
    }

    /// `agent uninstall` for this agent's pins (with `--force` if `force`), killed after 30 s.
    pub fn uninstall(&self, force: bool) -> Result<Output> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("uninstall")
            .arg("--cgroup-base")
            .arg(&self.cgroup_base)
            .arg("--bpffs-dir")
            .arg(self.bpffs_dir());
        if force {
            cmd.arg("--force");
        }
        run_with_timeout(&mut cmd, Duration::from_secs(30))
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if self.child.is_none() {
            return;
        }
        let _ = self.stop();
        // The agent leaves its programs pinned (fail closed): remove them, so tests leave
        // nothing attached behind them.
        match self.uninstall(false) {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!("warning: agent uninstall failed: {}", out.describe()),
            Err(e) => eprintln!("warning: agent uninstall failed: {e:#}"),
        }
        if std::thread::panicking() {
            eprintln!(
                "--- agent stderr ({}) ---\n{}\n--- agent audit log ---\n{}",
                self.stderr_path().display(),
                self.stderr_log(),
                fs::read_to_string(self.audit_path()).unwrap_or_default()
            );
        }
        if let Ok(mount) = cgroup2_mount() {
            let base = mount.join(self.cgroup_base.trim_start_matches('/'));
            if let Err(e) = remove_cgroup_tree(&base) {
                eprintln!("warning: cannot remove {}: {e:#}", base.display());
            }
        }
    }
}
