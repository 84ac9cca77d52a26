//! `cargo xtask soak [--minutes 10]`: a steady, mixed workload through the agent for N minutes,
//! checking that the agent's memory stays flat.
//!
//! A throwaway PostgreSQL (SCRAM) and the agent (static credential, permissive access rules)
//! on loopback; pgbench runs as a job of the workload (`agent exec`, so every connection goes
//! through the eBPF interception and the PostgreSQL proxy) in 30-second rounds cycling through
//! TPC-B `-M simple`, select-only `-M extended`, TPC-B `-M prepared` and select-only with a new
//! connection per transaction (`-C`: session setup, login, recording and teardown churn).
//! Every 10 s it samples the agent's VmRSS, VmHWM, open fds and threads from `/proc`.
//!
//! Verdict: after the warm-up (the first fifth of the run, at least one minute), the RSS
//! (median of the last three samples) may exceed the RSS at the end of the warm-up by at most
//! `--max-growth-mib`; the agent's fd count must come back to its idle count once the load
//! stops. Every pgbench round must succeed.

use crate::util::{cargo, run_cmd, section};
use agent_tests::policy::PostgresPolicy;
use agent_tests::{
    AgentOptions, AgentProcess, OutputExt, PgAuth, PgOptions, PgServer, Secret, loopback_addresses,
    run_with_timeout,
};
use anyhow::{Context, Result, bail, ensure};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Default bound on the RSS growth after the warm-up.
pub const DEFAULT_MAX_GROWTH_MIB: u64 = 16;

const WORKLOAD: &str = "soak-chunker";
const TARGET: &str = "soak-db";
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
const ROUND_SECS: u64 = 30;

#[derive(Debug, Clone)]
pub struct Options {
    pub minutes: u64,
    pub clients: u32,
    pub max_growth_mib: u64,
    pub agent_bin: Option<PathBuf>,
}

/// One look at the agent process.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    hwm_kib: u64,
    fds: usize,
    threads: u64,
}

fn sample(pid: u32, at: Duration) -> Result<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("cannot list /proc/{pid}/fd"))?
        .count();
    Ok(Sample {
        at,
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
        fds,
        threads: field("Threads:")?,
    })
}

/// A pgbench round: (label, extra arguments).
const ROUNDS: [(&str, &[&str]); 4] = [
    ("tpcb simple", &["-M", "simple"]),
    ("select extended", &["-M", "extended", "-S"]),
    ("tpcb prepared", &["-M", "prepared"]),
    ("select reconnect", &["-M", "extended", "-S", "-C"]),
];

pub fn run(opts: &Options) -> Result<()> {
    ensure!(opts.minutes >= 1, "--minutes must be at least 1");
    section("soak: setup");
    let agent_bin = match &opts.agent_bin {
        Some(bin) => bin.clone(),
        None => {
            run_cmd(cargo().args(["build", "-p", "agent"]))?;
            crate::util::agent_bin()?
        }
    };

    let pg = PgServer::start(PgOptions {
        auth: PgAuth::Scram,
        settings: vec![("max_connections".into(), "200".into())],
        ..PgOptions::default()
    })?;
    let secret = Secret::random("Soak-Secret-")?;
    pg.create_login_role("chunker", secret.value())?;
    let pgbench = pg.bin_dir().join("pgbench");
    let init = run_with_timeout(
        std::process::Command::new(&pgbench)
            .args(["-i", "-q", "-s", "2", "-h"])
            .arg(pg.socket_dir())
            .args(["-p", &pg.port().to_string(), "-U", "postgres", "postgres"]),
        Duration::from_secs(300),
    )?;
    ensure!(init.status.success(), "pgbench -i: {}", init.describe());
    pg.admin_sql("grant all on all tables in schema public to chunker")?;

    let policy = PostgresPolicy::new(
        WORKLOAD,
        TARGET,
        loopback_addresses(pg.port()),
        "chunker",
        &secret.path(),
    );
    let agent = AgentProcess::start_with(AgentOptions {
        agent_bin: Some(agent_bin),
        // Production-like logging: per-statement debug logs would dominate the memory figures.
        env: vec![("RUST_LOG".into(), "info".into())],
        ..AgentOptions::with_policy(&policy.to_toml())
    })?;
    let pid = agent.pid().context("the agent has no pid")?;
    let idle = sample(pid, Duration::ZERO)?;
    println!(
        "agent pid {pid}: idle RSS {} KiB, {} fds, {} threads",
        idle.rss_kib, idle.fds, idle.threads
    );

    section(&format!(
        "soak: {} min, {} clients, pgbench rounds of {ROUND_SECS} s",
        opts.minutes, opts.clients
    ));
    let total = Duration::from_secs(opts.minutes * 60);
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || -> Result<Vec<Sample>> {
            let mut samples = Vec::new();
            let mut next = started + SAMPLE_EVERY;
            while !stop.load(Ordering::Relaxed) {
                if Instant::now() >= next {
                    let s = sample(pid, started.elapsed())?;
                    println!(
                        "  t={:>4} s  rss {:>7} KiB  hwm {:>7} KiB  fds {:>4}  threads {:>3}",
                        s.at.as_secs(),
                        s.rss_kib,
                        s.hwm_kib,
                        s.fds,
                        s.threads
                    );
                    samples.push(s);
                    next += SAMPLE_EVERY;
                }
                thread::sleep(Duration::from_millis(200));
            }
            Ok(samples)
        })
    };

    let mut transactions = 0u64;
    let mut round = 0usize;
    let workload_result = (|| -> Result<()> {
        while started.elapsed() < total {
            let left = total.saturating_sub(started.elapsed()).as_secs();
            let secs = left.clamp(1, ROUND_SECS);
            let (label, extra) = ROUNDS[round % ROUNDS.len()];
            round += 1;
            let clients = opts.clients.to_string();
            let mut args: Vec<String> = vec![
                pgbench.display().to_string(),
                "-n".into(),
                "-h".into(),
                "127.0.0.1".into(),
                "-p".into(),
                pg.port().to_string(),
                "-U".into(),
                "jobuser".into(),
                "-c".into(),
                clients,
                "-j".into(),
                "2".into(),
                "-T".into(),
                secs.to_string(),
            ];
            args.extend(extra.iter().map(|a| a.to_string()));
            args.push("postgres".into());
            let out = run_with_timeout(
                agent
                    .exec_command(WORKLOAD, &args)
                    .env("PGCONNECT_TIMEOUT", "10"),
                Duration::from_secs(secs + 120),
            )?;
            ensure!(
                out.status.success(),
                "pgbench round {round} ({label}) failed: {}",
                out.describe()
            );
            let done = processed_transactions(&out.stdout_text()).with_context(|| {
                format!(
                    "no transaction count in pgbench's output: {}",
                    out.describe()
                )
            })?;
            println!("round {round:>3} {label:<17} {secs:>3} s: {done} transactions");
            transactions += done;
        }
        Ok(())
    })();
    stop.store(true, Ordering::Relaxed);
    let samples = sampler
        .join()
        .map_err(|_| anyhow::anyhow!("the sampler thread panicked"))??;
    workload_result?;
    let elapsed = started.elapsed();

    // The sessions are over: the agent's fds must come back to the idle count.
    let deadline = Instant::now() + Duration::from_secs(15);
    let after = loop {
        let s = sample(pid, started.elapsed())?;
        if s.fds <= idle.fds || Instant::now() >= deadline {
            break s;
        }
        thread::sleep(Duration::from_millis(250));
    };

    section("soak: result");
    let verdict = Verdict::compute(&samples, elapsed)?;
    println!(
        "{:>7}  {:>10}  {:>10}  {:>5}  {:>7}",
        "t (s)", "RSS KiB", "HWM KiB", "fds", "threads"
    );
    for s in &samples {
        println!(
            "{:>7}  {:>10}  {:>10}  {:>5}  {:>7}",
            s.at.as_secs(),
            s.rss_kib,
            s.hwm_kib,
            s.fds,
            s.threads
        );
    }
    println!(
        "\n{transactions} transactions in {} pgbench rounds over {:.1} min ({:.0} tx/s)",
        round,
        elapsed.as_secs_f64() / 60.0,
        transactions as f64 / elapsed.as_secs_f64()
    );
    println!(
        "RSS: idle {} KiB; after warm-up (t={} s) {} KiB; end {} KiB; drift {:+} KiB \
         ({:+.1} KiB/min by least squares); peak (VmHWM) {} KiB; bound +{} MiB",
        idle.rss_kib,
        verdict.warm.at.as_secs(),
        verdict.warm.rss_kib,
        verdict.end_rss_kib,
        verdict.drift_kib,
        verdict.slope_kib_per_min,
        samples.iter().map(|s| s.hwm_kib).max().unwrap_or(0),
        opts.max_growth_mib
    );
    println!(
        "fds: idle {}, after the load {}; threads: idle {}, after {}",
        idle.fds, after.fds, idle.threads, after.threads
    );
    drop(agent);
    drop(pg);
    if after.fds > idle.fds {
        bail!(
            "the agent holds {} fds after the load, {} when idle: fds leak",
            after.fds,
            idle.fds
        );
    }
    if verdict.drift_kib > (opts.max_growth_mib * 1024) as i64 {
        bail!(
            "the agent's RSS grew by {} KiB after the warm-up (bound: {} MiB)",
            verdict.drift_kib,
            opts.max_growth_mib
        );
    }
    println!("soak: ok");
    Ok(())
}

/// `number of transactions actually processed: N` (pgbench 15: `N/M` with `-t`, `N` with `-T`).
fn processed_transactions(stdout: &str) -> Option<u64> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed:"))
        .and_then(|v| v.trim().split('/').next())
        .and_then(|v| v.trim().parse().ok())
}

/// The memory verdict of a run.
#[derive(Debug)]
struct Verdict {
    /// The sample that ends the warm-up.
    warm: Sample,
    /// The median RSS of the last three samples.
    end_rss_kib: u64,
    drift_kib: i64,
    slope_kib_per_min: f64,
}

impl Verdict {
    fn compute(samples: &[Sample], elapsed: Duration) -> Result<Self> {
        let warm_up = (elapsed / 5).max(Duration::from_secs(60));
        let after: Vec<&Sample> = samples.iter().filter(|s| s.at >= warm_up).collect();
        ensure!(
            after.len() >= 3,
            "too few samples after the warm-up ({} s): run longer",
            warm_up.as_secs()
        );
        let warm = *after[0];
        let mut last: Vec<u64> = after.iter().rev().take(3).map(|s| s.rss_kib).collect();
        last.sort_unstable();
        let end_rss_kib = last[1];
        let n = after.len() as f64;
        let mean_t = after.iter().map(|s| s.at.as_secs_f64()).sum::<f64>() / n;
        let mean_r = after.iter().map(|s| s.rss_kib as f64).sum::<f64>() / n;
        let (num, den) = after.iter().fold((0.0, 0.0), |(num, den), s| {
            let dt = s.at.as_secs_f64() - mean_t;
            (num + dt * (s.rss_kib as f64 - mean_r), den + dt * dt)
        });
        let slope = if den > 0.0 { num / den * 60.0 } else { 0.0 };
        Ok(Self {
            warm,
            end_rss_kib,
            drift_kib: end_rss_kib as i64 - warm.rss_kib as i64,
            slope_kib_per_min: slope,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(at: u64, rss_kib: u64) -> Sample {
        Sample {
            at: Duration::from_secs(at),
            rss_kib,
            hwm_kib: rss_kib,
            fds: 10,
            threads: 4,
        }
    }

    #[test]
    fn drift_is_measured_from_the_end_of_the_warm_up() {
        // 10 minutes: warm-up is the first 2 minutes; the growth before it does not count.
        let samples: Vec<Sample> = (1..=60)
            .map(|i| s(i * 10, if i < 12 { 1000 + i * 100 } else { 3000 + i }))
            .collect();
        let v = Verdict::compute(&samples, Duration::from_secs(600)).unwrap();
        assert_eq!(v.warm.at, Duration::from_secs(120));
        assert_eq!(v.warm.rss_kib, 3012);
        assert_eq!(v.end_rss_kib, 3059);
        assert_eq!(v.drift_kib, 47);
        assert!(
            (v.slope_kib_per_min - 6.0).abs() < 0.01,
            "{}",
            v.slope_kib_per_min
        );
    }

    #[test]
    fn a_run_without_samples_after_the_warm_up_is_an_error() {
        let samples = vec![s(10, 1), s(20, 1)];
        assert!(Verdict::compute(&samples, Duration::from_secs(30)).is_err());
    }

    #[test]
    fn reads_pgbench_transaction_counts() {
        let out = "transaction type: <builtin: TPC-B (sort of)>\n\
                   number of transactions actually processed: 12345\n\
                   number of failed transactions: 0 (0.000%)\n";
        assert_eq!(processed_transactions(out), Some(12345));
        assert_eq!(
            processed_transactions("number of transactions actually processed: 10/10\n"),
            Some(10)
        );
        assert_eq!(processed_transactions("nothing"), None);
    }
}
