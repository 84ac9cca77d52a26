//! `cargo xtask fuzz [--time SECS] [TARGET...]`: builds every cargo-fuzz target of `fuzz/` once,
//! then runs each (or the named ones) for a bounded time, starting from its committed seeds in
//! `fuzz/corpus/<target>/`. A crash, a panic, a timeout or an out-of-memory input fails the task
//! and prints the reproducer's path and the command that replays it.
//!
//! New inputs go to a scratch corpus (the committed seeds stay as they are) unless `--merge`,
//! which adds to `fuzz/corpus/<target>/` the inputs that reach new coverage (libFuzzer
//! `-merge=1`), to be reviewed and committed. cargo-fuzz is installed if missing.

use crate::util::{cargo, output_of, run_cmd, section, show, succeeds};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// What `cargo xtask fuzz` does.
#[derive(Debug, Clone)]
pub struct Options {
    /// Seconds per target.
    pub time: u64,
    /// Targets to run (empty: all of them).
    pub targets: Vec<String>,
    /// Merge new coverage-increasing inputs into the committed corpus.
    pub merge: bool,
    /// The sanitizer (`none` or `address`).
    pub sanitizer: String,
    /// Build without optimizations (`cargo fuzz --dev`): a much shorter build, fewer
    /// executions per second.
    pub dev: bool,
}

/// The nightly toolchain cargo-fuzz needs (`-Z` flags).
const TOOLCHAIN: &str = "nightly";

/// Per-input limit: an input that runs longer is a hang (reported like a crash).
const INPUT_TIMEOUT_SECS: u64 = 10;
/// Memory limit of a fuzzing process.
const RSS_LIMIT_MB: u64 = 2048;

pub fn run(opts: &Options) -> Result<()> {
    anyhow::ensure!(opts.time > 0, "--time must be at least 1 second");
    section("fuzz: build");
    ensure_cargo_fuzz()?;
    let fuzz_dir = agent_tests::workspace_root().join("fuzz");
    let all = list_targets(&fuzz_dir)?;
    let targets = if opts.targets.is_empty() {
        all.clone()
    } else {
        for t in &opts.targets {
            if !all.contains(t) {
                bail!("no fuzz target `{t}` (targets: {})", all.join(", "));
            }
        }
        opts.targets.clone()
    };

    // One build for all targets: they share every dependency (the agent, pg_query's C code).
    let started = Instant::now();
    run_cmd(&mut fuzz_cmd(&fuzz_dir, "build", opts))?;
    println!(
        "fuzz: built {} targets in {:.0} s",
        all.len(),
        started.elapsed().as_secs_f64()
    );

    let mut results = Vec::new();
    for target in &targets {
        section(&format!("fuzz: {target} ({} s)", opts.time));
        results.push(run_target(&fuzz_dir, target, opts)?);
    }

    section("fuzz: summary");
    println!(
        "{:<14} {:>12} {:>10} {:>8} {:>8}  result",
        "target", "executions", "exec/s", "corpus", "cov"
    );
    for r in &results {
        println!(
            "{:<14} {:>12} {:>10} {:>8} {:>8}  {}",
            r.target,
            r.stats.runs.map_or("?".into(), |n| n.to_string()),
            r.stats.execs_per_sec.map_or("?".into(), |n| n.to_string()),
            r.stats.corpus.map_or("?".into(), |n| n.to_string()),
            r.stats.coverage.map_or("?".into(), |n| n.to_string()),
            if r.failure.is_none() { "ok" } else { "FAILED" }
        );
    }
    let failed: Vec<&TargetResult> = results.iter().filter(|r| r.failure.is_some()).collect();
    if failed.is_empty() {
        return Ok(());
    }
    for r in &failed {
        println!(
            "\n{}: {}",
            r.target,
            r.failure.as_deref().unwrap_or_default()
        );
    }
    bail!(
        "fuzzing found a problem in {}",
        failed
            .iter()
            .map(|r| r.target.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The nightly cargo: `rustup run nightly cargo`, without the variables the (stable) cargo
/// running xtask set for its children, so that cargo-fuzz's own cargo calls are nightly too.
fn nightly_cargo() -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", TOOLCHAIN, "cargo"])
        .current_dir(agent_tests::workspace_root());
    for var in ["CARGO", "RUSTC", "RUSTDOC", "RUSTUP_TOOLCHAIN"] {
        cmd.env_remove(var);
    }
    cmd
}

/// `cargo fuzz <sub> --sanitizer <sanitizer>` (nightly) in `fuzz/`.
fn fuzz_cmd(fuzz_dir: &Path, sub: &str, opts: &Options) -> Command {
    let mut cmd = nightly_cargo();
    cmd.current_dir(fuzz_dir)
        .args(["fuzz", sub, "--sanitizer"])
        .arg(&opts.sanitizer);
    if opts.dev {
        cmd.arg("--dev");
    }
    cmd
}

fn ensure_cargo_fuzz() -> Result<()> {
    if succeeds(nightly_cargo().args(["fuzz", "--version"])) {
        println!("ok: cargo-fuzz is installed");
        return Ok(());
    }
    run_cmd(cargo().args(["install", "cargo-fuzz", "--locked"]))
        .context("cannot install cargo-fuzz")
}

/// The fuzz targets (`cargo fuzz list`).
fn list_targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let mut cmd = nightly_cargo();
    cmd.current_dir(fuzz_dir).args(["fuzz", "list"]);
    let out = output_of(&mut cmd).context("`cargo fuzz list` failed")?;
    let targets: Vec<String> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    anyhow::ensure!(!targets.is_empty(), "`cargo fuzz list` lists no target");
    Ok(targets)
}

#[derive(Debug)]
struct TargetResult {
    target: String,
    stats: Stats,
    /// What went wrong, with the reproducer.
    failure: Option<String>,
}

fn run_target(fuzz_dir: &Path, target: &str, opts: &Options) -> Result<TargetResult> {
    let seeds = fuzz_dir.join("corpus").join(target);
    std::fs::create_dir_all(&seeds)?;
    let scratch = tempfile::Builder::new()
        .prefix(&format!("fuzz-{target}-"))
        .tempdir()
        .context("cannot create a scratch corpus")?;
    let artifacts = fuzz_dir.join("artifacts").join(target);
    std::fs::create_dir_all(&artifacts)?;

    let mut cmd = fuzz_cmd(fuzz_dir, "run", opts);
    // The scratch directory first: libFuzzer writes new inputs to the first corpus directory.
    cmd.arg(target).arg(scratch.path()).arg(&seeds).args([
        "--".to_string(),
        format!("-max_total_time={}", opts.time),
        format!("-timeout={INPUT_TIMEOUT_SECS}"),
        format!("-rss_limit_mb={RSS_LIMIT_MB}"),
        format!("-artifact_prefix={}/", artifacts.display()),
        "-print_final_stats=1".into(),
    ]);
    show(&cmd);
    // libFuzzer stops by itself after -max_total_time; the margin covers loading the seeds and
    // a final slow input.
    let limit = Duration::from_secs(opts.time + 300);
    let out = agent_tests::run_with_timeout(&mut cmd, limit)?;
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let log_path = artifacts.join("last-run.log");
    std::fs::write(&log_path, &log)?;
    let stats = Stats::parse(&log);
    println!(
        "{target}: {} executions ({} exec/s), corpus {} inputs, coverage {}; log: {}",
        stats.runs.map_or("?".into(), |n| n.to_string()),
        stats.execs_per_sec.map_or("?".into(), |n| n.to_string()),
        stats.corpus.map_or("?".into(), |n| n.to_string()),
        stats.coverage.map_or("?".into(), |n| n.to_string()),
        log_path.display()
    );

    let failure = if out.status.success() {
        None
    } else {
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        println!(
            "--- last lines of the {target} run ---\n{}",
            tail.join("\n")
        );
        let reproducer = reproducer_path(&log);
        Some(match reproducer {
            Some(path) => format!(
                "failing input: {}\nreplay: cd fuzz && cargo +{TOOLCHAIN} fuzz run --sanitizer {}{} \
                 {target} {}",
                path.display(),
                opts.sanitizer,
                if opts.dev { " --dev" } else { "" },
                path.display()
            ),
            None => format!("the fuzzer failed ({}) without a reproducer", out.status),
        })
    };

    if opts.merge && failure.is_none() {
        let mut merge = fuzz_cmd(fuzz_dir, "run", opts);
        merge
            .arg(target)
            .arg(&seeds)
            .arg(scratch.path())
            .args(["--", "-merge=1"]);
        run_cmd(&mut merge)?;
    }
    Ok(TargetResult {
        target: target.to_string(),
        stats,
        failure,
    })
}

/// The path libFuzzer wrote the failing input to (`Test unit written to <path>`).
fn reproducer_path(log: &str) -> Option<PathBuf> {
    log.lines()
        .filter_map(|l| l.split_once("Test unit written to "))
        .map(|(_, path)| PathBuf::from(path.trim()))
        .next_back()
}

/// libFuzzer's closing figures.
#[derive(Debug, Default, PartialEq, Eq)]
struct Stats {
    runs: Option<u64>,
    execs_per_sec: Option<u64>,
    corpus: Option<u64>,
    coverage: Option<u64>,
}

impl Stats {
    /// From `stat::number_of_executed_units: N`, `stat::average_exec_per_sec: N` and the last
    /// status line (`#N DONE cov: C ft: F corp: K/...`, or any `#N ... cov: ... corp: ...`).
    fn parse(log: &str) -> Self {
        let mut stats = Self::default();
        for line in log.lines() {
            let line = line.trim();
            if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
                stats.runs = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("stat::average_exec_per_sec:") {
                stats.execs_per_sec = v.trim().parse().ok();
            } else if line.starts_with('#') && line.contains(" cov: ") {
                let mut words = line.split_whitespace();
                while let Some(word) = words.next() {
                    match word {
                        "cov:" => stats.coverage = words.next().and_then(|v| v.parse().ok()),
                        "corp:" => {
                            stats.corpus = words
                                .next()
                                .and_then(|v| v.split('/').next())
                                .and_then(|v| v.parse().ok());
                        }
                        _ => {}
                    }
                }
            }
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_final_stats_and_status_lines() {
        let log = "INFO: Seed: 1\n\
                   #2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb\n\
                   #9000\tNEW    cov: 120 ft: 300 corp: 42/1024b lim: 4 exec/s: 900 rss: 40Mb\n\
                   #10000\tDONE   cov: 125 ft: 310 corp: 44/1100b lim: 4 exec/s: 1000 rss: 41Mb\n\
                   stat::number_of_executed_units: 10000\n\
                   stat::average_exec_per_sec:     1000\n";
        assert_eq!(
            Stats::parse(log),
            Stats {
                runs: Some(10000),
                execs_per_sec: Some(1000),
                corpus: Some(44),
                coverage: Some(125),
            }
        );
        assert_eq!(Stats::parse("nothing here"), Stats::default());
    }

    #[test]
    fn finds_the_reproducer_libfuzzer_wrote() {
        let log = "==1== ERROR: libFuzzer: deadly signal\n\
                   MS: 1 ChangeBit-; base unit: abc\n\
                   artifact_prefix='/w/fuzz/artifacts/scram/'; Test unit written to \
                   /w/fuzz/artifacts/scram/crash-0123\n";
        assert_eq!(
            reproducer_path(log),
            Some(PathBuf::from("/w/fuzz/artifacts/scram/crash-0123"))
        );
        assert_eq!(reproducer_path("Done 100 runs in 1 second(s)"), None);
    }
}
