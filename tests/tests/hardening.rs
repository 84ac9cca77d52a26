//! Load, fault and privacy tests of the PostgreSQL proxy, end to end (real kernel, real
//! PostgreSQL, loopback only, bounded in time): 1,000 concurrent intercepted sessions; the
//! upstream restarted under open sessions; clients that never send a startup packet or never
//! read their result; 1 GiB COPY in and out with the agent's memory bounded; planted secrets
//! that never show up in logs (at trace level), audit lines, recordings, errors or `/proc`.
//!
//! Clients are `pg-load` (`tests/src/bin/pg-load.rs`) run as jobs of the workload under
//! `agent exec`: every connection goes through the eBPF interception. Figures (RSS, fds,
//! throughput) are printed with `eprintln!` (`cargo test -- --nocapture` shows them).

#![forbid(unsafe_code)]

use agent_tests::audit::JsonPath;
use agent_tests::policy::{PERMISSIVE_ACCESS, PostgresPolicy};
use agent_tests::{
    AgentOptions, AgentProcess, PgAuth, PgOptions, PgServer, Secret, action_of, loopback_addresses,
};
use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};
use std::thread;
use std::time::{Duration, Instant};

const WORKLOAD: &str = "itest-hardened";
const TARGET: &str = "itest-harddb";
const LOAD: &str = env!("CARGO_BIN_EXE_pg-load");
/// How long the agent may take to close what a test closed.
const SETTLE: Duration = Duration::from_secs(20);

/// An agent (declared first: it stops first) in front of a PostgreSQL server.
struct Fixture {
    agent: AgentProcess,
    pg: PgServer,
    secret: Secret,
}

struct Setup<'a> {
    auth: PgAuth,
    settings: Vec<(String, String)>,
    /// Run as the superuser before the agent starts.
    schema: &'a str,
    access: &'a str,
    rust_log: &'a str,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Self {
            // No SCRAM where it is not the point: PBKDF2 in a debug build costs tens of
            // milliseconds per login.
            auth: PgAuth::Trust,
            settings: Vec::new(),
            schema: "",
            access: PERMISSIVE_ACCESS,
            rust_log: "info",
        }
    }
}

impl Fixture {
    fn start(setup: Setup<'_>) -> Result<Self> {
        raise_fd_limit()?;
        let pg = PgServer::start(PgOptions {
            auth: setup.auth,
            settings: setup.settings,
            ..PgOptions::default()
        })?;
        let secret = Secret::random("S3cr3t-Hardening-")?;
        pg.create_login_role("chunker", secret.value())?;
        if !setup.schema.is_empty() {
            pg.admin_sql(setup.schema)?;
        }
        let mut policy = PostgresPolicy::new(
            WORKLOAD,
            TARGET,
            loopback_addresses(pg.port()),
            "chunker",
            &secret.path(),
        );
        policy.access = Some(setup.access.to_string());
        let agent = AgentProcess::start_with(AgentOptions {
            env: vec![("RUST_LOG".into(), setup.rust_log.into())],
            ..AgentOptions::with_policy(&policy.to_toml())
        })?;
        Ok(Self { agent, pg, secret })
    }

    fn agent_pid(&self) -> u32 {
        self.agent.pid().expect("the agent runs")
    }

    /// `pg-load 127.0.0.1 <port> <mode> <args>` as a job of the workload.
    fn job(&self, mode: &str, args: &[&str]) -> Result<Job> {
        let port = self.pg.port().to_string();
        let mut argv = vec![LOAD, "127.0.0.1", &port, mode];
        argv.extend_from_slice(args);
        Job::spawn(self.agent.exec_command(WORKLOAD, &argv))
    }
}

/// The soft RLIMIT_NOFILE raised to the hard limit, for this process and so for the agent and
/// the jobs it starts (1,000 sessions need about 3,000 fds in the agent).
fn raise_fd_limit() -> Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE)?;
    ensure!(
        soft >= 4096,
        "RLIMIT_NOFILE is {soft} (hard limit): the load test needs at least 4096"
    );
    Ok(())
}

/// VmRSS and VmHWM of `pid`, in KiB.
fn memory_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .with_context(|| format!("no {name} for pid {pid}"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

fn fd_count(pid: u32) -> Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// Waits until the agent holds at most `baseline` fds; returns the last count.
fn wait_fds_back(pid: u32, baseline: usize) -> Result<usize> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let now = fd_count(pid)?;
        if now <= baseline || Instant::now() >= deadline {
            return Ok(now);
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Samples the agent's VmRSS every 100 ms in a thread; [`RssSampler::stop`] returns the peak.
struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((rss, _)) = memory_kib(pid) {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    thread::sleep(Duration::from_millis(100));
                }
            })
        };
        Self {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    fn peak_kib(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak_kib()
    }
}

/// A running job: its stdout lines arrive on a channel; a line on its stdin releases a
/// `ready` wait. Killed on drop.
struct Job {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Arc<std::sync::Mutex<String>>,
    seen: Vec<String>,
}

impl Job {
    fn spawn(mut cmd: Command) -> Result<Self> {
        let mut child = cmd
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start the job")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut stderr_pipe = child.stderr.take().context("stderr")?;
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(std::sync::Mutex::new(String::new()));
        {
            let stderr = Arc::clone(&stderr);
            thread::spawn(move || {
                let mut buf = String::new();
                let _ = stderr_pipe.read_to_string(&mut buf);
                stderr.lock().unwrap().push_str(&buf);
            });
        }
        Ok(Self {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
            seen: Vec::new(),
        })
    }

    /// The pid of `agent exec` (the job's own process is its child: see the `ready` line).
    fn exec_pid(&self) -> u32 {
        self.child.id()
    }

    fn next_json(&mut self, timeout: Duration) -> Result<Value> {
        let line = self.lines.recv_timeout(timeout).map_err(|_| {
            anyhow::anyhow!(
                "no output from the job within {timeout:?}; so far: {:?}; stderr: {}",
                self.seen,
                self.stderr.lock().unwrap()
            )
        })?;
        self.seen.push(line.clone());
        serde_json::from_str(&line).with_context(|| format!("not JSON: {line}"))
    }

    /// Waits for the `ready` line.
    fn ready(&mut self, timeout: Duration) -> Result<Value> {
        let value = self.next_json(timeout)?;
        ensure!(
            value.get("ready").is_some(),
            "expected a ready line, got {value}; stderr: {}",
            self.stderr.lock().unwrap()
        );
        Ok(value)
    }

    fn release(&mut self) -> Result<()> {
        let stdin = self.stdin.as_mut().context("stdin already closed")?;
        stdin.write_all(b"go\n")?;
        stdin.flush()?;
        Ok(())
    }

    /// Waits for the final line and the exit; fails unless the job succeeded.
    fn finish(mut self, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        let value = self.next_json(timeout)?;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                bail!("the job did not exit within {timeout:?}");
            }
            thread::sleep(Duration::from_millis(20));
        };
        // Let the stderr reader finish.
        thread::sleep(Duration::from_millis(50));
        ensure!(
            status.success() && value["ok"] == true,
            "the job failed ({status}): {value}\nstderr: {}",
            self.stderr.lock().unwrap()
        );
        Ok(value)
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_thousand_concurrent_intercepted_sessions_succeed_and_release_their_fds() -> Result<()> {
    const SESSIONS: usize = 1000;
    let f = Fixture::start(Setup {
        settings: vec![("max_connections".into(), "1100".into())],
        ..Setup::default()
    })?;
    let pid = f.agent_pid();
    let baseline_fds = fd_count(pid)?;
    let (idle_rss, _) = memory_kib(pid)?;
    let started = Instant::now();
    let mut job = f.job("hold", &[&SESSIONS.to_string()])?;
    let ready = job.ready(Duration::from_secs(120))?;
    let open_secs = started.elapsed().as_secs_f64();
    ensure!(ready["ready"]["sessions"] == SESSIONS, "{ready}");
    let (rss, hwm) = memory_kib(pid)?;
    let open_fds = fd_count(pid)?;
    eprintln!(
        "{SESSIONS} sessions open in {open_secs:.1} s; agent: RSS {idle_rss} KiB idle -> \
         {rss} KiB with the sessions open ({} KiB per session), VmHWM {hwm} KiB; fds \
         {baseline_fds} idle -> {open_fds}",
        rss.saturating_sub(idle_rss) / SESSIONS as u64
    );
    // Each session holds the client's socket and the upstream one in the agent.
    ensure!(
        open_fds >= baseline_fds + 2 * SESSIONS,
        "{open_fds} fds with {SESSIONS} sessions open (idle: {baseline_fds}): the sessions are \
         not all held by the agent"
    );
    job.release()?;
    let done = job.finish(Duration::from_secs(120))?;
    ensure!(done["still_ok"] == SESSIONS, "{done}");
    let started_events = f.agent.events_with_action("session-started").len();
    ensure!(
        started_events >= SESSIONS,
        "{started_events} session-started events for {SESSIONS} sessions"
    );
    let after = wait_fds_back(pid, baseline_fds)?;
    let (rss_after, _) = memory_kib(pid)?;
    eprintln!(
        "after close: agent fds {after} (idle {baseline_fds}), RSS {rss_after} KiB \
         (total {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    ensure!(
        after <= baseline_fds,
        "the agent holds {after} fds after every session closed ({baseline_fds} before)"
    );
    Ok(())
}

#[test]
fn an_upstream_restart_ends_open_sessions_with_a_clear_error_and_new_sessions_work() -> Result<()> {
    const SESSIONS: usize = 20;
    let f = Fixture::start(Setup::default())?;
    let pid = f.agent_pid();
    let baseline_fds = fd_count(pid)?;
    let mut job = f.job("restart", &[&SESSIONS.to_string()])?;
    job.ready(Duration::from_secs(60))?;
    job.release()?;
    // Let every session start its pg_sleep(60), then restart the server under them.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let sleeping = f.pg.admin_sql(
            "select count(*) from pg_stat_activity where query = 'select pg_sleep(60)'",
        )?;
        if sleeping == SESSIONS.to_string() {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "{sleeping} of {SESSIONS} sessions sleeping"
        );
        thread::sleep(Duration::from_millis(100));
    }
    let old_postmaster = f.pg.postmaster_pid()?;
    let restarted = Instant::now();
    f.pg.restart()?;
    ensure!(
        f.pg.postmaster_pid()? != old_postmaster,
        "the server did not restart"
    );
    eprintln!(
        "server restarted in {:.1} s",
        restarted.elapsed().as_secs_f64()
    );
    let ended = job.ready(Duration::from_secs(60))?;
    ensure!(ended["ready"]["outcomes"] == SESSIONS, "{ended}");
    job.release()?;
    let done = job.finish(Duration::from_secs(60))?;
    let outcomes = done["outcomes"].as_array().context("outcomes")?;
    ensure!(outcomes.len() == SESSIONS, "{done}");
    let mut slowest: f64 = 0.0;
    for o in outcomes {
        ensure!(o.get("hung").is_none(), "a client hung: {o}");
        ensure!(
            o.get("completed").is_none(),
            "a query survived the restart: {o}"
        );
        let clear = matches!(o["sqlstate"].as_str(), Some("57P01" | "08006"))
            || (o["closed"] == true && !o["error"].as_str().unwrap_or("").is_empty());
        ensure!(clear, "no clear error: {o}");
        slowest = slowest.max(o["secs"].as_f64().unwrap_or(f64::MAX));
    }
    let codes: Vec<&str> = outcomes
        .iter()
        .map(|o| o["sqlstate"].as_str().unwrap_or("(connection closed)"))
        .collect();
    eprintln!(
        "restart: {SESSIONS} sessions ended with {codes:?}; slowest {slowest:.1} s after the \
         queries started"
    );
    ensure!(done["after_restart"] == 1, "{done}");
    let after = wait_fds_back(pid, baseline_fds)?;
    eprintln!("agent fds: {baseline_fds} before, {after} after");
    ensure!(
        after <= baseline_fds,
        "the agent holds {after} fds after the restart ({baseline_fds} before)"
    );
    Ok(())
}

#[test]
fn a_client_that_never_sends_a_startup_packet_is_closed_after_the_startup_timeout() -> Result<()> {
    let f = Fixture::start(Setup::default())?;
    let pid = f.agent_pid();
    let baseline_fds = fd_count(pid)?;
    // The proxy's startup timeout is 30 s (agent/src/pg/serve.rs, STARTUP_TIMEOUT).
    let job = f.job("no-startup", &["50"])?;
    let done = job.finish(Duration::from_secs(80))?;
    let secs = done["secs"].as_f64().context("secs")?;
    eprintln!("a silent client was closed by the agent after {secs:.1} s: {done}");
    ensure!(done["closed"] == true, "not closed within 50 s: {done}");
    ensure!(
        (25.0..45.0).contains(&secs),
        "closed after {secs:.1} s, expected the 30 s startup timeout"
    );
    let after = wait_fds_back(pid, baseline_fds)?;
    ensure!(after <= baseline_fds, "{after} fds, {baseline_fds} before");
    f.agent.wait_for_event(
        |e| {
            action_of(e) == "connection-closed"
                && JsonPath::str_at(e, "error.message")
                    .is_some_and(|m| m.contains("no startup in time"))
        },
        Duration::from_secs(5),
    )?;
    Ok(())
}

#[test]
fn a_client_that_stops_reading_a_huge_result_does_not_grow_the_agent() -> Result<()> {
    let f = Fixture::start(Setup::default())?;
    let pid = f.agent_pid();
    let baseline_fds = fd_count(pid)?;
    let mut job = f.job("stall-read", &[])?;
    job.ready(Duration::from_secs(30))?;
    // The server produces up to 50 GB; the client reads nothing. Give the buffers time to fill.
    thread::sleep(Duration::from_secs(2));
    let (start_rss, _) = memory_kib(pid)?;
    let sampler = RssSampler::start(pid);
    thread::sleep(Duration::from_secs(8));
    let peak = sampler.stop();
    let (_, hwm) = memory_kib(pid)?;
    let (end_rss, _) = memory_kib(pid)?;
    eprintln!(
        "stalled reader: agent RSS {start_rss} KiB -> {end_rss} KiB over 8 s, peak {peak} KiB, \
         VmHWM {hwm} KiB"
    );
    ensure!(
        peak <= start_rss + 16 * 1024,
        "the agent grew by {} KiB while the client read nothing",
        peak - start_rss
    );
    job.release()?;
    job.finish(Duration::from_secs(30))?;
    let after = wait_fds_back(pid, baseline_fds)?;
    ensure!(
        after <= baseline_fds,
        "{after} fds after the stalled session ended, {baseline_fds} before"
    );
    Ok(())
}

/// `sink` accepts COPY rows and keeps none (a trigger drops them), so 1 GiB costs no disk.
const SINK: &str = "create table sink (line text); \
     create function drop_row() returns trigger language plpgsql as \
     'begin return null; end'; \
     create trigger drop_rows before insert on sink for each row execute function drop_row(); \
     grant all on sink to chunker";

#[test]
fn a_gibibyte_copy_in_and_out_keeps_the_agent_memory_bounded() -> Result<()> {
    const GIB: u64 = 1 << 30;
    const BOUND_KIB: u64 = 64 * 1024;
    let f = Fixture::start(Setup {
        schema: SINK,
        ..Setup::default()
    })?;
    let pid = f.agent_pid();
    let (idle_rss, _) = memory_kib(pid)?;
    for mode in ["copy-in", "copy-out"] {
        let sampler = RssSampler::start(pid);
        let job = f.job(mode, &[&GIB.to_string()])?;
        let done = job.finish(Duration::from_secs(300))?;
        let peak = sampler.stop();
        let secs = done["secs"].as_f64().context("secs")?;
        let bytes = done["bytes"].as_u64().context("bytes")?;
        eprintln!(
            "{mode}: {bytes} bytes in {secs:.1} s ({:.0} MiB/s); agent RSS idle {idle_rss} KiB, \
             peak {peak} KiB (+{} KiB)",
            bytes as f64 / secs / (1 << 20) as f64,
            peak.saturating_sub(idle_rss)
        );
        ensure!(bytes == GIB, "{mode} moved {bytes} bytes");
        ensure!(
            peak <= idle_rss + BOUND_KIB,
            "{mode}: the agent's RSS peaked at {peak} KiB, {} KiB over idle (bound {BOUND_KIB})",
            peak - idle_rss
        );
    }
    let (_, hwm) = memory_kib(pid)?;
    eprintln!("agent VmHWM after both copies: {hwm} KiB (idle RSS {idle_rss} KiB)");
    ensure!(
        hwm <= idle_rss + BOUND_KIB,
        "the agent's VmHWM reached {hwm} KiB, {} KiB over idle (bound {BOUND_KIB})",
        hwm - idle_rss
    );
    Ok(())
}

/// A 16-digit card number passing the Luhn check, with random digits.
fn card_number() -> Result<String> {
    let hex = agent_tests::pg::random_hex(15)?;
    let mut digits: Vec<u32> = std::iter::once(4)
        .chain(hex.bytes().take(14).map(|b| u32::from(b) % 10))
        .collect();
    // The check digit: the Luhn sum of the 15 digits, doubling every second one from the right
    // of the full number (so the first, third, ... of these 15).
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 0 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    digits.push((10 - sum % 10) % 10);
    Ok(digits
        .iter()
        .map(|d| char::from_digit(*d, 10).unwrap())
        .collect())
}

/// Every file under `dir`, recursively, as lossy text.
fn files_text(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_text(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((
                path.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
    out
}

/// `/proc/<pid>/cmdline` and `/proc/<pid>/environ`, NULs as spaces.
fn proc_texts(pid: u32) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for what in ["cmdline", "environ"] {
        let path = format!("/proc/{pid}/{what}");
        let bytes = std::fs::read(&path).with_context(|| format!("cannot read {path}"))?;
        out.push((path, String::from_utf8_lossy(&bytes).replace('\0', " ")));
    }
    Ok(out)
}

fn assert_absent(planted: &[(&str, &str)], texts: &[(String, String)]) -> Result<()> {
    for (what, value) in planted {
        for (place, text) in texts {
            ensure!(
                !text.contains(value),
                "the planted {what} appears in {place}"
            );
        }
    }
    Ok(())
}

#[test]
fn planted_password_card_number_and_token_never_leak_at_trace_level() -> Result<()> {
    let card_a = card_number()?;
    let card_b = card_number()?;
    let schema = format!(
        "create table cards (id int4 primary key, pan text not null); \
         insert into cards values (1, '{card_a}'), (2, '{card_b}'); \
         grant select on cards to chunker"
    );
    let f = Fixture::start(Setup {
        auth: PgAuth::Scram,
        schema: &schema,
        access: "allow = [{ name = \"read-public\", operations = [\"read\"], tables = \
                 [\"public.*\"] }]",
        rust_log: "trace",
        ..Setup::default()
    })?;
    let token = Secret::random("tok_live_")?;
    let planted = [
        ("password", f.secret.value()),
        ("card number", card_a.as_str()),
        ("card number", card_b.as_str()),
        ("token", token.value()),
    ];
    let token_file = token.path().display().to_string();
    let agent_pid = f.agent_pid();

    // Job A: the token comes from a file; nothing planted is in its arguments or environment.
    let mut a = f.job("secrets", &[&token_file])?;
    let ready = a.ready(Duration::from_secs(60))?;
    let job_pid = ready["pid"].as_u64().context("pid")? as u32;
    let mut procs = proc_texts(job_pid)?;
    procs.extend(proc_texts(a.exec_pid())?);
    procs.extend(proc_texts(agent_pid)?);
    assert_absent(&planted, &procs)?;
    a.release()?;
    let done_a = a.finish(Duration::from_secs(60))?;

    // Job B: the token on the job's own command line (`--token`): the recording's header keeps
    // the command line, redacted.
    let mut b = f.job("secrets", &[&token_file, "--token", token.value()])?;
    let ready = b.ready(Duration::from_secs(60))?;
    let job_b_pid = ready["pid"].as_u64().context("pid")? as u32;
    // The positive control: the search does find the token where the job itself put it.
    ensure!(
        proc_texts(job_b_pid)?
            .iter()
            .any(|(_, text)| text.contains(token.value())),
        "the token is not in job B's command line: the search cannot be trusted"
    );
    b.release()?;
    let done_b = b.finish(Duration::from_secs(60))?;

    // Errors the clients got: the denials, carrying no planted value.
    let mut errors = Vec::new();
    for done in [&done_a, &done_b] {
        let list = done["errors"].as_array().context("errors")?;
        ensure!(list.len() == 3, "{done}");
        for e in list {
            ensure!(e["sqlstate"] == "42501", "not a policy denial: {e}");
            errors.push(("error returned to the client".to_string(), e.to_string()));
        }
    }
    assert_absent(&planted, &errors)?;

    f.agent.wait_for_event(
        |e| action_of(e) == "session-recorded",
        Duration::from_secs(10),
    )?;
    let recordings = f.agent.recordings();
    ensure!(recordings.len() >= 2, "recordings: {recordings:?}");
    let mut agent = f.agent;
    agent.stop()?;

    let stderr = agent.stderr_log();
    // RUST_LOG=trace enables every event of every level; the agent's most verbose ones are
    // at debug level. Without them the test would prove nothing.
    ensure!(
        stderr.contains(" DEBUG "),
        "the agent logged nothing at debug level or below: the test would prove nothing"
    );
    let denied = agent.events_with_action("statement-denied").len();
    ensure!(denied >= 6, "{denied} statement-denied events, expected 6");
    let mut texts = vec![
        ("the agent's stderr (RUST_LOG=trace)".to_string(), stderr),
        (
            "the agent's stdout".to_string(),
            std::fs::read_to_string(agent.stdout_path()).unwrap_or_default(),
        ),
        (
            "the audit log".to_string(),
            std::fs::read_to_string(agent.audit_path())?,
        ),
    ];
    texts.extend(files_text(&agent.data_dir()));
    let recorded: String = recordings
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    ensure!(
        recorded.contains("--token") && recorded.contains("[redacted]"),
        "job B's recorded command line should show `--token [redacted]`"
    );
    assert_absent(&planted, &texts)?;
    eprintln!(
        "no planted value in {} KiB of trace logs, the audit log, {} recordings, 6 client \
         errors, or /proc of the jobs and the agent",
        texts[0].1.len() / 1024,
        recordings.len()
    );
    Ok(())
}
